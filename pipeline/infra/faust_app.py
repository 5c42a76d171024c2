"""Faust application factory: settings in, app out (broker= and store= explicit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust

from pipeline.infra import faust_compat
from pipeline.infra.kafka_auth import faust_credentials
from pipeline.infra.settings import Settings


class App(faust.App):
    """faust.App with hooks that run first on a graceful stop (SIGTERM), while agents and the
    producer still work: the keyed agents write their state and acknowledge what they hold."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_stop: list[Callable[[], Awaitable[None]]] = []

    async def on_stop(self) -> None:
        for hook in self.before_stop:
            try:
                await hook()
            except Exception:  # the stop goes on: what was not acknowledged is read again
                self.log.exception("before-stop hook failed")
        await super().on_stop()


def create_app(settings: Settings) -> Any:
    faust_compat.apply()
    (settings.var_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return App(
        settings.group_worker,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",  # tables are rebuilt from their changelog topics at start-up
        datadir=str(settings.var_dir / "faust" / "{conf.name}"),  # not the working directory
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        broker_commit_interval=1.0,
        # Events a keyed agent holds are acknowledged by its before-stop flush; if that cannot
        # happen (broker gone), stopping must not wait for them: they are read again.
        stream_wait_empty=False,
        producer_linger_ms=20,  # results and changelog go out in bursts once per batch
        producer_max_batch_size=262_144,
        web_enabled=settings.worker_web_enabled,
        web_bind="127.0.0.1",  # never reachable from outside the host
        # Table and router views show raw state (keys are customer ids): off in production.
        web_tables_enabled=settings.env != "production",
        web_router_enabled=settings.env != "production",
        web_graph_enabled=False,
        web_stats_enabled=settings.env != "production",
        web_port=settings.worker_web_port,
        web_in_thread=False,
        autodiscover=False,
    )


def faust_topic(app: Any, *names: str, partitions: int) -> Any:
    """A topic (or several read as one stream) as raw bytes: we decode and validate, never Faust."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
