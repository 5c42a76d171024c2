"""Intake agents: one per source topic. Validate, mask, forward; bad input to dead letters."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson

from agents.deadletters import make_dead
from nlp.pii import Pii
from pipeline import intake, topics
from pipeline.app import faust_topic
from pipeline.settings import Settings
from schemas.events import EventError

log = logging.getLogger(__name__)


def register(app: Any, settings: Settings, pii: Pii, stats: Counter[str]) -> None:
    accepted = faust_topic(app, settings.topic(topics.ACCEPTED), settings.partitions)
    profiles_out = faust_topic(app, settings.topic(topics.PROFILES), settings.partitions)
    profiles = app.Table("profiles", default=None, partitions=settings.partitions)

    dead = make_dead(app, settings, pii, stats)

    def make(source: str) -> None:
        topic = faust_topic(app, settings.topic(source), settings.partitions)

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                stats["consumed"] += 1
                try:
                    ev = intake.decode(event.value, source, settings.max_event_bytes)
                except EventError as exc:
                    await dead(msg, "validate", exc.kind, str(exc))
                    continue
                try:
                    row = intake.accepted_row(ev, pii)
                    key = (ev.envelope.customer_id or ev.envelope.store_id or "").encode()
                    await accepted.send(key=key, value=orjson.dumps(row))
                    cid = ev.envelope.customer_id
                    if cid:
                        tp = f"{msg.topic}:{msg.partition}"
                        current = profiles.get(cid)
                        new, changed = intake.apply_to_profile(current, ev, pii, source=tp, offset=msg.offset)
                        if changed:
                            profiles[cid] = new
                        if new is not None and (changed or new is current):
                            # `new is current` only on a replay: re-emit so a send lost in a crash
                            # is repaired; ReplacingMergeTree(version) collapses the repeat.
                            await profiles_out.send(key=cid.encode(), value=orjson.dumps(intake.profile_row(new)))
                    stats["accepted"] += 1
                except Exception as exc:  # a handler bug must not lose the event: keep it
                    log.exception("intake failed on %s:%s@%s", msg.topic, msg.partition, msg.offset)
                    await dead(msg, "process", type(exc).__name__, str(exc))

        app.agent(topic, name=f"intake-{source}", concurrency=1)(agent)

    for source in topics.SOURCE_TOPICS:
        make(source)

    async def report() -> None:
        log.info("intake: %s", dict(stats))

    app.timer(interval=30.0)(report)
