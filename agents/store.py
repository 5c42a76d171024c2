"""Store agent: stock levels and recommendation requests, keyed by store.

Reads ``pos.inventory`` (key = store id) and ``reco.requests`` (visit requests the customer
agent re-keyed by store, many per message), co-partitioned: the re-keying is the stream join,
no global table. Stock is one state per store, written once per flush interval.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.batching import Batcher, put_off, result_topics, unread, waiting
from agents.deadletters import make_dead
from nlp.pii import Pii
from pipeline import customer, intake
from pipeline.infra import topics
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings
from pipeline.notes import recommend
from schemas.events import EventError

log = logging.getLogger(__name__)
IDLE_MAX_SECONDS = 10.0  # longest visits wait for stock counts fetched by nobody yet
EARLIEST = datetime.min.replace(tzinfo=UTC)


def register(app: Any, settings: Settings, stats: Counter[str], pii: Pii, lexicon: dict[str, tuple[str, str]]) -> None:
    categories = recommend.Categories(lexicon)
    version, loaded = recommend.load_rules(settings.model_dir)
    mined: dict[str, Any] = {"version": version, "rules": loaded}  # swapped whole by the reload timer
    log.info("store: co-purchase rules %s (%d)", version, len(loaded))
    inventory = settings.topic("pos.inventory")
    source = faust_topic(app, inventory, settings.topic(topics.RECO_REQUESTS), partitions=settings.partitions)
    outputs = result_topics(app, settings)
    dead = make_dead(app, settings, pii, stats)
    table = app.Table("stores", default=None, partitions=settings.partitions)
    batcher = Batcher(app, table, settings, stats, "store", dead)

    taken: dict[Any, datetime] = {}  # inventory partition -> event time of the last count folded
    held_since: dict[int, float] = {}  # partition number -> since when its visits wait for stock

    def behind(tp: Any, offset: int) -> bool:
        return tp.topic == inventory and waiting(app.consumer, tp, offset) > 0

    def idle(present: set[Any]) -> dict[int, datetime]:
        """Partitions whose stock counts wait on the broker with none in this batch: their
        visits wait for them (at most ``IDLE_MAX_SECONDS``, as Kafka Streams' max.task.idle.ms),
        so a visit read after a backlog is not answered from stock not read yet."""
        out: dict[int, datetime] = {}
        now = time.monotonic()
        for tp in app.consumer.assignment():
            if tp.topic != inventory or tp in present:
                continue
            if not unread(app.consumer, tp):  # caught up, or its log end not known yet
                continue
            if now - held_since.setdefault(tp.partition, now) > IDLE_MAX_SECONDS:
                continue
            out[tp.partition] = taken.get(tp, EARLIEST)
        for p in set(held_since) - set(out):
            del held_since[p]
        return out

    def later_than_stock(batch: Sequence[Any], decoded: dict[int, Any]) -> set[int]:
        """Visit requests ahead in event time of the stock counts still to read (put off)."""
        coords: list[tuple[Any, int, datetime]] = []
        where: list[int] = []
        for i, event in enumerate(batch):
            msg = event.message
            if i in decoded:
                coords.append((msg.tp, msg.offset, decoded[i][0].envelope.occurred_at))
            elif msg.topic != inventory:
                reqs = orjson.loads(event.value)
                at = max((r["occurred_at"] for r in reqs), default="")
                coords.append((msg.tp, msg.offset, datetime.fromisoformat(at) if at else EARLIEST))
            else:
                continue
            where.append(i)
        present = {batch[i].message.tp for i in decoded}
        return {where[n] for n in put_off(coords, behind, settings.batch_max, idle(present))}

    async def process(batch: Sequence[Any]) -> list[Any]:
        out = customer.Results()
        decoded: dict[int, Any] = {}
        for i, event in enumerate(batch):
            msg = event.message
            if msg.topic == inventory:
                try:
                    ev = intake.decode(event.value, "pos.inventory", settings.max_event_bytes)
                    decoded[i] = (ev, *intake.accepted(ev, pii))
                except EventError as exc:
                    out.dead.append(customer.Dead(i, "validate", exc.kind, str(exc)))
        later = set() if batcher.closing else later_than_stock(batch, decoded)
        for i, event in enumerate(batch):
            msg = event.message
            origin = f"{msg.topic}:{msg.partition}"
            if i in later:
                continue
            if msg.topic == inventory:
                if i not in decoded:
                    continue  # dead-lettered above
                ev, row, payload = decoded[i]  # masked: the stock state goes to a changelog topic
                if not taken.get(msg.tp) or ev.envelope.occurred_at > taken[msg.tp]:
                    taken[msg.tp] = ev.envelope.occurred_at
                store_id = row["store_id"]
                state = batcher.get(store_id) or recommend.new_store(store_id)
                replayed = state["applied"].get(origin, -1) >= msg.offset  # its row may never have left
                if replayed or not recommend.holds(state, payload, row["event_id"]):
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
                continue
            for req in orjson.loads(event.value):
                state = batcher.get(req["store_id"]) or recommend.new_store(req["store_id"])
                recs = recommend.answer(state, req, mined["rules"])
                for r in recs:
                    out.add("recommendations", r)
                stats["reco.sent" if recs else "reco.nothing_in_stock"] += 1
        await batcher.emit(outputs, batch, out)
        stats["store.visits_waited_for_stock"] += len(later)
        return [batch[i] for i in sorted(later)]

    async def agent(stream: Any) -> None:
        await batcher.run(stream, process)

    async def forget(_sender: Any, revoked: Any, **_: Any) -> None:
        for tp in revoked or ():
            taken.pop(tp, None)

    app.on_partitions_revoked.connect(forget)

    app.agent(source, name="store", concurrency=1)(agent)
    app.timer(interval=max(0.2, settings.state_flush_seconds / 2))(batcher.tick)

    async def reload_rules() -> None:
        """A nightly `salespulse reco mine` is picked up without restarting the worker."""
        version, loaded = recommend.load_rules(settings.model_dir)
        if version != mined["version"]:
            mined.update(version=version, rules=loaded)
            log.info("co-purchase rules reloaded: %s (%d)", version, len(loaded))
            stats["reco.rules_reloads"] += 1

    app.timer(interval=30.0)(reload_rules)
