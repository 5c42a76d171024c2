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


# The sources a score reads. Store notes are not one: they feed the tags, and a note does not
# score the customer again (``features.scores``), so a profile cannot expect them.
Source = Literal["pos", "app", "messaging"]
# Which source each component is measured from: a channel the customer has never used says
# nothing about their health where the profile calls it optional.
SOURCE_OF: dict[Component, Source] = {
    "engagement": "app",
    "reading": "app",
    "recency": "app",
    "responsiveness": "messaging",
    "purchases": "pos",
    "returns": "pos",
}


class Profile(_Strict):
    weights: dict[Component, float]
    targets: Targets
    expected_sources: list[Source] = Field(min_length=1)
    # Sources that count only once the customer has used them: a member who only shops in
    # store is judged on the till alone and can be healthy.
    optional_sources: list[Source] = []

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
    top: dict[str, float]  # each component's points at its target (0 where its channel is unused)


def score(
    f: Features,
    segment: str,
    cfg: HealthConfig,
    fresh: dict[str, str],
    as_of: datetime,
    first_used: dict[str, str] | None = None,
) -> Score:
    """``first_used``: each source's first event time, so that a score of an earlier moment
    (the 7-day trend's) counts a channel only if the customer had used it by then, whatever
    order the worker read the topics in (default: ``fresh``, any use so far)."""
    profile = cfg.profile(segment)
    comps = components(f, profile, cfg)
    first = fresh if first_used is None else first_used
    unused = {s for s in profile.optional_sources if s not in first or datetime.fromisoformat(first[s]) > as_of}
    weights = {c: 0.0 if SOURCE_OF[c] in unused else profile.weights[c] for c in COMPONENTS}
    total_w = sum(weights.values()) or 1.0
    points: dict[str, float] = {c: 100.0 * weights[c] / total_w * comps[c] for c in COMPONENTS}
    top: dict[str, float] = {c: 100.0 * weights[c] / total_w for c in COMPONENTS}
    value = round(sum(points.values()), 1)
    stale = tuple(
        s
        for s in profile.expected_sources
        if s not in unused
        and (s not in fresh or (as_of - datetime.fromisoformat(fresh[s])).total_seconds() > cfg.stale_days * 86400)
    )
    confidence = round(1.0 - len(stale) / len(profile.expected_sources), 2)
    return Score(value, band(value, cfg), comps, points, confidence, stale, top)


def _why(component: str, f: Features, profile: Profile) -> str:
    """What a component stands at, in words a store manager reads at a glance."""
    t = profile.targets
    if component == "recency":
        if f.days_since_open is None:
            return "从未打开产品资料"
        return f"{int(f.days_since_open)}天未打开资料" if f.days_since_open >= 1 else "今天打开了资料"
    if component == "responsiveness":
        if not f.reply_hours:
            return "暂无回复记录"
        slow = sum(1 for h in f.reply_hours if h > 48)
        if slow == len(f.reply_hours):
            n = len(f.reply_hours)
            return f"最近{n}次消息{'均' if n > 1 else ''}超过48小时未回复或回复"
        return f"最近{len(f.reply_hours)}次回复平均{sum(f.reply_hours) / len(f.reply_hours):.0f}小时"
    if component == "engagement":
        if not f.logins_7d and not f.opens_7d:
            return "近7天未登录、未打开资料"
        return f"近7天登录{f.logins_7d}次、打开资料{f.opens_7d}次（目标{t.logins_7d:g}次、{t.opens_7d:g}次）"
    if component == "reading":
        return "近30天未阅读资料" if not f.opens_30d else f"资料平均只读了{f.depth_30d:.0%}"
    if component == "purchases":
        if not f.purchases_30d:
            return "近30天未到店消费"
        return f"近30天消费{f.purchases_30d}次（目标{t.purchases_30d:g}次）"
    return f"近30天退货{f.returns_30d}次"


MAX_REASONS = 5


def reasons(
    prev: dict[str, float] | None,
    now: Score,
    f: Features,
    cfg: HealthConfig,
    segment: str = "retail_member",
    min_points: float = 1.0,
) -> list[str]:
    """Why the customer is at this score: first the biggest recent changes against the
    previous score (``10天未打开资料（较上次-12）``), then the biggest gaps to the profile's
    target, the points still missing (``近30天未到店消费（-20）``). A first score has no
    changes: it is explained entirely by what is missing, never against zero."""
    profile = cfg.profile(segment)
    out: list[str] = []
    named: set[str] = set()
    if prev is not None:
        deltas = sorted(((now.points[c] - prev.get(c, 0.0), c) for c in COMPONENTS), key=lambda d: -abs(d[0]))
        for delta, c in deltas[:2]:
            if abs(delta) >= min_points:
                out.append(f"{_why(c, f, profile)}（较上次{delta:+.0f}）")
                named.add(c)
        if not out and abs(deltas[0][0]) > 0:
            delta, c = deltas[0]  # many small moves add up to a change: name the largest
            out.append(f"{_why(c, f, profile)}（较上次{delta:+.1f}）")
            named.add(c)
    gaps = sorted(((now.top[c] - now.points[c], c) for c in COMPONENTS if c not in named), key=lambda g: -g[0])
    for missing, c in gaps:
        if missing >= min_points and len(out) < MAX_REASONS:
            out.append(f"{_why(c, f, profile)}（-{missing:.0f}）")
    return out
