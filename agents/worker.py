"""Composition of the worker: one Faust app with every agent registered."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from agents import health, intake, notes
from nlp.pii import Pii
from pipeline import topics
from pipeline.app import create_app
from pipeline.scoring import load_config
from pipeline.settings import Settings, pii_key
from pipeline.stall import StallGuard


def build(settings: Settings) -> Any:
    app = create_app(settings)
    pii = Pii(pii_key(settings))
    stats: Counter[str] = Counter()
    intake.register(app, settings, pii, stats)
    health.register(app, settings, load_config(), stats, pii)
    notes.register(app, settings, stats, pii)
    register_stall_guard(app, settings, stats)
    app.salespulse_stats = stats
    return app


def register_stall_guard(app: Any, settings: Settings, stats: Counter[str], interval: float = 5.0) -> None:
    """Seek partitions whose commits stopped with data waiting back to their committed offset."""
    guard: StallGuard[Any] = StallGuard()
    sources = {settings.topic(t) for t in (*topics.SOURCE_TOPICS, topics.ACCEPTED, *topics.INTERNAL_TOPICS)}
    log = logging.getLogger(__name__)

    async def check() -> None:
        consumer = app.consumer
        tps = [tp for tp in consumer.assignment() if tp.topic in sources]
        if not tps:
            return
        ends = await consumer.highwaters(*tps)
        positions = {}
        for tp in tps:
            committed = consumer._committed_offset.get(tp)  # Faust's own record of the last commit
            positions[tp] = (committed if committed is not None else 0, int(ends.get(tp) or 0))
        for tp in guard.observe(positions):
            committed = positions[tp][0]
            found = []
            if tp in consumer._paused_partitions:  # Faust internals: see pipeline/stall.py
                consumer.resume_partitions([tp])
                found.append("paused")
            active = consumer._get_active_partitions()
            if tp not in active:  # fetched records of inactive partitions are dropped by Faust
                active.add(tp)
                consumer._buffered_partitions.discard(tp)
                found.append("inactive")
            log.warning(
                "partition %s:%s stalled at %s with data waiting (%s); seeking back",
                tp.topic,
                tp.partition,
                committed,
                ", ".join(found) or "no flag set",
            )
            stats["stall_recoveries"] += 1
            await consumer.seek(tp, committed)

    app.timer(interval=interval)(check)


def run(settings: Settings) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT (uvloop: ~21% faster here)."""
    import faust
    import mode.loop

    mode.loop.use("uvloop")
    app = build(settings)

    async def install_task_dump() -> None:
        """`kill -USR2 <pid>` logs every asyncio task's stack: how to see where a worker hangs."""
        import asyncio
        import io
        import signal

        def dump() -> None:
            buf = io.StringIO()
            for task in asyncio.all_tasks():
                buf.write(f"--- {task.get_name()}\n")
                coro: Any = task.get_coro()
                while coro is not None:  # follow the await chain through coroutines and async generators
                    frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                    frame = frame or getattr(coro, "gi_frame", None)
                    if frame is not None:
                        buf.write(f"    {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}\n")
                    coro = (
                        getattr(coro, "cr_await", None)
                        or getattr(coro, "ag_await", None)
                        or getattr(coro, "gi_yieldfrom", None)
                    )
            logging.getLogger(__name__).warning("task dump (SIGUSR2):\n%s", buf.getvalue())

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, dump)

    app.task(install_task_dump)

    worker = faust.Worker(app, loglevel=settings.log_level, redirect_stdouts=False, override_logging=True)
    worker.execute_from_commandline()
