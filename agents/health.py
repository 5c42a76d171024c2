"""Health agent: accepted events, alert actions and watermark ticks keyed by customer -> results."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson

from agents.deadletters import guarded, make_dead
from nlp.pii import Pii
from pipeline import health, topics
from pipeline.alerts import load_alert_config
from pipeline.app import faust_topic
from pipeline.churn import load_latest
from pipeline.features import new_state, source_of
from pipeline.scoring import HealthConfig
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def register(app: Any, settings: Settings, cfg: HealthConfig, stats: Counter[str], pii: Pii) -> None:
    source = faust_topic(app, settings.topic(topics.ACCEPTED), settings.partitions, settings.topic(topics.HEALTH_TICKS))
    ticks = faust_topic(app, settings.topic(topics.HEALTH_TICKS), settings.partitions)
    dead = make_dead(app, settings, pii, stats)
    outputs = {
        "current": faust_topic(app, settings.topic(topics.HEALTH), settings.partitions),
        "history": faust_topic(app, settings.topic(topics.HEALTH_HISTORY), settings.partitions),
        "alert": faust_topic(app, settings.topic(topics.ALERTS), settings.partitions),
    }
    alert_cfg = load_alert_config()
    model = load_latest(settings.model_dir)
    log.info("health score: %s", "rules (no churn model)" if model is None else f"churn model {model.version}")
    open_counts: dict[str, int] = {}  # per worker: assignments made here, for least-loaded routing
    table = app.Table("health", default=None, partitions=settings.partitions)
    watermark = health.Watermark(idle=settings.source_idle_seconds)  # over pos/app/messaging/notes
    ticked: dict[str, datetime] = {}  # customer -> watermark of the last tick sent

    async def handle(event: Any) -> None:
        msg = event.message
        row = orjson.loads(event.value)
        cid = row.get("customer_id")
        if not cid:
            return  # stock levels: no customer to score
        ts = datetime.fromisoformat(row["occurred_at"])
        if row["event_type"] not in (health.TICK, "alert.action"):
            watermark.observe(source_of(row["event_type"]), ts, time.monotonic())
        state = table.get(cid) or new_state(cid)
        changed, results = health.step(
            state,
            row,
            cfg,
            source=f"{msg.topic}:{msg.partition}",
            offset=msg.offset,
            alert_cfg=alert_cfg,
            open_counts=open_counts,
            model=model,
        )
        if changed:
            table[cid] = state
        for kind, result in results:
            stats[f"health.{kind}"] += 1
            if kind == "refused":
                await dead(msg, "alert_action", "refused_action", result["reason"])
            else:
                await outputs[kind].send(key=cid.encode(), value=orjson.dumps(result))

    app.agent(source, name="health", concurrency=1)(guarded(dead, "health", handle))

    async def absence_timer() -> None:
        """Ask the agent to judge quiet customers at the event-time watermark, not the wall clock."""
        now = watermark.current(time.monotonic())
        if now is None:
            return
        for cid, state in list(table.items()):
            if state is None or state["as_of"] is None:
                continue
            if now - datetime.fromisoformat(state["as_of"]) < timedelta(hours=1):
                continue
            if cid in ticked and now - ticked[cid] < timedelta(hours=1):
                continue  # at most one tick per customer per event-time hour
            ticked[cid] = now
            await ticks.send(key=cid.encode(), value=orjson.dumps(health.tick_row(cid, now)))
            stats["health.ticks"] += 1

    app.timer(interval=settings.absence_interval)(absence_timer)
