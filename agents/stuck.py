"""Partitions whose commit can no longer move: read again from the committed offset.

At-least-once rests on one rule: the commit moves only past a run of acknowledged offsets
that starts at the committed one. If Faust's bookkeeping ever loses the acknowledgement of
that first offset, or its fetch loop drops records the client fetched and nothing comes after
them for the fetch guard to notice, the commit is held for
good: the worker idles while lag never falls (seen in fault runs with a second worker
joining and leaving, see ``pipeline.infra.faust_compat``). Every cause found is fixed there;
this watch is the bound for the ones not found yet, so a stall costs a replay (idempotent:
state offsets and the sink's replay checks) instead of the partition.

A partition counts as stuck when it has lag, no event of it is in flight (held by an agent or
waiting in a batch), and neither its read offset nor the client's fetch position moved for
``STUCK_SECONDS`` (a commit creeping on meanwhile is no progress); never while the worker
rebalances or restores. That covers records fetched to the log end and never handed on, and a
partition the client no longer fetches at all (left out of Faust's active set: it is resumed).
A partition the group never committed is read again from the start of its log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from pipeline.infra import faust_compat
from pipeline.infra.faust_compat import Seen

log = logging.getLogger(__name__)
STUCK_SECONDS = 30.0
CHECK_SECONDS = 5.0


class Watch:
    """Pure: which partitions to read again, from successive looks at them."""

    def __init__(self, stuck_seconds: float = STUCK_SECONDS) -> None:
        self.stuck_seconds = stuck_seconds
        # tp -> (since, read, fetched). Not the committed offset: with nothing in flight and
        # nothing read, every acknowledgement is committed at the next commit, so a commit
        # that still moves (one offset a commit, see ``faust_compat._new_offset``) is as stuck
        # as one that does not.
        self.since: dict[Any, tuple[float, int | None, int | None]] = {}

    def look(self, now: float, seen: dict[Any, Seen]) -> list[Any]:
        out = []
        for tp in list(self.since):
            if tp not in seen:
                del self.since[tp]
        for tp, s in seen.items():
            if not _idle_with_lag(s):
                self.since.pop(tp, None)
                continue
            first = self.since.get(tp)
            if first is None or first[1:] != (s.read, s.fetched):
                self.since[tp] = (now, s.read, s.fetched)
                continue
            if now - first[0] >= self.stuck_seconds:
                out.append(tp)
                del self.since[tp]  # judged again from scratch after the re-read
        return out


def _idle_with_lag(s: Seen) -> bool:
    if s.end is None or s.fetched is None:
        return False
    return start_of(s) < s.end and s.in_flight == 0


def start_of(s: Seen) -> int:
    """Where the partition is read again from: its committed offset; with none committed (the
    group never committed it, as after a worker killed before its first commit), the start of
    the log, as ``auto_offset_reset=earliest`` reads it."""
    return 0 if s.committed is None else s.committed


def register(app: Any, stats: Counter[str]) -> None:
    watch = Watch()

    async def check() -> None:
        consumer = app.consumer
        stats["worker.holes_read_again"] = faust_compat.holes_read_again(consumer)
        if not faust_compat.streams_running(app):
            watch.since.clear()
            return
        try:
            flight = faust_compat.in_flight(consumer)
            streams = [tp for tp in consumer.assignment() if not tp.topic.endswith("-changelog")]
            seen = {tp: faust_compat.seen(consumer, tp, flight) for tp in streams}
        except Exception:  # a look taken while the client changes its assignment: look again later
            log.debug("stuck watch: no look this time", exc_info=True)
            return
        for tp in watch.look(time.monotonic(), seen):
            s = seen[tp]
            log.warning(
                "%s/%d: commit held at %s for %.0f s with %s records to read, none in flight: "
                "reading again from the committed offset",
                tp.topic,
                tp.partition,
                s.committed,
                watch.stuck_seconds,
                None if s.end is None else s.end - start_of(s),
            )
            stats["worker.partitions_read_again"] += 1
            await faust_compat.read_again(consumer, tp, start_of(s))

    app.timer(interval=CHECK_SECONDS)(check)
