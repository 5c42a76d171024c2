"""Poison for the fault suite (issue 15): the broken and the nasty-but-valid input the field
sends, each with the outcome it must have, stated here and not worked out by the pipeline.

``poison(rng, good)`` turns a good event into one of ``KINDS``: bytes to send, and the
dead-letter error class it must get, or None when it is valid and must be stored (SQL and
HTML in free text are text; personal numbers in free text are masked, not refused).
"""

from __future__ import annotations

import random
from typing import Any

import orjson

# kind -> the dead-letter error class it must get (None: valid, stored with its text masked)
KINDS: dict[str, str | None] = {
    "malformed_json": "malformed_json",
    "not_utf8": "undecodable",
    "wrong_type": "invalid_envelope",
    "unknown_version": "unknown_schema_version",
    "unknown_type": "unknown_event_type",
    "far_future": "future_event_time",
    "far_past": "ancient_event_time",
    "not_an_object": "not_an_object",
    "megabyte_note": "oversize",
    "phone_as_customer_id": "personal_identifier",
    "id_number_as_store_id": "personal_identifier",
    "sql_text": None,
    "html_text": None,
    "numbers_in_text": None,
}
SQL = "'); DROP TABLE events; -- 顾客说"
HTML = '<script>alert("x")</script><img src=x onerror=alert(1)> 顾客'
NUMBERS = "电话13912345678，身份证110101199003071234，卡号6222021234567890123，邮箱li.na@qq.com，微信wxid_ab12cd"


def poison(rng: random.Random, good: dict[str, Any], kind: str | None = None) -> tuple[bytes, str, str | None]:
    """(bytes, kind, the dead-letter class it must get or None) for a good event ``good``."""
    kind = kind or rng.choice(sorted(KINDS))
    doc = orjson.loads(orjson.dumps(good))
    if kind == "malformed_json":
        return orjson.dumps(doc)[:-3], kind, KINDS[kind]
    if kind == "not_utf8":
        return b"\xff\xfe" + orjson.dumps(doc)[2:], kind, KINDS[kind]
    if kind == "wrong_type":
        doc["schema_version"] = "one"  # (a number for occurred_at is read as epoch seconds by design)
    elif kind == "unknown_version":
        doc["schema_version"] = 99
    elif kind == "unknown_type":
        doc["event_type"] = "pos.teleport"
    elif kind == "far_future":
        doc["occurred_at"] = "9999-12-31T23:59:59+08:00"
    elif kind == "far_past":
        doc["occurred_at"] = "1970-01-01T00:00:00+00:00"
    elif kind == "not_an_object":
        return orjson.dumps([doc]), kind, KINDS[kind]
    elif kind == "megabyte_note":
        doc["event_type"], doc["payload"] = (
            "store.note",
            {"note_id": "N-BIG", "associate_id": "A-1", "text": "很" * 300_000},
        )
    elif kind == "phone_as_customer_id":
        doc["customer_id"] = "13912345678"
    elif kind == "id_number_as_store_id":
        doc["store_id"] = "110101199003071234"
    elif kind in ("sql_text", "html_text", "numbers_in_text"):
        text = {"sql_text": SQL, "html_text": HTML, "numbers_in_text": NUMBERS}[kind]
        doc["event_type"] = "store.note"
        doc["store_id"] = doc.get("store_id") or "S-SH-001"
        doc["payload"] = {"note_id": f"N-{doc['event_id']}", "associate_id": "A-1", "text": text}
    else:
        raise ValueError(f"unknown poison kind {kind!r}")
    return orjson.dumps(doc), kind, KINDS[kind]


def topic_for(kind: str, topic: str) -> str:
    """Where the poisoned event is sent: a note stays valid only on the notes topic."""
    return "store.notes" if kind in ("megabyte_note", "sql_text", "html_text", "numbers_in_text") else topic
