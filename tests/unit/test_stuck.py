"""The bound on a held commit: a partition with lag that nothing can move any more is read
again from its committed offset; anything still moving, or with work in flight, is left alone."""

from agents.stuck import Watch
from pipeline.infra.faust_compat import Seen

TP = ("reco.requests", 0)


def stuck(**kw: int | None) -> Seen:
    base: dict[str, int | None] = {"committed": 8, "read": 19, "fetched": 20, "end": 20, "in_flight": 0}
    base.update(kw)
    return Seen(**base)  # type: ignore[arg-type]  # the test's keywords are the fields


def test_a_commit_held_with_everything_fetched_and_nothing_in_flight_is_read_again_after_the_wait() -> None:
    """The fault run's state: committed 8, read and fetched to the end (20), the
    acknowledgement of 8 lost: nothing will ever move it."""
    w = Watch(stuck_seconds=30)
    assert w.look(0, {TP: stuck()}) == []
    assert w.look(29, {TP: stuck()}) == []
    assert w.look(30, {TP: stuck()}) == [TP]
    assert w.look(31, {TP: stuck()}) == []  # judged from scratch after the re-read
    assert w.look(61, {TP: stuck()}) == [TP]


def test_records_fetched_and_never_handed_on_count_too() -> None:
    """The other stuck shape: the client fetched to the end, Faust never saw the records
    (read offset still at the seek)."""
    w = Watch(stuck_seconds=30)
    w.look(0, {TP: stuck(committed=1072, read=1072, fetched=2305, end=2305)})
    assert w.look(30, {TP: stuck(committed=1072, read=1072, fetched=2305, end=2305)}) == [TP]


def test_a_partition_never_committed_is_read_again_from_the_start_of_its_log() -> None:
    """Seen in the fault run: the killed worker never committed pos.transactions/0; its new
    owner fetched it to the end and handed nothing on (read offset unknown)."""
    from agents.stuck import start_of

    never = stuck(committed=None, read=None, fetched=2256, end=2256)
    w = Watch(stuck_seconds=30)
    w.look(0, {TP: never})
    assert w.look(30, {TP: never}) == [TP]
    assert start_of(never) == 0
    empty = stuck(committed=None, read=None, fetched=0, end=0)  # nothing ever written to it
    w = Watch(stuck_seconds=30)
    for t in (0, 30, 60):
        assert w.look(t, {TP: empty}) == []


def test_progress_work_in_flight_or_records_still_to_fetch_leave_a_partition_alone() -> None:
    cases = [
        {"in_flight": 3},  # an agent holds events of it (a batch, a put-off visit)
        {"committed": 20},  # no lag
        {"end": None},  # log end not known yet
    ]
    for kw in cases:
        w = Watch(stuck_seconds=30)
        for t in (0, 30, 60, 90):
            assert w.look(t, {TP: stuck(**kw)}) == [], kw
    w = Watch(stuck_seconds=30)
    w.look(0, {TP: stuck()})
    w.look(20, {TP: stuck(read=20)})  # the read offset moved: the wait starts again
    assert w.look(45, {TP: stuck(read=20)}) == []
    assert w.look(50, {TP: stuck(read=20)}) == [TP]
    w.look(60, {})  # no longer assigned: forgotten
    assert w.look(100, {TP: stuck(read=20)}) == []


def test_a_commit_creeping_with_nothing_in_flight_and_nothing_read_is_read_again() -> None:
    """A fault run's partition: everything read, nothing in flight, the commit moving one
    offset a second thousands behind the end (acknowledgements listed twice): lag reported
    for an hour. Nothing in flight means every acknowledgement is committed at the next
    commit, so a commit still short of the end after the wait will not get there."""
    w = Watch(stuck_seconds=30)
    for t in range(0, 30, 5):
        assert w.look(t, {TP: stuck(committed=1439 + t, read=6670, fetched=6671, end=6671)}) == []
    assert w.look(30, {TP: stuck(committed=1469, read=6670, fetched=6671, end=6671)}) == [TP]


def test_a_partition_the_client_no_longer_fetches_is_read_again() -> None:
    """Lag, nothing in flight, and the fetch position not moving either: nothing fetches the
    partition (left out of Faust's active set); while the position moves it is left alone."""
    w = Watch(stuck_seconds=30)
    for t in (0, 10, 20):
        assert w.look(t, {TP: stuck(fetched=15 + t)}) == []  # still fetching
    assert w.look(49, {TP: stuck(fetched=35)}) == []  # unchanged since 20
    assert w.look(50, {TP: stuck(fetched=35)}) == [TP]
