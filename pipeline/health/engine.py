"""Customer health, pure: fold an event (cheap), settle once per batch (score, reasons, alerts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.health.alerts import AlertConfig, apply_action, concerns, evaluate, silent_and_slow
from pipeline.health.churn import ChurnModel
from pipeline.health.features import (
    UNANSWERED_SLOW_HOURS,
    UNSCORED_SOURCES,
    Features,
    apply_event,
    close_of,
    day_of,
    features,
    open_before,
    prune,
    reply_hours,
    scores,
)
from pipeline.health.scoring import COMPONENTS, SOURCE_OF, HealthConfig, Score, band, reasons, score
from pipeline.intake import iso, now_iso

ABSENCE_KINDS = frozenset({"silent_slow_contact"})  # rules judged over spans of silence, not at an event
SCORE_KINDS = frozenset({"band_drop", "score_fall"})  # rules judged on each stored score
MIN_CHANGE = 1.0  # points; smaller moves are not a "change" worth a history row
SEGMENT_ZH = {"b2b_contact": "B2B联系人", "retail_member": "门店会员", "unknown": "未识别客户"}


def trend_7d(
    state: dict[str, Any], now: Score, as_of: datetime, cfg: HealthConfig, model: ChurnModel | None
) -> float | None:
    """Score change over a week: now against the close of the day seven days earlier, that
    score recomputed from the same state (a function of the events, not of when they were
    scored). It is kept in the state until an event that can change it arrives (one on or
    before that day, a reply, a new segment), as the close of a past day rarely moves."""
    day = day_of(as_of - timedelta(days=7))
    then = close_of(day)
    first = state.get("first_at")
    if first is None or first > then.isoformat():
        return None
    base = state.get("trend_base")
    if base is None or base["day"] != day:
        f = features(state, then, by_day=True)
        raw = score(f, state["segment"], cfg, state["fresh"], then, state.get("first_used"))
        before = rescore(raw, f, state["segment"], cfg, model)[0]
        base = state["trend_base"] = {"day": day, "score": before.score, "points": before.points}
    return round(now.score - float(base["score"]), 1)


def caused_by(held: frozenset[str], now: dict[str, float], then: dict[str, float] | None) -> bool:
    """Whether at least half of a fall from ``then`` to ``now`` (points per component) is in
    components measured from a source in ``held``: a source that is behind (an outage, a
    backlog on its topic) makes the customer look quiet on it; that is not the customer."""
    if not held or not then:
        return False
    drops = {c: then.get(c, 0.0) - now.get(c, 0.0) for c in COMPONENTS if then.get(c, 0.0) > now.get(c, 0.0)}
    total = sum(drops.values())
    from_held = sum(drop for c, drop in drops.items() if SOURCE_OF[c] in held)
    return total > 0 and from_held >= 0.5 * total


KEEP_OPEN_ALERTS = 50


def _remember(state: dict[str, Any], alerts: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Keep raised alerts in the customer's state so later actions find them, after restarts too."""
    kept: dict[str, Any] = state.setdefault("open_alerts", {})
    for a in alerts:
        if a["alert_id"] not in kept:
            kept[a["alert_id"]] = a
    for old in sorted(kept, key=lambda k: kept[k]["raised_at"])[:-KEEP_OPEN_ALERTS]:
        del kept[old]
    return [("alert", a) for a in alerts]


