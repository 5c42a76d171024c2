"""Alert rules judged against the simulator's ground truth, without Kafka or ClickHouse.

``replay`` runs simulated traffic through the same pure code the worker runs (intake's
validation and masking, the health fold and settle, the watermark's absence checks every
event-time hour), event by event in event time; ``judge`` scores the alerts it raised against
who really churned and when. The demo's ClickHouse report (``reports.alert_truth``) uses the
same ``reports.judge``, so a threshold tuned here means the same thing there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from nlp.pii import Pii
from pipeline import intake
from pipeline.health import engine as health
from pipeline.health.alerts import AlertConfig
from pipeline.health.features import new_state, scores, source_of
from pipeline.health.scoring import HealthConfig
from schemas.events import EventError

REPLAY_KEY = b"backtest-only-hmac-key-32-bytes!"  # nothing leaves the process


@dataclass
class Outage:
    """A source topic whose events stop arriving at ``start`` and arrive, late, at ``end``."""

    topic: str
    start: datetime
    end: datetime


@dataclass
class Replay:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    span: tuple[datetime, datetime] | None = None
    events: int = 0


def replay(
    messages: Any,
    health_cfg: HealthConfig,
    alert_cfg: AlertConfig,
    *,
    outage: Outage | None = None,
    tick: timedelta = timedelta(hours=1),
) -> Replay:
    """``messages``: (topic, key, value, occurred_at) in event time, as ``simulate.generate``
    yields them. Customers' alerts are collected; quiet customers are judged at every ``tick``
    of the watermark, as the worker does once per event-time hour."""
    pii = Pii(REPLAY_KEY)
    states: dict[str, dict[str, Any]] = {}
    out = Replay()
    mark = health.Watermark(idle=float("inf"))
    lag = timedelta(hours=alert_cfg.source_lag_hours)
    late: list[tuple[str, bytes]] = []
    next_tick: datetime | None = None
    first: datetime | None = None
    last: datetime | None = None

    def deliver(topic: str, value: bytes) -> None:
        try:
            ev = intake.decode(value, topic, 1 << 20)
            row, payload = intake.accepted(ev, pii)
        except EventError:
            return
        cid = row["customer_id"]
        if not cid or row["event_type"] == "alert.action":
            return
        out.events += 1
        mark.observe(source_of(row["event_type"]), ev.envelope.occurred_at, 0.0)
        state = states.setdefault(cid, new_state(cid))
        before = ev.envelope.occurred_at - health.JUST_BEFORE  # judged before each event, as the agent does
        if health.silence_before(state, before, alert_cfg) is not None:
            out.alerts.extend(result for _kind, result in health.absent(state, before, health_cfg, alert_cfg))
        if health.fold(state, row, payload) and scores(row["event_type"]):  # a note is not scored, as in the agent
            for kind, result in health.settle(
                state, health_cfg, alert_cfg=alert_cfg, model=None, held=mark.lagging(lag)
            ):
                if kind == "alert":
                    out.alerts.append(result)

    for topic, _key, value, ts in messages:
        first = ts if first is None else first
        last = ts
        while next_tick is not None and next_tick <= ts:
            for state in states.values():
                for kind, result in health.absent(state, next_tick, health_cfg, alert_cfg):
                    if kind == "alert":
                        out.alerts.append(result)
            next_tick += tick
        if next_tick is None:
            next_tick = ts + tick
        if outage is not None and outage.start <= ts < outage.end and topic == outage.topic:
            late.append((topic, value))
            continue
        if outage is not None and late and ts >= outage.end:
            for t, v in late:
                deliver(t, v)
            late.clear()
        deliver(topic, value)
    for t, v in late:
        deliver(t, v)
    out.span = None if first is None or last is None else (first, last)
    return out


def compare_model(
    messages: Any,
    truth: list[dict[str, Any]],
    health_cfg: HealthConfig,
    *,
    budget: float = 10.0,
    test_share: float = 0.4,
    truth_days: int = 30,
) -> dict[str, Any]:
    """The churn model as `salespulse train` fits it (behavioural labels known before the
    split) against the rules' score (risk = 100 - score), both judged on the simulator's truth
    over the last 40% of daily cutoffs (churned within ``truth_days``): ROC AUC overall and
    per segment, and precision among the highest-risk customer-days, as many as an alert
    budget of ``budget`` per 100 customers a month allows."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from pipeline.health.churn import FEATURE_NAMES, dataset_from_rows, fit

    rows = []
    for _topic, _key, value, ts in messages:
        env = orjson.loads(value)
        if env.get("customer_id") and env["event_type"] != "alert.action":
            payload = orjson.dumps(env["payload"]).decode()
            rows.append((env["event_id"], env["event_type"], ts, env["customer_id"], payload))
    churn = {t["customer_id"]: t["churn_at"] for t in truth}
    horizon_days = 14
    data = dataset_from_rows(
        rows, step_days=1, horizon_days=horizon_days, truth=churn, truth_days=truth_days, health=health_cfg
    )
    order = sorted(set(data.cutoff))
    split = order[int(len(order) * (1 - test_share))]
    test = np.array([c >= split for c in data.cutoff])
    # trained only on labels known before the split: a cutoff whose 14-day label runs into the
    # test period would leak it
    train = np.array([c + timedelta(days=horizon_days) <= split for c in data.cutoff])
    x, y = np.array(data.x), np.array(data.y)
    if len(set(y[train])) < 2 or len(set(np.array(data.truth)[test])) < 2:
        raise ValueError("too short a history to train before the split and test after it: simulate 45 days or more")
    model = fit(x[train], y[train])
    p_model = model.predict_proba(x[test])[:, 1]
    p_rules = 100.0 - np.array(data.rule_score)[test]
    real = np.array(data.truth)[test]
    segments = np.array(data.segment)[test]
    days = len({c for c in data.cutoff if c >= split})
    k = max(1, round(budget / 100 * len(truth) * days / 30))

    def auc(p: Any, mask: Any) -> float | None:
        return round(float(roc_auc_score(real[mask], p[mask])), 3) if len(set(real[mask])) == 2 else None

    def at_budget(p: Any) -> float:
        return round(float(real[np.argsort(-p, kind="stable")[:k]].mean()), 3)

    everyone = np.ones(len(real), dtype=bool)
    report: dict[str, Any] = {
        "split": f"cutoffs before {split.date().isoformat()} train, from it on test ({days} days)",
        "test_examples": int(test.sum()),
        "test_churn_rate": round(float(real.mean()), 3),
        "budget_examples": k,
        "auc": {
            "all": {"rules": auc(p_rules, everyone), "model": auc(p_model, everyone)},
            **{
                seg: {"rules": auc(p_rules, segments == seg), "model": auc(p_model, segments == seg)}
                for seg in ("b2b_contact", "retail_member")
            },
        },
        "precision_at_budget": {"rules": at_budget(p_rules), "model": at_budget(p_model)},
    }
    coefs = [
        float(
            np.mean([c.estimator.named_steps["logisticregression"].coef_[0][i] for c in model.calibrated_classifiers_])
        )
        for i in range(len(FEATURE_NAMES))
    ]
    report["model_weights"] = sorted(
        ((name, round(w, 2)) for name, w in zip(FEATURE_NAMES, coefs, strict=True)), key=lambda t: -abs(t[1])
    )
    a, r = report["auc"]["all"], report["precision_at_budget"]
    beats = a["model"] is not None and a["rules"] is not None and a["model"] > a["rules"] and r["model"] >= r["rules"]
    report["verdict"] = (
        "the model beats the rules' score on the simulator's truth"
        if beats
        else "the model does not beat the rules' score: the rules stay the default"
    )
    return report
