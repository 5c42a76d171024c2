"""Close probability per open deal, its top factors, and each rep's TOP-3 for the morning.

Features are read from an ``opportunities`` row at a moment (pure), so the same function
serves training (rows rebuilt by replaying the stored CRM events through the fold, one
snapshot a week per open deal), the morning ranking and the API. The model is a logistic
regression on standardised features, kept as JSON (weights, means, scales): a factor is a
feature's share of the logit, named in Chinese for the rep.

Training is time-based: deals closed before a cut-off, seen only at moments before it, train
the model; every open deal seen after the cut-off tests it, against how it really ended (the
stored outcome, and the simulator's ground truth where there is one).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline import customer
from pipeline.deals import book, gates
from schemas.crm import STAGES

# (name, how a rep reads it when it pushes the chance up, when it pulls it down)
FEATURES: list[tuple[str, str, str]] = [
    ("stage", "已推进到较后阶段", "仍在早期阶段"),
    ("days_open", "商机开启时间较长", "商机刚开启"),
    ("days_in_stage", "在当前阶段停留较久", "刚进入当前阶段"),
    ("days_since_activity", "近期跟进不足", "近期有跟进"),
    ("activities", "跟进次数多", "跟进次数少"),
    ("quality_demo", "做过≥45分钟且含定制参数页的演示", "未做过深度定制演示"),
    ("demo_minutes", "演示时间长", "演示时间短"),
    ("intent", "客户近期阅读了产品资料（高意向）", "客户近期未阅读产品资料"),
    ("survey_complete", "需求调研表完整", "需求调研表不完整"),
    ("decision_roles", "已覆盖多个决策链角色", "决策链覆盖不足"),
    ("refusals", "阶段推进多次被拦截", "阶段推进未被拦截"),
    ("price_gap", "报价高于竞品", "报价不高于竞品"),
    ("budget_days", "距预算截止还早", "预算即将截止"),
]
SNAPSHOT_EVERY = timedelta(days=7)
INTENT_DAYS = 14.0


def _ts(v: str | datetime) -> datetime:
    """A stored time as the row carries it: ISO text (the fold's rows) or a datetime (ClickHouse)."""
    t = v if isinstance(v, datetime) else datetime.fromisoformat(v)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _days(later: datetime, earlier: str | datetime | None, cap: float = 365.0) -> float:
    if not earlier:
        return cap
    return max(0.0, min(cap, (later - _ts(earlier)).total_seconds() / 86400))


def features(row: dict[str, Any], at: datetime) -> list[float]:
    """The deal as the model sees it at ``at`` (an ``opportunities`` row, values as stored)."""
    quote = float(row["quote_amount"]) if row.get("quote_amount") is not None else None
    rival = float(row["competitor_amount"]) if row.get("competitor_amount") is not None else None
    gap = (quote - rival) / quote if quote and rival else 0.0
    deadline = row.get("budget_deadline")
    budget_days = (date.fromisoformat(str(deadline)[:10]) - at.date()).days if deadline else 90
    intent = _days(at, row.get("intent_at")) <= INTENT_DAYS if row.get("intent_at") else False
    return [
        STAGES.index(row["stage"]) / (len(STAGES) - 1) if row["stage"] in STAGES else 0.0,
        _days(at, row["created_at"]),
        _days(at, row["stage_since"]),
        _days(at, row.get("last_activity_at") or row["created_at"]),
        float(row.get("activities", 0)),
        float(row.get("quality_demo", 0)),
        float(row.get("demo_minutes", 0.0)),
        1.0 if intent else 0.0,
        float(row.get("survey_complete", 0)),
        float(row.get("decision_roles", 0)),
        float(row.get("refusals", 0)),
        max(-0.5, min(0.5, gap)),
        float(max(-60, min(180, budget_days))),
    ]


@dataclass(frozen=True)
class DealModel:
    version: str
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    evaluation: dict[str, Any]

    def probability(self, x: list[float]) -> float:
        z = self.intercept + sum(
            c * (v - m) / s for c, v, m, s in zip(self.coef, x, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def factors(self, x: list[float], top: int = 3) -> list[str]:
        """The features that move this deal's chance most, in words, with the direction."""
        parts = [
            (c * (v - m) / s, i) for i, (c, v, m, s) in enumerate(zip(self.coef, x, self.mean, self.scale, strict=True))
        ]
        parts.sort(key=lambda p: -abs(p[0]))
        out = []
        for share, i in parts[:top]:
            if abs(share) < 0.05:
                break
            _name, high, low = FEATURES[i]
            said = high if x[i] > self.mean[i] else low
            out.append(f"{'＋' if share > 0 else '－'}{said}")
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": "deal_close_probability",
                "version": self.version,
                "features": [f[0] for f in FEATURES],
                "mean": self.mean,
                "scale": self.scale,
                "coef": self.coef,
                "intercept": self.intercept,
                "evaluation": self.evaluation,
            },
            ensure_ascii=False,
            indent=1,
        )


MODEL_FILE = "deal_model.json"


def load(model_dir: Path) -> DealModel | None:
    path = model_dir / MODEL_FILE
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("features") != [f[0] for f in FEATURES]:
        raise ValueError(f"{path}: trained on other features; run `salespulse deals train` again")
    return DealModel(doc["version"], doc["mean"], doc["scale"], doc["coef"], float(doc["intercept"]), doc["evaluation"])


# --- training data: the stored CRM events replayed through the fold -------------------------


@dataclass
class Snapshot:
    opportunity_id: str
    rep_id: str
    at: datetime
    row: dict[str, Any]


def replay(
    rows: Iterable[tuple[dict[str, Any], dict[str, Any], str]], every: timedelta = SNAPSHOT_EVERY
) -> tuple[list[Snapshot], dict[str, tuple[str, datetime]]]:
    """(weekly snapshots of every open deal, outcome and close time of every closed deal) from
    ``(events row, masked payload, account id)`` in event time."""
    rules = book.Rules(gates.shipped())
    states: dict[str, dict[str, Any]] = {}
    snaps: list[Snapshot] = []
    outcomes: dict[str, tuple[str, datetime]] = {}
    offset = 0
    next_snap: datetime | None = None
    for row, payload, account in rows:
        at = datetime.fromisoformat(row["occurred_at"])
        if next_snap is None:
            next_snap = at + every
        while at >= next_snap:
            for state in states.values():
                for opp in state["opps"].values():
                    if not opp["closed_at"]:
                        r = book.opportunity_row(state, opp, rules.current)
                        snaps.append(Snapshot(opp["opportunity_id"], opp.get("rep_id", ""), next_snap, r))
            next_snap += every
        state = states.setdefault(account, book.new_account(account))
        offset += 1
        try:
            book.fold(
                state,
                row,
                payload,
                source="replay",
                offset=offset,
                rules=rules,
                out=customer.Results(),
                touched=book.Touched(),
            )
        except book.UnknownOpportunity:
            continue
        opp = state["opps"].get(payload.get("opportunity_id") or "")
        if opp is not None and opp["closed_at"] and opp["opportunity_id"] not in outcomes:
            outcomes[opp["opportunity_id"]] = (opp["stage"], datetime.fromisoformat(opp["closed_at"]))
    return snaps, outcomes


def from_store(client: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any], str]]:
    """The stored CRM events (masked, as the fold saw them), in event time."""
    res = client.query(
        "SELECT event_id, event_type, occurred_at, payload, account_id FROM events FINAL "
        "WHERE startsWith(event_type, 'crm.') AND account_id != '' ORDER BY occurred_at, event_id"
    )
    for event_id, etype, occurred, payload, account in res.result_rows:
        at = _ts(occurred).isoformat(timespec="milliseconds")  # as the fold's rows write it: UTC, aware
        row = {"event_id": event_id, "event_type": etype, "occurred_at": at, "payload": payload}
        yield row, json.loads(payload), account


