"""A correction to faust-streaming's offset-commit arithmetic (0.15.3).

``Consumer._new_offset`` refuses to commit past a gap at the head of the acked offsets only
when the gap is two or more messages wide (``min(acked) - committed > 1``), and skips the
check entirely when the committed offset is 0. So if offset N (the next to process) is not
acked but N+1 is, Faust commits N+2 and event N is lost on the next restart. Our restart
test caught exactly that: a killed worker's successor skipped one source event.

The corrected rule: commit only a run of acked offsets that starts at the committed
offset. A gap then holds commits back (at-least-once; our state and sink are idempotent)
instead of silently advancing past an unprocessed event.

Fetch batching: Faust builds its aiokafka consumer with ``fetch_min_bytes=1`` and no way to
change it, so under live traffic the broker answers every fetch with the few messages that
have just arrived. At 1,700 events/s that was hundreds of fetches a second, costing the broker
0.3-0.7 of a core and the worker's Faust loop about twice its per-message CPU of a backlog
run; the worker fell behind at half its backlog rate. ``FETCH_MIN_BYTES`` and
``FETCH_MAX_WAIT_MS`` let the broker gather a fetch's worth (or wait at most that long).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

PINNED_VERSION = "0.15.3"
# sha256 of the source of each replaced function as faust-streaming 0.15.3 ships it: a new
# Faust that changes them must be read again before this module is trusted with it.
PINNED_SOURCES = {
    "_new_offset": "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
    "perform_seek": "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6",
    "_create_worker_consumer": "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
}
ORIGINALS = {
    name: getattr(AIOKafkaConsumerThread if name == "_create_worker_consumer" else Consumer, name)
    for name in PINNED_SOURCES
}  # before any patching
FETCH_MIN_BYTES = 65_536  # a fetch's worth (a few hundred events), or ...
FETCH_MAX_WAIT_MS = 50  # ... at most this long (it adds at most this much latency)
_PATCHED = False


def original_source_hashes() -> dict[str, str]:
    """sha256 of the installed Faust's own versions of the functions replaced here."""
    return {name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() for name, fn in ORIGINALS.items()}


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


def _create_worker_consumer(self: Any, transport: Any) -> AIOKafkaConsumer:
    """Faust's consumer, with fetches that wait for a batch (see the module docstring)."""
    consumer: AIOKafkaConsumer = ORIGINALS["_create_worker_consumer"](self, transport)
    # aiokafka keeps its constructor arguments in these and hands them to its fetcher at start.
    consumer._fetch_min_bytes = FETCH_MIN_BYTES
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


def aiokafka_client(app: Any) -> Any:
    """The aiokafka client under Faust's producer (``Producer._producer`` in 0.15.3)."""
    return app.producer._producer.client


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The group's committed offset of ``tp`` as the Faust consumer knows it (the next offset
    to read; ``Consumer._committed_offset`` in 0.15.3, set by the seek above at assignment)."""
    value = consumer._committed_offset.get(tp)
    return None if value is None else int(value)


def apply() -> None:
    """Install the corrections; idempotent, called by ``create_app``. Refuses any Faust but
    the one they were written for."""
    global _PATCHED
    if faust.__version__ != PINNED_VERSION:
        raise RuntimeError(
            f"pipeline.infra.faust_compat was written for faust-streaming {PINNED_VERSION}, "
            f"found {faust.__version__}: check Consumer._new_offset and perform_seek again"
        )
    if not _PATCHED:
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]  # deliberate patch, see module doc
        Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]  # deliberate patch, see module doc
        AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]  # see doc
        _PATCHED = True
