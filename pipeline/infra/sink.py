"""Result topics -> ClickHouse, in batches, idempotently.

Contract (after quix-streams): ``add()`` buffers, ``flush()`` writes and always clears the
buffer in ``finally``. Offsets are committed only after every buffer is flushed; on a
failed flush the consumer is rewound to the last commit and the batch is read again.

Idempotence: every row carries kafka_topic/partition/offset. After each flush (rows stored,
dead letters delivered) the sink records in ``sink_offsets`` the last message it handled per
topic-partition, then commits to Kafka. At start-up and after any failure it reads that
ledger, deletes rows stored above it (an insert that failed half-way: a block spanning
month partitions is one insert per part, and some may have landed), and skips messages at
or below it. So a row is stored once, also without FINAL; the highest offset in the data is
not trusted, as it once skipped the rows of the parts that did not land.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError

from nlp.pii import Pii
from pipeline import intake
from pipeline.infra import topics
from pipeline.infra.kafka_auth import client_kwargs
from pipeline.infra.settings import Settings
from pipeline.infra.store import INSERT_SETTINGS
from schemas.results import LINEAGE_COLUMNS, RESULT_TABLES, is_replay, rows_of

log = logging.getLogger(__name__)


# How long a stored replayed row is remembered, so that the row it repeats, read later from
# another partition, is not stored again: longer than a sink lags one partition behind another.
REPLAY_MEMORY_SECONDS = 900.0
REPLAY_MEMORY_ROWS = 2_000_000  # hashes of ~100 bytes each: a bound on memory

CAUGHT_UP_SECONDS = 0.1  # read to the log end: the batch goes this soon, not after sink_batch_seconds
POSITION_WAIT_SECONDS = 0.05


async def caught_up(consumer: Any) -> bool:
    """Whether every partition is read to its log end, as the last fetch told it: live traffic
    has nothing more to gather then, and waiting out ``sink_batch_seconds`` only added to every
    row's latency. A sink behind its input still gathers for the interval; one that keeps up
    with a worker running flat out flushes more often (in throughput runs its CPU per event was
    266-285 us against 218-260). A position being reset (after a rewind, with the broker away)
    is waited for at most ``POSITION_WAIT_SECONDS``: then it is not caught up."""
    try:
        return await asyncio.wait_for(_read_to_end(consumer), POSITION_WAIT_SECONDS)
    except TimeoutError:
        return False


async def _read_to_end(consumer: Any) -> bool:
    try:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high and high > await consumer.position(tp):  # at once unless its position is reset
                return False
    except (AssertionError, IllegalStateError):  # a partition taken away meanwhile
        return False
    return True


class RowError(ValueError):
    pass


def _converter(ch_type: str) -> Any:
    t = ch_type
    nullable = False
    for wrapper in ("LowCardinality(", "Nullable("):
        if t.startswith(wrapper):
            nullable = nullable or wrapper == "Nullable("
            t = t[len(wrapper) : -1]
    if t.startswith("DateTime"):
        conv: Any = datetime.fromisoformat
    elif t.startswith("Date"):  # Date, Date32: a day as ISO text
        conv = lambda v: date.fromisoformat(str(v)[:10])  # noqa: E731  # a one-line converter
    elif t.startswith("Decimal"):
        conv = lambda v: Decimal(str(v))  # noqa: E731  # a one-line converter
    elif t.startswith(("UInt", "Int")):
        conv = int
    elif t.startswith("Float"):
        conv = float
    elif t.startswith("Array"):
        conv = list
    elif t == "Bool":
        conv = bool
    else:
        conv = str
    if nullable:
        inner = conv
        return lambda v: None if v is None else inner(v)
    return conv


@dataclass
class TableBuffer:
    """Rows for one table plus the offset range of each source partition in the batch."""

    table: str
    columns: list[str]
    converters: list[Any]
    rows: list[list[Any]] = field(default_factory=list)
    ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    identity: list[str] = field(default_factory=list)  # what makes two rows the same row
    types: list[str] = field(default_factory=list)  # ClickHouse type per column
    suspects: list[int] = field(default_factory=list)  # rows that may be stored already (a replay)
    dropped: int = 0  # rows found stored already, over the buffer's life
    recent: dict[int, float] = field(default_factory=dict)  # replayed rows stored lately: hash -> when
    write_once: bool = False  # a decision taken once per input (``WRITE_ONCE``): its identity alone decides
    _positions: list[int] = field(default_factory=list)  # of the compared columns

    def add(self, doc: dict[str, Any], topic: str, partition: int, offset: int, *, suspect: bool = False) -> None:
        doc = {**doc, "kafka_topic": topic, "kafka_partition": partition, "kafka_offset": offset}
        missing = [c for c in self.columns if c not in doc]
        extra = [k for k in doc if k not in self.columns]
        if missing or extra:
            raise RowError(f"{self.table}: missing columns {missing}, unknown columns {extra}")
        try:
            row = [conv(doc[c]) for c, conv in zip(self.columns, self.converters, strict=True)]
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise RowError(f"{self.table}: {exc}") from None
        if suspect:
            self.suspects.append(len(self.rows))
        self.rows.append(row)
        lo, hi = self.ranges.get((topic, partition), (offset, offset))
        self.ranges[(topic, partition)] = (min(lo, offset), max(hi, offset))

    def key(self, row: list[Any]) -> tuple[Any, ...]:
        if not self._positions:
            self._positions = [self.columns.index(c) for c in self.compared()]
        return tuple(_same(row[i]) for i in self._positions)

    def compared(self) -> list[str]:
        """Identity and content: a repeat is the same row less its wall-clock stamps. (A version
        is a count of events folded: a worker that read them in another order after a restart
        can give the same count to other content, and that row must not be taken for a repeat.)
        A write-once row is compared by identity alone: a replay's other answer is no update."""
        if self.write_once:
            return list(self.identity)
        return [*self.identity, *(c for c in self.columns if c not in self.identity and c not in UNCOMPARED)]

    def _held(self, client: Any) -> set[tuple[Any, ...]]:
        """Those of the suspect rows the table holds already."""
        where, params = [], {}
        for n, c in enumerate(self.identity):
            pos = self.columns.index(c)
            params[f"v{n}"] = sorted({_text(self.rows[i][pos]) for i in self.suspects})
            # A String column is matched as it is (its index serves); others through their text.
            col = f"`{c}`" if self.types[pos].endswith("String") or "String)" in self.types[pos] else f"toString(`{c}`)"
            where.append(f"{col} IN {{v{n}:Array(String)}}")
        cols = ", ".join(f"`{c}`" for c in self.compared())
        return {
            tuple(_same(v) for v in r)
            for r in client.query(
                f"SELECT {cols} FROM `{self.table}` WHERE {' AND '.join(where)}",  # noqa: S608  # our names, bound values
                parameters=params,
            ).result_rows
        }

    def _drop_stored(self, client: Any) -> None:
        """Drop the rows stored already: a worker's replay repeats rows a killed predecessor
        sent, with new wall-clock stamps. A suspect (replayed) row is looked up in the table.
        The row it repeats may also come after it, unmarked, from another partition: in the
        same batch it is dropped as a repeat of an earlier row, in a later one because the
        replayed rows stored in the last ``REPLAY_MEMORY_SECONDS`` are remembered (by hash)."""
        now = time.monotonic()
        recent = self.recent
        while recent and next(iter(recent.values())) < now - REPLAY_MEMORY_SECONDS:
            del recent[next(iter(recent))]
        while len(recent) > REPLAY_MEMORY_ROWS:
            del recent[next(iter(recent))]
        suspect = set(self.suspects)
        held = self._held(client) if suspect else set()
        seen: set[tuple[Any, ...]] = set()
        keep = []
        for i, row in enumerate(self.rows):
            k = self.key(row)
            h = hash(k)
            if k in seen or h in recent or (i in suspect and k in held):
                self.dropped += 1
                continue
            seen.add(k)
            keep.append(row)
            if i in suspect:
                recent[h] = now
        self.rows = keep

    def flush(self, client: Any) -> int:
        try:
            if self.identity and (self.suspects or self.recent):
                self._drop_stored(client)
            if not self.rows:
                return 0
            # The ledger decides what is stored; ClickHouse's own block deduplication would drop
            # a re-insert of rows the repair just deleted (same block, same hash). This setting
            # alone did not stop it on chDB: the tables' window is off too (migration 019).
            settings = {**INSERT_SETTINGS, "insert_deduplicate": 0}
            client.insert(self.table, self.rows, column_names=self.columns, settings=settings)
            return len(self.rows)
        finally:
            self.rows = []
            self.ranges = {}
            self.suspects = []


