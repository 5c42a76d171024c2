"""Event-time alignment of a batch across topics (``agents.batching.put_off``), without Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from agents.batching import put_off

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class TP(NamedTuple):
    topic: str
    partition: int


POS, MSG, MSG1 = TP("pos", 0), TP("messaging", 0), TP("messaging", 1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_a_sparse_topic_ahead_of_a_dense_one_still_behind_waits_for_it() -> None:
    items = [(POS, 0, day(0)), (MSG, 0, day(1)), (POS, 1, day(2)), (MSG, 1, day(9)), (MSG, 2, day(3))]
    later = put_off(items, lambda tp, _offset: tp == POS, cap=100)
    # messaging runs past day 2 (where pos is): day 9 waits, and day 3 after it in offset order
    assert later == {3, 4}


def test_nothing_waits_when_no_topic_has_more_on_the_broker() -> None:
    items = [(POS, 0, day(0)), (MSG, 0, day(9))]
    assert put_off(items, lambda _tp, _offset: False, cap=100) == set()


def test_partitions_are_aligned_separately() -> None:
    items = [(POS, 0, day(2)), (MSG, 0, day(5)), (MSG1, 0, day(5))]
    assert put_off(items, lambda tp, _offset: tp == POS, cap=100) == {1}  # partition 1 has no pos behind


def test_above_the_cap_nothing_waits() -> None:
    items = [(POS, 0, day(0))] + [(MSG, i, day(1 + i)) for i in range(10)]
    assert put_off(items, lambda tp, _offset: tp == POS, cap=5) == set()


def test_a_partition_taken_away_mid_batch_has_nothing_waiting() -> None:
    """aiokafka asserts on a partition no longer assigned; that must not fail the batch."""
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from agents.batching import waiting

    async def check() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started: nothing assigned
        return waiting(consumer, TopicPartition("pos", 0), 10)

    assert asyncio.run(check()) == 0
