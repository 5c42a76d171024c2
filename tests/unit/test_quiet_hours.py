"""When quiet customers are judged (``agents.customer.hours_to_judge``), without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from agents.customer import hours_to_judge, on_the_hour

T0 = datetime(2026, 11, 17, tzinfo=UTC)


def judgements(marks: list[datetime]) -> list[datetime]:
    """The moments a partition is judged at as its watermark reaches ``marks`` in turn."""
    judged: dict[int, datetime] = {}
    out = []
    for m in marks:
        due = hours_to_judge({0: m}, judged)
        judged.update(due)
        out.extend(due.values())
    return out


def test_quiet_customers_are_judged_at_the_same_moments_whatever_the_pace_of_the_watermark() -> None:
    """Judged at the watermark an hour after the last judgement, a run whose watermark moved
    04:10, 05:20, 05:50 judged at 05:20 and one that moved 04:59, 05:01 never judged past
    04:59: a silence alert of 05:10 at the input's end was raised in one fault run only.
    Judged at each whole hour passed, both judge at 04:00 and 05:00."""
    fast = [
        T0 + timedelta(hours=4, minutes=10),
        T0 + timedelta(hours=5, minutes=20),
        T0 + timedelta(hours=5, minutes=50),
    ]
    slow = [T0 + timedelta(hours=4, minutes=59), T0 + timedelta(hours=5, minutes=1)]
    assert judgements(fast) == judgements(slow) == [T0 + timedelta(hours=4), T0 + timedelta(hours=5)]


def test_the_hour_is_a_whole_utc_hour_whatever_offset_the_watermark_carries() -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 11, 17, 12, 37, 5, tzinfo=shanghai)
    assert on_the_hour(at) == datetime(2026, 11, 17, 4, tzinfo=UTC)
