"""Event-id memory: a retry within the horizon is seen once, memory stays bounded."""

from __future__ import annotations

from typing import Any

from pipeline import dedup


def test_a_retry_is_recognised_within_the_horizon_and_old_days_are_forgotten() -> None:
    state: dict[str, Any] = {}
    assert dedup.first_time(state, "e1", "2026-10-01T02:00:00+00:00", 120)
    assert not dedup.first_time(state, "e1", "2026-10-01T02:00:00+00:00", 120)  # the retry
    assert dedup.seen(state, "e1", "2026-10-01T02:00:00+00:00")
    # 23:30 UTC is the next business day in Shanghai: a different bucket, a different event
    assert dedup.first_time(state, "e2", "2026-10-01T23:30:00+00:00", 120)
    assert set(state["ids"]) == {"2026-10-01", "2026-10-02"}
    assert dedup.first_time(state, "e3", "2026-03-01T02:00:00+00:00", 120) is True  # far older than the newest
    assert "2026-03-01" not in state["ids"]  # and not kept
    assert dedup.first_time(state, "e4", "2026-12-31T02:00:00+00:00", 60)  # a new day prunes what is too old
    assert set(state["ids"]) == {"2026-12-31"}
