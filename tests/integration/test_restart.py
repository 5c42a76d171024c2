"""Crashes mid-stream lose nothing and double nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pipeline.infra import kafka_admin, topics
from pipeline.infra.settings import Settings
from schemas.results import RESULT_TABLES
from tests.integration.conftest import SinkRunner, count, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration


def investigate(settings: Settings, db: Any, exp: Any) -> Any:
    """On failure: which events are missing, and did the worker emit them at all?"""
    import orjson
    from kafka import KafkaConsumer

    stored = {r[0] for r in db.query("SELECT event_id FROM events FINAL").result_rows}
    missing = exp.good_ids - stored
    c = KafkaConsumer(
        settings.topic("events.accepted"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    found = [(m.partition, m.offset) for m in c if orjson.loads(m.value)["event_id"] in missing]
    c.close()
    src = [(t, k, ts) for t, k, v, ts in exp.messages if any(mid.encode() in v for mid in missing)]
    hi = db.query("SELECT kafka_partition, max(kafka_offset), count() FROM events GROUP BY kafka_partition").result_rows
    return ("MISSING", missing, "in accepted topic at", found, "source", src, "stored max", hi)


def test_worker_killed_and_sink_crashed_mid_stream(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    exp = simulated(9, days=6, customers=150, bad_rate=0.01, settings=settings)
    half = len(exp.messages) // 2
    w = worker()
    s = sink()
    sender = threading.Thread(target=send, args=(settings, exp.messages[:half]))
    sender.start()
    wait_until(lambda: count(db, "SELECT count() FROM events") > 200, what="first rows")
    w.kill()  # SIGKILL: no graceful commit
    s.crash()  # cancelled: buffered rows and uncommitted offsets are simply gone
    sender.join()
    send(settings, exp.messages[half:])
    w2 = worker()
    s2 = sink()
    wait_until(
        lambda: (
            count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids)
            and count(db, "SELECT count() FROM dead_letters FINAL") == exp.n_bad
        ),
        timeout=150,
        what="all events after restart",
        state=lambda: (
            dict(s2.sink.stats),
            investigate(settings, db, exp),
            w2.dump(),
            count(db, "SELECT count() FROM events FINAL"),
            len(exp.good_ids),
            count(db, "SELECT count() FROM dead_letters FINAL"),
            exp.n_bad,
            sum(v for (t, _p), v in kafka_admin.end_offsets(settings, [settings.topic("events.accepted")]).items()),
            [(r.group, r.topic, r.partition, r.committed, r.end) for r in kafka_admin.consumer_lag(settings)],
        ),
    )
    stored = {r[0] for r in db.query("SELECT event_id FROM events FINAL").result_rows}
    assert stored == exp.good_ids
    assert count(db, "SELECT count() FROM customers FINAL") == len(exp.customers)
    # Once each without FINAL: what the killed worker had sent and its successor sent again
    # is marked as a replay, and the sink stores only what it does not hold yet.
    doubled = {
        "events": "SELECT count() - uniqExact(event_type, event_id) FROM events",
        "customer_health_history": "SELECT count() - uniqExact(customer_id, day) FROM customer_health_history",
        "customer_health": "SELECT count() - uniqExact(customer_id, version) FROM customer_health",
        "note_tags": "SELECT count() - uniqExact(note_id) FROM note_tags",
        "dead_letters": "SELECT count() - uniqExact(source_topic, source_partition, source_offset, stage) "
        "FROM dead_letters",
    }
    assert {t: count(db, q) for t, q in doubled.items()} == dict.fromkeys(doubled, 0)


def test_what_a_killed_worker_sent_before_writing_its_state_is_stored_once(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    """Results leave before the state they came from: a worker killed in between has its
    events read again by its successor, which sends the same rows again (new wall-clock
    stamps). Marked as a replay, they are stored once: no duplicates even without FINAL."""
    exp = simulated(27, days=3, customers=50, bad_rate=0.02, settings=settings)
    first = worker(state_flush_seconds=60.0)  # results go out at once; state and commits would wait 60 s
    s = sink()
    send(settings, exp.messages[: len(exp.messages) // 2])
    wait_until(lambda: count(db, "SELECT count() FROM events") > 100, what="the first worker's rows")
    seen: list[int] = []

    def settled() -> bool:
        """The first worker has sent all it will and the sink stored it (none committed by the
        worker): the kill is then certain to leave rows its successor sends again. (A replay
        read before the row it repeats is tested on its own below.)"""
        seen.append(count(db, "SELECT count() FROM events"))
        idle = len(seen) > 2 and seen[-1] == seen[-3]
        return idle and kafka_admin.group_backlog(settings, settings.group_sink, tuple(RESULT_TABLES)) == 0

    wait_until(settled, what="the first worker's rows all stored")
    first.kill()
    send(settings, exp.messages[len(exp.messages) // 2 :])
    worker()
    wait_until(
        lambda: (
            count(db, "SELECT uniqExact(event_id) FROM events") == len(exp.good_ids)
            and kafka_admin.wait_drained(settings, timeout=1)
        ),
        timeout=150,
        what="everything stored after the kill",
        state=lambda: dict(s.sink.stats),
    )
    assert s.sink.stats["rows_already_stored"] > 0  # the successor did repeat rows: they were dropped
    doubled = {
        "events": "SELECT count() - uniqExact(event_type, event_id) FROM events",
        "customer_health_history": "SELECT count() - uniqExact(customer_id, day) FROM customer_health_history",
        "customer_health": "SELECT count() - uniqExact(customer_id, version) FROM customer_health",
        "customer_tags": "SELECT count() - uniqExact(customer_id, tag, version) FROM customer_tags",
        "note_tags": "SELECT count() - uniqExact(note_id) FROM note_tags",
        "recommendations": "SELECT count() - uniqExact(store_id, customer_id, recommendation_id) FROM recommendations",
        "dead_letters": "SELECT count() - uniqExact(source_topic, source_partition, source_offset, stage) "
        "FROM dead_letters",
    }
    assert {t: count(db, q) for t, q in doubled.items()} == dict.fromkeys(doubled, 0)
    assert count(db, "SELECT count() FROM dead_letters") == exp.n_bad


def test_sink_replaying_stored_offsets_inserts_nothing(
    settings: Settings, db: Any, worker: Any, sink: Any, pii: Any
) -> None:
    exp = simulated(21, days=2, customers=60, bad_rate=0.02, settings=settings)
    w = worker()
    first = sink()
    send(settings, exp.messages)
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids), what="stored")
    w.stop()  # nothing more is produced (its watermark timer could raise absence alerts later)
    wait_until(
        lambda: kafka_admin.group_backlog(settings, settings.group_sink, tuple(RESULT_TABLES)) == 0,
        what="the sink stored everything the worker produced",
    )
    first.stop()
    raw_before = {t: count(db, f"SELECT count() FROM {t}") for t in ("events", "customers", "dead_letters")}
    # A new sink group re-reads every result topic from offset 0, as after a lost commit.
    replay = SinkRunner(settings.with_(app_id="replay"), pii).start()
    # Result messages carry many rows: the replay is done when it skipped every message there is.
    names = [settings.topic(t) for t in RESULT_TABLES]
    messages = sum(kafka_admin.end_offsets(settings, names).values())
    wait_until(lambda: replay.sink.stats["skipped_already_stored"] >= messages, what="replay")
    replay.stop()
    raw_after = {t: count(db, f"SELECT count() FROM {t}") for t in ("events", "customers", "dead_letters")}
    assert raw_after == raw_before
    assert replay.sink.stats["rows_written"] == 0


def test_a_flush_that_stored_part_of_its_rows_is_repaired_not_skipped(
    settings: Settings, db: Any, worker: Any, sink: Any, pii: Any
) -> None:
    """An insert spanning month partitions lands part by part: a crash between parts left the
    highest stored offset ahead of rows that never landed, and the sink skipped them for good."""
    exp = simulated(23, days=2, customers=60, bad_rate=0.0, settings=settings)
    w = worker()
    first = sink()
    send(settings, exp.messages)
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids), what="stored")
    w.stop()
    first.stop()
    accepted = settings.topic(topics.ACCEPTED)
    part, offsets = db.query(
        "SELECT kafka_partition, groupUniqArray(kafka_offset) AS o FROM events GROUP BY kafka_partition "
        "ORDER BY length(o) DESC LIMIT 1"
    ).result_rows[0]
    offsets = sorted(offsets)
    floor = offsets[len(offsets) // 2 - 1] if len(offsets) > 1 else offsets[0] - 1
    # The crash: half the rows of each message above ``floor`` never landed, the ledger kept
    # ``floor``, the Kafka commit never happened (a new group reads from offset 0).
    where = "kafka_topic = {t:String} AND kafka_partition = {p:UInt32} AND kafka_offset > {f:Int64}"
    params = {"t": accepted, "p": part, "f": floor}
    db.command(f"DELETE FROM events WHERE {where} AND cityHash64(event_id) % 2 = 1", parameters=params)
    db.command(f"DELETE FROM sink_offsets WHERE {where}", parameters=params)
    if floor >= 0:
        db.command(
            "INSERT INTO sink_offsets (kafka_topic, kafka_partition, kafka_offset) "
            "VALUES ({t:String}, {p:UInt32}, {f:Int64})",
            parameters=params,
        )
    assert count(db, "SELECT count() FROM events") < len(exp.good_ids)
    replay = SinkRunner(settings.with_(app_id="repair"), pii).start()
    wait_until(
        lambda: count(db, "SELECT uniqExact(event_id) FROM events") == len(exp.good_ids),
        what="the rows that never landed, stored",
        state=lambda: (count(db, "SELECT uniqExact(event_id) FROM events"), replay.error, dict(replay.sink.stats)),
    )
    group = settings.with_(app_id="repair").group_sink
    wait_until(
        lambda: kafka_admin.group_backlog(settings, group, tuple(RESULT_TABLES)) == 0,
        what="the replay read and committed everything",
        state=lambda: dict(replay.sink.stats),
    )
    replay.stop()
    # Once each, without FINAL: the rows above the ledger were deleted and stored again.
    assert count(db, "SELECT count() FROM events") == len(exp.good_ids)
    assert count(db, "SELECT count() - uniqExact(event_id) FROM events") == 0


def test_clickhouse_outage_backs_up_in_kafka(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    exp = simulated(33, days=1, customers=50, bad_rate=0.0, settings=settings)
    worker()
    s = sink()
    wait_until(lambda: bool(s.sink.buffers), what="sink started")
    db.command("DETACH TABLE events")
    send(settings, exp.messages)
    # A flush fails, or (when the table went before the sink checked its partitions) the check does.
    wait_until(lambda: s.sink.stats["flush_failures"] + s.sink.stats["store_unavailable"] >= 1, what="a failing store")
    time.sleep(3)
    # During the outage the sink commits nothing on events.accepted: the backlog waits in Kafka.
    accepted = settings.topic("events.accepted")
    committed = sum(
        r.committed or 0 for r in kafka_admin.consumer_lag(settings, [settings.group_sink]) if r.topic == accepted
    )
    assert sum(kafka_admin.end_offsets(settings, [accepted]).values()) > committed
    db.command("ATTACH TABLE events")
    wait_until(
        lambda: count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids),
        timeout=120,
        what="rows after the outage",
    )
    assert count(db, "SELECT count() FROM events") == len(exp.good_ids)


def test_sigterm_writes_what_the_worker_holds_and_stops(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    """A graceful stop writes the state it holds and acknowledges its events: the group has no
    backlog afterwards, so a restart reads nothing twice (and a stop never hangs on held events)."""
    exp = simulated(13, days=3, customers=80, bad_rate=0.0, settings=settings)
    w = worker(state_flush_seconds=600.0)  # nothing is flushed by the timer: only the stop can do it
    sink()
    send(settings, exp.messages)
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids), what="all processed")
    assert kafka_admin.group_backlog(settings, settings.group_worker, topics.SOURCE_TOPICS) > 0  # held, unacked
    assert w.proc is not None
    started = time.monotonic()
    w.proc.terminate()
    w.proc.wait(60)
    assert time.monotonic() - started < 30
    assert kafka_admin.group_backlog(settings, settings.group_worker, topics.SOURCE_TOPICS) == 0


def test_a_restarted_worker_goes_on_from_the_state_it_wrote(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    """A new worker process restores every customer's state from the changelog (the only copy:
    the table store is in memory), so the second half of the traffic folds into the first."""
    from pipeline.intake import decode

    exp = simulated(17, days=6, customers=60, bad_rate=0.0, settings=settings)
    first_seen: dict[str, datetime] = {}
    for topic, _key, value, _ts in exp.messages:
        env = decode(value, topic, settings.max_event_bytes).envelope
        if env.customer_id:
            at = env.occurred_at.astimezone(UTC).replace(tzinfo=None)
            first_seen[env.customer_id] = min(first_seen.get(env.customer_id, at), at)
    half = len(exp.messages) // 2
    w = worker()
    sink()
    send(settings, exp.messages[:half])
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL") >= half, what="first half stored")
    w.stop()  # graceful: every state it holds is on the changelog
    w2 = worker()
    # Sent once the new worker is ready: a message that arrives while Faust resumes its stream
    # partitions after recovery can be marked read without being delivered (the partition's
    # commit then stays behind it until the next restart): a Faust race left to issue 15.
    wait_until(lambda: w2.log_path.read_text(errors="replace").count("[^Worker]: Ready") >= 2, what="worker 2 ready")
    send(settings, exp.messages[half:])
    wait_until(
        lambda: count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids),
        timeout=120,
        what="second half",
        state=lambda: (count(db, "SELECT count() FROM events FINAL"), len(exp.good_ids), w2.dump()[-6000:]),
    )
    assert kafka_admin.wait_drained(settings, 60)
    time.sleep(2)
    rows = db.query("SELECT customer_id, first_seen_at FROM customers FINAL").result_rows
    assert {c: t.replace(tzinfo=None) for c, t in rows} == first_seen
    assert "Traceback" not in w2.dump()


def test_a_sink_back_inside_its_own_flush_after_a_rebalance_does_not_delete_what_it_is_storing(
    settings: Settings, db: Any, pii: Any
) -> None:
    """A sink frozen for 60 s comes back inside its flush: its rows are in the table, their
    ledger not yet. The new assignment's repair deleted them while the flush went on to write
    their ledger and commit: 1,091 events rows lost in the fault table. Now the repair waits
    for the flush, and afterwards the ledger covers the rows."""
    from aiokafka import TopicPartition

    from pipeline.infra import store
    from pipeline.infra.sink import Sink, _Rebalance, build_buffers, record_offsets, stored_offsets

    client = store.connect(settings)
    sink = Sink(settings, client, pii)
    accepted = settings.topic(topics.ACCEPTED)

    async def scenario() -> tuple[int, bool, int]:
        sink.buffers = await sink._db(build_buffers, client, sorted(set(sink.topic_table.values())))
        sink.high = await sink._db(stored_offsets, client, list(sink.buffers))
        # the frozen flush: its insert landed, its ledger row is not written yet
        db.command(
            "INSERT INTO events (event_id, event_type, schema_version, occurred_at, ingested_at, source, store_id, "
            "customer_id, account_id, payload, kafka_topic, kafka_partition, kafka_offset) VALUES "
            "('e-frozen', 'pos.checkin', 1, now64(3), now64(3), 'pos', 'S-1', 'C-1', '', '{}', "
            "{t:String}, 0, 7)",
            parameters={"t": accepted},
        )
        listener = _Rebalance(sink, consumer=None, producer=None)
        async with sink._work:  # the loop is inside its flush
            await listener.on_partitions_assigned([TopicPartition(accepted, 0)])
            during = count(db, "SELECT count() FROM events WHERE event_id = 'e-frozen'")
            await sink._db(record_offsets, client, {(accepted, 0): 7})  # the flush goes on: its ledger
        flagged = sink._unrepaired
        await listener.on_partitions_assigned([TopicPartition(accepted, 0)])  # the repair, afterwards
        return during, flagged, count(db, "SELECT count() FROM events WHERE event_id = 'e-frozen'")

    try:
        during, flagged, after = asyncio.run(scenario())
    finally:
        sink._executor.shutdown(wait=True)
        client.close()
    assert during == 1 and flagged and after == 1


def test_a_replayed_row_read_before_the_row_it_repeats_is_stored_once(settings: Settings, db: Any, sink: Any) -> None:
    """A killed worker's row sits on one partition of a result topic; its successor's replay of
    it, keyed by another batch, on another. When the sink reads the replay first (its partition
    ahead of the other), the original came later unmarked and was stored again: 343 events rows
    twice in a CI run. Both orders, across flushes and inside one batch, store each row once."""
    from kafka import KafkaProducer

    from schemas.results import REPLAY_HEADER

    accepted = settings.topic(topics.ACCEPTED)
    assert settings.partitions >= 2

    def row(event_id: str) -> bytes:
        now = datetime.now(UTC).isoformat()
        return orjson.dumps(
            [
                {
                    "event_id": event_id,
                    "event_type": "pos.checkin",
                    "schema_version": 1,
                    "occurred_at": "2026-11-20T08:00:00+00:00",
                    "ingested_at": now,  # a wall-clock stamp: the replay has another one
                    "source": "pos",
                    "store_id": "S-1",
                    "customer_id": "C-1",
                    "account_id": "",
                    "payload": "{}",
                }
            ]
        )

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    def put(event_id: str, partition: int, *, replay: bool) -> None:
        headers = [(REPLAY_HEADER, b"1")] if replay else []
        producer.send(accepted, value=row(event_id), partition=partition, headers=headers).get(timeout=10)

    try:
        # Inside one batch, in both orders: sent before the sink starts.
        put("e-batch-a", 1, replay=True)
        put("e-batch-a", 0, replay=False)
        put("e-batch-b", 0, replay=False)
        put("e-batch-b", 1, replay=True)
        s = sink()
        wait_until(lambda: count(db, "SELECT uniqExact(event_id) FROM events") == 2, what="the batch stored")
        # Across flushes: the replay is stored, then the row it repeats arrives.
        put("e-late", 1, replay=True)
        wait_until(lambda: count(db, "SELECT count() FROM events WHERE event_id = 'e-late'") == 1, what="replay")
        put("e-late", 0, replay=False)
        put("e-after", 0, replay=False)  # read after e-late's original: the sink has read that too
        wait_until(lambda: count(db, "SELECT count() FROM events WHERE event_id = 'e-after'") == 1, what="read")
    finally:
        producer.close()
    stored = dict(db.query("SELECT event_id, count() FROM events GROUP BY event_id").result_rows)
    assert stored == {"e-batch-a": 1, "e-batch-b": 1, "e-late": 1, "e-after": 1}
    assert s.sink.stats["rows_already_stored"] == 3


def test_a_replayed_visit_answered_otherwise_keeps_the_answer_already_stored(
    settings: Settings, db: Any, sink: Any
) -> None:
    """A visit's recommendation is shown at the till once. A successor's replay can answer it
    otherwise (stock read at another pace: 热销 in another order); that second answer was
    stored beside the first (99 rows twice in a second-worker fault run). The first stands,
    whichever partition and flush brings the replay."""
    from kafka import KafkaProducer

    from schemas.results import REPLAY_HEADER

    topic = settings.topic("recommendations")

    def row(message: str) -> bytes:
        return orjson.dumps(
            [
                {
                    "recommendation_id": "v-1:1",
                    "request_id": "v-1",
                    "customer_id": "C-1",
                    "store_id": "S-1",
                    "visit_type": "pos.checkin",
                    "occurred_at": "2026-11-20T08:00:00+00:00",
                    "rank": 1,
                    "personalised": False,
                    "message": message,
                    "kind": "popular",
                    "sku": "SKU-1",
                    "name": "羽绒服",
                    "category": "羽绒服",
                    "size": "",
                    "colour": "",
                    "on_hand": 78,
                    "reasons": ["门店热销且有库存"],
                    "source_notes": [],
                    "created_at": datetime.now(UTC).isoformat(),
                }
            ]
        )

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        producer.send(topic, value=row("热销：羽绒服、半身裙、T恤"), partition=0).get(timeout=10)
        s = sink()
        wait_until(lambda: count(db, "SELECT count() FROM recommendations") == 1, what="the first answer")
        replay = [(REPLAY_HEADER, b"1")]
        producer.send(topic, value=row("热销：羽绒服、T恤、半身裙"), partition=1, headers=replay).get(timeout=10)
        wait_until(lambda: s.sink.stats["rows_already_stored"] == 1, what="the replay read", state=lambda: s.sink.stats)
    finally:
        producer.close()
    assert db.query("SELECT message FROM recommendations").result_rows == [("热销：羽绒服、半身裙、T恤",)]
