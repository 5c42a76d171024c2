"""A correction to faust-streaming's offset-commit arithmetic (0.15.3).

``Consumer._new_offset`` refuses to commit past a gap at the head of the acked offsets only
when the gap is two or more messages wide (``min(acked) - committed > 1``), and skips the
check entirely when the committed offset is 0. So if offset N (the next to process) is not
acked but N+1 is, Faust commits N+2 and event N is lost on the next restart. Our restart
test caught exactly that: a killed worker's successor skipped one source event.

The corrected rule: commit only a run of acked offsets that starts at the committed
offset. A gap then holds commits back (at-least-once; our state and sink are idempotent)
instead of silently advancing past an unprocessed event.

Fetch batching: Faust builds its aiokafka consumer with ``fetch_min_bytes=1`` and no way to
change it, so under live traffic the broker answers every fetch with the few messages that
have just arrived. At 1,700 events/s that was hundreds of fetches a second, costing the broker
0.3-0.7 of a core and the worker's Faust loop about twice its per-message CPU of a backlog
run; the worker fell behind at half its backlog rate. ``FETCH_MIN_BYTES`` and
``FETCH_MAX_WAIT_MS`` let the broker gather a fetch's worth (or wait at most that long).

Stream partitions resumed before they are sought (the stall after a second worker left):
at the end of a recovery Faust resumes the stream partitions and only then seeks them to
their committed offsets (``Recovery.on_recovery_completed`` and ``_resume_streams``). The
fetch loop runs meanwhile (the flow was resumed for the changelogs), so records fetched from
the positions before the seek reached the agents, and when the seek then moved the read
offset back, the next record from that earlier fetch looked like a jump: Faust recorded the
offsets in between as a gap (counted as acknowledged) and dropped their re-fetched copies as
already read. Seen in a 30,000-event run with a second worker killed: gaps of about 262
offsets on every partition the worker got back, seven partitions' commits stuck for good.
Both functions are replaced by copies that seek first and resume afterwards.

A message of the previous generation after a rebalance: Faust's fetch loop takes a message,
may then wait in an inline ``commit()`` (every ``broker_commit_every`` acks) that the consumer
thread only runs once its rebalance is over, and afterwards hands the message on and records
its offset as read. If the new assignment's seek to the committed offset happened in between,
that stale offset overwrites the seek: the loop then drops every re-fetched message below it
as "already read", nothing there is ever acknowledged, and the commit is held at the committed
offset for good (a worker idle with lag that never falls; without the hold, lost events). The
guard hands no message of an older generation on (the streams skip those anyway) and keeps
the read offset it would have set from being recorded. This path was read in the code, not
seen: the guard's warning did not fire in the fault runs that found the recovery order.

Records fetched and never handed on: Faust's fetch loop drops fetched records without a word
in several places (a partition paused while its fetch is iterated: the active set it checks is
the live one; a flow stopped or a generation changed mid-fetch; a callback cancelled by a
suspended flow, its offset still recorded as read), and the client's position has moved past
them. If no seek follows, the next record looks like a jump: Faust records the offsets in
between as a gap, counts them as acknowledged and commits past them. In a second-worker fault
run a recommendation request sent 0.7 s before the rebalance was never answered by any worker
and the commit passed it. Offsets of our stream topics are contiguous (not compacted, no
transactional producer), so the guard knows the next offset of every partition (the read
offset + 1, or the seek's offset): a record beyond it is not handed on, nor is the rest of its
fetch, the gap is taken back, and the partition is read again from the expected offset. A jump
still there when read again is real (a transaction marker of an outside producer) and counted
as a gap once. When nothing follows the dropped records there is no jump to see (the stalls
the stuck watch had to end after a second worker left: fetched to the log end, never handed
on), so the guard also compares each fetch with what Faust's getmany yielded of it: a partition
of the same generation with records kept back is sought back to the first of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

PINNED_VERSION = "0.15.3"
# sha256 of the source of each replaced function as faust-streaming 0.15.3 ships it: a new
# Faust that changes them must be read again before this module is trusted with it.
PINNED_SOURCES = {
    "_new_offset": "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
    "perform_seek": "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6",
    "_create_worker_consumer": "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
    "on_recovery_completed": "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    "_resume_streams": "d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e",
    # not replaced: the fetch loop whose order (callback, then the read offset set through a
    # bound ``_read_offset.__setitem__``) the generation guard relies on
    "_drain_messages": "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
    "__init__": "302410d59e6972d144e35ce91483b28783e01fd039f02a51f0b06c6d3953a001",  # wrapped
    # wrapped by the fetch guard, which relies on getmany yielding from the one fetch that
    # _wait_next_records makes through _getmany, and on what getmany drops
    "getmany": "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e",
    "_wait_next_records": "6218e1969a636b3ff504ad1b8e7ad58a113572e43d746cc96d684ed5153032c6",
}
_OWNERS: dict[str, Any] = {
    "_create_worker_consumer": AIOKafkaConsumerThread,
    "on_recovery_completed": Recovery,
    "_resume_streams": Recovery,
}
ORIGINALS = {name: getattr(_OWNERS.get(name, Consumer), name) for name in PINNED_SOURCES}  # before any patching
FETCH_MIN_BYTES = 65_536  # a fetch's worth (a few hundred events), or ...
FETCH_MAX_WAIT_MS = 50  # ... at most this long (it adds at most this much latency)
_PATCHED = False
log = logging.getLogger(__name__)


def original_source_hashes() -> dict[str, str]:
    """sha256 of the installed Faust's own versions of the functions replaced here."""
    return {name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() for name, fn in ORIGINALS.items()}


