"""A/B/C account grading from weighted, capped signals: the weights are configuration a
marketing director changes without code (``grading.yaml``); pure, graded as events arrive."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import rulefile

SIGNALS = ("pipeline_value", "won_value", "intent", "decision_chain", "activity", "tier")
SIGNAL_ZH = {
    "pipeline_value": "在途商机金额",
    "won_value": "近一年成交金额",
    "intent": "近30天阅读产品资料",
    "decision_chain": "决策链覆盖",
    "activity": "近30天拜访演示",
    "tier": "三级甲等医院",
}
RECENT = timedelta(days=30)
YEAR = timedelta(days=365)


class GradingRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")
    weights: dict[str, float]
    caps: dict[str, float] = {}
    thresholds: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> GradingRules:
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise ValueError(f"unknown signals {sorted(unknown)}; known: {', '.join(SIGNALS)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        if any(c <= 0 for c in self.caps.values()) or set(self.caps) - set(SIGNALS):
            raise ValueError("caps must be > 0 and name known signals")
        if set(self.thresholds) != {"A", "B"} or not 0 <= self.thresholds["B"] <= self.thresholds["A"] <= 100:
            raise ValueError("thresholds: A and B, with 0 <= B <= A <= 100")
        return self


Loaded = rulefile.Loaded[GradingRules]
FILE = rulefile.Kind(GradingRules, "grading.yaml", "pipeline.deals")
parse, shipped, load, successor = FILE.parse, FILE.shipped, FILE.load, FILE.successor


def signals(state: dict[str, Any], at: datetime) -> dict[str, float]:
    """The account's raw signals at ``at`` (event time): money in yuan, counts."""
    opps = state["opps"].values()
    pipeline = sum((Decimal(o.get("expected_amount") or "0") for o in opps if not o["closed_at"]), Decimal(0))
    won = sum(
        (
            Decimal(o["quotes"][-1]["amount"] if o["quotes"] else o.get("expected_amount") or "0")
            for o in opps
            if o["stage"] == "won" and o["closed_at"] and at - datetime.fromisoformat(o["closed_at"]) <= YEAR
        ),
        Decimal(0),
    )
    read = any(o["intent_at"] and at - datetime.fromisoformat(o["intent_at"]) <= RECENT for o in opps)
    roles = {c["role"] for c in state["contacts"].values()}
    recent = [t for t in state.get("activity_times", []) if at - datetime.fromisoformat(t) <= RECENT]
    tier = (state["account"] or {}).get("tier", "")
    return {
        "pipeline_value": float(pipeline),
        "won_value": float(won),
        "intent": 1.0 if read else 0.0,
        "decision_chain": float(len(roles)),
        "activity": float(len(recent)),
        "tier": 1.0 if tier == "三级甲等" else 0.0,
    }


def grade(state: dict[str, Any], at: datetime, rules: GradingRules) -> tuple[str, float, list[str]]:
    """(A/B/C, score 0-100, the signals that earned the most points, in Chinese)."""
    raw = signals(state, at)
    total = sum(rules.weights.values())
    points = {k: w * min(1.0, raw[k] / rules.caps.get(k, 1.0)) / total * 100 for k, w in rules.weights.items() if w > 0}
    score = round(sum(points.values()), 1)
    letter = "A" if score >= rules.thresholds["A"] else "B" if score >= rules.thresholds["B"] else "C"
    top = [f"{SIGNAL_ZH[k]} +{v:.0f}" for k, v in sorted(points.items(), key=lambda kv: -kv[1]) if v >= 1][:3]
    return letter, score, top
