"""Per-customer engagement features, folded from accepted events in event time.

Pure and JSON-serialisable so the state can live in a Faust table. Idempotent: an event id
seen before is ignored, so replays and duplicates count once, however many other events came
between (ids are kept by the business day of their event, as long as that day's counts are);
late events land in the day bucket of their own ``occurred_at``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from pipeline.bizday import business_day, business_tz, day_of_stamp

KEEP_DAYS = 38  # the 30-day window of the score a week ago (the 7-day trend) still fits
KEEP_PENDING = 50  # conversations followed (the most recently active)
KEEP_MESSAGES = 8  # the latest messages of each, in event time
# Replies and opens kept besides the newest few: a judgement looks back over what its batch
# folded, and ``reply_hours`` or the last open at an earlier moment need the ones before it.
# Keeping the newest only, those folded after that moment pushed out the ones before it, so
# whether a silent contact was alerted depended on where the batches fell (one of 153 alerts
# differed between runs).
LOOK_BACK_DAYS = 14
SOURCE_OF = {"pos": "pos", "app": "app", "messaging": "messaging", "store": "notes"}


def source_of(event_type: str) -> str:
    """The source family an event type comes from (freshness and watermarks are per source)."""
    return SOURCE_OF.get(event_type.split(".", 1)[0], "other")


# A store note's text feeds the tags, not a score component: a note is kept (its id, when the
# customer was last in the store's notes) without scoring the customer again at its time.
UNSCORED_SOURCES = frozenset({"notes"})


def scores(event_type: str) -> bool:
    """Whether an event can move the customer's score."""
    return source_of(event_type) not in UNSCORED_SOURCES


def new_state(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "segment": "unknown",
        "days": {},
        "last_open_at": None,
        "pending": {},
        "replies": [],
        "fresh": {},
        "ids": {},  # business day -> ids of that day's events counted
        "as_of": None,
        "last": None,
        "version": 0,
    }


day_of = business_day  # the business day (Asia/Shanghai unless configured) of an instant


def _bucket(state: dict[str, Any], ts: datetime) -> dict[str, Any]:
    days: dict[str, Any] = state["days"]
    b: dict[str, Any] = days.setdefault(
        day_of(ts), {"logins": 0, "opens": 0, "depth": 0.0, "purchases": 0, "amount": "0", "returns": 0}
    )
    return b


