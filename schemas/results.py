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
    "deal.products": "crm_products",
    "deal.reps": "crm_reps",
    "deal.accounts": "crm_accounts",
    "deal.contacts": "crm_contacts",
    "opportunities": "opportunities",
    "opportunity.decisions": "opportunity_audit",  # keyed by opportunity: what a CRM front end reads
    "deal.activities": "deal_activities",
    "deal.pushes": "deal_pushes",
    "deal.top3": "rep_top3",
    "money.estimates": "rebate_estimates",
    "money.match": "three_way_match",
    "money.order.lines": "money_orders",
    "money.collections": "money_payments",
    "money.delivered": "deliveries",
    "service.steps": "service_tickets",
    "money.forecast.rows": "money_forecasts",
    "money.rebate.lines": "rebate_lines",
}

LINEAGE_COLUMNS: tuple[str, ...] = ("kafka_topic", "kafka_partition", "kafka_offset")

# A result message whose rows may have been sent before (a worker re-reading what a killed
# predecessor had read): the sink stores only the rows it does not hold yet.
REPLAY_HEADER = "salespulse-replay"


def is_replay(headers: object) -> bool:
    """Whether a message's headers (pairs, or a mapping as Faust may hand them) mark a replay."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(k == REPLAY_HEADER for k, _v in pairs)  # type: ignore[attr-defined]  # pairs of a Kafka message


# A result message carries many rows: a JSON array of row objects (one object is read as one
# row, for producers outside the worker). Kept under the broker's default 1 MB message limit.
MAX_BATCH_BYTES = 900_000


def encode_rows(rows: list[bytes]) -> list[bytes]:
    """Already-encoded JSON rows -> JSON-array messages, each under ``MAX_BATCH_BYTES``
    (a single larger row still goes alone; the broker then refuses it loudly)."""
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for r in rows:
        if chunk and size + len(r) + 1 > MAX_BATCH_BYTES:
            out.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(r)
        size += len(r) + 1
    if chunk:
        out.append(b"[" + b",".join(chunk) + b"]")
    return out


def rows_of(doc: object) -> list[object]:
    """The rows a decoded result message holds: an array's items, or the one object."""
    return doc if isinstance(doc, list) else [doc]
