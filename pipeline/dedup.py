"""Event-id memory for folds whose state outlives a redelivery.

Offsets tell a replay (the same message read again) from new input; they cannot tell a
producer's retry (the same event id at a new offset). A fold that counts, judges or sums
must see such a retry once, so it keeps the ids it folded per business day of event time
for a horizon of days before the newest event it holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.bizday import day_of_stamp


def seen(state: dict[str, Any], event_id: str, occurred_at: str) -> bool:
    """Whether this event id was folded into ``state`` already."""
    return event_id in state.get("ids", {}).get(day_of_stamp(occurred_at), ())


def first_time(state: dict[str, Any], event_id: str, occurred_at: str, keep_days: int) -> bool:
    """Record the id; False if it was folded already. Days more than ``keep_days`` before the
    newest one are forgotten when a new day starts (a retry that late is taken as new)."""
    day = day_of_stamp(occurred_at)
    ids: dict[str, list[str]] = state.setdefault("ids", {})
    bucket = ids.get(day)
    if bucket is None:
        newest = max([day, *ids])
        cutoff = (datetime.fromisoformat(newest) - timedelta(days=keep_days)).date().isoformat()
        if day < cutoff:
            return True  # older than the horizon: nothing to compare with, and not kept
        for old in [d for d in ids if d < cutoff]:
            del ids[old]
        bucket = ids[day] = []
    if event_id in bucket:
        return False
    bucket.append(event_id)
    return True
