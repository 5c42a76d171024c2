"""Store agent: stock levels and recommendation requests, keyed by store.

Reads ``pos.inventory`` (key = store id) and ``reco.requests`` (visit requests the customer
agent re-keyed by store, many per message), co-partitioned: the re-keying is the stream join,
no global table. Stock is one state per store, written once per flush interval.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from agents.batching import (
    EARLIEST,
    LATEST,
    Batcher,
    Idle,
    fold_earliest,
    put_off,
    result_topics,
    tick_interval,
    validated,
)
from agents.deadletters import make_dead
from nlp.pii import Pii
from pipeline import customer
from pipeline.infra import topics
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings
from pipeline.notes import recommend

log = logging.getLogger(__name__)
STOCK_WAIT_SECONDS = 60.0  # longest stock counts wait for a customer side that says nothing new


def moment(at: str | None) -> datetime:
    return datetime.fromisoformat(at) if at else EARLIEST


def register(app: Any, settings: Settings, stats: Counter[str], pii: Pii, lexicon: dict[str, tuple[str, str]]) -> None:
    categories = recommend.Categories(lexicon)
    version, loaded = recommend.load_rules(settings.model_dir)
    mined: dict[str, Any] = {"version": version, "rules": loaded}  # swapped whole by the reload timer
    log.info("store: co-purchase rules %s (%d)", version, len(loaded))
    inventory = settings.topic("pos.inventory")
    requests_topic = settings.topic(topics.RECO_REQUESTS)
    source = faust_topic(app, inventory, requests_topic, partitions=settings.partitions)
    outputs = result_topics(app, settings)
    dead = make_dead(app, settings, pii, stats)
    table = app.Table("stores", default=None, partitions=settings.partitions)
    batcher = Batcher(app, table, settings, stats, "store", dead)

    # Visits wait for stock counts on the broker with none in the batch (max.task.idle.ms), as
    # long as for the customer side's progress: at start-up on a loaded machine the customer
    # agent's batches held the event loop for seconds at a time, Faust re-read stock it had
    # fetched and kept back, and after 10-13 s the visits went on without the counts before
    # them (a fault run's clean reference answered 7 visits from stock days old).
    idle = Idle(
        app,
        lambda topic: topic == inventory,
        settings.event_time_pause,
        max_seconds=STOCK_WAIT_SECONDS,
        peers=lambda topic: topic in (inventory, requests_topic),
    )
    # (request partition, customer partition) -> the customer partition's requests are all
    # sent up to: per request partition, as a mark read on one says nothing of another's requests
    progress: dict[tuple[int, int], datetime] = {}
    stuck: dict[int, tuple[datetime, float, bool]] = {}  # request partition -> (bound, since, told)

    def stock_bound(partition: int) -> datetime | None:
        """The event time the partition's stock counts and visits may not pass: where the
        slowest customer partition's requests to it are sent up to (the earliest while one has
        said nothing). None once it has not moved for ``STOCK_WAIT_SECONDS`` (no customer
        worker running): they go on without."""
        known = [progress.get((partition, p)) for p in range(settings.partitions)]
        bound = EARLIEST if None in known else min(k for k in known if k is not None)
        if bound == LATEST:  # every customer partition read to its end
            return bound
        now = time.monotonic()
        last = stuck.get(partition)
        if last is None or last[0] != bound:
            stuck[partition] = (bound, now, False)
        elif now - last[1] > STOCK_WAIT_SECONDS:
            if not last[2]:
                stuck[partition] = (bound, last[1], True)
                log.warning("store: no progress on %d for %.0f s: stock goes on", partition, STOCK_WAIT_SECONDS)
                stats["store.progress_timeouts"] += 1
            return None
        return bound

    def ahead_of_visits(
        batch: Sequence[Any], decoded: dict[int, Any], asked: dict[int, datetime], later: set[int]
    ) -> set[int]:
        """Stock counts and visits after the customer side's progress (and the rest of their
        topic-partition, in offset order), so both are taken in event time: in a backlog the
        store side read every count long before the visits came and answered the first days'
        visits with the stock of weeks later, whose earlier levels ``recommend.as_of`` no
        longer kept; a visit sent ahead of its partition's progress (its topic was read ahead
        of another) was answered before the counts before it. Progress marks are read from
        the whole batch, waiting or not, so visits waiting never hold them back."""
        if not settings.event_time_pause:
            return set()
        bounds = {p: stock_bound(p) for p in {event.message.partition for event in batch}}
        out: set[int] = set()
        stopped: set[Any] = set()
        for i, event in enumerate(batch):
            bound = bounds[event.message.partition]
            if i in later or bound is None:
                continue
            if i in decoded:
                at = decoded[i][0].envelope.occurred_at
            elif i in asked:
                at = asked[i]
            else:
                continue  # dead-lettered, or a progress mark
            tp = event.message.tp
            if tp in stopped or at > bound:
                stopped.add(tp)
                out.add(i)
        # A count that waits holds back every visit after it: counts of a partition are not
        # always in event time (a later count ahead in offset order keeps an earlier one waiting)
        first_waiting: dict[int, datetime] = {}
        for i in later | out:
            if i in decoded:
                p, at = batch[i].message.partition, decoded[i][0].envelope.occurred_at
                first_waiting[p] = min(first_waiting.get(p, at), at)
        if first_waiting:
            for i, event in enumerate(batch):
                msg = event.message
                if i in later or i in out or i not in asked or msg.partition not in first_waiting:
                    continue
                if msg.tp in stopped or asked[i] > first_waiting[msg.partition]:
                    stopped.add(msg.tp)
                    out.add(i)
        if len(out) <= settings.batch_max:
            return out
        # above the cap the earliest go now (as ``put_off``): letting all of them go answered
        # a backlog's visits from stock read ahead of them
        coords: list[tuple[Any, int, datetime]] = []
        for i, event in enumerate(batch):
            at = decoded[i][0].envelope.occurred_at if i in decoded else asked.get(i, EARLIEST)
            coords.append((event.message.tp, event.message.offset, at))
        return fold_earliest(coords, out, settings.batch_max)

    def behind(tp: Any, offset: int) -> bool:
        return tp.topic == inventory and idle.behind(tp, offset)

    def later_than_stock(batch: Sequence[Any], decoded: dict[int, Any], asked: dict[int, datetime]) -> set[int]:
        """Visit requests ahead in event time of the stock counts still to read (put off)."""
        coords: list[tuple[Any, int, datetime]] = []
        where: list[int] = []
        for i, event in enumerate(batch):
            msg = event.message
            if i in decoded:
                coords.append((msg.tp, msg.offset, decoded[i][0].envelope.occurred_at))
            elif i in asked:
                coords.append((msg.tp, msg.offset, asked[i]))
            else:
                continue
            where.append(i)
        present = {batch[i].message.tp for i in decoded}
        bounds = idle.bounds(present)  # first: ``behind`` reads the log ends it found stale
        return {where[n] for n in put_off(coords, behind, settings.batch_max, bounds)}

    async def process(batch: Sequence[Any]) -> list[Any]:
        out = customer.Results()
        decoded: dict[int, Any] = {}
        for i, event in enumerate(batch):
            msg = event.message
            if msg.topic == inventory:
                got = validated(i, event.value, "pos.inventory", settings, pii, out)
                if got is None:
                    idle.took(msg.tp, msg.offset)  # dead-lettered: not waiting any more
                else:
                    decoded[i] = got
        reqs_of: dict[int, list[dict[str, Any]]] = {}  # request messages, each read once
        asked: dict[int, datetime] = {}  # their newest visit time
        for i, event in enumerate(batch):
            if event.message.topic == inventory:
                continue
            doc = orjson.loads(event.value)
            if isinstance(doc, dict):  # how far customer partitions' requests are sent
                # {"progress": p, "upto": t} is one partition's mark as written before "marks"
                marks = doc["marks"] if "marks" in doc else {doc["progress"]: doc["upto"]}
                for p, at in marks.items():
                    progress[event.message.partition, int(p)] = datetime.fromisoformat(at)
                continue
            reqs_of[i] = doc
            asked[i] = max((moment(r.get("occurred_at")) for r in doc), default=EARLIEST)
        later = later_than_stock(batch, decoded, asked)
        stock_later = ahead_of_visits(batch, decoded, asked, later)
        stats["store.waited_for_progress"] += len(stock_later)
        stats["store.visits_waited_for_stock"] += len(later)
        later |= stock_later
        # only stock is paused: the visits' partitions bring the progress marks
        idle.pauser.steer({batch[i].message.tp for i in later if batch[i].message.topic == inventory})
        stock: dict[Any, list[tuple[datetime, int, Any]]] = defaultdict(list)  # per partition, offset order
        visits: list[tuple[datetime, int, Any]] = []
        for i, event in enumerate(batch):
            if i in later:
                continue
            if event.message.topic == inventory:
                if i in decoded:  # else dead-lettered above
                    stock[event.message.tp].append((decoded[i][0].envelope.occurred_at, i, None))
                continue
            visits.extend((moment(r.get("occurred_at")), i, r) for r in reqs_of.get(i, ()))
        visits.sort(key=lambda v: v[0])
        # in event time across the two (stock in offset order): a visit is answered before
        # the counts after it in the same batch are folded
        for _at, i, req in heapq.merge(*stock.values(), visits, key=lambda v: v[0]):
            if req is None:
                ev, row, payload = decoded[i]
                fold_count(batch[i].message, ev, row, payload, out)
                continue
            state = batcher.get(req["store_id"]) or recommend.new_store(req["store_id"])
            recs = recommend.answer(state, req, mined["rules"])
            for r in recs:
                out.add("recommendations", r)
            stats["reco.sent" if recs else "reco.nothing_in_stock"] += 1
        await batcher.emit(outputs, batch, out)
        return [batch[i] for i in sorted(later)]

    def fold_count(msg: Any, ev: Any, row: dict[str, Any], payload: dict[str, Any], out: customer.Results) -> None:
        """One stock count into its store's state (masked: the state goes to a changelog topic)."""
        origin = f"{msg.topic}:{msg.partition}"
        idle.took(msg.tp, msg.offset, ev.envelope.occurred_at)
        store_id = row["store_id"]
        state = batcher.get(store_id) or recommend.new_store(store_id)
        replayed = state["applied"].get(origin, -1) >= msg.offset  # its row may never have left
        if replayed or not recommend.seen(state, payload, row["event_id"]):
            out.add("events", row)  # the same count sent twice (a retry) is stored once
        if recommend.fold_stock(
            state,
            payload,
            categories(payload.get("name") or ""),
            source=origin,
            offset=msg.offset,
            at=row["occurred_at"],
            event_id=row["event_id"],
        ):
            batcher.put(store_id, msg.partition, state)
            stats["store.stock_updates"] += 1

    async def agent(stream: Any) -> None:
        await batcher.run(stream, process)

    async def forget(_sender: Any, revoked: Any, **_: Any) -> None:
        for tp in revoked or ():
            stuck.pop(tp.partition, None)
            for key in [k for k in progress if k[0] == tp.partition]:
                del progress[key]  # read again from the committed offset, marks included

    app.on_partitions_revoked.connect(forget)

    app.agent(source, name="store", concurrency=1)(agent)
    app.timer(interval=tick_interval(settings))(batcher.tick)

    async def reload_rules() -> None:
        """A nightly `salespulse reco mine` is picked up without restarting the worker."""
        version, loaded = recommend.load_rules(settings.model_dir)
        if version != mined["version"]:
            mined.update(version=version, rules=loaded)
            log.info("co-purchase rules reloaded: %s (%d)", version, len(loaded))
            stats["reco.rules_reloads"] += 1

    app.timer(interval=30.0)(reload_rules)
