"""Event-time alignment of a batch across topics (``agents.batching.put_off``), without Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from agents.batching import fold_earliest, put_off

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


def test_above_the_cap_only_the_earliest_go_ahead() -> None:
    """More waiting than a batch holds: the earliest fold now, in offset order per topic-partition,
    and ``cap`` wait (letting all of them go folded 20,192 events out of order in a fault run)."""
    items = [(POS, 0, day(0))] + [(MSG, i, day(1 + i)) for i in range(10)] + [(MSG1, i, day(i)) for i in range(4)]
    later = put_off(items, lambda tp, _offset: tp in (POS, MSG1), cap=5)
    assert len(later) == 5
    waiting_msg = sorted(items[i][1] for i in later if items[i][0] == MSG)
    assert waiting_msg == list(range(10 - len(waiting_msg), 10))  # the latest of the topic-partition wait
    assert max(items[i][2] for i in range(len(items)) if i not in later and items[i][0] == MSG) <= min(
        items[i][2] for i in later
    )
    # under the cap nothing changes: messaging waits from day 1 on
    assert put_off(items, lambda tp, _offset: tp in (POS, MSG1), cap=100) == set(range(1, 11))


def test_the_store_side_above_the_cap_folds_its_earliest_stock_not_all_of_it() -> None:
    """The store side's wait for the customer side's progress (``agents.store``): above the
    cap it let every waiting count go at once, a backlog's visits then answered from stock
    read days ahead of them. Now the rule of ``put_off``: the earliest go, ``cap`` wait."""
    stock, visits = TP("inventory", 0), TP("requests", 0)
    items = [(stock, i, day(i)) for i in range(10)] + [(visits, 0, day(20))]
    waiting = set(range(10))  # every count past the progress; the visit is not waiting
    kept = fold_earliest(items, waiting, cap=4)
    assert kept == {6, 7, 8, 9}  # the latest counts wait, in offset order; the visit is never added
    assert fold_earliest(items, waiting, cap=100) == waiting  # under the cap nothing changes
    # offset order: a late count ahead of earlier ones keeps them waiting behind it
    items = [(stock, 0, day(0)), (stock, 1, day(9)), (stock, 2, day(1)), (stock, 3, day(2))]
    assert fold_earliest(items, {0, 1, 2, 3}, cap=3) == {1, 2, 3}


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


class Assigned:
    """The consumer surface ``Idle`` reads (assignment, log ends, committed offsets): the
    bound arithmetic is checked here; the fault table runs it against a real broker."""

    def __init__(self, assigned: list[TP], high: dict[TP, int | None], committed: dict[TP, int]) -> None:
        self.assigned, self.high, self._committed_offset = assigned, high, committed
        self.paused: set[tuple[str, int]] = set()

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def pause_partitions(self, tps: set[TP]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in tps}

    def resume_partitions(self, tps: set[TP]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in tps}

    def highwater(self, tp: TP) -> int | None:
        return self.high[tp]


class WithSignal:
    def __init__(self, consumer: Assigned) -> None:
        self.consumer = consumer
        self.on_partitions_revoked = self.on_partitions_assigned = self
        self.rebalancing = self.in_recovery = False

    def connect(self, _handler: object) -> None:  # Faust's signal: rebalances are called by hand here
        pass

    def timer(self, interval: float) -> object:  # Faust's timer: the valve is called by hand here
        return lambda fn: fn


def test_a_topic_with_records_waiting_but_none_in_the_batch_holds_its_partition_for_a_while() -> None:
    """After a restart one fetch often brings one topic's records and not another's: the
    partition waits for the other (a customer's replies, the rest of their day), bounded by the
    event time last taken from it, and for a bounded time only."""
    from agents import batching

    consumer = Assigned([POS, MSG], {POS: 10, MSG: None}, {POS: 0, MSG: 0})
    idle = batching.Idle(WithSignal(consumer), lambda topic: topic == "messaging")
    assert idle.bounds({POS}) == {0: batching.EARLIEST}  # nothing fetched from messaging yet
    consumer.high[MSG] = 5
    idle.took(MSG, 2, day(3))
    assert idle.bounds({POS}) == {0: day(3)}  # read up to day 3, more on the broker
    items = [(POS, 0, day(2)), (POS, 1, day(4)), (POS, 2, day(3))]
    assert put_off(items, lambda _tp, _offset: False, cap=100, idle=idle.bounds({POS})) == {1, 2}
    idle.took(MSG, 4)  # the last record was dead-lettered: nothing waits any more
    assert idle.bounds({POS}) == {}
    consumer.high[MSG] = 9
    idle.held_since[0] = time.monotonic() - batching.IDLE_MAX_SECONDS - 5
    assert idle.bounds({POS}) == {}  # waited long enough: go on without it
    assert idle.bounds({POS}) == {}  # and on, while it still has records waiting (no new wait)
    consumer.high[MSG] = 5  # caught up: the next wait starts its own clock
    assert idle.bounds({POS}) == {}
    consumer.high[MSG] = 12
    assert idle.bounds({POS}) == {0: day(3)}
    consumer.high[MSG] = None  # a log end not known (nothing fetched since an assignment)
    idle.held_since[0] = time.monotonic() - batching.IDLE_MAX_SECONDS - 5
    assert idle.bounds({POS}) == {}  # waited for only the idle time


def test_stock_counts_are_waited_for_longer_than_a_customer_topic() -> None:
    """At start-up on a loaded machine the store side gave up its 10 s wait for stock counts
    Faust had fetched and kept back, and answered 7 visits from stock days old; it waits as
    long as for the customer side's progress marks."""
    from agents import batching, store

    consumer = Assigned([POS, MSG], {POS: 10, MSG: 9}, {POS: 0, MSG: 0})
    idle = batching.Idle(WithSignal(consumer), lambda topic: topic == "messaging", max_seconds=store.STOCK_WAIT_SECONDS)
    idle.took(MSG, 2, day(3))
    idle.held_since[0] = time.monotonic() - batching.IDLE_MAX_SECONDS - 5
    assert idle.bounds({POS}) == {0: day(3)}  # past a customer topic's wait: still waiting
    idle.held_since[0] = time.monotonic() - store.STOCK_WAIT_SECONDS - 1
    assert idle.bounds({POS}) == {}  # and bounded


class Polled(Assigned):
    """With fetch responses: ``polled`` is when one last told each partition's log end."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.polled: dict[TP, float] = {}

    def last_poll_timestamp(self, tp: TP) -> int | None:
        return int(1000 * self.polled[tp]) if tp in self.polled else None


def test_a_wait_is_not_given_up_while_the_broker_is_away() -> None:
    """The broker stopped for 20 s: the records waited for could not come, the 10 s wait was
    given up, and the backlog was folded out of order (a fault run lost 4,051 history days).
    While no fetch comes back the clock waits too; once fetches return it runs again."""
    from agents import batching

    consumer = Polled([POS, MSG], {POS: 10, MSG: 9}, {POS: 0, MSG: 0})
    idle = batching.Idle(WithSignal(consumer), lambda topic: topic == "messaging")
    idle.took(MSG, 2, day(3))
    consumer.polled = {POS: time.time(), MSG: time.time()}
    assert idle.bounds({POS: 5}) == {0: day(3)}
    consumer.polled = {POS: time.time() - 30, MSG: time.time() - 30}  # nothing back for 30 s
    idle.looked = time.time() - 2  # the last batch looked at 2 s ago (a tick)
    idle.held_since[0] = time.monotonic() - batching.IDLE_MAX_SECONDS - 20
    assert idle.bounds({POS: 5}) == {0: day(3)}  # still waiting: the broker is away
    consumer.polled = {POS: time.time(), MSG: time.time()}  # back: the clock starts again
    assert idle.bounds({POS: 5}) == {0: day(3)}
    idle.held_since[0] = time.monotonic() - batching.IDLE_MAX_SECONDS - 1
    assert idle.bounds({POS: 5}) == {}  # fetches come and the records still do not: go on


def test_a_wait_is_not_given_up_for_the_time_a_flush_waited_for_the_broker() -> None:
    """The broker stopped while a flush waited for it: the agent's lock was held, no batch was
    looked at until the broker was back, and the first look found the wait 48 s old and gave
    it up (a 100,000-event fault run lost 1,667 history days and 342 recommendations). The
    time flushes were blocked is not waiting time."""
    from agents import batching

    consumer = Polled([POS, MSG], {POS: 10, MSG: 9}, {POS: 0, MSG: 0})
    idle = batching.Idle(WithSignal(consumer), lambda topic: topic == "messaging")
    idle.took(MSG, 2, day(3))
    consumer.polled = {POS: time.time(), MSG: time.time()}
    assert idle.bounds({POS: 5}) == {0: day(3)}
    idle.held_since[0] -= 48  # 48 s since the wait began, all of it in a flush waiting for the broker
    batching.FLUSH_BLOCKED[0] += 47
    assert idle.bounds({POS: 5}) == {0: day(3)}  # still waiting: 1 s of it counts
    idle.held_since[0] -= batching.IDLE_MAX_SECONDS
    assert idle.bounds({POS: 5}) == {}  # then fetches come and the records still do not: go on


def test_topics_that_run_ahead_are_paused_until_the_others_catch_up() -> None:
    """In a backlog Faust fetched every topic alike, so a sparse topic ran days ahead and its
    events waited in memory until a cap let them all go out of order: the topic-partitions
    whose events wait are paused, and resumed once nothing of theirs waits. While Faust
    rebalances or restores tables it owns pausing: nothing is paused then."""
    from agents import batching

    consumer = Assigned([POS, MSG, MSG1], {POS: 10, MSG: 10, MSG1: 10}, {POS: 0, MSG: 0, MSG1: 0})
    app = WithSignal(consumer)
    idle = batching.Idle(app, lambda _topic: True)
    items = [(POS, 0, day(0)), (MSG, 0, day(1)), (MSG, 1, day(9))]
    later = put_off(items, lambda tp, _offset: tp == POS, cap=100)
    assert later == {1, 2}
    idle.steer(items, later)
    assert consumer.paused == {("messaging", 0)}  # fetches go to pos, the one behind
    app.in_recovery = True
    idle.steer([(MSG, 1, day(9)), (MSG1, 0, day(9))], {0, 1})
    assert consumer.paused == {("messaging", 0)}  # nothing paused while Faust restores tables
    app.in_recovery = False
    items = [(MSG, 0, day(1)), (MSG, 1, day(9)), (POS, 1, day(10))]
    later = put_off(items, lambda tp, _offset: tp == POS, cap=100)
    assert later == set()  # pos has caught up: messaging goes on
    idle.steer(items, later)
    assert consumer.paused == set()


def test_a_pause_outlives_an_assignment_without_revocation_and_a_valve_ends_a_pause_no_batch_steers() -> None:
    """Faust keeps its paused partitions over an assignment that revokes nothing; forgetting
    them here left a topic paused with no batch ever coming to resume it (suite timeouts)."""
    import asyncio

    from agents import batching

    consumer = Assigned([POS, MSG], {POS: 10, MSG: 10}, {POS: 0, MSG: 0})
    app = WithSignal(consumer)
    pauser = batching.Pauser(app)
    pauser.steer({MSG})
    assert consumer.paused == {("messaging", 0)}
    asyncio.run(pauser._assigned(app, {POS, MSG}))  # a second assignment, nothing revoked
    pauser.steer(set())  # the waiting events went: what Faust still holds paused is resumed
    assert consumer.paused == set()

    pauser.steer({MSG})
    app.in_recovery = True
    pauser.steer(set())
    assert consumer.paused == {("messaging", 0)}  # not resumed while Faust restores tables
    asyncio.run(pauser.valve())
    assert consumer.paused == {("messaging", 0)}  # a batch steered a moment ago
    app.in_recovery = False
    pauser.steered_at -= batching.VALVE_SECONDS + 1  # no batch since
    asyncio.run(pauser.valve())
    assert consumer.paused == set()


def test_a_batch_put_off_is_looked_at_again_within_batch_seconds_whatever_the_flush_interval() -> None:
    """Events put off wait for the next take or the tick; with the tick tied to a 600 s flush
    interval alone, events behind a partition with nothing more to deliver waited 300 s."""
    from agents.batching import tick_interval
    from pipeline.infra.settings import Settings

    s = Settings()
    assert tick_interval(s.with_(state_flush_seconds=600.0)) <= s.batch_seconds
    assert tick_interval(s.with_(state_flush_seconds=0.1)) == 0.2  # never a busy loop


def test_a_log_end_told_by_an_older_fetch_than_its_peers_does_not_say_caught_up() -> None:
    """A paused partition is not fetched (nor one with records not handed on): its log end
    dates from its last fetch, and live producers append meanwhile. Trusting "nothing more" from
    it, a frozen-sink fault run on a loaded machine folded a customer's app events of the next
    day before a reply the broker already had (1,204 events after their day, 214 history rows
    differed from the clean run). Such a topic holds its partition as one with records waiting
    does, until a fetch as fresh as the others' tells its log end."""
    from agents import batching

    consumer = Polled([POS, MSG, MSG1], {POS: 10, MSG: 3, MSG1: 3}, {POS: 0, MSG: 0, MSG1: 0})
    now = time.time()
    consumer.polled = {POS: now, MSG: now - 5, MSG1: now}  # messaging/0 was paused: no fetch for 5 s
    assert batching.stale_ends(consumer, lambda _topic: True) == {MSG}
    idle = batching.Idle(WithSignal(consumer), lambda topic: topic == "messaging", peers=lambda _topic: True)
    idle.took(MSG, 2, day(3))  # read to its log end as last told
    idle.took(MSG1, 2, day(3))
    assert idle.bounds({POS}) == {0: day(3)}  # partition 0 waits; partition 1's messaging is fresh
    items = [(POS, 0, day(2)), (POS, 1, day(4))]
    assert put_off(items, lambda _tp, _offset: False, cap=100, idle=idle.bounds({POS})) == {1}
    consumer.polled[MSG] = now  # fetched with the others: caught up indeed
    assert idle.bounds({POS}) == {}
    assert batching.stale_ends(consumer, lambda _topic: True) == set()
    consumer.polled[POS] = now + 1  # only the peers of the same partition number count
    assert batching.stale_ends(consumer, lambda topic: topic == "messaging") == set()
