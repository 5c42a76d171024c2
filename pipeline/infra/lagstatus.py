"""Consumer-group health in the spirit of Burrow's evaluation rules, pure.

Each partition keeps a sliding window of (time, committed offset, end offset) samples.
Per partition, over the window:
- STOPPED: lag > 0 and the committed offset has not moved for ``stopped_after`` seconds
  (the consumer is gone);
- STALLED: lag > 0 and the committed offset did not move during the whole window, shorter
  than ``stopped_after`` (the consumer is there but not committing);
- WARN: the committed offset moves but the lag grew at every sample of the window;
- OK otherwise (including lag 0 at any sample: a caught-up consumer is fine).
A group takes its worst partition's status. Lag in seconds is estimated from the recent
consumption rate: lag / (offsets committed per second), or None when nothing moved.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pipeline.infra.kafka_admin import PartitionLag

ORDER = {"OK": 0, "WARN": 1, "STALLED": 2, "STOPPED": 3}


@dataclass
class PartitionWindow:
    samples: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=10))
    last_move: float | None = None

    def add(self, at: float, committed: int, end: int) -> None:
        if not self.samples or committed != self.samples[-1][1]:
            self.last_move = at
        self.samples.append((at, committed, end))

    @property
    def lag(self) -> int:
        return 0 if not self.samples else max(0, self.samples[-1][2] - self.samples[-1][1])

    def status(self, *, stopped_after: float = 300.0, min_samples: int = 3) -> str:
        if not self.samples or self.lag == 0 or any(end - c <= 0 for _t, c, end in self.samples):
            return "OK"
        now = self.samples[-1][0]
        if self.last_move is not None and now - self.last_move >= stopped_after:
            return "STOPPED"
        if len(self.samples) < min_samples:
            return "OK"
        committed = [c for _t, c, _e in self.samples]
        if committed[0] == committed[-1]:
            return "STALLED"
        lags = [end - c for _t, c, end in self.samples]
        if all(b > a for a, b in pairwise(lags)):
            return "WARN"
        return "OK"

    def lag_seconds(self) -> float | None:
        if len(self.samples) < 2 or self.lag == 0:
            return 0.0 if self.lag == 0 else None
        (t0, c0, _), (t1, c1, _) = self.samples[0], self.samples[-1]
        rate = (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        return None if rate <= 0 else self.lag / rate


@dataclass
class GroupTracker:
    """Feed it ``consumer_lag`` snapshots; read statuses per group and partition."""

    windows: dict[tuple[str, str, int], PartitionWindow] = field(default_factory=dict)

    def observe(self, at: float, rows: list[PartitionLag]) -> None:
        for r in rows:
            w = self.windows.setdefault((r.group, r.topic, r.partition), PartitionWindow())
            w.add(at, r.committed or 0, r.end)

    def report(self, *, stopped_after: float = 300.0, min_samples: int = 3) -> dict[str, GroupStatus]:
        out: dict[str, GroupStatus] = {}
        for (group, topic, partition), w in sorted(self.windows.items()):
            st = w.status(stopped_after=stopped_after, min_samples=min_samples)
            g = out.setdefault(group, GroupStatus())
            if ORDER[st] > ORDER[g.status]:
                g.status = st
            g.lag += w.lag
            g.partitions.append(
                {"topic": topic, "partition": partition, "lag": w.lag, "status": st, "lag_seconds": w.lag_seconds()}
            )
        return out


@dataclass
class GroupStatus:
    status: str = "OK"
    lag: int = 0
    partitions: list[dict[str, Any]] = field(default_factory=list)
