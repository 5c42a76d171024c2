"""The business day of an instant, cached per quarter hour, against the plain conversion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import bizday

ZONES = ["Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "Europe/Dublin"]


@pytest.fixture(autouse=True)
def _shanghai_after() -> Iterator[None]:
    yield
    bizday.use_timezone("Asia/Shanghai")


def plain(ts: datetime, zone: str) -> str:
    return ts.astimezone(ZoneInfo(zone)).date().isoformat()


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    ts=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)),
)
def test_same_day_as_the_conversion(zone: str, ts: datetime) -> None:
    bizday.use_timezone(zone)
    assert bizday.business_day(ts) == plain(ts, zone)


@pytest.mark.parametrize("zone", ZONES)
def test_around_every_midnight_and_offset_change_of_a_year(zone: str) -> None:
    """Every instant a microsecond either side of each local midnight and offset change of
    2026 (Lord Howe moves by half an hour, Kathmandu is 5:45 ahead): asked in either order,
    so a cached quarter hour never answers for the wrong side."""
    bizday.use_timezone(zone)
    tz = ZoneInfo(zone)
    edges = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    while at < datetime(2027, 1, 1, tzinfo=UTC):
        nxt = at + timedelta(minutes=15)
        if (
            at.astimezone(tz).date() != nxt.astimezone(tz).date()
            or at.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset()
        ):
            edges.append(nxt)
        at = nxt
    assert len(edges) >= 365
    for edge in edges:
        for ts in (edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)):
            assert bizday.business_day(ts) == plain(ts, zone), ts
    for edge in reversed(edges):
        for ts in (edge + timedelta(minutes=14, seconds=59), edge - timedelta(minutes=14, seconds=59)):
            assert bizday.business_day(ts) == plain(ts, zone), ts


def test_changing_the_zone_forgets_the_days() -> None:
    ts = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 00:30 on the 21st in Shanghai, 11:30 on the 20th in New York
    assert bizday.business_day(ts) == "2026-11-21"
    bizday.use_timezone("America/New_York")
    assert bizday.business_day(ts) == "2026-11-20"
