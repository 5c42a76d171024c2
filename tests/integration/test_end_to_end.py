"""Events in on real Kafka, rows out in real chDB: the foundation's promise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pipeline.infra import kafka_admin
from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration


def string_columns(db: Any) -> list[tuple[str, str]]:
    rows = db.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} AND type LIKE '%String%'",
        parameters={"db": db.database},
    ).result_rows
    return [(str(t), str(c)) for t, c in rows]


def test_events_become_rows_profiles_and_dead_letters(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    exp = simulated(5, days=4, customers=80, bad_rate=0.03, settings=settings)
    assert exp.n_bad >= 10 and len(exp.good_ids) > 500
    worker()
    sink()
    send(settings, exp.messages)

    wait_until(
        lambda: (
            count(db, "SELECT count() FROM events FINAL") == len(exp.good_ids)
            and count(db, "SELECT count() FROM dead_letters FINAL") == exp.n_bad
        ),
        what="all events stored",
    )
    stored = {r[0] for r in db.query("SELECT event_id FROM events FINAL").result_rows}
    assert stored == exp.good_ids
    by_class = dict(db.query("SELECT error_class, count() FROM dead_letters FINAL GROUP BY error_class").result_rows)
    assert by_class == dict(exp.bad)

    wait_until(lambda: count(db, "SELECT count() FROM customers FINAL") == len(exp.customers), what="profiles")
    ids = {r[0] for r in db.query("SELECT customer_id FROM customers FINAL").result_rows}
    assert ids == exp.customers
    # Every registered customer has a masked phone and a lookup token, never the number.
    rows = db.query("SELECT phone_masked, phone_hmac FROM customers FINAL WHERE phone_hmac != ''").result_rows
    assert len(rows) >= len(exp.phones) * 0.9
    assert all(len(m) == 11 and m[3:7] == "****" for m, _ in rows)

    # No raw phone number anywhere in ClickHouse (one search per column: up to 255 needles each).
    phones = sorted(exp.phones)[:255]
    for table, column in string_columns(db):
        sql = f"SELECT count() FROM `{table}` WHERE multiSearchAny(toString(`{column}`), {{ps:Array(String)}})"
        assert count(db, sql, ps=phones) == 0, f"raw phone in {table}.{column}"

    # Money and time survive the trip exactly.
    total = db.query(
        "SELECT JSONExtractString(payload, 'total') FROM events FINAL WHERE event_type = 'pos.purchase' LIMIT 1"
    ).result_rows[0][0]
    assert total.endswith(".00")

    # Lag is zero for the worker's source topics once everything is stored. A topic the
    # group has not committed yet is absent from the listing, not zero: wait for it too.
    needed = {settings.topic("pos.transactions"), settings.topic("events.accepted")}

    def drained() -> bool:
        lag = kafka_admin.consumer_lag(settings, [settings.group_worker, settings.group_sink])
        return {r.topic for r in lag} >= needed and all(
            r.lag == 0 for r in lag if r.group == settings.group_worker and r.topic.startswith(settings.topic_prefix)
        )

    wait_until(drained, what="zero lag on every source topic")


def test_a_sink_read_to_the_end_stores_at_once_not_after_its_batch_interval(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    """Live traffic: with nothing more on the broker the rows are stored now; waiting out
    ``sink_batch_seconds`` only added to every row's latency (a backlog still batches)."""
    worker()
    sink(sink_batch_seconds=600.0)
    now = datetime.now(UTC)
    doc = {
        "event_id": "live-1",
        "event_type": "store.note",
        "schema_version": 1,
        "occurred_at": now.isoformat(),
        "source": "tablet",
        "store_id": "S-SH-001",
        "customer_id": "C-LIVE",
        "payload": {"note_id": "N-LIVE", "associate_id": "A-1", "text": "顾客试穿M码阔腿裤"},
    }
    send(settings, [("store.notes", b"C-LIVE", orjson.dumps(doc), now)])
    wait_until(
        lambda: count(db, "SELECT count() FROM events WHERE event_id = 'live-1'") == 1,
        timeout=180,
        what="the live event stored long before the sink's 600 s batch interval",
    )
