"""Bad input is kept with its reason and origin, never dropped, never fatal."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until

pytestmark = pytest.mark.integration


def note(event_id: str, **over: Any) -> dict[str, Any]:
    doc = {
        "event_id": event_id,
        "event_type": "store.note",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "source": "tablet",
        "store_id": "S-SH-001",
        "customer_id": "C-1",
        "payload": {"note_id": "N-1", "associate_id": "A-1", "text": "顾客试穿M码阔腿裤"},
    }
    doc.update(over)
    return doc


def test_each_kind_of_bad_input_is_dead_lettered_with_origin(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    bad: list[tuple[str, bytes | None, str]] = [
        ("store.notes", b'{"event_id": "x", "event_type": ', "malformed_json"),
        ("store.notes", b"\xff\xfe\x00garbage", "undecodable"),
        ("store.notes", orjson.dumps(note("e-big", payload={"pad": "x" * 70_000})), "oversize"),
        ("store.notes", orjson.dumps(note("e-type", schema_version="one")), "invalid_envelope"),
        ("store.notes", orjson.dumps(note("e-ver", schema_version=9)), "unknown_schema_version"),
        ("store.notes", orjson.dumps(note("e-unk", event_type="store.gossip")), "unknown_event_type"),
        ("app.telemetry", orjson.dumps(note("e-topic")), "wrong_topic"),
        ("store.notes", orjson.dumps(note("e-pay", payload={"note_id": "N", "text": 5})), "invalid_payload"),
        ("store.notes", orjson.dumps(note("e-pii", payload={"text": "电话13812345678"})), "invalid_payload"),
        ("store.notes", None, "empty"),
        ("store.notes", b"[]", "not_an_object"),
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=4_000_000)
    origin = {}
    for topic, value, kind in bad:
        md = producer.send(settings.topic(topic), key=b"C-1", value=value, headers=[("trace-id", b"abc")]).get(
            timeout=30
        )
        origin[(md.topic, md.partition, md.offset)] = kind
    good = producer.send(settings.topic("store.notes"), key=b"C-1", value=orjson.dumps(note("e-good"))).get(30)
    producer.flush()
    producer.close()

    worker()
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM dead_letters FINAL") == len(bad), what="dead letters")
    rows = db.query(
        "SELECT source_topic, source_partition, source_offset, stage, error_class, error_message, raw_payload, "
        "headers FROM dead_letters FINAL"
    ).result_rows
    got = {(r[0], r[1], r[2]): r[4] for r in rows}
    assert got == origin
    for r in rows:
        assert r[3] == "validate" and r[5], r
        assert "13812345678" not in r[6] and "13812345678" not in r[5]
        assert orjson.loads(r[7]).get("trace-id") == "abc"
    pii_row = next(r for r in rows if "e-pii" in r[6])
    assert "138****5678" in pii_row[6]

    # The good event behind them all went through: one bad event never blocks the partition.
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL WHERE event_id = 'e-good'") == 1, what="good")
    assert good.offset > 0

    # The dead-letter topic carries the origin in headers, for tools that do not parse values.
    consumer = KafkaConsumer(
        settings.topic("salespulse.deadletter"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    msgs = list(consumer)
    consumer.close()
    assert len(msgs) == len(bad)
    headers = [dict(m.headers) for m in msgs]
    assert {h["error_class"].decode() for h in headers} == set(origin.values())
    assert all(h["source_topic"].decode().startswith(settings.topic_prefix) for h in headers)
