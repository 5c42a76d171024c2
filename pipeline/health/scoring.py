"""Health score 0-100 from engagement features: weighted components, bands, reasons.

Every component is a number in [0, 1] that never falls when its input gets better, so the
score is bounded and monotone in each feature. A change of score is explained as signed
points per component, in Chinese for store staff, e.g. ``-12 连续7天未打开产品资料``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.health.config import load_yaml
from pipeline.health.features import Features

Component = Literal["engagement", "reading", "recency", "responsiveness", "purchases", "returns"]
COMPONENTS: tuple[Component, ...] = ("engagement", "reading", "recency", "responsiveness", "purchases", "returns")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Targets(_Strict):
    logins_7d: float = Field(gt=0)
    opens_7d: float = Field(gt=0)
    purchases_30d: float = Field(gt=0)


class Profile(_Strict):
    weights: dict[Component, float]
    targets: Targets
    expected_sources: list[Literal["pos", "app", "messaging", "notes"]] = Field(min_length=1)

    @model_validator(mode="after")
    def _weights(self) -> Profile:
        if set(self.weights) != set(COMPONENTS):
            raise ValueError(f"weights must name exactly {COMPONENTS}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return self


class Bands(_Strict):
    healthy: float = Field(gt=0, le=100)
    watch: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> Bands:
        if self.watch >= self.healthy:
            raise ValueError("bands.watch must be below bands.healthy")
        return self


class Latency(_Strict):
    good_hours: float = Field(ge=0)
    bad_hours: float = Field(gt=0)


class HealthConfig(_Strict):
    profiles: dict[Literal["b2b_contact", "retail_member"], Profile]
    bands: Bands
    latency: Latency
    recency_days: float = Field(gt=0)
    stale_days: float = Field(gt=0)

    def profile(self, segment: str) -> Profile:
        return self.profiles["b2b_contact" if segment == "b2b_contact" else "retail_member"]


def load_config(path: str | None = None) -> HealthConfig:
    return load_yaml(HealthConfig, "health.yaml", path)


def components(f: Features, profile: Profile, cfg: HealthConfig) -> dict[str, float]:
    t = profile.targets
    lat = cfg.latency

    def latency_score(h: float) -> float:
        if h <= lat.good_hours:
            return 1.0
        return max(0.0, 1.0 - (h - lat.good_hours) / (lat.bad_hours - lat.good_hours))

    return {
        "engagement": min(1.0, 0.5 * f.logins_7d / t.logins_7d + 0.5 * f.opens_7d / t.opens_7d),
        "reading": min(1.0, max(0.0, f.depth_30d)),
        "recency": 0.0 if f.days_since_open is None else max(0.0, 1.0 - f.days_since_open / cfg.recency_days),
        "responsiveness": 0.5
        if not f.reply_hours
        else sum(latency_score(h) for h in f.reply_hours) / len(f.reply_hours),
        "purchases": min(1.0, f.purchases_30d / t.purchases_30d),
        "returns": 1.0 if f.returns_30d == 0 else max(0.0, 1.0 - f.returns_30d / max(1, f.purchases_30d)),
    }


def band(score: float, cfg: HealthConfig) -> str:
    if score >= cfg.bands.healthy:
        return "healthy"
    if score >= cfg.bands.watch:
        return "watch"
    return "at_risk"


@dataclass(frozen=True)
class Score:
    score: float
    band: str
    components: dict[str, float]
    points: dict[str, float]  # each component's share of the score, in points
    confidence: float
    stale_sources: tuple[str, ...]


def score(f: Features, segment: str, cfg: HealthConfig, fresh: dict[str, str], as_of: datetime) -> Score:
    profile = cfg.profile(segment)
    comps = components(f, profile, cfg)
    total_w = sum(profile.weights.values())
    points: dict[str, float] = {c: 100.0 * profile.weights[c] / total_w * comps[c] for c in COMPONENTS}
    value = round(sum(points.values()), 1)
    stale = tuple(
        s
        for s in profile.expected_sources
        if s not in fresh or (as_of - datetime.fromisoformat(fresh[s])).total_seconds() > cfg.stale_days * 86400
    )
    confidence = round(1.0 - len(stale) / len(profile.expected_sources), 2)
    return Score(value, band(value, cfg), comps, points, confidence, stale)


def _why(component: str, f: Features, cfg: HealthConfig) -> str:
    if component == "recency":
        if f.days_since_open is None:
            return "从未打开产品资料"
        return f"{int(f.days_since_open)}天未打开产品资料" if f.days_since_open >= 1 else "今天打开了产品资料"
    if component == "responsiveness":
        if not f.reply_hours:
            return "暂无回复记录"
        slow = sum(1 for h in f.reply_hours if h > 48)
        if slow == len(f.reply_hours):
            return f"最近{len(f.reply_hours)}次回复均超过48小时"
        return f"最近{len(f.reply_hours)}次回复平均{sum(f.reply_hours) / len(f.reply_hours):.0f}小时"
    if component == "engagement":
        return f"近7天登录{f.logins_7d}次、打开资料{f.opens_7d}次"
    if component == "reading":
        return f"近30天资料平均阅读深度{f.depth_30d:.0%}"
    if component == "purchases":
        return f"近30天购买{f.purchases_30d}次"
    return f"近30天退货{f.returns_30d}次"


def reasons(
    prev: dict[str, float] | None, now: Score, f: Features, cfg: HealthConfig, min_points: float = 1.0
) -> list[str]:
    """Signed point changes per component, largest first: ``-12 连续7天未打开产品资料``."""
    base = prev or {c: 0.0 for c in COMPONENTS}
    deltas = [(now.points[c] - base.get(c, 0.0), c) for c in COMPONENTS]
    ranked = sorted(deltas, key=lambda d: -abs(d[0]))
    out = [f"{delta:+.0f} {_why(c, f, cfg)}" for delta, c in ranked if abs(delta) >= min_points]
    if not out and abs(ranked[0][0]) > 0:
        # Many small moves add up to a change: name the largest so no change goes unexplained.
        delta, c = ranked[0]
        out.append(f"{delta:+.1f} {_why(c, f, cfg)}")
    return out
