"""The sink's lock protocol with a rebalance. What the sink read of partitions it is losing is
stored and committed before they go (like Kafka Streams' commit on revocation), unless a flush
is storing it right now: that flush's Kafka commit waits for the rebalance, so waiting for it
there would wait for ever.

A rebalance cannot be made to land on cue between two awaits of the sink's loop, so this drives
the listener against a recorder of what it asks of the sink and consumer (the store and the
commit on the real Kafka and chDB are tested by tests/integration/test_restart.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from nlp.pii import Pii
from pipeline.infra.settings import load
from pipeline.infra.sink import Sink, _Rebalance


class Consumer:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.log.append(f"commit {sorted(offsets.items())}")


def _sink(log: list[str]) -> Sink:
    sink = Sink(load({"SALESPULSE_PII_HMAC_KEY": "unit-test-key-0123456789"}), None, Pii(b"unit-test-key-0123456789"))

    async def store(_producer: Any) -> None:
        log.append("store")

    sink._store = store  # type: ignore[method-assign,assignment]  # the rows' insert is chDB's, tested elsewhere
    return sink


def test_a_revoke_while_a_batch_is_buffered_stores_and_commits_it_once_buffered() -> None:
    """Stop 38's caught-up check awaited the consumer while holding the lock, and the listener
    took a held lock for "a flush is storing": it returned without storing, and the partitions
    went with what was read of them still unstored."""

    async def go() -> list[str]:
        log: list[str] = []
        sink = _sink(log)
        listener = _Rebalance(sink, Consumer(log), None)
        async with sink._work:  # the loop buffering a batch (an await inside: a dead letter's send)
            sink._pending[("results", 0)] = 42
            revoke = asyncio.create_task(listener.on_partitions_revoked({("results", 0)}))
            await asyncio.sleep(0.05)
            assert not revoke.done(), "the revoke waits for the batch being buffered"
            log.append("buffered")
        await asyncio.wait_for(revoke, 1)
        assert not sink._pending
        sink._executor.shutdown()
        return log

    assert asyncio.run(go()) == ["buffered", "store", "commit [(('results', 0), 42)]"]


def test_a_revoke_while_a_flush_is_storing_returns_at_once() -> None:
    """The flush's own Kafka commit waits for this rebalance: the listener must not wait for it."""

    async def go() -> list[str]:
        log: list[str] = []
        sink = _sink(log)
        listener = _Rebalance(sink, Consumer(log), None)
        async with sink._work:
            sink._pending[("results", 0)] = 42
            sink._storing = True
            await asyncio.wait_for(listener.on_partitions_revoked({("results", 0)}), 1)
        sink._executor.shutdown()
        return log

    assert asyncio.run(go()) == []