def _text(v: Any) -> str:
    """A value as ClickHouse's toString writes it (datetimes UTC, to the millisecond)."""
    if isinstance(v, datetime):
        return str(_same(v).isoformat(sep=" ", timespec="milliseconds"))
    return str(v)


def _same(v: Any) -> Any:
    """A value as both sides compare it: stored datetimes come back naive UTC, to the millisecond."""
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.replace(microsecond=v.microsecond // 1000 * 1000)
    if isinstance(v, Decimal):
        return v.normalize()
    if isinstance(v, date):
        return v
    if isinstance(v, float):
        return float(f"{v:.6g}")  # a Float32 column gives back 0.10000000149
    if isinstance(v, list | tuple):
        return tuple(_same(x) for x in v)
    return v if isinstance(v, int) else str(v)


# Stamped from the wall clock when a row is made (a repeat has new ones), or where it was read.
UNCOMPARED = frozenset(
    {"ingested_at", "updated_at", "tagged_at", "created_at", "failed_at", "computed_at", "decided_at", *LINEAGE_COLUMNS}
)


# Rows that are a decision taken once per input event, never updated: the answer to a visit
# (shown at the till already), a note's tags. A replay can answer again differently (stock
# read at another pace, a lexicon reloaded); what was stored stands, or the table would hold
# two rows of one visit without FINAL (99 in a 30,000-event second-worker fault run).
WRITE_ONCE = frozenset({"recommendations", "note_tags"})

LEDGER = "sink_offsets"
_IN_USE = ("", 0, -1)  # the ledger's own marker row


def _data_offsets(client: Any, tables: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """(topic, partition) -> (table, highest offset stored there)."""
    high: dict[tuple[str, int], tuple[str, int]] = {}
    for table in tables:
        res = client.query(
            f"SELECT kafka_topic, kafka_partition, max(kafka_offset) FROM `{table}` "  # noqa: S608  # table names are ours
            "GROUP BY kafka_topic, kafka_partition"
        )
        for topic, part, off in res.result_rows:
            key = (str(topic), int(part))
            if key not in high or int(off) > high[key][1]:
                high[key] = (table, int(off))
    return high


def record_offsets(client: Any, done: dict[tuple[str, int], int]) -> None:
    """The ledger rows of a flush: every message up to ``done[tp]`` is handled for good."""
    if done:
        rows = [[t, p, o] for (t, p), o in sorted(done.items())]
        client.insert(
            LEDGER, rows, column_names=["kafka_topic", "kafka_partition", "kafka_offset"], settings=INSERT_SETTINGS
        )


def ledger_offsets(client: Any) -> dict[tuple[str, int], int]:
    res = client.query(f"SELECT kafka_topic, kafka_partition, max(kafka_offset) FROM {LEDGER} GROUP BY 1, 2")  # noqa: S608  # our table
    return {(str(t), int(p)): int(o) for t, p, o in res.result_rows}


def stored_offsets(
    client: Any, tables: list[str], owned: set[tuple[str, int]] | None = None
) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the last message stored for good; rows above it in ``owned``
    (this sink's partitions: another sink of the group may be mid-flush on its own) are deleted.

    A store written before the ledger existed has data and no ledger: its highest stored
    offsets become the ledger (what the sink trusted then)."""
    ledger = ledger_offsets(client)
    data = _data_offsets(client, tables)
    if not ledger:
        start = {key: off for key, (_table, off) in data.items()}
        record_offsets(client, {_IN_USE[:2]: _IN_USE[2], **start})
        return start
    ledger.pop(_IN_USE[:2], None)
    for (topic, part), (table, high) in sorted(data.items()):
        floor = ledger.get((topic, part), -1)
        if high > floor and owned is not None and (topic, part) in owned:
            log.warning(
                "%s: rows of %s[%d] above offset %d were stored by a flush that did not finish: deleting "
                "them, they are read again",
                table,
                topic,
                part,
                floor,
            )
            client.command(
                f"DELETE FROM `{table}` WHERE kafka_topic = {{t:String}} AND kafka_partition = {{p:UInt32}} "  # noqa: S608  # table names are ours
                "AND kafka_offset > {o:Int64}",
                parameters={"t": topic, "p": part, "o": floor},
            )
    return ledger


def identity_of(client: Any, table: str, columns: list[str]) -> list[str]:
    """A row's identity: the table's sorting key, with the ReplacingMergeTree version column
    when the rows carry it (two versions of a customer are two rows; a ``stored_at`` version
    is ClickHouse's own)."""
    res = client.query(
        "SELECT sorting_key, engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows
    if not res:
        return []
    key = [c.strip() for c in str(res[0][0]).split(",") if c.strip()]
    m = re.match(r"ReplacingMergeTree\((\w+)\)", str(res[0][1]))
    if m and m.group(1) in columns and m.group(1) not in key:
        key.append(m.group(1))
    return key if all(c in columns for c in key) else []


def build_buffers(client: Any, table_names: list[str]) -> dict[str, TableBuffer]:
    buffers = {}
    for table in table_names:
        # Columns with a DEFAULT/MATERIALIZED expression are ClickHouse's to fill (stored_at).
        desc = [r for r in client.query(f"DESCRIBE TABLE `{table}`").result_rows if not r[2]]
        cols = [str(r[0]) for r in desc]
        buffers[table] = TableBuffer(
            table,
            cols,
            [_converter(str(r[1])) for r in desc],
            identity=identity_of(client, table, cols),
            types=[str(r[1]) for r in desc],
            write_once=table in WRITE_ONCE,
        )
        for c in LINEAGE_COLUMNS:
            if c not in cols:
                raise RuntimeError(f"table {table} lacks lineage column {c}")
    return buffers


class Sink:
    """Consumes result topics and writes ClickHouse. Owns the store client (one thread)."""

    def __init__(self, settings: Settings, client: Any, pii: Pii) -> None:
        self.settings = settings
        self.client = client
        self.pii = pii
        self.topic_table = {settings.topic(t): table for t, table in RESULT_TABLES.items()}
        self.stats: Counter[str] = Counter()
        self.batch_latencies: list[float] = []
        self.on_flush: Any = None  # (seconds, rows) after each stored batch: the metrics hook
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._stopping = asyncio.Event()
        self.high: dict[tuple[str, int], int] = {}
        self.buffers: dict[str, TableBuffer] = {}
        self._reload_high = False
        self._pending: dict[Any, int] = {}  # partition -> next offset, read since the last commit
        self._work = asyncio.Lock()  # a batch's handling vs. a rebalance's flush
        # A flush is storing and committing: its Kafka commit waits for a rebalance, so the
        # rebalance must not wait for it (the lock held alone means a batch being buffered).
        self._storing = False
        self._unrepaired = False  # an assignment whose repair failed: read nothing until it is done

    async def db(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(client, *args)`` on the one thread that owns the store (chDB: one process)."""
        return await self._db(fn, self.client, *args)

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, idle_exit: float | None = None) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

        backoff = 0.5
        while not self.buffers:
            try:
                buffers = await self._db(build_buffers, self.client, sorted(set(self.topic_table.values())))
                self.high = await self._db(stored_offsets, self.client, list(buffers))
                # Started only once both worked: a test that took the buffers for a started sink
                # detached a table between the two, and the sink waited at start-up for good.
                self.buffers = buffers
            except Exception as exc:  # ClickHouse down at start-up: wait for it, Kafka keeps the data
                self.buffers = {}
                log.warning("ClickHouse not ready (%s); retrying in %.1fs", exc, backoff)
                self.stats["startup_retries"] += 1
                if self._stopping.is_set():
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            **client_kwargs(self.settings),
            group_id=self.settings.group_sink,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_min_bytes=65_536,  # live traffic: one fetch per ~50 ms, not one per result message
            fetch_max_wait_ms=50,
            session_timeout_ms=15_000,
            heartbeat_interval_ms=3_000,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", **client_kwargs(self.settings)
        )
        consumer.subscribe(list(self.topic_table), listener=_Rebalance(self, consumer, producer))
        await producer.start()
        await consumer.start()
        pending = self._pending
        batch_started = time.monotonic()
        last_data = time.monotonic()
        backoff = 0.5
        try:
            while not self._stopping.is_set():
                if self._reload_high:
                    try:
                        owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
                        self.high = await self._db(stored_offsets, self.client, list(self.buffers), owned)
                        self._reload_high = False
                    except Exception as exc:
                        self.stats["store_unavailable"] += 1
                        log.warning("ClickHouse not answering yet: %s", exc)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
                        continue
                batches = await consumer.getmany(timeout_ms=100, max_records=self.settings.sink_batch_rows)
                if self._unrepaired:  # read against floors that were not checked: read it again
                    self._unrepaired = False
                    await self._rewind(consumer, TopicPartition)
                    pending.clear()
                    continue
                async with self._work:
                    n_rows = await self._take(batches, producer)
                # Outside the lock: a rebalance waits for the lock unless a flush is storing
                # (``_storing``), and this check awaits the consumer.
                early = bool(pending) and time.monotonic() - batch_started >= CAUGHT_UP_SECONDS
                early = early and await caught_up(consumer)
                async with self._work:
                    batch_started, backoff = await self._maybe_flush(
                        consumer, producer, batch_started, backoff, caught=early
                    )
                if n_rows:
                    last_data = time.monotonic()
                if idle_exit is not None and not pending and time.monotonic() - last_data > idle_exit:
                    break
            if pending:  # a graceful stop: what was read is stored, its dead letters delivered, then committed
                async with self._work:
                    self._storing = True
                    await self._commit(consumer, producer)
        finally:
            await consumer.stop()
            await producer.stop()
            self._executor.shutdown(wait=True)

    async def _take(self, batches: dict[Any, list[Any]], producer: Any) -> int:
        """Buffer the rows of fetched messages (those at or below the ledger skipped)."""
        pending = self._pending
        n_rows = 0
        for tp, msgs in batches.items():
            table = self.topic_table[tp.topic]
            buf = self.buffers[table]
            floor = self.high.get((tp.topic, tp.partition), -1)
            always = tp.topic == self.settings.topic(topics.DEADLETTER)  # a replay repeats them unmarked
            for m in msgs:
                suspect = always or is_replay(m.headers)
                pending[tp] = m.offset + 1
                if m.offset <= floor:
                    self.stats["skipped_already_stored"] += 1
                    continue
                try:
                    docs = rows_of(orjson.loads(m.value))
                except orjson.JSONDecodeError as exc:
                    await self._deadletter(producer, m, type(exc).__name__, str(exc))
                    continue
                for doc in docs:  # a batch message: one bad row is kept alone, the rest go on
                    try:
                        if not isinstance(doc, dict):
                            raise RowError("result row is not a JSON object")
                        buf.add(doc, tp.topic, tp.partition, m.offset, suspect=suspect)
                        n_rows += 1
                    except RowError as exc:
                        raw = m.value if len(docs) == 1 else orjson.dumps(doc)
                        await self._deadletter(producer, m, type(exc).__name__, str(exc), raw=raw)
        return n_rows

    async def _maybe_flush(
        self, consumer: Any, producer: Any, batch_started: float, backoff: float, *, caught: bool = False
    ) -> tuple[float, float]:
        """Store and commit when the batch is full, due, or ``caught`` (read to the end of every
        partition). No await before the decision: a rebalance that finds the lock held and
        ``_storing`` unset waits for the lock, and must not find a commit behind it."""
        from aiokafka import TopicPartition

        pending = self._pending
        buffered = sum(len(b.rows) for b in self.buffers.values())
        waited = time.monotonic() - batch_started
        if not pending or not (
            buffered >= self.settings.sink_batch_rows or waited >= self.settings.sink_batch_seconds or caught
        ):
            return batch_started, backoff
        self._storing = True  # through the retry's rewind too (it asks the coordinator)
        try:
            await self._commit(consumer, producer)
            backoff = 0.5
        except Exception as exc:
            # ClickHouse (or Kafka) refused: leave the data in Kafka, rewind, retry.
            self.stats["flush_failures"] += 1
            log.warning("sink flush failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            await self._rewind(consumer, TopicPartition)
            pending.clear()
        finally:
            self._storing = False
        return time.monotonic(), backoff

    async def _commit(self, consumer: Any, producer: Any) -> None:
        """Rows stored, dead letters delivered, the ledger written, then the Kafka commit."""
        pending = self._pending
        await self._store(producer)
        await consumer.commit({tp: off for tp, off in pending.items()})
        pending.clear()

    async def _store(self, producer: Any) -> None:
        await self._flush_all()
        await producer.flush()
        await self._record(self._pending)

    async def _record(self, pending: dict[Any, int]) -> None:
        done = {(tp.topic, tp.partition): off - 1 for tp, off in pending.items()}
        await self._db(record_offsets, self.client, done)
        self.high.update(done)

    async def _flush_all(self) -> None:
        started = time.perf_counter()
        total = 0
        for table, buf in self.buffers.items():
            before = buf.dropped
            n = await self._db(buf.flush, self.client)
            if buf.dropped > before:
                self.stats["rows_already_stored"] += buf.dropped - before
            if n:
                self.stats[f"rows.{table}"] += n
            total += n
        if total:
            self.stats["rows_written"] += total
            self.stats["batches"] += 1
            self.batch_latencies.append(time.perf_counter() - started)
            del self.batch_latencies[:-1000]
            if self.on_flush is not None:
                self.on_flush(time.perf_counter() - started, total)

    async def _rewind(self, consumer: Any, tp_cls: Any) -> None:
        for buf in self.buffers.values():
            buf.rows, buf.ranges, buf.suspects = [], {}, []
        self._reload_high = True
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    async def _deadletter(self, producer: Any, msg: Any, kind: str, text: str, raw: bytes | None = None) -> None:
        if msg.topic == self.settings.topic(topics.DEADLETTER):
            # A dead letter that cannot be stored would loop forever: log it loudly instead.
            log.error("unstorable dead letter at %s:%s@%s: %s", msg.topic, msg.partition, msg.offset, text)
            self.stats["unstorable_deadletters"] += 1
            return
        rec = intake.deadletter_record(
            msg.value if raw is None else raw,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            stage="sink",
            error_class=kind,
            message=text,
            pii=self.pii,
            headers=msg.headers,
        )
        await producer.send(
            self.settings.topic(topics.DEADLETTER),
            key=msg.key,
            value=orjson.dumps(rec),
            headers=intake.deadletter_headers(rec),
        )
        self.stats["deadlettered"] += 1


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type hints
    """Like Kafka Streams' commit on revocation: what this sink read of partitions it is
    losing is stored and committed first; partitions it gains are repaired (rows above the
    ledger deleted) before anything of them is read."""

    def __init__(self, sink: Sink, consumer: Any, producer: Any) -> None:
        self.sink, self.consumer, self.producer = sink, consumer, producer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        sink = self.sink
        if not sink._pending or sink._storing:
            # Nothing read; or the loop is storing it right now: its Kafka commit waits for this
            # rebalance (waiting for it here would wait for ever), and what it stores is in the
            # ledger either way, so the next owner skips it.
            return
        async with sink._work:  # a batch being buffered: stored with the rest once it is in
            if not sink._pending or sink._storing:
                return
            try:
                await sink._store(self.producer)
            except Exception as exc:  # the next owner reads from the ledger and repairs
                log.warning("sink could not store before a rebalance (%s): the next owner reads it again", exc)
                for buf in sink.buffers.values():
                    buf.rows, buf.ranges, buf.suspects = [], {}, []
                sink._pending.clear()
                return
            try:  # the ledger already says what is stored; the commit only saves re-reading it
                await self.consumer.commit({tp: off for tp, off in sink._pending.items()})
            except Exception as exc:
                log.info("sink commit during a rebalance refused (%s): the ledger covers it", exc)
            sink._pending.clear()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        sink = self.sink
        if sink._work.locked():
            # The loop is mid-flush (a sink frozen or slow past its session comes back inside
            # its own flush), or buffering rows against the floors this would replace: rows
            # a flush inserted are not in the ledger yet, and deleting them now
            # while it goes on to write their ledger and commit lost them (1,091 events rows
            # after a 60 s freeze). It repairs and reads again once that flush is done.
            sink._unrepaired = True
            return
        owned = {(tp.topic, tp.partition) for tp in assigned}
        try:
            sink.high = await sink._db(stored_offsets, sink.client, list(sink.buffers), owned)
        except Exception as exc:
            log.warning("sink could not check its new partitions against the ledger (%s): retrying", exc)
            sink._unrepaired = True
