"""The ``serve`` process's notifier: alerts topic -> robot webhooks -> delivery records."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.infra import topics
from pipeline.infra.kafka_auth import client_kwargs
from pipeline.infra.notify import Target, deliver, ident
from pipeline.infra.notify import record as delivery_record
from pipeline.infra.settings import Settings
from schemas.results import rows_of

log = logging.getLogger(__name__)


def targets(settings: Settings) -> list[Target]:
    out = []
    if settings.wecom_webhook:
        out.append(Target("wecom", settings.wecom_webhook))
    if settings.dingtalk_webhook:
        out.append(Target("dingtalk", settings.dingtalk_webhook, settings.dingtalk_secret))
    return out


class Notifier:
    """Delivers each new alert once per channel; commits only after its records are sent."""

    def __init__(self, settings: Settings, base_delay: float = 0.5) -> None:
        self.settings = settings
        self.targets = targets(settings)
        self.base_delay = base_delay
        self._stopping = asyncio.Event()
        self.delivered = 0
        self.failed = 0
        self.skipped = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        if not self.targets:
            log.info("no SALESPULSE_WECOM_WEBHOOK / SALESPULSE_DINGTALK_WEBHOOK set: alerts are stored, not pushed")
            return
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        consumer = AIOKafkaConsumer(
            self.settings.topic(topics.ALERTS),
            self.settings.topic(topics.DEAL_PUSHES),
            bootstrap_servers=self.settings.kafka_bootstrap,
            **client_kwargs(self.settings),
            group_id=self.settings.group_notify,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", **client_kwargs(self.settings)
        )
        await producer.start()
        await consumer.start()
        # Alerts raised in the quiet hours wait here (not committed) until their notify_after;
        # the committed offset of a partition never passes its oldest held alert.
        held: list[tuple[Any, int, dict[str, Any]]] = []
        position: dict[Any, int] = {}
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=100)
                now = datetime.now(UTC)
                for tp, msgs in batches.items():
                    for m in msgs:
                        position[tp] = m.offset + 1
                        for alert in rows_of(orjson.loads(m.value)):  # many alerts per message
                            if not isinstance(alert, dict):
                                continue
                            if _due(alert) > now:
                                held.append((tp, m.offset, alert))
                            else:
                                await self._handle(producer, alert)
                released = [h for h in held if _due(h[2]) <= now]
                for item in released:
                    held.remove(item)
                    await self._handle(producer, item[2])
                if batches or released:
                    await producer.flush()
                    commit = {tp: min([o for t, o, _ in held if t == tp], default=pos) for tp, pos in position.items()}
                    await consumer.commit(commit)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _handle(self, producer: Any, alert: dict[str, Any]) -> None:
        push = alert.get("kind") in ("deal_intent", "deal_top3")  # a deal push: no lifecycle, announced once
        if not push and (alert.get("version", 1) != 1 or alert.get("status") != "open"):
            return  # lifecycle updates are not re-announced; suppressed alerts stay unpushed
        stale = _stale(alert, datetime.now(UTC))
        for target in self.targets:
            if stale:  # a backfill or a long outage: kept and shown in the console, not pushed
                why = f"raised more than {PUSH_MAX_AGE_HOURS} h ago in event time (backfill): not pushed"
                record = delivery_record(alert, target, 0, "not_pushed", why)
                self.skipped += 1
            else:
                record = await asyncio.to_thread(
                    deliver, alert, target, attempts=self.settings.notify_attempts, base_delay=self.base_delay
                )
                if record["status"] == "delivered":
                    self.delivered += 1
                else:
                    self.failed += 1
                    log.warning("alert %s not delivered to %s: %s", ident(alert), target.channel, record["last_error"])
            await producer.send(
                self.settings.topic(topics.DELIVERIES), key=ident(alert).encode(), value=orjson.dumps(record)
            )


PUSH_MAX_AGE_HOURS = 24
PUSH_MAX_AGE = timedelta(hours=PUSH_MAX_AGE_HOURS)


def _stale(alert: dict[str, Any], now: datetime) -> bool:
    """Raised (in event time) longer ago than a push is worth: replaying history or
    backfilling a month would otherwise wake a specialist with every old alert at once."""
    raised = alert.get("raised_at")
    return isinstance(raised, str) and now - datetime.fromisoformat(raised) > PUSH_MAX_AGE


def _due(alert: dict[str, Any]) -> datetime:
    """When the alert may be pushed (quiet hours); old records without the field: at once."""
    raw = alert.get("notify_after")
    return datetime.fromisoformat(raw) if raw else datetime.min.replace(tzinfo=UTC)
