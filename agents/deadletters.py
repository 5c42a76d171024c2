"""The one way agents keep bad input: a dead letter with the reason, never a crash."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from nlp.pii import Pii
from pipeline import intake
from pipeline.infra import topics
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings

log = logging.getLogger(__name__)
Dead = Callable[[Any, str, str, str], Awaitable[Any]]  # resolves to the delivery future


def make_dead(app: Any, settings: Settings, pii: Pii, stats: Counter[str]) -> Dead:
    """``await dead(message, stage, error_class, text)``: the masked raw message, its source
    coordinates and headers, to the dead-letter topic (and from there the table)."""
    deadletter = faust_topic(app, settings.topic(topics.DEADLETTER), partitions=settings.partitions)

    async def dead(msg: Any, stage: str, kind: str, text: str) -> Any:
        rec = intake.deadletter_record(
            msg.value,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            stage=stage,
            error_class=kind,
            message=text,
            pii=pii,
            headers=msg.headers,
        )
        key = pii.mask_text(msg.key.decode("utf-8", "backslashreplace"))[0].encode() if msg.key else None
        sent = await deadletter.send(key=key, value=orjson.dumps(rec), headers=intake.deadletter_headers(rec))
        stats["deadlettered"] += 1
        stats[f"deadlettered.{kind}"] += 1
        return sent

    return dead
