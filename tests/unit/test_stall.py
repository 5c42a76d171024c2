from pipeline.stall import StallGuard


def test_partition_with_frozen_commit_and_waiting_data_is_reported_after_patience() -> None:
    g = StallGuard(patience=3)
    assert g.observe({"a": (10, 50)}) == []
    assert g.observe({"a": (10, 50)}) == []
    assert g.observe({"a": (10, 55)}) == []
    assert g.observe({"a": (10, 60)}) == ["a"]
    assert g.observe({"a": (10, 60)}) == []  # patience starts again after a report


def test_progress_or_no_waiting_data_is_not_a_stall() -> None:
    g = StallGuard(patience=2)
    for committed in (10, 20, 30, 40):
        assert g.observe({"a": (committed, 100)}) == []
    for _ in range(5):
        assert g.observe({"b": (7, 7)}) == []