def _consecutive_run(sorted_offsets: list[int]) -> list[int]:
    run = sorted_offsets[:1]
    for off in sorted_offsets[1:]:
        if off != run[-1] + 1:
            break
        run.append(off)
    return run


def _new_offset(self: Any, tp: Any) -> int | None:
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        # Offsets Kafka never delivered (compaction, transaction markers) count as acked.
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            filler: list[int] = []
            for entry in candidates:
                filler.extend(range(entry.begin, entry.end))
            acked.extend(filler)
            gap_for_tp.chop(0, max(filler[-1], max_offset + 1))
    # An offset can be listed twice: in a gap's filler and acknowledged when it was read
    # again. A run stops at the repeat, so each commit moved one offset on: in a fault run a
    # partition 5,000 offsets behind crept at one a second, its lag reported for over an hour,
    # while the stuck watch saw the commit move and left it alone.
    acked[:] = sorted(set(acked))
    committed = self._committed_offset[tp]
    if committed is not None and acked[0] > committed:
        return None  # offset `committed` itself is not processed yet: hold the commit
    run = _consecutive_run(acked)
    acked[: len(run)] = []
    self._acked_index[tp].difference_update(run)
    return run[-1] + 1


async def _perform_seek(self: Any) -> None:
    """As Faust's, but a committed offset of 0 stays 0 (Faust turned it into "unknown"), and a
    stream partition the group never committed counts as committed at its log start, where
    it is read from: ``_new_offset`` holds the commit only behind a known position, so an
    event acknowledged ahead of earlier ones still waiting (a dead letter among stock counts
    that wait for the visits) committed past them all, and the next owner never read them."""
    committed = await self.seek_to_committed()
    self._read_offset.update({tp: off if off is not None and off >= 0 else None for tp, off in committed.items()})
    ours = {TP(tp.topic, tp.partition): off for tp, off in committed.items()}  # Faust's own TP type
    known = {tp: off for tp, off in ours.items() if off is not None and off >= 0}
    self._committed_offset.update(known)
    fresh = [
        tp
        for tp in ours
        if tp not in known and not self._is_changelog_tp(tp) and self.app.topics.acks_enabled_for(tp.topic)
    ]
    if fresh:
        starts = await self.earliest_offsets(*fresh)
        self._committed_offset.update(
            {TP(tp.topic, tp.partition): off for tp, off in starts.items() if off is not None and off >= 0}
        )


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """Faust's, with the stream partitions sought before they are resumed (module doc)."""
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(
            table.on_recovery_completed(self.actives_for_table[table], self.standbys_for_table[table])
        )
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} param {generation_id}")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    if self.app.consumer_generation_id != generation_id:  # a rebalance came during the seek
        return
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    self.log.dev("Resume stream partitions")
    self.app.flow_control.resume()
    consumer.resume_flow()
    await self.app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _resume_streams(self: Any, generation_id: int = 0) -> None:
    """Faust's, with the stream partitions sought before they are resumed (module doc)."""
    app = self.app
    consumer = app.consumer
    await app.on_rebalance_complete.send()
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        if self.app.consumer_generation_id != generation_id:  # a rebalance came during the seek
            return
        self.log.dev("Resume stream partitions")
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    else:
        self.log.info("Resuming streams with empty assignment")
    self.completed.set()
    self.log.info("Resuming flow...")
    app.flow_control.resume()
    consumer.resume_flow()
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def _create_worker_consumer(self: Any, transport: Any) -> AIOKafkaConsumer:
    """Faust's consumer, with fetches that wait for a batch (see the module docstring)."""
    consumer: AIOKafkaConsumer = ORIGINALS["_create_worker_consumer"](self, transport)
    # aiokafka keeps its constructor arguments in these and hands them to its fetcher at start.
    consumer._fetch_min_bytes = FETCH_MIN_BYTES
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


