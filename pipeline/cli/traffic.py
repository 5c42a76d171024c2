"""`salespulse simulate` and `salespulse produce`: getting events onto Kafka."""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.infra import kafka_admin
from pipeline.infra.settings import Settings


def _events(
    settings: Settings, args: argparse.Namespace, now: datetime | None = None
) -> Iterator[tuple[str, bytes, bytes, datetime]]:
    from pipeline.simulate import generate

    now = now or datetime.now(UTC)
    retail = generate(
        args.seed,
        days=args.days,
        now=now,
        live=args.duration > 0,
        customers=args.customers,
        bad_rate=args.bad_rate,
        max_bytes=settings.max_event_bytes,
    )
    if not getattr(args, "deals", 0):
        return retail
    from pipeline.deals.simulate import generate_crm

    crm = generate_crm(args.seed, now=now, days=args.crm_days, deals=args.deals, bad_rate=args.bad_rate)
    return heapq.merge(retail, crm, key=lambda item: item[3])  # both in event time: one stream


def _simulate(settings: Settings, args: argparse.Namespace) -> Any:
    from pipeline.infra.produce import send_generated

    events = _events(settings, args)
    return asyncio.run(send_generated(settings, events, rate=args.rate, duration=args.duration))


class _Feed:
    """The simulator's stream split at the first live event: the history, then live traffic."""

    def __init__(self, events: Iterator[tuple[str, bytes, bytes, datetime]]) -> None:
        self.events = events
        self.head: list[tuple[str, bytes, bytes, datetime]] = []

    def history(self) -> Iterator[tuple[str, bytes, bytes, datetime]]:
        cutoff = datetime.now(UTC).timestamp() - 1
        for item in self.events:
            if item[3].timestamp() >= cutoff:
                self.head.append(item)  # the first live event, kept for the live phase
                return
            yield item

    def live(self) -> Iterator[tuple[str, bytes, bytes, datetime]]:
        return itertools.chain(self.head, self.events)


def _send_phase(settings: Settings, feed: _Feed, args: argparse.Namespace, phase: str) -> Any:
    from pipeline.infra.produce import SendReport, send_generated

    if phase == "history":
        return asyncio.run(send_generated(settings, feed.history()))
    if args.duration <= 0:
        return SendReport()
    return asyncio.run(send_generated(settings, feed.live(), rate=args.rate, duration=args.duration))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    kafka_admin.ensure_topics(settings)
    rep = _simulate(settings, args)
    print(
        f"sent {rep.sent} events in {rep.seconds:.1f}s: "
        + ", ".join(f"{t}={n}" for t, n in sorted(rep.per_topic.items()))
    )
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra.produce import produce_file

    kafka_admin.ensure_topics(settings)
    rep = produce_file(settings, args.topic, Path(args.file))
    for lineno, kind, msg in rep.rejected:
        print(f"{args.file}:{lineno}: rejected ({kind}): {msg}", file=sys.stderr)
    print(f"sent {rep.sent}, rejected {len(rep.rejected)}")
    return 1 if rep.rejected else 0