# --- training and evaluation ----------------------------------------------------------------


def train(
    snaps: list[Snapshot],
    outcomes: dict[str, tuple[str, datetime]],
    truth: dict[str, str] | None = None,
    split: float = 0.7,
    version: str = "",
) -> DealModel:
    """Fit on deals closed before the cut-off (the ``split`` quantile of close times), seen at
    moments before it; test on every snapshot after it: against the stored outcome where the
    deal closed within the data, and against ``truth`` (deal -> won/lost) where given."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score

    closes = sorted(t for _o, t in outcomes.values())
    if len(closes) < 20:
        raise ValueError(f"only {len(closes)} closed deals: too few to learn from")
    cutoff = closes[min(len(closes) - 1, int(len(closes) * split))]
    train_set = [
        s for s in snaps if s.at < cutoff and s.opportunity_id in outcomes and outcomes[s.opportunity_id][1] < cutoff
    ]
    if len({outcomes[s.opportunity_id][0] for s in train_set}) < 2:
        raise ValueError("the closed history before the cut-off has only one outcome")
    x = np.array([features(s.row, s.at) for s in train_set])
    y = np.array([outcomes[s.opportunity_id][0] == "won" for s in train_set], dtype=int)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(max_iter=2000, C=1.0).fit((x - mean) / scale, y)
    model = DealModel(
        version or cutoff.strftime("%Y%m%dT%H%M%SZ"),
        [float(v) for v in mean],
        [float(v) for v in scale],
        [float(v) for v in lr.coef_[0]],
        float(lr.intercept_[0]),
        {},
    )
    # stage alone (the win rate of each stage in training): what the model must beat
    by_stage: dict[str, list[int]] = {}
    for s, label in zip(train_set, y, strict=True):
        by_stage.setdefault(s.row["stage"], []).append(int(label))
    prior = {k: sum(v) / len(v) for k, v in by_stage.items()}
    base_rate = float(y.mean())

    def judge(label_of: dict[str, bool]) -> dict[str, Any]:
        test = [s for s in snaps if s.at >= cutoff and s.opportunity_id in label_of]
        if len({label_of[s.opportunity_id] for s in test}) < 2:
            return {"snapshots": len(test)}
        yt = [int(label_of[s.opportunity_id]) for s in test]
        p = [model.probability(features(s.row, s.at)) for s in test]
        b = [prior.get(s.row["stage"], base_rate) for s in test]
        return {
            "snapshots": len(test),
            "deals": len({s.opportunity_id for s in test}),
            "won_share": round(sum(yt) / len(yt), 3),
            "auc": round(float(roc_auc_score(yt, p)), 3),
            "auc_stage_only": round(float(roc_auc_score(yt, b)), 3),
            "brier": round(float(brier_score_loss(yt, p)), 4),
            "brier_stage_only": round(float(brier_score_loss(yt, b)), 4),
        }

    evaluation: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "train_snapshots": len(train_set),
        "train_deals": len({s.opportunity_id for s in train_set}),
        "stored_outcome": judge({k: v[0] == "won" for k, v in outcomes.items()}),
    }
    if truth:
        evaluation["ground_truth"] = judge({k: v == "won" for k, v in truth.items()})
    return DealModel(model.version, model.mean, model.scale, model.coef, model.intercept, evaluation)


# --- the morning TOP-3 ------------------------------------------------------------------------

URGENT_BUDGET_DAYS = 30
STALLED_DAYS = 14.0
FRESH_INTENT_DAYS = 3.0


def urgency(row: dict[str, Any], at: datetime) -> tuple[float, list[str]]:
    """How much a deal needs the rep today: a budget that lapses soon, a deal going quiet, a
    contact who just read the product documents."""
    u, why = 1.0, []
    deadline = row.get("budget_deadline")
    if deadline:
        left = (date.fromisoformat(str(deadline)[:10]) - at.date()).days
        if 0 <= left <= URGENT_BUDGET_DAYS:
            u += 0.6
            why.append(f"预算 {left} 天后截止")
    quiet = _days(at, row.get("last_activity_at") or row["created_at"])
    if quiet >= 7:
        u += 0.4 * min(1.0, quiet / STALLED_DAYS)
        why.append(f"已 {quiet:.0f} 天未跟进")
    if row.get("intent_at") and _days(at, row["intent_at"]) <= FRESH_INTENT_DAYS:
        u += 0.5
        why.append(f"客户刚阅读《{row.get('intent_title', '')}》")
    return u, why


def top3(rows: Iterable[dict[str, Any]], model: DealModel, at: datetime, per_rep: int = 3) -> list[dict[str, Any]]:
    """Each rep's open deals ranked by close probability × urgency, with the factors."""
    ranked: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("closed_at") or row["stage"] in ("won", "lost"):
            continue
        x = features(row, at)
        p = model.probability(x)
        u, why = urgency(row, at)
        ranked.setdefault(row["rep_id"], []).append(
            {
                "rep_id": row["rep_id"],
                "opportunity_id": row["opportunity_id"],
                "name": row.get("name", ""),
                "account_name": row.get("account_name", ""),
                "stage": row["stage"],
                "probability": round(p, 4),
                "urgency": round(u, 3),
                "priority": round(p * u, 4),
                "factors": model.factors(x),
                "urgent_because": why,
            }
        )
    out: list[dict[str, Any]] = []
    for rep in sorted(ranked):
        best = sorted(ranked[rep], key=lambda r: (-r["priority"], r["opportunity_id"]))[:per_rep]
        out.extend({**r, "rank": i} for i, r in enumerate(best, 1))
    return out
