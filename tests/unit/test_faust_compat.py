from collections import defaultdict
from typing import Any

import faust
from intervaltree import IntervalTree

from pipeline.infra.faust_compat import PINNED_SOURCES, PINNED_VERSION, _new_offset, original_source_hashes


class FakeConsumer:
    def __init__(self, committed: int | None, acked: list[int]) -> None:
        self._acked: dict[str, list[int]] = {"tp": list(acked)}
        self._acked_index: dict[str, set[int]] = {"tp": set(acked)}
        self._gap: defaultdict[str, Any] = defaultdict(IntervalTree)
        self._committed_offset = {"tp": committed}


def test_one_unprocessed_event_at_the_head_holds_the_commit() -> None:
    # Faust 0.15.3 returns 13 here, committing past event 10 that was never processed.
    assert _new_offset(FakeConsumer(10, [11, 12]), "tp") is None


def test_committed_zero_is_a_real_position() -> None:
    assert _new_offset(FakeConsumer(0, [1, 2]), "tp") is None
    assert _new_offset(FakeConsumer(0, [0, 1, 2]), "tp") == 3


def test_commit_advances_to_the_first_gap_only() -> None:
    c = FakeConsumer(10, [10, 11, 13, 14])
    assert _new_offset(c, "tp") == 12
    assert c._acked["tp"] == [13, 14]


def test_offsets_kafka_never_delivered_count_as_done() -> None:
    c = FakeConsumer(10, [10, 13])
    c._gap["tp"].addi(11, 13)  # 11 and 12 were transaction markers / compacted away
    assert _new_offset(c, "tp") == 14


def test_the_patch_is_pinned_to_the_faust_it_was_written_for() -> None:
    """Fails when faust-streaming is upgraded or the functions we replace change upstream."""
    assert faust.__version__ == PINNED_VERSION
    assert original_source_hashes() == PINNED_SOURCES
