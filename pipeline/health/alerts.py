"""Declarative alert rules over health state, evaluated in event time, and their lifecycle.

Pure: ``evaluate`` looks at a customer's features and scores and returns the alerts due,
honouring each rule's cooldown and the weekly contact cap; ids are deterministic so a
replay raises the same alert id (and the ``alerts`` table collapses repeats).
``apply_action`` moves an alert through open -> acknowledged -> resolved, each step a new
version of the same row. ``notify_after`` keeps pushes out of the quiet hours.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from pipeline.health.config import load_yaml
from pipeline.health.features import Features
from pipeline.intake import iso, now_iso


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["silent_slow_contact", "band_drop", "score_fall"]
    severity: Literal["low", "medium", "high"]
    title: str
    cooldown_days: float = Field(gt=0)
    # Off: kept in the file, judged by `salespulse alerts backtest --all-rules`, never raised.
    enabled: bool = True
    key_contacts_only: bool = False
    others_only: bool = False  # everyone but key contacts (who have a rule of their own)
    # silent_slow_contact: only customers who have used the app count as silent (a member who
    # never had it has not gone quiet on it)
    app_users_only: bool = False
    # silent_slow_contact: a customer whose score is already below this is gone (a win-back
    # list), not news an alert can still act on; 0: no floor
    min_score: float = Field(default=0, ge=0, le=100)
    days_without_material: float = 7
    replies: int = Field(default=3, ge=1, le=3)
    reply_hours: float = 48
    to_band: Literal["watch", "at_risk"] = "at_risk"
    # band_drop: and the score fell at least this much in 7 days (a fall, not a hover at the line)
    min_fall: float = Field(default=0, ge=0)
    points: float = Field(default=20, gt=0)


class Specialist(_Strict):
    id: str
    name: str
    segments: list[Literal["b2b_contact", "retail_member"]] = Field(min_length=1)
    regions: list[str] = []  # empty: every region


class QuietHours(_Strict):
    start: time
    end: time
    timezone: str = "Asia/Shanghai"
    bypass_severity: list[Literal["low", "medium", "high"]] = []


class AlertConfig(_Strict):
    rules: list[Rule] = Field(min_length=1)
    roster: list[Specialist] = Field(min_length=1)
    # store id prefix -> region, e.g. "S-SH-" -> 华东; customers without a known store: any region
    regions: dict[str, str] = {}
    contacts_per_week: int = Field(default=2, ge=1)
    cap_bypass_severity: list[Literal["low", "medium", "high"]] = ["high"]
    quiet_hours: QuietHours | None = None
    # A fall in score caused by a source this far behind the others raises no score alert.
    source_lag_hours: float = Field(default=12, gt=0)
    # Band and score rules start once a customer has this many days of history: a first month
    # judged against windows the data does not cover yet is noise, not a fall.
    warmup_days: float = Field(default=14, ge=0)


def all_rules_on(cfg: AlertConfig) -> AlertConfig:
    """The same file with every rule switched on: what a backtest judges the switched-off rules by."""
    return cfg.model_copy(update={"rules": [r.model_copy(update={"enabled": True}) for r in cfg.rules]})


def load_alert_config(path: str | None = None) -> AlertConfig:
    return load_yaml(AlertConfig, "alerts.yaml", path)


BAND_RANK = {"healthy": 0, "watch": 1, "at_risk": 2}


def concerns(rule: Rule, *, key_contact: bool, uses_app: bool) -> bool:
    """Whether a silence rule is about this kind of customer at all."""
    if (rule.key_contacts_only and not key_contact) or (rule.others_only and key_contact):
        return False
    return not (rule.app_users_only and not uses_app)


def silent_and_slow(rule: Rule, days_since_open: float | None, reply_hours: tuple[float, ...]) -> bool:
    """The silence condition: no material for the rule's days and its last replies all slow.

    Between two of a customer's events it can only turn true, never back (material ages,
    waiting messages only get older), which lets the watermark find the moment it did."""
    silent = days_since_open is None or days_since_open >= rule.days_without_material
    recent = reply_hours[-rule.replies :]
    return silent and len(recent) == rule.replies and all(h > rule.reply_hours for h in recent)


def due(
    rule: Rule,
    f: Features,
    *,
    key_contact: bool,
    uses_app: bool = True,
    band: str,
    previous_band: str | None,
    trend_7d: float | None,
) -> dict[str, Any] | None:
    """The title parameters if ``rule`` fires for these features, else None."""
    if rule.kind == "silent_slow_contact":
        if not concerns(rule, key_contact=key_contact, uses_app=uses_app):
            return None
        if silent_and_slow(rule, f.days_since_open, f.reply_hours):
            return {"days": int(rule.days_without_material), "replies": rule.replies, "hours": int(rule.reply_hours)}
        return None
    if rule.kind == "band_drop":
        fell = rule.min_fall == 0 or (trend_7d is not None and trend_7d <= -rule.min_fall)
        if band == rule.to_band and previous_band is not None and BAND_RANK[previous_band] < BAND_RANK[band] and fell:
            return {}
        return None
    if trend_7d is not None and trend_7d <= -rule.points:
        return {"points": int(-trend_7d)}
    return None


def alert_id(customer_id: str, rule_id: str, raised_at: datetime) -> str:
    """Same customer, rule and event-time day -> same id, whoever evaluates it and when.

    Readable and reversible (``schemas.events.alert_customer``), so an action on an alert can be routed to the
    partition that owns the customer's state without a lookup.
    """
    return f"{customer_id}:{rule_id}:{raised_at.strftime('%Y%m%d')}"


def notify_after(cfg: AlertConfig, raised_at: datetime, severity: str) -> datetime:
    """When a push may go out: at once, or at the end of the quiet hours it falls in."""
    q = cfg.quiet_hours
    if q is None or severity in q.bypass_severity:
        return raised_at
    local = raised_at.astimezone(ZoneInfo(q.timezone))
    t = local.timetz().replace(tzinfo=None)
    quiet = (q.start <= t or t < q.end) if q.start > q.end else (q.start <= t < q.end)
    if not quiet:
        return raised_at
    end = local.replace(hour=q.end.hour, minute=q.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(raised_at.tzinfo)


def region_of(cfg: AlertConfig, store_id: str | None) -> str | None:
    if not store_id:
        return None
    return next(
        (r for prefix, r in sorted(cfg.regions.items(), key=lambda kv: -len(kv[0])) if store_id.startswith(prefix)),
        None,
    )


def assign(
    cfg: AlertConfig, segment: str, open_counts: dict[str, int], customer_id: str, region: str | None = None
) -> str:
    """The specialist serving this segment and region with the fewest open alerts (ties: stable
    by customer); nobody for the region -> anyone for the segment -> anyone."""
    seg = "b2b_contact" if segment == "b2b_contact" else "retail_member"
    by_segment = [s for s in cfg.roster if seg in s.segments]
    local = [s for s in by_segment if region is None or not s.regions or region in s.regions]
    pool = local or by_segment or list(cfg.roster)
    tie = int(hashlib.sha256(customer_id.encode()).hexdigest(), 16)
    best = min(pool, key=lambda s: (open_counts.get(s.id, 0), (tie + pool.index(s)) % len(pool)))
    return best.id


def evaluate(
    cfg: AlertConfig,
    state: dict[str, Any],
    f: Features,
    *,
    as_of: datetime,
    score: float,
    band: str,
    previous_band: str | None,
    trend_7d: float | None,
    open_counts: dict[str, int],
    kinds: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts to raise now (of the rules of ``kinds``, all when None); records the raise time
    per rule in ``state['alerts']`` (cooldown) and which rules' conditions still hold since
    their alert in ``state['firing']``: a rule raises once per episode, again only after its
    condition has cleared (and the cooldown has passed).

    Over the weekly contact cap an alert is still raised and stored, as ``suppressed`` with
    the reason, so nobody is contacted a third time in a week and nothing disappears.
    """
    raised: dict[str, str] = state.setdefault("alerts", {})
    firing: list[str] = state.setdefault("firing", [])
    week_ago = (as_of - timedelta(days=7)).isoformat()
    contacts: list[str] = [t for t in state.get("contacts", []) if t > week_ago]
    out = []
    first = state.get("first_at")
    young = first is None or as_of - datetime.fromisoformat(first) < timedelta(days=cfg.warmup_days)
    for rule in cfg.rules:
        if (kinds is not None and rule.kind not in kinds) or not rule.enabled:
            continue
        if young and rule.kind != "silent_slow_contact":
            continue
        params = due(
            rule,
            f,
            key_contact=bool(state.get("key_contact")),
            uses_app="app" in state.get("first_used", {}),
            band=band,
            previous_band=previous_band,
            trend_7d=trend_7d,
        )
        if params is None:
            if rule.id in firing:
                firing.remove(rule.id)  # the condition cleared: the next time it holds is news
            continue
        if rule.id in firing:
            continue  # one alert per episode: still silent a week later is the same story
        last = raised.get(rule.id)
        if last is not None and as_of - datetime.fromisoformat(last) < timedelta(days=rule.cooldown_days):
            continue
        if score < rule.min_score:
            continue  # already gone: not news that can still prevent it (the episode stays open)
        firing.append(rule.id)
        raised[rule.id] = as_of.isoformat()
        capped = len(contacts) >= cfg.contacts_per_week and rule.severity not in cfg.cap_bypass_severity
        region = region_of(cfg, state.get("store"))
        assignee = assign(cfg, state["segment"], open_counts, state["customer_id"], region)
        if not capped:
            contacts.append(as_of.isoformat())
            open_counts[assignee] = open_counts.get(assignee, 0) + 1
        out.append(
            {
                "alert_id": alert_id(state["customer_id"], rule.id, as_of),
                "customer_id": state["customer_id"],
                "rule_id": rule.id,
                "severity": rule.severity,
                "title": rule.title.format(score=round(score), **params),
                "score": score,
                "band": band,
                "assignee": assignee,
                "status": "suppressed" if capped else "open",
                "suppressed_reason": f"7天内已提醒{len(contacts)}次，达到每周联系上限" if capped else "",
                "raised_at": iso(as_of),
                "notify_after": iso(notify_after(cfg, as_of, rule.severity)),
                "acknowledged_by": "",
                "acknowledged_at": None,
                "resolved_by": "",
                "resolved_at": None,
                "note": "",
                "updated_at": now_iso(),
                "version": 1,  # lifecycle changes (acknowledged, resolved) are later versions
            }
        )
    state["contacts"] = contacts
    return out


NEXT_STATUS = {"acknowledge": "acknowledged", "resolve": "resolved"}
ALLOWED_FROM = {"acknowledge": {"open"}, "resolve": {"open", "acknowledged", "suppressed"}}


def apply_action(alert: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """The next version of ``alert`` after ``action``; ValueError names a refused transition."""
    verb = action["action"]
    if alert["status"] not in ALLOWED_FROM[verb]:
        raise ValueError(f"alert {alert['alert_id']} is {alert['status']}: cannot {verb}")
    out = {**alert, "status": NEXT_STATUS[verb], "version": alert["version"] + 1, "updated_at": now_iso()}
    who, at = action["by"], action["at"]
    if verb == "acknowledge":
        out.update(acknowledged_by=who, acknowledged_at=at)
    else:
        out.update(resolved_by=who, resolved_at=at)
    if action.get("note"):
        out["note"] = action["note"]
    return out
