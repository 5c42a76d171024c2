"""One customer's whole state and its fold: profile, health, note tags and visit requests.

Pure (no Faust): the customer agent takes a batch, groups it by customer, calls ``fold`` for
each of a customer's events (cheap bookkeeping only) and ``settle`` once per customer per
batch (scoring, alerts, tag-profile rows). The equivalence test calls the same functions with
a batch of one, event by event, and compares what the stream produced with that reference.

Idempotent: ``applied`` keeps the last offset folded in per source topic-partition, so a
replay after a crash (state restored from its changelog, events read again) changes nothing
that was already folded and re-emits what may have been lost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from nlp.pii import Pii
from nlp.tagger import NoteTagger
from pipeline import intake
from pipeline.bizday import business_tz, day_of_stamp
from pipeline.health import engine as health
from pipeline.health.alerts import AlertConfig
from pipeline.health.churn import ChurnModel
from pipeline.health.features import day_of, new_state, scores, seen
from pipeline.health.scoring import HealthConfig
from pipeline.notes import tags
from schemas.events import Event

VISITS = frozenset({"pos.checkin", "pos.coupon_scan", "pos.purchase"})
RECOS_PER_WEEK = 3  # personalised recommendation sets per customer per business week (event time)
KEEP_WEEKS = 3  # weeks of visit times kept per customer
TAGGER_VERSION = "rules-1"
HEALTH_TABLES = {"current": "customer_health", "history": "customer_health_history", "alert": "alerts"}


@dataclass(frozen=True)
class Context:
    """What folding needs besides the state; built once per worker."""

    pii: Pii
    health: HealthConfig
    alerts: AlertConfig | None
    model: ChurnModel | None
    tagger: NoteTagger
    tagger_version: str = TAGGER_VERSION


@dataclass
class Dead:
    """An event kept as a dead letter: its index in the batch, the stage and the reason."""

    ref: int
    stage: str
    kind: str
    text: str


@dataclass
class Results:
    """Everything one batch produced: encoded rows per ClickHouse table, visit requests per
    store (for the store side), dead letters."""

    rows: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    dead: list[Dead] = field(default_factory=list)
    # rows sent one message each, keyed (a front end subscribes per key): table -> (key, row)
    keyed: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows[table].append(orjson.dumps(row))


@dataclass
class Touched:
    """What one customer's events changed in a batch; ``settle`` turns it into rows once."""

    profile: bool = False
    health: bool = False
    tag_keys: set[str] = field(default_factory=set)


def new_customer(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "profile": None,
        "health": new_state(customer_id),
        "notes": tags.new_profile(customer_id),
        "applied": {},
    }


