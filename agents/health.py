"""Health agent: accepted events keyed by customer -> score state -> customer.health results."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import orjson

from pipeline import health, topics
from pipeline.alerts import load_alert_config
from pipeline.app import faust_topic
from pipeline.features import new_state
from pipeline.scoring import HealthConfig
from pipeline.settings import Settings


def register(app: Any, settings: Settings, cfg: HealthConfig, stats: Counter[str]) -> None:
    source = faust_topic(app, settings.topic(topics.ACCEPTED), settings.partitions)
    current_out = faust_topic(app, settings.topic(topics.HEALTH), settings.partitions)
    history_out = faust_topic(app, settings.topic(topics.HEALTH_HISTORY), settings.partitions)
    alerts_out = faust_topic(app, settings.topic(topics.ALERTS), settings.partitions)
    alert_cfg = load_alert_config()
    open_counts: dict[str, int] = {}  # per worker: assignments made here, for least-loaded routing
    table = app.Table("health", default=None, partitions=settings.partitions)
    outputs = {"current": current_out, "history": history_out, "alert": alerts_out}
    watermark: dict[str, datetime] = {}  # newest event time seen by this worker
    timer_raised: dict[str, dict[str, str]] = {}  # customer -> rule -> raised at (see health.tick)

    async def health_agent(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            row = orjson.loads(event.value)
            cid = row.get("customer_id")
            if not cid:
                continue  # stock levels: no customer to score
            ts = datetime.fromisoformat(row["occurred_at"])
            if "now" not in watermark or ts > watermark["now"]:
                watermark["now"] = ts
            state = table.get(cid) or new_state(cid)
            changed, results = health.step(
                state,
                row,
                cfg,
                source=f"{msg.topic}:{msg.partition}",
                offset=msg.offset,
                alert_cfg=alert_cfg,
                open_counts=open_counts,
            )
            if changed:
                table[cid] = state
            for kind, result in results:
                await outputs[kind].send(key=cid.encode(), value=orjson.dumps(result))
                stats[f"health.{kind}"] += 1

    app.agent(source, name="health", concurrency=1)(health_agent)

    async def absence_timer() -> None:
        """Evaluate quiet customers against the event-time watermark, not the wall clock."""
        if "now" not in watermark:
            return
        for cid, state in list(table.items()):
            if state is None:
                continue
            recent = timer_raised.setdefault(cid, {})
            for alert in health.tick(state, watermark["now"], cfg, alert_cfg, open_counts, recent):
                await alerts_out.send(key=cid.encode(), value=orjson.dumps(alert))
                stats["health.alert.timer"] += 1

    app.timer(interval=settings.absence_interval)(absence_timer)
