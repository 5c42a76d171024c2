"""Burrow-style lag evaluation: the statuses ops relies on."""

from __future__ import annotations

from pipeline.infra.kafka_admin import PartitionLag
from pipeline.infra.lagstatus import GroupTracker, PartitionWindow


def window(points: list[tuple[float, int, int]]) -> PartitionWindow:
    w = PartitionWindow()
    for at, committed, end in points:
        w.add(at, committed, end)
    return w


def test_caught_up_or_keeping_pace_is_ok() -> None:
    assert window([(0, 10, 10), (10, 10, 10), (20, 10, 10)]).status() == "OK"
    assert window([(0, 10, 50), (10, 60, 90), (20, 95, 120)]).status() == "OK"  # lag moves both ways


def test_lag_growing_while_committing_warns() -> None:
    w = window([(0, 10, 20), (10, 20, 40), (20, 30, 60), (30, 40, 90)])
    assert w.status() == "WARN"
    assert w.lag_seconds() == 50 / 1.0  # 30 offsets in 30 s: one per second, 50 behind


def test_commits_stop_with_lag_stalls_then_stops() -> None:
    assert window([(0, 10, 20), (10, 10, 25), (20, 10, 30)]).status() == "STALLED"
    w = window([(0, 10, 20), (200, 10, 25), (400, 10, 30)])
    assert w.status(stopped_after=300) == "STOPPED"
    assert w.lag_seconds() is None  # nothing consumed: no rate to estimate from


def test_group_takes_its_worst_partition() -> None:
    t = GroupTracker()
    for at, c in ((0, 10), (10, 10), (20, 10)):
        t.observe(at, [PartitionLag("g", "a", 0, 5, 5), PartitionLag("g", "a", 1, c, 30)])
    rep = t.report()
    assert rep["g"].status == "STALLED" and rep["g"].lag == 20
    assert [p["status"] for p in rep["g"].partitions] == ["OK", "STALLED"]
