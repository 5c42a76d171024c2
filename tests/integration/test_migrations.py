"""Schema migrations on a database that holds rows from before them (chDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.infra import store
from pipeline.infra.settings import Settings
from pipeline.infra.store import INSERT_SETTINGS

pytestmark = pytest.mark.integration


def test_history_rows_from_before_018_become_one_row_per_customer_and_business_day(settings: Settings) -> None:
    """018 re-keys the history by (customer, Asia/Shanghai day): the rows a production database
    already holds survive, the last settle of each day standing for the day."""
    client = store.connect(settings, migrate=False)
    try:
        store.apply_migrations(client, upto=17)
        cols = ["customer_id", "segment", "score", "previous_score", "band", "previous_band", "confidence"]
        cols += ["reasons", "as_of", "version", "kafka_topic", "kafka_partition", "kafka_offset"]

        def row(cid: str, at: datetime, score: float, version: int) -> list[Any]:
            return [cid, "retail_member", score, None, "healthy", "", 1.0, [], at, version, "h", 0, version]

        client.insert(
            "customer_health_history",
            [
                row("C-1", datetime(2026, 10, 1, 1, tzinfo=UTC), 80.0, 1),
                row("C-1", datetime(2026, 10, 1, 9, tzinfo=UTC), 75.0, 2),
                # 17:00 UTC is 01:00 the next day in Shanghai: another business day
                row("C-1", datetime(2026, 10, 1, 17, tzinfo=UTC), 70.0, 3),
                row("C-2", datetime(2026, 10, 1, 9, tzinfo=UTC), 60.0, 1),
            ],
            column_names=cols,
            settings=INSERT_SETTINGS,
        )
        assert 18 in store.apply_migrations(client)
        rows = client.query(
            "SELECT customer_id, toString(day), score FROM customer_health_history FINAL ORDER BY customer_id, day"
        ).result_rows
        assert rows == [("C-1", "2026-10-01", 75.0), ("C-1", "2026-10-02", 70.0), ("C-2", "2026-10-01", 60.0)]
        tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
        assert "customer_health_history_017" not in tables
    finally:
        client.close()


def test_rows_a_repair_deleted_are_stored_again_when_read_again(db: Any) -> None:
    """The sink's ledger decides what is stored. ClickHouse's block deduplication dropped, without
    a word, a re-insert identical to a block inserted before: after a repair deleted the rows of
    a flush that did not finish, reading them again stored nothing (a flaky sink test)."""
    cols = ["event_id", "event_type", "occurred_at", "ingested_at", "kafka_topic", "kafka_partition", "kafka_offset"]
    at = datetime(2026, 10, 1, 1, tzinfo=UTC)
    rows = [[f"E-{i}", "pos.checkin", at, at, "t", 0, 7] for i in range(50)]
    db.insert("events", rows, column_names=cols, settings=INSERT_SETTINGS)
    db.command("DELETE FROM events WHERE kafka_topic = 't' AND kafka_offset > 6")
    db.insert("events", rows, column_names=cols, settings=INSERT_SETTINGS)
    assert db.query("SELECT count() FROM events WHERE kafka_topic = 't'").result_rows[0][0] == 50
    deduplicating = db.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' "
        "AND name != 'schema_migrations' AND engine_full NOT LIKE '%non_replicated_deduplication_window = 0%' "
        "AND engine_full LIKE '%non_replicated_deduplication_window%'"
    ).result_rows
    assert deduplicating == []
