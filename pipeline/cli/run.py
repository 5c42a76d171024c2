"""`salespulse worker`, `salespulse serve` and `salespulse up`: the long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import Any

from pipeline.cli.processes import spawn, stop
from pipeline.infra import kafka_admin, kafka_local
from pipeline.infra.settings import Settings


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from agents.worker import run  # the CLI is the composition root; agents import pipeline

    kafka_admin.ensure_topics(settings)
    sys.argv = [sys.argv[0]]  # faust's Worker parses argv itself
    run(settings)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.bizday import use_timezone
    from pipeline.infra.gctune import tune_gc
    from pipeline.infra.serve import serve

    use_timezone(settings.business_timezone)
    tune_gc()
    asyncio.run(serve(settings))
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Kafka, worker and serve until Ctrl-C: the console at SALESPULSE_API_PORT."""
    started = kafka_local.start(settings)
    kafka_admin.ensure_topics(settings)
    logs = settings.var_dir / "logs"
    worker = spawn(settings, "worker", logs / "worker.log")
    sink = spawn(settings, "serve", logs / "serve.log")
    print(f"worker pid {worker.pid}, serve pid {sink.pid} (logs in {logs})")
    print(f"console: http://{settings.api_host}:{settings.api_port}/  (Ctrl-C stops everything)")
    stop_now = {"flag": False}

    def _handler(_sig: int, _frame: Any) -> None:
        stop_now["flag"] = True

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    try:
        while not stop_now["flag"] and worker.poll() is None and sink.poll() is None:
            time.sleep(0.5)
    finally:
        stop(sink)
        stop(worker)
        if started and not args.keep_kafka:
            kafka_local.stop(settings)
    return 0
