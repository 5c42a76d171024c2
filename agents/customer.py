"""Customer agent: intake, profile, health, alerts and note tags in one keyed pass.

Reads every customer-keyed source topic (co-partitioned: key = customer id) plus the
partition-wide watermark ticks; a batch is validated and masked, grouped by customer,
folded per event and settled once per customer; results leave as JSON-array messages, one
per table per batch; visit requests go to the store side once per store per batch.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from agents.batching import EARLIEST, LATEST, REPLAY, Batcher, Item, Stepper, result_topics, tick_interval
from agents.deadletters import make_dead
from nlp.pii import Pii
from nlp.tagger import NoteTagger, load_idf, load_lexicon
from pipeline import customer
from pipeline.health import engine as health
from pipeline.health.alerts import load_alert_config
from pipeline.health.churn import load_latest
from pipeline.health.features import source_of
from pipeline.health.scoring import HealthConfig
from pipeline.infra import topics
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings
from schemas.results import encode_rows

log = logging.getLogger(__name__)

CUSTOMER_TOPICS = ("pos.transactions", "app.telemetry", "messaging.events", "store.notes", "alert.actions")
LEXICON_CHECK_SECONDS = 10.0
# How often the store side hears how far the requests are sent: a stock count waits for it,
# so at 1 s the counts were the slowest events to reach their row (p99 2.6-3.4 s against
# 1.4-1.8 s for the rest at 585/s; 2.0 s at 0.25 s). One message per request partition
# carries every mark of the worker.
PROGRESS_SECONDS = 0.25
SHIP_EVENTS = 2_000  # within a batch, results leave after about this many folded events


def context(settings: Settings, cfg: HealthConfig, pii: Pii) -> customer.Context:
    refit = settings.model_dir / "tag_idf.json"  # `salespulse notes fit-idf`, else the shipped IDF
    edited = lexicon_file(settings)  # an operator's edited lexicon, else the shipped one
    model = load_latest(settings.model_dir)
    log.info("health score: %s", "rules (no churn model)" if model is None else f"churn model {model.version}")
    return customer.Context(
        pii=pii,
        health=cfg,
        alerts=load_alert_config(),
        model=model,
        tagger=NoteTagger(
            lexicon=load_lexicon(edited.read_text(encoding="utf-8")) if edited.exists() else None,
            idf=load_idf(refit.read_text(encoding="utf-8")) if refit.exists() else None,
        ),
    )


def lexicon_file(settings: Settings) -> Path:
    """Where store operations put an edited lexicon (`salespulse notes check-lexicon` first)."""
    return settings.model_dir / "retail_lexicon.tsv"


def in_event_time(items: list[tuple[int, Any, Any, dict[str, Any], dict[str, Any]]]) -> list[Any]:
    """A customer's events of a batch in event time across topics, each topic's in offset order
    (how Kafka Streams picks among a task's partitions): a backlog reads some topics days ahead
    of others, and judging silence before an event needs the customer's earlier events in."""
    by_topic: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        by_topic[item[2].topic].append(item)
    if len(by_topic) == 1:
        return items
    return list(heapq.merge(*by_topic.values(), key=lambda it: it[1].envelope.occurred_at))


def on_the_hour(at: datetime) -> datetime:
    """The whole hour (UTC) at or before ``at``: where quiet customers are judged."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours_to_judge(due: dict[int, datetime], judged: dict[int, datetime]) -> dict[int, datetime]:
    """Per partition whose watermark (``due``) has passed a whole hour not judged yet, that hour."""
    hours = {p: on_the_hour(m) for p, m in due.items()}
    return {p: h for p, h in hours.items() if p not in judged or h > judged[p]}


def register(app: Any, settings: Settings, ctx: customer.Context, stats: Counter[str]) -> None:
    pii = ctx.pii
    sources = {settings.topic(t): t for t in CUSTOMER_TOPICS}
    ticks_name = settings.topic(topics.HEALTH_TICKS)
    stream_topic = faust_topic(app, *sources, ticks_name, partitions=settings.partitions)
    ticks = faust_topic(app, ticks_name, partitions=settings.partitions)
    requests = faust_topic(app, settings.topic(topics.RECO_REQUESTS), partitions=settings.partitions)
    outputs = result_topics(app, settings)
    dead = make_dead(app, settings, pii, stats)
    table = app.Table("customers", default=None, partitions=settings.partitions)
    batcher = Batcher(app, table, settings, stats, "customer", dead)
    watermark = health.Watermark(idle=settings.source_idle_seconds)
    stepper = Stepper(app, sources, settings, pii)  # a customer's topics fold in event-time step

    async def process(batch: Sequence[Any]) -> list[Any]:
        busy[0] += 1
        try:
            later = await fold_batch(batch)
        finally:
            busy[0] -= 1
        await request_progress()
        return later

    async def fold_batch(batch: Sequence[Any]) -> list[Any]:
        out = customer.Results()
        groups: dict[str, list[Item]] = defaultdict(list)
        marks: list[tuple[int, datetime, Any]] = []
        wall = time.monotonic()
        good: list[Item] = []
        for i, event in enumerate(batch):
            msg = event.message
            if msg.tp not in read_to or msg.offset > read_to[msg.tp]:
                read_to[msg.tp] = msg.offset
            if msg.topic == ticks_name:
                doc = orjson.loads(event.value)
                marks.append((msg.partition, datetime.fromisoformat(doc["watermark"]), msg))
            elif (item := stepper.decode(i, event, out)) is not None:
                good.append(item)
        now, later = stepper.step(batch, good, out)
        for i, ev, msg, row, payload in now:
            if ev.envelope.event_type != "alert.action":
                src = source_of(ev.envelope.event_type)
                watermark.observe(src, ev.envelope.occurred_at, wall)
                if msg.partition not in part_marks:
                    part_marks[msg.partition] = health.Watermark(idle=settings.source_idle_seconds)
                part_marks[msg.partition].observe(src, ev.envelope.occurred_at, wall)
            groups[row["customer_id"]].append((i, ev, msg, row, payload))
        lag = timedelta(hours=ctx.alerts.source_lag_hours) if ctx.alerts is not None else None
        held = watermark.lagging(lag) if lag is not None else frozenset()
        folded = 0
        for cid, items in groups.items():
            if folded >= SHIP_EVENTS:
                # A big batch takes seconds to fold: what is done leaves now, so the sink
                # stores it on the other core meanwhile instead of after the whole batch.
                await send(batch, out)
                out, folded = customer.Results(), 0
            folded += len(items)
            state = batcher.get(cid) or customer.new_customer(cid)
            touched = customer.Touched()
            changed = False
            for i, ev, msg, row, payload in in_event_time(items):
                source = f"{msg.topic}:{msg.partition}"
                # Read again after a restart or a rebalance: its row leaves again (marked as a
                # replay, the sink keeps one), as its first one may never have left.
                replayed = state["applied"].get(source, -1) >= msg.offset
                if not replayed and customer.after_its_day(state, row["occurred_at"]):
                    # Its day was closed without it (the day's history row is final): the
                    # topics were not read in event-time step. Counted, for the fault runs.
                    stats["customer.after_its_day"] += 1
                try:
                    folded = customer.fold(
                        state,
                        ev,
                        row,
                        source=source,
                        offset=msg.offset,
                        ref=i,
                        ctx=ctx,
                        out=out,
                        touched=touched,
                        payload=payload,
                    )
                except Exception as exc:  # one bad event must not cost the others theirs
                    log.exception("customer fold failed on %s:%s@%s", msg.topic, msg.partition, msg.offset)
                    out.dead.append(customer.Dead(i, "fold", type(exc).__name__, str(exc)))
                    folded = True
                if folded or replayed:  # an event id delivered again (a retry, new offset) is not stored again
                    out.add("events", row)
                changed |= folded
            customer.settle(state, touched, ctx, out, held)
            if changed:
                state["partition"] = items[0][2].partition
                batcher.put(cid, state["partition"], state)
        # Quiet customers are judged in event time: for every partition of the batch (or of a
        # tick, when a partition has nothing to read) at each whole hour the watermark passes,
        # so a backfill is checked as often per day of data as live traffic, and at the same
        # moments whatever the pace: judged at the watermark itself an hour after the last
        # judgement, the last hour of an input was judged in one run and not in another (a
        # silence alert of 04:37 at the input's end was raised in one fault run only).
        due: dict[int, datetime] = {}
        unfolded = stepper.waiting_partitions() if marks else set()
        for p, m, _msg in marks:
            if p in unfolded or not caught_up(p):
                stats["customer.ticks_deferred"] += 1  # its own events move it on; a later tick judges it
            else:
                due[p] = m
        for p in {event.message.partition for event in batch} & set(part_marks):
            mark = part_marks[p].current(wall)  # the partition's own: its customers' events are all in it
            if mark is not None and (p not in due or mark > due[p]):
                due[p] = mark  # a tick brings the watermark of every partition, for one with nothing to read
        judge_quiet(hours_to_judge(due, judged), out)
        await send(batch, out)
        return later

    judged: dict[int, datetime] = {}
    part_marks: dict[int, health.Watermark] = {}
    read_to: dict[Any, int] = {}  # topic-partition -> last offset read since the assignment

    def to_read(partition: int, last_read: Callable[[Any], int | None]) -> list[Any]:
        """The partition's source topic-partitions with records on the broker after ``last_read``
        (or a log end not known yet: nothing fetched since the assignment, or by an older fetch
        than its peers', ``stale_ends``)."""
        return [
            tp
            for tp in app.consumer.assignment()
            if tp.partition == partition and tp.topic in sources and stepper.idle.unread(tp, last_read(tp)) != 0
        ]

    def caught_up(partition: int) -> bool:
        """Nothing of the partition's customers waits on the broker. A tick carries the
        watermark of all partitions; judging a partition still behind at it judged customers
        whose events were not read yet (an alert at another moment, or none, than in a run
        read at another pace)."""
        return not to_read(partition, read_to.get)

    async def forget(_sender: Any, revoked: Any, **_: Any) -> None:
        for tp in revoked or ():
            read_to.pop(tp, None)

    app.on_partitions_revoked.connect(forget)

    def judge_quiet(due: dict[int, datetime], out: customer.Results) -> None:
        """Absence rules for the customers gone quiet on the partitions ``due``, at their watermark."""
        if not due:
            return
        judged.update(due)
        for cid, state in list(table.data.items()):
            if state is None or state.get("partition") not in due:
                continue
            try:
                changed = customer.absent(state, due[state["partition"]], ctx, out)
            except Exception:  # one customer's judgement must not cost the batch its events
                log.exception("judging quiet customer %s at %s failed", cid, due[state["partition"]])
                stats["customer.quiet_failed"] += 1
                continue
            if changed:
                batcher.put(cid, state["partition"], state)
                stats["customer.quiet_changes"] += 1  # an absence alert, a day closed

    async def send(batch: Sequence[Any], out: customer.Results) -> None:
        """Hand a (part of a) batch's results to the producer and let its sender run."""
        await batcher.emit(outputs, batch, out)
        by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for store_id, reqs in out.requests.items():
            by_partition[partition_of(store_id)].extend(reqs)
        for partition, reqs in sorted(by_partition.items()):
            headers = REPLAY if batcher.replaying else None  # the store side's answers are checked too
            # Under the broker's message size: a backlog's visits in one message (1.2 MB after a
            # broker stop) was refused, and the whole batch of 19,245 events went to the dead letters.
            for value in encode_rows([orjson.dumps(r) for r in reqs]):
                batcher.sent.append(await requests.send(value=value, partition=partition, headers=headers))
                stats["customer.reco_request_messages"] += 1
        await asyncio.sleep(0)  # the producer's sender is a task on this loop: it sends now, not after the batch

    def partition_of(store_id: str) -> int:
        """The partition a producer's default partitioner (murmur2, as Kafka's Java client) gives
        the store's stock events: requests for all its stores travel in one message per partition."""
        return int(murmur2(store_id.encode()) & 0x7FFFFFFF) % settings.partitions

    async def agent(stream: Any) -> None:
        await batcher.run(stream, process)

    app.agent(stream_topic, name="customer", concurrency=1)(agent)
    app.timer(interval=tick_interval(settings))(batcher.tick)

    sent: dict[int, datetime] = {}

    async def watermark_ticks() -> None:
        """One tick per assigned partition when the event-time watermark has moved: timers cannot
        write tables, so the agent judges quiet customers when the tick comes through the stream."""
        now = watermark.current(time.monotonic())
        if now is None:
            return
        mine = {tp.partition for tp in app.consumer.assignment() if tp.topic == ticks_name}
        for partition in sorted(mine):
            if partition in sent and on_the_hour(now) <= sent[partition]:
                continue  # at most one tick per partition per event-time hour
            sent[partition] = on_the_hour(now)
            await ticks.send(value=orjson.dumps({"watermark": now.isoformat()}), partition=partition)
            stats["customer.ticks"] += 1

    app.timer(interval=settings.absence_interval)(watermark_ticks)

    busy = [0]  # batches being folded (their requests are not all sent yet)
    said: dict[int, datetime] = {}
    last_round = [0.0]

    def upto(partition: int) -> datetime:
        """The event time before which every visit of the partition's customers has gone out as
        a request: the time last taken from a source topic that still has records to read (the
        earliest when nothing was taken since the assignment), or the latest when all are read."""
        taken = stepper.idle.taken
        waits = to_read(partition, lambda tp: taken[tp][0] if tp in taken else None)
        return min((taken[tp][1] if tp in taken else EARLIEST for tp in waits), default=LATEST)

    async def request_progress() -> None:
        """Tell the store side how far the requests of each partition are sent, on every request
        partition (after the requests, in the same producer's order): stock counts after it wait
        there, so a backlog of stock read long before the visits does not answer them from
        stock of weeks later (``recommend.as_of`` keeps only 60 days before the newest count)."""
        if not settings.event_time_pause:
            return  # the store side does not wait for the marks
        if busy[0] or batcher.closing:
            return  # mid-batch: folded events' requests may not have left yet
        if time.monotonic() - last_round[0] < PROGRESS_SECONDS:
            return  # every PROGRESS_SECONDS at most: after every batch it cost 0.009 messages per event
        last_round[0] = time.monotonic()
        mine = sorted({tp.partition for tp in app.consumer.assignment() if tp.topic in sources})
        marks: dict[str, str] = {}
        for partition in mine:
            at = upto(partition)
            if said.get(partition) == at:
                continue
            said[partition] = at
            marks[str(partition)] = at.isoformat()
        if marks:  # every partition's mark in one message per request partition
            value = orjson.dumps({"marks": marks})
            for target in range(settings.partitions):
                await requests.send(value=value, partition=target)
            stats["customer.request_progress"] += len(marks)

    async def unsaid(_sender: Any, revoked: Any, **_: Any) -> None:  # a Faust signal handler
        said.clear()  # whoever owns a partition next says its progress again, even if unchanged

    app.on_partitions_revoked.connect(unsaid)
    app.timer(interval=PROGRESS_SECONDS)(request_progress)

    edited = lexicon_file(settings)
    seen: dict[str, float | None] = {"mtime": edited.stat().st_mtime if edited.exists() else None}

    async def reload_lexicon() -> None:
        """An edited lexicon is picked up by a running worker: validated first, and a file
        that does not validate is refused with its line number while the previous one stays."""
        try:
            mtime = edited.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == seen["mtime"]:
            return
        seen["mtime"] = mtime
        try:
            lexicon = load_lexicon(edited.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            log.error("lexicon %s refused, the previous one stays: %s", edited, exc)
            stats["notes.lexicon_refused"] += 1
            return
        ctx.tagger.use_lexicon(lexicon)
        log.info("lexicon %s loaded: %d entries", edited, len(lexicon))
        stats["notes.lexicon_reloads"] += 1

    app.timer(interval=LEXICON_CHECK_SECONDS)(reload_lexicon)
