"""Result topics -> ClickHouse tables. A result message is a JSON object whose keys are
the table's columns (less the kafka_* lineage columns the sink adds)."""

from __future__ import annotations

RESULT_TABLES: dict[str, str] = {
    "events.accepted": "events",
    "customer.profiles": "customers",
    "salespulse.deadletter": "dead_letters",
    "customer.health": "customer_health",
    "customer.health.history": "customer_health_history",
    "alerts": "alerts",
    "alert.deliveries": "alert_deliveries",
    "note.tags": "note_tags",
    "customer.tags": "customer_tags",
    "recommendations": "recommendations",
}

LINEAGE_COLUMNS: tuple[str, ...] = ("kafka_topic", "kafka_partition", "kafka_offset")
