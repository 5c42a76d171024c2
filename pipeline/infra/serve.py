"""The ``serve`` process: owns the ClickHouse store (chDB allows one process per folder)
and runs the sink, the notifier, the lag watcher and the read API with its console."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from nlp.pii import Pii
from pipeline.api.app import create_api, serve_api
from pipeline.api.keys import KeyStore
from pipeline.infra import kafka_admin, metrics, store
from pipeline.infra.notifier import Notifier
from pipeline.infra.settings import Settings, pii_key
from pipeline.infra.sink import Sink

log = logging.getLogger(__name__)


class Serve:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.sink: Sink | None = None
        self.notifier: Notifier | None = None
        self.api: Any = None

    def stop(self) -> None:
        if self.sink is not None:
            self.sink.stop()
        if self.notifier is not None:
            self.notifier.stop()
        self.stopping.set()

    async def run(self) -> None:
        settings = self.settings
        client = store.connect(settings)
        kafka_admin.ensure_topics(settings)
        pii = Pii(pii_key(settings))
        self.sink = sink = Sink(settings, client, pii)
        self.notifier = Notifier(settings)
        watcher = metrics.LagWatcher(settings)
        freshness: dict[str, float] = {}
        registry, sink.on_flush = metrics.registry(watcher, sink.stats, freshness)

        async def send_action(alert_id: str, verb: str, by: str, note: str) -> Any:
            from pipeline.infra.produce import send_alert_action

            return await asyncio.to_thread(send_alert_action, settings, alert_id, verb, by, note)

        self.api = create_api(
            db=sink.db,
            keys=KeyStore(settings.keys_file),
            pii=pii,
            send_action=send_action,
            lag_report=watcher.report,
            metrics_registry=registry,
            freshness=freshness,
            model_dir=settings.model_dir,
        )
        from pipeline.deals.morning import morning_loop

        tasks = [
            sink.run(),
            self.notifier.run(),
            watcher.run(self.stopping),
            morning_loop(settings, sink.db, self.stopping),
        ]
        if settings.api_port:
            tasks.append(serve_api(self.api, settings.api_host, settings.api_port, self.stopping))
            log.info("console and API on http://%s:%s/", settings.api_host, settings.api_port)
        log.info("sink running: %s -> %s", ", ".join(sink.topic_table), store.normalise_dsn(settings.clickhouse_dsn))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.stopping.set()
            log.info("sink stopped: %s", dict(sink.stats))
            client.close()


async def serve(settings: Settings) -> None:
    s = Serve(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, s.stop)
    await s.run()
