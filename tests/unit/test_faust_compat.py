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


def test_the_worker_consumer_fetches_in_batches_and_aiokafka_still_uses_the_setting() -> None:
    """The worker's consumer asks the broker for a fetch's worth; aiokafka must still hand the
    attributes we set to its fetcher, or the correction silently does nothing."""
    import asyncio
    import inspect

    from aiokafka import AIOKafkaConsumer

    from pipeline.infra import faust_compat
    from pipeline.infra.faust_app import create_app
    from pipeline.infra.settings import load

    async def build() -> Any:
        app = create_app(load({}))
        return app.consumer._thread._create_worker_consumer(app.transport)

    consumer = asyncio.run(build())
    assert consumer._fetch_min_bytes == faust_compat.FETCH_MIN_BYTES
    assert consumer._fetch_max_wait_ms == faust_compat.FETCH_MAX_WAIT_MS
    start = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_min_bytes=self._fetch_min_bytes" in start
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start