def seen(state: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether this event id was folded already (a producer's retry, a replay): kept per
    business day of event time for ``KEEP_DAYS``."""
    event_id = row["event_id"]
    day = day_of_stamp(row["occurred_at"])
    return event_id in state.get("ids", {}).get(day, ()) or event_id in state.get("seen", ())


def apply_event(state: dict[str, Any], row: dict[str, Any], payload: dict[str, Any] | None = None) -> bool:
    """Fold one ``events.accepted`` row into ``state``; False if it was already counted.

    ``payload`` is the row's payload already parsed (the agent has it), to spare a decode.
    Old day buckets are dropped by ``prune``, once per settle rather than per event.
    """
    event_id = row["event_id"]
    ts = datetime.fromisoformat(row["occurred_at"])
    day_ids: list[str] = state.setdefault("ids", {}).setdefault(day_of(ts), [])
    if event_id in day_ids or event_id in state.get("seen", ()):  # "seen": states from before
        return False
    day_ids.append(event_id)
    etype: str = row["event_type"]
    p = orjson.loads(row["payload"]) if payload is None else payload
    source = source_of(etype)
    base = state.get("trend_base")
    if base is not None and (etype.startswith("messaging.") or day_of(ts) <= base["day"]):
        state["trend_base"] = None  # the score a week ago may have changed: recompute it
    iso = ts.isoformat()
    if state["fresh"].get(source) is None or iso > state["fresh"][source]:
        state["fresh"][source] = iso
    first_used = state.setdefault("first_used", {})
    if source not in first_used or iso < first_used[source]:
        first_used[source] = iso
    if scores(etype):
        if state["as_of"] is None or iso > state["as_of"]:
            state["as_of"] = iso
        if state.get("first_at") is None or iso < state["first_at"]:
            state["first_at"] = iso
    if etype == "app.login":
        _bucket(state, ts)["logins"] += 1
    elif etype in ("app.material_view", "app.document_click"):
        b = _bucket(state, ts)
        b["opens"] += 1
        b["depth"] += p["pages_read"] / p["pages_total"] if etype == "app.material_view" else 1.0
        if state["last_open_at"] is None or iso > state["last_open_at"]:
            state["last_open_at"] = iso
        _remember_open(state, iso)
    elif etype in ("messaging.outbound", "messaging.reply"):
        _message(state, p["conversation_id"], iso, "o" if etype == "messaging.outbound" else "r")
    elif etype == "pos.purchase":
        b = _bucket(state, ts)
        b["purchases"] += 1
        b["amount"] = str(Decimal(b["amount"]) + Decimal(str(p["total"])))
    elif etype == "pos.return":
        _bucket(state, ts)["returns"] += 1
    elif etype in ("pos.checkin", "pos.coupon_scan") and iso >= state.get("known_at", ""):
        state["known_at"] = iso  # who the customer is: the newest check-in in event time says, not the last read
        if p.get("segment", state["segment"]) != state["segment"]:
            state["segment"], state["trend_base"] = p["segment"], None
        state["key_contact"] = bool(p.get("is_key_contact", state.get("key_contact", False)))
    return True


def _remember_open(state: dict[str, Any], iso: str) -> None:
    """Opens of the last ``LOOK_BACK_DAYS`` (and the newest), so that the last open before
    an earlier moment a judgement looks back at is known exactly, not to the day: rounded to
    the day when a later open had been folded, the days without material at that moment
    depended on where the batches fell."""
    opens: list[str] = state.setdefault("opens", [])
    if iso not in opens:
        bisect.insort(opens, iso)
        state["opens"] = _look_back(opens, 1, lambda o: o)


def _look_back(ordered: list[Any], newest: int, stamp: Callable[[Any], str]) -> list[Any]:
    """The ``newest`` last items of ``ordered`` (by event time) and every item within
    ``LOOK_BACK_DAYS`` of the last one."""
    if len(ordered) <= newest:
        return ordered
    since = datetime.fromisoformat(stamp(ordered[-1])) - timedelta(days=LOOK_BACK_DAYS)
    keep_from = since.isoformat(timespec="milliseconds")
    cut = len(ordered) - newest
    return [r for k, r in enumerate(ordered) if k >= cut or stamp(r) >= keep_from]


def _message(state: dict[str, Any], conv: str, iso: str, kind: str) -> None:
    """Pair messages in event time, whatever the order they arrive in: in each conversation a
    reply answers the earliest outbound message still waiting before it. ``pending`` (the
    conversations waiting, since when) and ``replies`` (the last three answers and how long
    each took) are derived from the latest messages of the most recently active ones."""
    msgs: dict[str, list[list[str]]] | None = state.get("msgs")
    if msgs is None:  # a state from before: its waiting messages are its history
        msgs = state["msgs"] = {c: [[sent, "o"]] for c, sent in state["pending"].items()}
        state["pairs"] = {"": [list(r) for r in state["replies"]]}
    conv_msgs = msgs.setdefault(conv, [])
    conv_msgs.append([iso, kind])
    conv_msgs.sort()
    del conv_msgs[:-KEEP_MESSAGES]
    if len(msgs) > KEEP_PENDING:
        quiet = min(msgs, key=lambda c: msgs[c][-1][0])
        del msgs[quiet]
        state["pending"].pop(quiet, None)
        state["pairs"].pop(quiet, None)
    pairs = state.setdefault("pairs", {})
    for c in (conv,) if conv in msgs else ():
        waiting: str | None = None
        answered: list[list[Any]] = []
        for at, k in msgs[c]:
            if k == "o":
                waiting = waiting or at
            elif waiting is not None:
                hours = (datetime.fromisoformat(at) - datetime.fromisoformat(waiting)).total_seconds() / 3600
                answered.append([at, round(hours, 3)])
                waiting = None
        pairs[c] = answered  # at most KEEP_MESSAGES // 2
        if waiting is None:
            state["pending"].pop(c, None)
        else:
            state["pending"][c] = waiting
    state["replies"] = _look_back(sorted(r for rs in pairs.values() for r in rs), 3, lambda r: str(r[0]))


def prune(state: dict[str, Any]) -> None:
    """Drop day buckets older than any window needs (``KEEP_DAYS`` before the newest event)."""
    if state["as_of"] is None:
        return
    cutoff = day_of(datetime.fromisoformat(state["as_of"]) - timedelta(days=KEEP_DAYS))
    for day in [d for d in state["days"] if d < cutoff]:
        del state["days"][day]
    ids = state.get("ids", {})
    for day in [d for d in ids if d < cutoff]:
        del ids[day]  # an event that old lands in a bucket dropped at once: counting it twice changes nothing


UNANSWERED_SLOW_HOURS = 48.0  # the field's rule: a message unanswered this long is a slow reply


def open_before(state: dict[str, Any], as_of: datetime, *, by_day: bool = False) -> str | None:
    """The last open at or before ``as_of`` (UTC), whatever was folded after it: exactly within
    the opens kept, further back (or ``by_day``) the start of the day it happened in."""
    last_open: str | None = state["last_open_at"]
    at = as_of.isoformat()
    if last_open is None or (last_open <= at and not by_day):
        return last_open
    if not by_day:
        k = bisect.bisect_right(state.get("opens") or [], at)
        if k:  # an earlier moment within the opens kept
            return str(state["opens"][k - 1])
    hi = day_of(as_of)
    opened = [d for d, b in state["days"].items() if d <= hi and b["opens"]]
    return start_of(max(opened)).isoformat() if opened else None


def reply_hours(state: dict[str, Any], as_of: datetime, at: str) -> tuple[float, ...]:
    """The last three reply latencies at ``as_of``, oldest first, where a message still
    unanswered after 48 hours counts as a slow reply (its age so far), as the field means
    it: a contact who stops replying altogether is the slowest of all, not one with no
    replies. A message answered later than ``as_of`` was still waiting then."""
    cutoff = (as_of - timedelta(hours=UNANSWERED_SLOW_HOURS)).isoformat()
    items: list[tuple[str, float]] = []
    waiting: list[str] = [sent for sent in state["pending"].values() if sent <= cutoff]
    for ts, hours in state["replies"]:
        if ts <= at:
            items.append((ts, hours))
        else:  # answered after as_of: sent before it?
            sent = (datetime.fromisoformat(ts) - timedelta(hours=hours)).isoformat()
            if sent <= cutoff:
                waiting.append(sent)
    for sent in waiting:
        since = datetime.fromisoformat(sent)
        became_slow = (since + timedelta(hours=UNANSWERED_SLOW_HOURS)).isoformat()
        items.append((became_slow, round((as_of - since).total_seconds() / 3600, 3)))
    items.sort()
    return tuple(h for _ts, h in items[-3:])


def start_of(day: str) -> datetime:
    """The first instant of a day bucket, in UTC."""
    return datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=business_tz()).astimezone(UTC)


def close_of(day: str) -> datetime:
    """The last instant of a day bucket (in UTC, as every stored time)."""
    local = datetime.fromisoformat(f"{day}T23:59:59.999999").replace(tzinfo=business_tz())
    return local.astimezone(UTC)


@dataclass(frozen=True)
class Features:
    logins_7d: int
    opens_7d: int
    opens_30d: int
    depth_30d: float  # mean share of a material read, 0..1; 0 when nothing was opened
    days_since_open: float | None
    reply_hours: tuple[float, ...]  # the last three reply latencies, oldest first
    purchases_30d: int
    amount_30d: Decimal
    returns_30d: int


def features(state: dict[str, Any], as_of: datetime, *, by_day: bool = False) -> Features:
    """Window the day buckets at ``as_of`` (event time, not the wall clock), in one pass.

    ``by_day`` judges the close of an earlier day from its buckets alone (the last open is
    the day it happened), so that later days' events cannot change the result: the 7-day
    trend caches it until an event on or before that day arrives."""
    as_of = as_of.astimezone(UTC)  # state times are UTC text; a watermark may carry another offset
    hi = day_of(as_of)
    lo7, lo30 = day_of(as_of - timedelta(days=6)), day_of(as_of - timedelta(days=29))
    logins7 = opens7 = opens30 = purchases30 = returns30 = 0
    depth30 = 0.0
    amount = Decimal("0")
    for d, b in state["days"].items():
        if d > hi or d < lo30:
            continue
        opens30 += b["opens"]
        depth30 += b["depth"]
        purchases30 += b["purchases"]
        returns30 += b["returns"]
        if b["amount"] != "0":
            amount += Decimal(b["amount"])
        if d >= lo7:
            logins7 += b["logins"]
            opens7 += b["opens"]
    last_open = open_before(state, as_of, by_day=by_day)
    return Features(
        logins_7d=logins7,
        opens_7d=opens7,
        opens_30d=opens30,
        depth_30d=(depth30 / opens30) if opens30 else 0.0,
        days_since_open=None
        if last_open is None
        else max(0.0, (as_of - datetime.fromisoformat(last_open)).total_seconds() / 86400),
        reply_hours=reply_hours(state, as_of, as_of.isoformat()),
        purchases_30d=purchases30,
        amount_30d=amount,
        returns_30d=returns30,
    )
