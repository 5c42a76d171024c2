"""Detect source partitions whose commits stopped while data is waiting.

faust-streaming can, after a rebalance or restart, drop fetched records of a partition it
considers inactive and never fetch them again: the worker idles with lag. Our commit rule
(``faust_fixes``) makes sure nothing is lost, but something must restart the flow. The
worker checks every few seconds and seeks a stalled partition back to its committed
offset; re-processing is idempotent.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class StallGuard(Generic[K]):
    """Pure bookkeeping: call ``observe`` with (committed, end) per partition at each tick."""

    patience: int = 3  # ticks without progress, with data waiting, before a partition counts as stalled
    _last: dict[K, tuple[int, int]] = field(default_factory=dict)
    _still: dict[K, int] = field(default_factory=dict)

    def observe(self, positions: dict[K, tuple[int, int]]) -> list[K]:
        stalled: list[K] = []
        for tp, (committed, end) in positions.items():
            prev = self._last.get(tp)
            if end > committed and prev is not None and prev[0] == committed:
                self._still[tp] = self._still.get(tp, 0) + 1
            else:
                self._still[tp] = 0
            self._last[tp] = (committed, end)
            if self._still[tp] >= self.patience:
                stalled.append(tp)
                self._still[tp] = 0  # give the seek time to work before judging again
        for tp in set(self._last) - set(positions):  # partitions revoked
            self._last.pop(tp, None)
            self._still.pop(tp, None)
        return stalled