def fold(
    state: dict[str, Any],
    event: Event,
    row: dict[str, Any],
    *,
    source: str,
    offset: int,
    ref: int,
    ctx: Context,
    out: Results,
    touched: Touched,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Fold one accepted event (``row`` is its masked ``events`` row, ``payload`` that row's
    payload as data when the caller has it); False if already folded.

    A customer who was quiet until this event is first judged for silence up to just before
    it: a batch that spans days would otherwise judge them only after its last event."""
    applied: dict[str, int] = state["applied"]
    if applied.get(source, -1) >= offset:
        return False
    applied[source] = offset
    etype = row["event_type"]
    if etype != "alert.action" and seen(state["health"], row):
        return False  # the same event id again (a producer's retry): nothing changes, not even the count
    if touched.health and scores(etype) and _later_day(state["health"], row["occurred_at"]):
        # The customer's day so far is scored before an event of a later day is folded: the
        # day's close (its history row) is then the same however the events were batched.
        _history(state, health.close_point(state["health"], ctx.health, ctx.model), out)
    if etype != "alert.action" and ctx.alerts is not None:
        before = event.envelope.occurred_at - health.JUST_BEFORE
        if health.silence_before(state["health"], before, ctx.alerts) is not None:
            if state["health"].get("stored") is None or touched.health:
                # The alert cites the score stored at that moment: the state before this event,
                # so its version is the count before it (counted first, this settle and the
                # batch's last one gave two different rows one version).
                settle(state, touched, ctx, out)
                touched.profile, touched.health = False, False
                touched.tag_keys.clear()
            absent(state, before, ctx, out)
    state["seq"] = state.get("seq", 0) + 1
    p = orjson.loads(row["payload"]) if payload is None else payload
    if etype == "alert.action":
        for kind, result in health.act(state["health"], row, {}):
            if kind == "refused":
                out.dead.append(Dead(ref, "alert_action", "refused_action", result["reason"]))
            else:
                out.add("alerts", result)
        return True
    profile, changed = intake.apply_to_profile(
        state["profile"], event, ctx.pii, source=source, offset=offset, occurred=row["occurred_at"]
    )
    if changed:
        state["profile"] = profile
        touched.profile = True
    if not health.fold(state["health"], row, p):
        return True  # the same event id again (a producer's retry): its note and visit were handled
    touched.health = touched.health or scores(etype)
    if etype == "store.note":
        _note(state["notes"], row, p, ref, ctx, out, touched)
    elif etype in VISITS:
        _visit(state["notes"], row, p, out)
    return True


def _history(state: dict[str, Any], closed: list[tuple[str, dict[str, Any]]], out: Results) -> None:
    """Closed days' history rows, versioned like every row of the customer (``settle``)."""
    for _kind, result in closed:
        out.add(HEALTH_TABLES["history"], {**result, "version": state.get("seq", 0)})


def _later_day(h: dict[str, Any], at: str) -> bool:
    """Whether ``at`` (UTC ISO text, as rows and the state carry it) falls on a later business
    day than the customer's newest scored event."""
    as_of = h["as_of"]
    if as_of is None or at <= as_of:
        return False
    return day_of_stamp(at) > day_of_stamp(as_of)


def after_its_day(state: dict[str, Any], at: str) -> bool:
    """Whether an event at ``at`` comes after the customer's newest scored event of a later
    business day: its own day's close was written without it."""
    as_of = state["health"]["as_of"]
    if as_of is None or at >= as_of:
        return False
    return day_of_stamp(at) < day_of_stamp(as_of)


def _note(
    profile: dict[str, Any],
    row: dict[str, Any],
    p: dict[str, Any],
    ref: int,
    ctx: Context,
    out: Results,
    touched: Touched,
) -> None:
    try:
        found = ctx.tagger.tag(p["text"], p.get("masked_spans", {}).get("text", ()))
    except ValueError as exc:
        out.dead.append(Dead(ref, "tag_note", "untaggable_note", str(exc)))
        return
    ts = datetime.fromisoformat(row["occurred_at"])
    touched.tag_keys.update(tags.apply_note(profile, p["note_id"], ts, found))
    out.add("note_tags", tags.note_row(row, found, ctx.tagger_version, p))


def _visit(profile: dict[str, Any], row: dict[str, Any], p: dict[str, Any], out: Results) -> None:
    """A visit asks the store side for in-stock items: the first RECOS_PER_WEEK visits of a
    business week (Monday to Sunday, Asia/Shanghai) in event time, whatever order they arrive
    in; only a visit arriving after a later one of its week that was already answered can
    make it one more (a message sent is not taken back)."""
    if p.get("opted_out") is not None and row["occurred_at"] >= profile.get("opted_at", ""):
        profile["opted_out"], profile["opted_at"] = bool(p["opted_out"]), row["occurred_at"]  # the newest says
    if not row.get("store_id"):
        return
    ts = datetime.fromisoformat(row["occurred_at"])
    year, week, _day = ts.astimezone(business_tz()).isocalendar()
    key = f"{year}-W{week:02d}"
    weeks: dict[str, list[str]] = profile.setdefault("weeks", {})
    firsts = weeks.get(key, [])
    stamp = ts.isoformat()
    if sum(1 for t in firsts if t < stamp) >= RECOS_PER_WEEK:
        return
    weeks[key] = sorted([*firsts, stamp])[:RECOS_PER_WEEK]
    for old in sorted(weeks)[:-KEEP_WEEKS]:
        del weeks[old]
    out.requests[row["store_id"]].append(tags.request_for_visit(profile, row))


def settle(
    state: dict[str, Any], touched: Touched, ctx: Context, out: Results, held: frozenset[str] = frozenset()
) -> None:
    """Once per customer per batch: the profile row, the score with its alerts, tag rows.

    Their ``version`` is the number of distinct events folded into the customer so far: the
    same after a replay as before it, and never lower later, so when a partition moves
    between workers mid-batch the new owner's rows replace the old owner's (ReplacingMergeTree
    keeps the highest version), which a per-state counter restarted from the changelog
    cannot promise."""
    seq = state.get("seq", 0)
    if touched.profile and state["profile"] is not None:
        out.add("customers", {**intake.profile_row(state["profile"]), "version": seq})
    if touched.health:
        for kind, result in health.settle(
            state["health"], ctx.health, alert_cfg=ctx.alerts, model=ctx.model, held=held
        ):
            out.add(HEALTH_TABLES[kind], result if kind == "alert" else {**result, "version": seq})
    if touched.tag_keys:
        for r in tags.tag_rows(state["notes"], sorted(touched.tag_keys)):
            out.add("customer_tags", {**r, "version": seq})


def absent(state: dict[str, Any], watermark: datetime, ctx: Context, out: Results) -> bool:
    """At the event-time watermark, for a quiet customer: the close of a business day the
    watermark has left (its history row) and the absence rules; True if the state changed."""
    closed = health.close_day(state["health"], day_of(watermark))
    _history(state, closed, out)
    if ctx.alerts is None:
        return bool(closed)
    raised = health.absent(state["health"], watermark, ctx.health, ctx.alerts, model=ctx.model)
    for _kind, result in raised:
        out.add("alerts", result)
    return bool(closed) or bool(raised)
