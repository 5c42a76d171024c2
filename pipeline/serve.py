"""The ``serve`` process: owns the ClickHouse store (chDB allows one process per folder)
and runs the sink; the read API will live here too."""

from __future__ import annotations

import asyncio
import logging
import signal

from nlp.pii import Pii
from pipeline import kafka_admin, store
from pipeline.notifier import Notifier
from pipeline.settings import Settings, pii_key
from pipeline.sink import Sink

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    client = store.connect(settings)
    kafka_admin.ensure_topics(settings)
    sink = Sink(settings, client, Pii(pii_key(settings)))
    notifier = Notifier(settings)

    def stop() -> None:
        sink.stop()
        notifier.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info("sink running: %s -> %s", ", ".join(sink.topic_table), store.normalise_dsn(settings.clickhouse_dsn))
    try:
        await asyncio.gather(sink.run(), notifier.run())
    finally:
        log.info("sink stopped: %s", dict(sink.stats))
        client.close()