class CommittedOffsets(dict[Any, "int | None"]):
    """Faust's committed offsets (partition -> the next offset to read; None when unknown, like
    the ``defaultdict`` it replaces). Faust forgets a revoked partition's entry before the
    revocation handlers run, and ours flush and acknowledge what they folded right then: with
    no committed offset to hold behind, that flush's commit passed the events let go
    unacknowledged before it (visit requests waiting for stock counts: 1,690 recommendations
    never made in a second-worker fault run). A forgotten entry is kept until the partition
    is sought again."""

    __slots__ = ("forgotten",)

    def __init__(self) -> None:
        super().__init__()
        self.forgotten: dict[Any, int | None] = {}

    def __missing__(self, key: Any) -> int | None:
        return self.forgotten.get(key)

    def __setitem__(self, key: Any, value: int | None) -> None:
        self.forgotten.pop(key, None)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self.forgotten[key] = super().__getitem__(key)
        return super().pop(key, *default)


class ReadOffsets(dict[Any, "int | None"]):
    """Faust's read offsets (partition -> offset last handed to the streams, or after a seek
    the next one to read; None when unknown, like the ``defaultdict`` it replaces). It skips
    the one set the guard asks it to skip, and remembers which partitions were last set by a
    seek rather than by the fetch loop (so the next expected offset is known exactly)."""

    __slots__ = ("handing", "sought", "stale")

    def __init__(self) -> None:
        super().__init__()
        self.stale: tuple[Any, int] | None = None  # the loop's next set to skip
        self.handing: tuple[Any, int] | None = None  # the message the loop is handing on
        self.sought: set[Any] = set()

    def __missing__(self, key: Any) -> None:
        return None

    def __setitem__(self, tp: Any, offset: int | None) -> None:
        if self.stale is not None and self.stale == (tp, offset):
            self.stale = None
            return
        if self.handing is not None and self.handing == (tp, offset):
            self.sought.discard(tp)  # the loop records a message handed on
        else:
            self.sought.add(tp)  # Consumer.seek
        super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:  # perform_seek: next offsets to read
        new = dict(*args, **kwargs)
        self.sought.update(new)
        super().update(new)

    def expected(self, tp: Any) -> int | None:
        """The next offset the fetch loop should hand on for ``tp`` (None: unknown)."""
        read = self.get(tp)
        if read is None:
            return None
        return read if tp in self.sought else read + 1


@dataclass
class _Hole:
    resume: int  # where the partition is read again from
    generation: int
    batch: int  # the fetch whose leftovers are not handed on


