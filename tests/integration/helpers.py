from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from pipeline.infra.produce import send_generated
from pipeline.infra.settings import Settings
from pipeline.intake import decode
from pipeline.simulate import generate
from schemas.events import EventError


@dataclass
class Expected:
    good_ids: set[str] = field(default_factory=set)
    bad: Counter[str] = field(default_factory=Counter)
    customers: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    messages: list[tuple[str, bytes, bytes, datetime]] = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        return sum(self.bad.values())


def simulated(seed: int, *, days: float, customers: int, bad_rate: float, settings: Settings) -> Expected:
    """Generate traffic and work out, independently of the worker, what must come out."""
    exp = Expected()
    now = datetime(2026, 11, 20, tzinfo=UTC)
    for topic, key, value, ts in generate(
        seed, days=days, now=now, customers=customers, bad_rate=bad_rate, max_bytes=settings.max_event_bytes
    ):
        exp.messages.append((topic, key, value, ts))
        try:
            ev = decode(value, topic, settings.max_event_bytes)
        except EventError as exc:
            exp.bad[exc.kind] += 1
            continue
        exp.good_ids.add(ev.envelope.event_id)
        if ev.envelope.customer_id:
            exp.customers.add(ev.envelope.customer_id)
        phone = orjson.loads(value)["payload"].get("phone")
        if phone:
            exp.phones.add(phone)
    return exp


def send(settings: Settings, messages: list[tuple[str, bytes, bytes, datetime]]) -> None:
    asyncio.run(send_generated(settings, iter(messages)))
