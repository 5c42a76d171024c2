"""Issue 15: a replayed event whose state reached the changelog but whose results did not was
skipped with no output (the state's offsets say it is folded). The Batcher must have every
result on the broker before it sends a state record, and both before it acknowledges.

The broker cannot be made to crash between two deliveries on cue, so this records what the
Batcher asks of its producer, in order (the delivery itself is tested on the real Kafka by
tests/integration/test_restart.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from agents.batching import Batcher
from pipeline.infra.settings import load


class Recorder:
    """What the Batcher did, in order: ('send', topic), ('delivered', topic), ('flush',), ('ack',)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, ...]] = []
        self.pending: list[Any] = []
        self.client = self

    def add_topic(self, _name: str) -> None: ...

    def force_metadata_update(self) -> None: ...

    async def send(self, topic: str, *_args: Any) -> asyncio.Future[None]:
        self.log.append(("send", topic))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def deliver() -> None:
            self.log.append(("delivered", topic))
            done.set_result(None)

        self.pending.append(deliver)
        return done

    async def flush(self) -> None:
        self.log.append(("flush",))
        for deliver in self.pending:
            deliver()
        self.pending = []


class Output:
    def __init__(self, producer: Recorder, topic: str) -> None:
        self.producer, self.topic = producer, topic

    async def send(self, **_kw: Any) -> asyncio.Future[None]:
        return await self.producer.send(self.topic)


class Changelog:
    def get_topic_name(self) -> str:
        return "changelog"


class Table:
    key_serializer = "json"
    changelog_topic = Changelog()

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}


class Event:
    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log

    def ack(self) -> None:
        self.log.append(("ack",))


class App:
    def __init__(self, producer: Recorder) -> None:
        self.producer = producer
        producer._producer = producer  # type: ignore[attr-defined]  # where faust_compat finds aiokafka's client
        self.before_stop: list[Any] = []
        self.on_partitions_revoked = self
        self.on_partitions_assigned = self
        self.consumer_generation_id = 1

    def connect(self, _fn: Any) -> None: ...


def test_results_reach_the_broker_before_the_state_and_both_before_the_ack() -> None:
    async def scenario() -> list[tuple[str, ...]]:
        producer = Recorder()
        batcher = Batcher(App(producer), Table(), load({}), Counter(), "customer", dead=None)  # type: ignore[arg-type]  # not called here
        from pipeline.customer import Results

        out = Results()
        out.add("customer_health", {"customer_id": "C-1"})
        await batcher.emit({"customer_health": Output(producer, "customer.health")}, [], out)
        batcher.put("C-1", 0, {"customer_id": "C-1"})
        batcher.held.append(Event(producer.log))
        await batcher._flush()
        return producer.log

    log = asyncio.run(scenario())
    assert log.index(("delivered", "customer.health")) < log.index(("send", "changelog"))
    assert log.index(("delivered", "changelog")) < log.index(("ack",))


class Message:
    def __init__(self, offset: int, generation: int) -> None:
        self.tp, self.offset, self.generation_id = ("events.accepted", 0), offset, generation
        self.headers, self.refs = None, 1

    def incref(self) -> None:
        self.refs += 1


class Taken:
    def __init__(self, log: list[tuple[str, ...]], offset: int, generation: int) -> None:
        self.log, self.message = log, Message(offset, generation)

    def ack(self) -> None:
        self.log.append(("ack", str(self.message.offset)))


class Stream:
    """Faust's take_events as a rebalance leaves it: its buffer still holds events taken
    in generation 1 when generation 2's first events come."""

    def __init__(self, batcher: Batcher, takes: list[list[Taken]]) -> None:
        self.batcher, self.takes = batcher, takes

    async def take_events(self, _max: int, within: float) -> Any:
        yield self.takes[0]
        await self.batcher._on_revoked(None, set())  # generation 1 ends: nothing is folded until the next assignment
        yield self.takes[1]
        # generation 2's assignment has begun (Faust sets the generation first) while our handler,
        # awaited after other agents' ones, has not run yet: its events are current all the same
        self.batcher.app.consumer_generation_id = 2
        yield self.takes[2]


def test_events_taken_before_a_rebalance_are_neither_folded_nor_acknowledged_after_it() -> None:
    """A worker that folded them wrote state for partitions another worker owned by then, and
    their acknowledgements, made after Faust had cleared its bookkeeping of the revoked
    partitions, outlived the revocation."""

    async def scenario() -> tuple[list[int], list[tuple[str, ...]], Counter[str]]:
        producer = Recorder()
        app = App(producer)
        app.consumer = type("Consumer", (), {"highwater": lambda self, tp: None})()  # type: ignore[attr-defined]  # fake
        stats: Counter[str] = Counter()
        batcher = Batcher(app, Table(), load({}), stats, "customer", dead=None)  # type: ignore[arg-type]  # not called here
        batcher.generation = 1
        folded: list[int] = []

        async def process(batch: Any) -> None:
            folded.extend(e.message.offset for e in batch)

        takes = [
            [Taken(producer.log, 10, 1)],
            [Taken(producer.log, 11, 1)],  # handed over between the revocation and the assignment
            [Taken(producer.log, 12, 1), Taken(producer.log, 10, 2), Taken(producer.log, 11, 2)],
        ]
        await batcher.run(Stream(batcher, takes), process)
        await batcher._flush()
        return folded, producer.log, stats

    folded, log, stats = asyncio.run(scenario())
    # generation 1's 10 (folded, flushed and acknowledged at the revocation), then generation 2's
    assert folded == [10, 10, 11]
    acks = [entry for entry in log if entry[0] == "ack"]
    assert acks == [("ack", "10"), ("ack", "10"), ("ack", "11")]
    assert stats["customer.stale_events"] == 2


def test_a_rebalance_lets_events_put_off_go_unacknowledged_instead_of_folding_them_early() -> None:
    """Events put off wait for an earlier event of another topic. Folded at a revocation (the
    old way), they went ahead of it: visits answered before the stock counts before them, days
    closed early. They are let go unacknowledged, so the partition's next owner reads them
    again from the committed offset; what folds is written and acknowledged as before."""

    async def scenario() -> tuple[list[int], list[tuple[str, ...]], Counter[str], list[Any]]:
        producer = Recorder()
        stats: Counter[str] = Counter()
        batcher = Batcher(App(producer), Table(), load({}), stats, "customer", dead=None)  # type: ignore[arg-type]  # not called here
        folded: list[int] = []

        async def process(batch: Any) -> list[Any]:
            later = [e for e in batch if e.message.offset >= 11]  # waiting for another topic
            folded.extend(e.message.offset for e in batch if e not in later)
            return later

        batcher._process = process
        batcher.pending = [Taken(producer.log, 10, 1), Taken(producer.log, 11, 1), Taken(producer.log, 12, 1)]
        await batcher._on_revoked(None, {("events.accepted", 0)})
        return folded, producer.log, stats, batcher.pending

    folded, log, stats, pending = asyncio.run(scenario())
    assert folded == [10]
    assert [entry for entry in log if entry[0] == "ack"] == [("ack", "10")]
    assert stats["customer.let_go"] == 2
    assert pending == []