class FetchGuard:
    """What the fetch loop hands on, checked against what it should (module doc: messages
    of an older generation, records fetched and never handed on)."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.app = consumer.app
        self.offsets = ReadOffsets()
        self.offsets.update(consumer._read_offset)
        self.offsets.sought.clear()
        self.callback = consumer.callback
        self.getmany = consumer.getmany
        self.fetch = consumer._getmany
        self.batch = 0  # getmany calls so far: a hole's leftovers belong to the batch it was found in
        self.fetched: dict[Any, tuple[int, int]] = {}  # (topic, partition) -> first, last offset of the fetch
        self.fetched_in = 0  # the generation the fetch was made in
        self.holes: dict[Any, _Hole] = {}
        self.tried: dict[Any, int] = {}  # tp -> last offset read again from: a second jump there is real
        self.holes_read_again = 0
        self.unhanded_read_again = 0
        consumer._read_offset = self.offsets
        consumer.callback = self.on_message
        consumer.getmany = self.counted_getmany
        consumer._getmany = self.noted_fetch

    async def noted_fetch(self, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109  # Faust's
        records = await self.fetch(active_partitions=active_partitions, timeout=timeout)
        self.fetched_in = self.app.consumer_generation_id
        self.fetched = {(tp.topic, tp.partition): (rs[0].offset, rs[-1].offset) for tp, rs in records.items() if rs}
        return records

    async def counted_getmany(self, timeout: float) -> Any:  # noqa: ASYNC109  # Faust's signature
        """Faust's getmany, and afterwards every partition whose fetched records it did not all
        yield read again from the first it kept back (the client's position is past them)."""
        self.batch += 1
        self.fetched = {}
        handed: dict[Any, int] = {}
        async for tp, message in self.getmany(timeout=timeout):
            handed[(tp.topic, tp.partition)] = message.offset
            yield tp, message
        if self.fetched and self.app.consumer_generation_id == self.fetched_in and self.consumer.flow_active:
            await self._rewind_unhanded(handed)

    async def _rewind_unhanded(self, handed: dict[Any, int]) -> None:
        assigned = {(tp.topic, tp.partition): tp for tp in self.consumer.assignment()}
        for key, (first, last) in self.fetched.items():
            upto = handed.get(key)
            tp = assigned.get(key)
            if (upto is not None and upto >= last) or tp is None or not self._checked(tp):
                continue
            resume = first if upto is None else upto + 1
            expected = self.offsets.expected(tp)
            if expected is not None and expected < resume:
                # sought back meanwhile (the fetch predates a seek to the committed offset):
                # never jump ahead of where the fetch loop now reads from
                resume = expected
            log.warning(
                "%s/%d: Faust's fetch loop kept back offsets %d-%d it had fetched: reading them again",
                tp.topic,
                tp.partition,
                resume,
                last,
            )
            self.unhanded_read_again += 1
            self.holes.pop(tp, None)
            await self.consumer.seek(tp, resume)

    async def on_message(self, message: Any) -> None:
        tp, offset, generation = message.tp, message.offset, self.app.consumer_generation_id
        if message.generation_id != generation:
            self.offsets.stale = (tp, offset)
            log.warning(
                "message %s@%d of generation %s reached the fetch loop in generation %s: "
                "not handed on, read offset kept (it is fetched again from the committed offset)",
                tp,
                offset,
                message.generation_id,
                generation,
            )
            return None
        hole = self.holes.get(tp)
        if hole is not None:
            if hole.generation == generation and hole.batch == self.batch:
                self._skip(tp, offset, hole.resume)  # the rest of the fetch the hole was found in
                return None
            del self.holes[tp]
        expected = self.offsets.expected(tp)
        if expected is not None and offset > expected and self._checked(tp):
            if self.tried.get(tp) != expected:
                await self._read_again(tp, offset, expected, generation)
                return None
            # read again and still missing: offsets that do not exist. Faust records a jump of
            # one after a seek as no gap at all, which would hold the commit for good.
            await self.consumer._add_gap(tp, expected, offset - 1)
        elif expected == offset:
            self.tried.pop(tp, None)  # read on in order: a later jump is news again
        self.offsets.handing = (tp, offset)
        return await self.callback(message)  # type: ignore[no-any-return]  # Faust's ConsumerCallback

    def _checked(self, tp: Any) -> bool:
        """Offsets of a stream topic are contiguous: no compaction, no transaction markers
        (none of our producers is transactional). Changelogs are compacted."""
        return not self.consumer._is_changelog_tp(tp) and bool(self.app.topics.acks_enabled_for(tp.topic))

    def _skip(self, tp: Any, offset: int, resume: int) -> None:
        self.offsets.stale = (tp, offset)  # the read offset stays where the seek put it
        gap = self.consumer._gap.get(tp)
        if gap:
            gap.chop(resume, offset + 1)  # Faust recorded the jump as a gap (acknowledged): it is not

    async def _read_again(self, tp: Any, offset: int, expected: int, generation: int) -> None:
        log.warning(
            "%s/%d: the fetch loop handed on offset %d where %d was next: offsets %d-%d were "
            "fetched and never handed on; reading them again",
            tp.topic,
            tp.partition,
            offset,
            expected,
            expected,
            offset - 1,
        )
        self.holes_read_again += 1
        self.tried[tp] = expected
        self.holes[tp] = _Hole(expected, generation, self.batch)
        self._skip(tp, offset, expected)
        await self.consumer.seek(tp, expected)


def _consumer_init(self: Any, *args: Any, **kwargs: Any) -> None:
    ORIGINALS["__init__"](self, *args, **kwargs)
    committed = CommittedOffsets()
    committed.update(self._committed_offset)
    self._committed_offset = committed
    self.fetch_guard = FetchGuard(self)


def holes_read_again(consumer: Any) -> int:
    """How often the fetch guard found records fetched and never handed on."""
    guard = getattr(consumer, "fetch_guard", None)
    return 0 if guard is None else guard.holes_read_again + guard.unhanded_read_again


def aiokafka_client(app: Any) -> Any:
    """The aiokafka client under Faust's producer (``Producer._producer`` in 0.15.3)."""
    return app.producer._producer.client


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The group's committed offset of ``tp`` as the Faust consumer knows it (the next offset
    to read; ``Consumer._committed_offset`` in 0.15.3, set by the seek above at assignment)."""
    value = consumer._committed_offset.get(tp)
    return None if value is None else int(value)


def streams_running(app: Any) -> bool:
    """No rebalance or table recovery under way and the stream partitions flow (0.15.3's
    ``App.rebalancing``, ``App.in_recovery``, ``Consumer.flow_active``)."""
    return bool(not app.rebalancing and not app.in_recovery and app.consumer.flow_active)


@dataclass(frozen=True)
class Seen:
    """One partition as the consumer sees it at one moment."""

    committed: int | None  # next offset to read, as committed by the group
    read: int | None  # last offset the fetch loop handed on
    fetched: int | None  # the fetch position (next offset the client will ask for)
    end: int | None  # the log end (high watermark)
    in_flight: int  # events handed on and not acknowledged


def polled_at(consumer: Any, tp: Any) -> float | None:
    """When a fetch response last told the log end of ``tp`` (wall seconds; aiokafka's
    ``last_poll_timestamp`` under Faust's ``Consumer._thread._consumer`` in 0.15.3). None if
    not known or not assigned."""
    inner = getattr(getattr(consumer, "_thread", None), "_consumer", None) or consumer
    try:
        ms = inner.last_poll_timestamp(tp)
    except (AssertionError, AttributeError):  # taken by a rebalance, or no fetch yet
        return None
    return None if ms is None else ms / 1000.0


def in_flight(consumer: Any) -> Counter[Any]:
    """Events handed on and not acknowledged, per partition (``Consumer._unacked_messages``)."""
    return Counter(m.tp for m in list(consumer._unacked_messages))


def seen(consumer: Any, tp: Any, flight: Counter[Any]) -> Seen:
    """A partition as the consumer sees it now (aiokafka's fetch position, Faust's offsets)."""
    try:
        end = consumer.highwater(tp)
    except AssertionError:  # no longer assigned
        end = None
    state = consumer._thread._consumer._subscription.subscription.assignment.state_value(tp)
    fetched = state.position if state is not None and state.has_valid_position else None
    return Seen(committed_offset(consumer, tp), consumer._read_offset.get(tp), fetched, end, flight[tp])


async def read_again(consumer: Any, tp: Any, offset: int) -> None:
    """Forget the partition's acknowledgement bookkeeping and read it again from ``offset``
    (the events come again, are folded as replays and acknowledged afresh), fetching it
    again if Faust had left it out of the partitions it fetches."""
    consumer._acked.pop(tp, None)
    consumer._acked_index.pop(tp, None)
    consumer._gap.pop(tp, None)
    await consumer.seek(tp, offset)
    # and fetched again: a partition left out of Faust's active set (or its buffered set) is
    # never fetched, whatever its position
    consumer._buffered_partitions.discard(tp)
    consumer.resume_partitions({tp})


def apply() -> None:
    """Install the corrections; idempotent, called by ``create_app``. Refuses any Faust but
    the one they were written for."""
    global _PATCHED
    if faust.__version__ != PINNED_VERSION:
        raise RuntimeError(
            f"pipeline.infra.faust_compat was written for faust-streaming {PINNED_VERSION}, "
            f"found {faust.__version__}: check {', '.join(PINNED_SOURCES)} again"
        )
    if not _PATCHED:
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # deliberate patch, see module doc
        Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]  # deliberate patch, see module doc
        AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # see doc
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]  # see module doc
        Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]  # see module doc
        Consumer.__init__ = _consumer_init  # type: ignore[method-assign]  # wraps, see module doc
        _PATCHED = True
