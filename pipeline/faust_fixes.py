"""A correction to faust-streaming's offset-commit arithmetic (0.15.3).

``Consumer._new_offset`` refuses to commit past a gap at the head of the acked offsets only
when the gap is two or more messages wide (``min(acked) - committed > 1``), and skips the
check entirely when the committed offset is 0. So if offset N (the next to process) is not
acked but N+1 is, Faust commits N+2 and event N is lost on the next restart. Our restart
test caught exactly that: a killed worker's successor skipped one source event.

The corrected rule: commit only a run of acked offsets that starts at the committed
offset. A gap then holds commits back (at-least-once; our state and sink are idempotent)
instead of silently advancing past an unprocessed event.
"""

from __future__ import annotations

from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP

_PATCHED = False


def _consecutive_run(sorted_offsets: list[int]) -> list[int]:
    run = sorted_offsets[:1]
    for off in sorted_offsets[1:]:
        if off != run[-1] + 1:
            break
        run.append(off)
    return run


def _new_offset(self: Any, tp: Any) -> int | None:
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        # Offsets Kafka never delivered (compaction, transaction markers) count as acked.
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            filler: list[int] = []
            for entry in candidates:
                filler.extend(range(entry.begin, entry.end))
            acked.extend(filler)
            gap_for_tp.chop(0, max(filler[-1], max_offset + 1))
    acked.sort()
    committed = self._committed_offset[tp]
    if committed is not None and acked[0] > committed:
        return None  # offset `committed` itself is not processed yet: hold the commit
    run = _consecutive_run(acked)
    acked[: len(run)] = []
    self._acked_index[tp].difference_update(run)
    return run[-1] + 1


async def _perform_seek(self: Any) -> None:
    """As Faust's, but a committed offset of 0 stays 0 (Faust turned it into "unknown")."""
    committed = await self.seek_to_committed()
    self._read_offset.update({tp: off if off is not None and off >= 0 else None for tp, off in committed.items()})
    self._committed_offset.update(
        {TP(tp.topic, tp.partition): off for tp, off in committed.items() if off is not None and off >= 0}
    )


def apply() -> None:
    """Install the corrections; idempotent, called by ``create_app``."""
    global _PATCHED
    if not _PATCHED:
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # deliberate patch, see module doc
        Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]  # deliberate patch, see module doc
        _PATCHED = True