def act(state: dict[str, Any], row: dict[str, Any], open_counts: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
    """An acknowledge/resolve action -> the alert's next version, or a refusal with the reason."""
    p = orjson.loads(row["payload"])
    kept: dict[str, Any] = state.setdefault("open_alerts", {})
    alert = kept.get(p["alert_id"])
    if alert is None:
        return [("refused", {"reason": f"alert {p['alert_id']} is not known for {state['customer_id']}"})]
    try:
        nxt = apply_action(alert, {**p, "at": row["occurred_at"]})
    except ValueError as exc:
        return [("refused", {"reason": str(exc)})]
    if nxt["status"] == "resolved":
        del kept[p["alert_id"]]
        if alert["status"] != "suppressed" and open_counts.get(alert["assignee"], 0) > 0:
            open_counts[alert["assignee"]] -= 1
    else:
        kept[p["alert_id"]] = nxt
    return [("alert", nxt)]


def rescore(
    s: Score, f: Features, segment: str, cfg: HealthConfig, model: ChurnModel | None
) -> tuple[Score, float | None]:
    """The model's score (100 x (1 - churn probability)) when there is a model, else the rules'."""
    if model is None:
        return s, None
    risk = model.probability(f, segment)
    value = round(100.0 * (1.0 - risk), 1)
    return replace(s, score=value, band=band(value, cfg)), risk


def fold(state: dict[str, Any], row: dict[str, Any], payload: dict[str, Any] | None = None) -> bool:
    """Fold one customer event into the health state (cheap, per event); False if already counted.

    Scoring is not done here: ``settle`` scores once per customer per batch.
    """
    if not apply_event(state, row, payload):
        return False
    if row.get("store_id") and row["event_type"].startswith("pos.") and row["occurred_at"] >= state.get("store_at", ""):
        state["store"], state["store_at"] = row["store_id"], row["occurred_at"]  # for regional routing
    return True


def step(
    state: dict[str, Any],
    row: dict[str, Any],
    cfg: HealthConfig,
    *,
    source: str,
    offset: int,
    alert_cfg: AlertConfig | None = None,
    open_counts: dict[str, int] | None = None,
    model: ChurnModel | None = None,
) -> tuple[bool, list[tuple[str, dict[str, Any]]]]:
    """Apply ``row`` and settle at once (the event-by-event reference the batch path is checked
    against); return (state changed, [(kind, row)]), kinds current/history/alert/refused."""
    applied = state.setdefault("applied", {})
    if applied.get(source, -1) >= offset:
        return False, []
    counts = {} if open_counts is None else open_counts
    if row["event_type"] == "alert.action":
        applied[source] = offset
        return True, act(state, row, counts)
    if not fold(state, row):
        return False, []
    applied[source] = offset
    if not scores(row["event_type"]):
        return True, []
    return True, settle(state, cfg, alert_cfg=alert_cfg, open_counts=counts, model=model)


def settle(
    state: dict[str, Any],
    cfg: HealthConfig,
    *,
    alert_cfg: AlertConfig | None = None,
    open_counts: dict[str, int] | None = None,
    model: ChurnModel | None = None,
    held: frozenset[str] = frozenset(),
) -> list[tuple[str, dict[str, Any]]]:
    """Score the folded state at its event time and decide what to emit: [(kind, row)].

    With a trained churn model the score is 100 x (1 - calibrated churn probability); the
    component points still explain what moved. Without one the rule-based score stands.
    ``held``: sources that are behind the others (``Watermark.lagging``); a fall they cause
    raises no score alert.
    """
    counts = {} if open_counts is None else open_counts
    as_of, f, s, risk, day, closed = _score(state, cfg, model)
    last = state["last"]
    trend = trend_7d(state, s, as_of, cfg, model)
    alerts: list[tuple[str, dict[str, Any]]] = []
    if alert_cfg is not None:
        base = state.get("trend_base") or {}
        stale_fall = caused_by(held, s.points, None if last is None else last.get("points")) or caused_by(
            held, s.points, base.get("points")
        )
        raised = evaluate(
            alert_cfg,
            state,
            f,
            as_of=as_of,
            score=s.score,
            band=s.band,
            previous_band=None if last is None else last["band"],
            trend_7d=trend,
            open_counts=counts,
            # Silence is judged over spans (``absence``), whatever the batching; a fall caused by
            # a source that is behind is not the customer's.
            kinds=frozenset() if stale_fall else SCORE_KINDS,
        )
        alerts = _remember(state, raised)
    # The current row is the state after its newest event (settled once per customer per batch,
    # so what is stored does not depend on how events were batched). The history is the close
    # of each business day: the score after the day's last scored event, kept when it moved
    # MIN_CHANGE points or changed band since the previous history row and written once a later
    # day begins (a later event, or the watermark); a day's close does not depend on how its
    # events were cut into batches, as settling once per batch did.
    moved, why = _explain(state, s, f, cfg, model, risk)
    state["version"] += 1
    state["stored"] = {"score": s.score, "band": s.band, "as_of": state["as_of"]}
    current = {
        "customer_id": state["customer_id"],
        "segment": state["segment"],
        "score": s.score,
        "band": s.band,
        "trend_7d": trend,
        "confidence": s.confidence,
        "stale_sources": list(s.stale_sources),
        "components": orjson.dumps({k: round(v, 3) for k, v in s.components.items()}).decode(),
        "reasons": why,
        "churn_risk": None if risk is None else round(risk, 4),
        "score_source": "rules" if model is None else f"model:{model.version}",
        # the sources the score reads (a note's time would make the row depend on whether a
        # note came in the same batch as the last scored event)
        "fresh": orjson.dumps(
            {k: v for k, v in state["fresh"].items() if k not in UNSCORED_SOURCES}, option=orjson.OPT_SORT_KEYS
        ).decode(),
        "as_of": iso(as_of),
        "version": state["version"],
        "updated_at": now_iso(),
    }
    _pend(state, s, why, moved, day)
    return [*closed, ("current", current), *alerts]


def _score(
    state: dict[str, Any], cfg: HealthConfig, model: ChurnModel | None
) -> tuple[datetime, Features, Score, float | None, str, list[tuple[str, dict[str, Any]]]]:
    """The score at the state's event time, and the previous day's close if that time begins a
    later day: (as_of, features, score, churn risk, business day, closed history rows)."""
    prune(state)
    as_of = datetime.fromisoformat(state["as_of"])
    f = features(state, as_of)
    raw = score(f, state["segment"], cfg, state["fresh"], as_of, state.get("first_used"))
    s, risk = rescore(raw, f, state["segment"], cfg, model)
    day = day_of(as_of)
    return as_of, f, s, risk, day, close_day(state, day)


def _explain(
    state: dict[str, Any], s: Score, f: Features, cfg: HealthConfig, model: ChurnModel | None, risk: float | None
) -> tuple[bool, list[str]]:
    """Whether ``s`` moved since the last history row, and why the score is what it is."""
    last = state["last"]
    moved = last is None or abs(s.score - last["score"]) >= MIN_CHANGE or s.band != last["band"]
    if not moved and last is not None and "reasons" in last:
        why = list(last["reasons"])  # a move under MIN_CHANGE keeps the last change's explanation
    else:
        why = reasons(None if last is None else last["points"], s, f, cfg, state["segment"])
    if risk is not None and model is not None and moved:
        why.insert(0, f"流失风险模型{model.version}：未来14天流失概率{risk:.0%}")
    if moved and last is not None and last.get("segment", state["segment"]) != state["segment"]:
        why.insert(0, f"客户类型变更为{SEGMENT_ZH.get(state['segment'], state['segment'])}，按其评分口径重新计算")
    return moved, why


def _pend(state: dict[str, Any], s: Score, why: list[str], moved: bool, day: str) -> None:
    """The day's close so far: replaced by the next settle of the same day, written by close_day."""
    last = state["last"]
    state["day_close"] = (
        {
            "day": day,
            "row": {
                "customer_id": state["customer_id"],
                "segment": state["segment"],
                "score": s.score,
                "previous_score": None if last is None else last["score"],
                "band": s.band,
                "previous_band": "" if last is None else last["band"],
                "confidence": s.confidence,
                "reasons": why,
                "as_of": state["as_of"],
                "day": day,
            },
            "last": {"score": s.score, "band": s.band, "points": s.points, "segment": state["segment"], "reasons": why},
        }
        if moved
        else None
    )


def close_point(
    state: dict[str, Any], cfg: HealthConfig, model: ChurnModel | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The day's close before an event of a later day is folded: the score and its history
    candidate only (no current row, no alerts: the batch's settle writes those), so a backlog
    that spans days pays for one score per customer and day, not a whole settle."""
    _as_of, f, s, risk, day, closed = _score(state, cfg, model)
    moved, why = _explain(state, s, f, cfg, model, risk)
    _pend(state, s, why, moved, day)
    return closed


def close_day(state: dict[str, Any], before: str) -> list[tuple[str, dict[str, Any]]]:
    """The history row of the customer's last settled business day if it is earlier than
    ``before`` (a business day) and its close moved: [("history", row)], else []."""
    pending = state.get("day_close")
    if pending is None or pending["day"] >= before:
        return []
    state["day_close"] = None
    state["last"] = pending["last"]
    return [("history", dict(pending["row"]))]


def absence(
    state: dict[str, Any],
    watermark: datetime,
    cfg: HealthConfig,
    alert_cfg: AlertConfig,
    open_counts: dict[str, int],
    *,
    idle: timedelta = timedelta(hours=1),
    model: ChurnModel | None = None,
) -> list[dict[str, Any]]:
    """Absence rules for a customer who has gone quiet, judged at the stream's watermark.

    A silent customer sends no event to re-evaluate them, so the customer agent runs this for
    a partition's customers whenever the event-time watermark has moved an hour (as batches
    arrive, and on a tick through a topic when a partition has nothing to read), and before
    each event of a customer who was quiet, and keeps the cooldown in the customer's state.

    An alert is raised at the moment its condition came true since the last judgement, not
    at the watermark: a backfill read in batches of days then raises the same alerts at the
    same times as live traffic judged every hour.
    """
    watermark = watermark.astimezone(UTC)  # the state's times are UTC text, compared as text
    at = silence_before(state, watermark, alert_cfg, idle)
    stored = state.get("stored")  # the customer's stored row now (not the last history row)
    if stored is None:
        return []
    if at is None:
        if _unjudged(state, watermark, idle) is not None:
            state["judged_at"] = watermark.isoformat()  # judged up to the watermark: nothing came true
        return []
    state["judged_at"] = at.isoformat()
    # Only the rules about silence are judged here, and an alert cites the score and band that
    # are stored: one rescored at the watermark once said 降至高风险（40分） beside a stored 40.5
    # "watch". Band and score rules wait for the customer's next event, when it is stored.
    return evaluate(
        alert_cfg,
        state,
        features(state, at),
        as_of=at,
        score=stored["score"],
        band=stored["band"],
        previous_band=None,
        trend_7d=None,
        open_counts=open_counts,
        kinds=ABSENCE_KINDS,
    )


def silence_before(
    state: dict[str, Any], at: datetime, alert_cfg: AlertConfig, idle: timedelta = timedelta(hours=1)
) -> datetime | None:
    """Up to ``at`` (just before a customer's event, or the watermark): end the silence
    episodes that no longer hold, and say when a silence rule not in an episode came true
    since the last judgement, if one did. Nothing else changes, so the caller can store the
    score an alert will cite first."""
    # In UTC: the state's times are UTC text compared as text (the last three replies, the
    # week's contacts), and an event's own offset (+08:00 from a messaging tool) made a
    # message 8 hours younger than it was, so the same silence was found on one path and not
    # on the other, and an alert's id (its day) depended on which event judged it.
    at = at.astimezone(UTC)
    _end_episodes(state, at, alert_cfg)
    if not _may_be_silent(state, at, alert_cfg):
        return None
    lo = _unjudged(state, at, idle)
    if lo is None:
        return None
    waiting = _waiting(state, alert_cfg)
    return _first_silent(state, waiting, lo, at, _span_base(state, idle)) if waiting else None


def _end_episodes(state: dict[str, Any], at: datetime, alert_cfg: AlertConfig) -> None:
    """A silence rule's episode ends when its condition stops holding (a reply in time,
    material opened) at any moment since the last judgement: the next time it holds is news
    again. Between events the condition only turns true, so the moments to try are ``at`` and
    just after each reply and open since that judgement, judged on what was known then. Tried
    at ``at`` alone, a judgement at a watermark behind what was folded (a moment before the
    alert itself) ended an episode that had not ended, and a judgement between a fast reply and
    three slow messages decided whether it had: one alert raised in one run and not another."""
    firing: list[str] = state.get("firing", [])
    if not firing:
        return
    judged = state.get("judged_at")
    lo = None if judged is None else datetime.fromisoformat(judged)
    if lo is not None and at <= lo:
        return  # judged up to later already
    moments = [at]
    if lo is not None:
        stamps = (datetime.fromisoformat(ts) for ts in (*state.get("opens", ()), *(r[0] for r in state["replies"])))
        moments += [t for t in stamps if lo < t <= at]
    ids = {r.id: r for r in alert_cfg.rules if r.kind in ABSENCE_KINDS}
    for rule_id in [f for f in firing if f in ids]:
        if not all(_holds(state, [ids[rule_id]], t) for t in moments):
            firing.remove(rule_id)


def _unjudged(state: dict[str, Any], watermark: datetime, idle: timedelta) -> datetime | None:
    """Where the span still to judge starts: after the last judgement, and an ``idle`` hour
    after the customer's own last activity; None when nothing before ``watermark`` is left."""
    lo = _span_base(state, idle)
    if lo is None:
        return None
    judged = state.get("judged_at")
    if judged is not None and datetime.fromisoformat(judged) > lo:
        lo = datetime.fromisoformat(judged)
    return lo if watermark > lo else None


def _span_base(state: dict[str, Any], idle: timedelta) -> datetime | None:
    """Where a silence can start, whenever it is judged: an ``idle`` hour after the customer's
    own last activity, and not before their newest scored event (an alert cites the score
    stored there; ``customer.fold`` stores it first). The newest event folded, not the newest
    stored: a batch stores once at its end, so a rep's message folded earlier in the batch
    moved the base in the event-by-event path and not in the batch one, and a silence that
    came true during its cooldown was raised a minute after that message in one run only."""
    own = _own_activity(state)
    if own is None:
        return None
    lo = datetime.fromisoformat(own) + idle
    newest = state.get("as_of")
    if newest is not None and datetime.fromisoformat(newest) > lo:
        lo = datetime.fromisoformat(newest)
    return lo


def _waiting(state: dict[str, Any], alert_cfg: AlertConfig) -> list[Any]:
    """The silence rules that concern this customer and are not in an episode already."""
    firing = state.get("firing", [])
    kc, app = bool(state.get("key_contact")), "app" in state.get("first_used", {})
    return [
        r
        for r in alert_cfg.rules
        if r.enabled and r.kind in ABSENCE_KINDS and r.id not in firing and concerns(r, key_contact=kc, uses_app=app)
    ]


JUST_BEFORE = timedelta(milliseconds=1)  # a customer is judged for silence just before each event
PAST_LIMIT = timedelta(minutes=1)  # "over 48 hours", "7 days or more": judged a minute past the limit


def _holds(state: dict[str, Any], rules: list[Any], t: datetime) -> bool:
    """Whether one of the silence ``rules`` holds at ``t`` on what the state knows."""
    opened = open_before(state, t)
    days = None if opened is None else max(0.0, (t - datetime.fromisoformat(opened)).total_seconds() / 86400)
    rh = reply_hours(state, t, t.isoformat())
    return any(silent_and_slow(r, days, rh) for r in rules)


def _first_silent(
    state: dict[str, Any], rules: list[Any], lo: datetime, hi: datetime, base: datetime | None = None
) -> datetime | None:
    """The moment in (lo, hi] a minute past which one of the silence ``rules`` came true, if
    any; None while that minute has not passed by ``hi`` (the next judgement finds it).

    The condition only turns true between events, at a moment the state names: the last open
    plus the rule's days, or a message's 48-hour mark; so those moments are all to try, and
    ``base`` (where a silence can start, ``_span_base``) if it held there already (it came true
    while the customer was active, or before their score was stored). The last judgement is
    never a moment: tried as one, it dated an alert a minute after that judgement (08:19:35 in
    one run, 08:20:06 in another, for a message sent at 08:19:06); and ``hi`` was the moment
    when the condition held there but its minute had not passed (01:14:43.624, a watermark,
    in one run; 01:14:44.876, a minute past a message's 48 hours, in another)."""
    if not _holds(state, rules, hi):
        return None
    opened = state["last_open_at"]
    marks: set[datetime] = {base} if base is not None and _holds(state, rules, base) else set()
    # Each kept open: the last open before an earlier moment judged (a state from before the
    # opens were kept has only the newest).
    for o in state.get("opens") or ([opened] if opened is not None else []):
        marks.update(datetime.fromisoformat(o) + timedelta(days=r.days_without_material) for r in rules)
    slow = timedelta(hours=UNANSWERED_SLOW_HOURS)
    marks.update(datetime.fromisoformat(sent) + slow for sent in state["pending"].values())
    marks.update(datetime.fromisoformat(ts) - timedelta(hours=hours) + slow for ts, hours in state["replies"])
    ordered = sorted(marks)
    for k, m in enumerate(ordered):
        t = m + PAST_LIMIT
        if k + 1 < len(ordered) and ordered[k + 1] <= t:
            # Another limit falls within the minute: judged at this one's minute, the condition
            # would hold through the other's crossing and date the alert before it. A week
            # without material 1.25 s before a message's 48 hours dated one alert 01:14:43.624
            # in one run and 01:14:44.876 in another, as the last judgement fell between them.
            continue
        if lo < t <= hi and _holds(state, rules, t):
            return t
    return None


def _own_activity(state: dict[str, Any]) -> str | None:
    """When the customer last did something themselves (app, till, a reply): a rep's message
    does not make them any less quiet, and with the topics read at different paces it can be
    days ahead of the watermark, which kept them from ever being judged in a backfill."""
    fresh = state["fresh"]
    times: list[str] = [str(t) for t in (fresh.get("app"), fresh.get("pos"), fresh.get("notes")) if t]
    if state["replies"]:
        times.append(str(state["replies"][-1][0]))
    if times:
        return max(times)
    return None if state["as_of"] is None else str(state["as_of"])


_SILENCE_LIMITS: dict[int, tuple[AlertConfig, tuple[timedelta, int] | None]] = {}


def _silence_limits(alert_cfg: AlertConfig) -> tuple[timedelta, int] | None:
    """(the shortest time without material, the fewest messages) over the enabled silence
    rules, None without one; kept per config (which it keeps alive, so its id stays its own),
    as it is asked before every event and for every quiet customer every hour of event time
    (not a cached property of the config: ``model_copy`` would carry it into a changed copy)."""
    hit = _SILENCE_LIMITS.get(id(alert_cfg))
    if hit is not None and hit[0] is alert_cfg:
        return hit[1]
    rules = [r for r in alert_cfg.rules if r.enabled and r.kind in ABSENCE_KINDS]
    limits = None
    if rules:
        limits = (timedelta(days=min(r.days_without_material for r in rules)), min(r.replies for r in rules))
    if len(_SILENCE_LIMITS) > 16:
        _SILENCE_LIMITS.clear()
    _SILENCE_LIMITS[id(alert_cfg)] = (alert_cfg, limits)
    return limits


def _may_be_silent(state: dict[str, Any], watermark: datetime, alert_cfg: AlertConfig) -> bool:
    """Cheap test before windowing the features: no silence rule can hold for a customer who
    opened material more recently than any rule's limit, or has too few messages to judge."""
    limits = _silence_limits(alert_cfg)
    if limits is None:
        return False
    days, replies = limits
    if len(state["replies"]) + len(state["pending"]) < replies:
        return False
    opened = state["last_open_at"]
    return opened is None or watermark - datetime.fromisoformat(opened) >= days


def absent(
    state: dict[str, Any],
    watermark: datetime,
    cfg: HealthConfig,
    alert_cfg: AlertConfig,
    *,
    model: ChurnModel | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``absence`` with the raised alerts kept in the state (cooldowns, later actions)."""
    return _remember(state, absence(state, watermark, cfg, alert_cfg, {}, model=model))


class Watermark:
    """Event-time progress over several sources, like a stream processor's input watermark.

    Each source (pos, app, messaging, notes) has its newest event time. The watermark is the
    oldest of those among sources that delivered something within ``idle`` seconds of wall
    time, so one topic lagging behind the others holds absence rules back instead of letting
    them fire early; a source with nothing to say for ``idle`` seconds stops holding it back
    (when every source is idle, the newest time seen is the watermark).
    """

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.newest: dict[str, datetime] = {}
        self.heard: dict[str, float] = {}

    def observe(self, source: str, ts: datetime, wall: float) -> None:
        if source not in self.newest or ts > self.newest[source]:
            self.newest[source] = ts
        self.heard[source] = wall

    def lagging(self, behind: timedelta) -> frozenset[str]:
        """Sources whose newest event is more than ``behind`` older than the newest of any:
        what they would say about a customer has not arrived yet."""
        if not self.newest:
            return frozenset()
        top = max(self.newest.values())
        return frozenset(s for s, ts in self.newest.items() if top - ts > behind)

    def current(self, wall: float) -> datetime | None:
        if not self.newest:
            return None
        active = [self.newest[s] for s in self.newest if wall - self.heard[s] < self.idle]
        return min(active) if active else max(self.newest.values())
