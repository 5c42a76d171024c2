"""`salespulse train`: a calibrated churn-risk model from the event history in ClickHouse.

Examples are (customer, cutoff) pairs: features as of the cutoff from events before it
(the same ``features`` the health agent uses), for customers active in the 14 days before
it; label = churned: in the following ``horizon`` days their activity fell below a quarter
of those 14 days (at most one event counts as gone). The split is by time: cutoffs before
the split date train, later ones test, so the evaluation never sees the future it predicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.health.features import Features, apply_event, features, new_state
from pipeline.health.scoring import HealthConfig, score

FEATURE_NAMES = (
    "logins_7d",
    "opens_7d",
    "opens_30d",
    "depth_30d",
    "days_since_open",
    "reply_hours_mean",
    "purchases_30d",
    "returns_30d",
    "b2b",
)


def vector(f: Features, segment: str) -> list[float]:
    replies = f.reply_hours
    return [
        f.logins_7d,
        f.opens_7d,
        f.opens_30d,
        f.depth_30d,
        60.0 if f.days_since_open is None else min(f.days_since_open, 60.0),
        (sum(replies) / len(replies)) if replies else 24.0,
        f.purchases_30d,
        f.returns_30d,
        1.0 if segment == "b2b_contact" else 0.0,
    ]


@dataclass
class Dataset:
    x: list[list[float]]
    y: list[int]
    cutoff: list[datetime]
    customer: list[str] = field(default_factory=list)
    segment: list[str] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)  # with simulator truth: churned within truth_days
    rule_score: list[float] = field(default_factory=list)  # with a health config: the rules' score


def build_dataset(client: Any, step_days: int = 3, horizon_days: int = 14) -> Dataset:
    rows = client.query(
        "SELECT event_id, event_type, occurred_at, customer_id, payload FROM events FINAL "
        "WHERE customer_id != '' ORDER BY occurred_at"
    ).result_rows
    if not rows:
        raise ValueError("no events in ClickHouse: run the pipeline (e.g. `make demo`) first")
    return dataset_from_rows(
        [(eid, etype, ts.replace(tzinfo=UTC), cid, payload) for eid, etype, ts, cid, payload in rows],
        step_days=step_days,
        horizon_days=horizon_days,
    )


def dataset_from_rows(
    rows: list[tuple[str, str, datetime, str, str]],
    *,
    step_days: float = 3,
    horizon_days: int = 14,
    truth: dict[str, datetime | None] | None = None,
    truth_days: int = 30,
    health: HealthConfig | None = None,
) -> Dataset:
    """Examples from (event_id, event_type, occurred_at, customer_id, payload JSON) in time
    order. With ``truth`` (the simulator's churn dates) each example also records whether the
    customer really churned within ``truth_days`` after the cutoff, and with ``health`` the
    rules' score at the cutoff: what ``backtest.compare_model`` judges both on."""
    first = rows[0][2]
    last = rows[-1][2]
    cutoffs = []
    c = first + timedelta(days=7)
    # With the truth the test cutoffs run to the end of the data (the truth needs no future
    # events); the behavioural label of a cutoff closer to the end than the horizon is partial,
    # and is not trained on.
    while c + timedelta(days=0 if truth is not None else horizon_days) <= last:
        cutoffs.append(c)
        c += timedelta(days=step_days)
    by_customer: dict[str, list[tuple[datetime, dict[str, Any]]]] = {}
    for event_id, etype, ts, cid, payload in rows:
        by_customer.setdefault(cid, []).append(
            (ts, {"event_id": event_id, "event_type": etype, "occurred_at": ts.isoformat(), "payload": payload})
        )
    data = Dataset([], [], [])
    for cid, events in by_customer.items():
        state = new_state(cid)
        i = 0
        times = [t for t, _ in events]
        churn_at = None if truth is None else truth.get(cid)
        for cutoff in cutoffs:
            while i < len(events) and events[i][0] < cutoff:
                apply_event(state, events[i][1])
                i += 1
            if i == 0:
                continue  # not a customer yet at this cutoff
            if churn_at is not None and churn_at <= cutoff:
                continue  # already gone (by the truth): nothing left to predict
            past = sum(1 for t in times[:i] if t >= cutoff - timedelta(days=14))
            if past < 2:
                continue  # already quiet: nothing left to lose
            future = sum(1 for t in times[i:] if t < cutoff + timedelta(days=horizon_days))
            f = features(state, cutoff)
            data.x.append(vector(f, state["segment"]))
            data.y.append(1 if future <= max(1, past // 4) else 0)
            data.cutoff.append(cutoff)
            data.customer.append(cid)
            data.segment.append(state["segment"])
            if truth is not None:
                data.truth.append(int(churn_at is not None and churn_at <= cutoff + timedelta(days=truth_days)))
            if health is not None:
                s = score(f, state["segment"], health, state["fresh"], cutoff, state.get("first_used"))
                data.rule_score.append(s.score)
    return data


def fit(x: Any, y: Any) -> Any:
    """The model `salespulse train` ships: standardised logistic regression, calibrated."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), method="sigmoid", cv=3
    )
    model.fit(x, y)
    return model


def train(client: Any, out_dir: Path, test_share: float = 0.3) -> dict[str, Any]:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, roc_auc_score

    data = build_dataset(client)
    order = sorted(set(data.cutoff))
    split = order[int(len(order) * (1 - test_share))]
    x, y = np.array(data.x), np.array(data.y)
    is_test = np.array([c >= split for c in data.cutoff])
    if len(set(y[~is_test])) < 2 or len(set(y[is_test])) < 2:
        raise ValueError("both churned and active customers are needed on each side of the split")
    model = fit(x[~is_test], y[~is_test])
    p = model.predict_proba(x[is_test])[:, 1]
    frac_pos, mean_pred = calibration_curve(y[is_test], p, n_bins=5, strategy="quantile")
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "version": version,
        "split": f"time-based: cutoffs before {split.isoformat()} train, from it on test",
        "train_examples": int((~is_test).sum()),
        "test_examples": int(is_test.sum()),
        "test_churn_rate": round(float(y[is_test].mean()), 3),
        "roc_auc": round(float(roc_auc_score(y[is_test], p)), 3),
        "brier": round(float(brier_score_loss(y[is_test], p)), 4),
        "calibration": [[round(float(m), 3), round(float(f), 3)] for m, f in zip(mean_pred, frac_pos, strict=True)],
        "features": list(FEATURE_NAMES),
    }
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / f"churn-{version}.joblib")
    (out_dir / f"churn-{version}.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


class ChurnModel:
    """A trained artifact as the worker uses it: features in, calibrated churn probability out."""

    def __init__(self, model: Any, version: str) -> None:
        self.model = model
        self.version = version

    def probability(self, f: Features, segment: str) -> float:
        return float(self.model.predict_proba(np.array([vector(f, segment)]))[0, 1])


def load_latest(model_dir: Path) -> ChurnModel | None:
    """The newest ``churn-<version>.joblib`` whose report lists the features this code computes."""
    import joblib

    for path in sorted(model_dir.glob("churn-*.joblib"), reverse=True):
        report_path = path.with_suffix(".json")
        if not report_path.exists():
            continue
        report = json.loads(report_path.read_text())
        if report.get("features") != list(FEATURE_NAMES):
            continue  # trained on another feature set: not usable by this code
        return ChurnModel(joblib.load(path), report["version"])
    return None
