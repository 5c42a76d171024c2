"""Alert rules judged against the simulator's ground truth, without Kafka or ClickHouse.

``replay`` runs simulated traffic through the same pure code the worker runs (intake's
validation and masking, the health fold and settle, the watermark's absence checks every
event-time hour), event by event in event time; ``judge`` scores the alerts it raised against
who really churned and when. The demo's ClickHouse report (``reports.alert_truth``) uses the
same ``reports.judge``, so a threshold tuned here means the same thing there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nlp.pii import Pii
from pipeline import intake
from pipeline.health import engine as health
from pipeline.health.alerts import AlertConfig
from pipeline.health.features import new_state, source_of
from pipeline.health.scoring import HealthConfig
from schemas.events import EventError

REPLAY_KEY = b"backtest-only-hmac-key-32-bytes!"  # nothing leaves the process


@dataclass
class Outage:
    """A source whose events stop arriving at ``start`` and arrive, late, at ``end``."""

    source: str
    start: datetime
    end: datetime


@dataclass
class Replay:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, tuple[float, str]] = field(default_factory=dict)  # final (score, band)
    span: tuple[datetime, datetime] | None = None
    events: int = 0


def replay(
    messages: Any,
    health_cfg: HealthConfig,
    alert_cfg: AlertConfig,
    *,
    outage: Outage | None = None,
    tick: timedelta = timedelta(hours=1),
) -> Replay:
    """``messages``: (topic, key, value, occurred_at) in event time, as ``simulate.generate``
    yields them. Customers' alerts are collected; quiet customers are judged at every ``tick``
    of the watermark, as the worker does once per event-time hour."""
    pii = Pii(REPLAY_KEY)
    states: dict[str, dict[str, Any]] = {}
    out = Replay()
    mark = health.Watermark(idle=float("inf"))
    lag = timedelta(hours=alert_cfg.source_lag_hours)
    late: list[tuple[str, bytes]] = []
    next_tick: datetime | None = None
    first: datetime | None = None
    last: datetime | None = None

    def deliver(topic: str, value: bytes) -> None:
        try:
            ev = intake.decode(value, topic, 1 << 20)
            row, payload = intake.accepted(ev, pii)
        except EventError:
            return
        cid = row["customer_id"]
        if not cid or row["event_type"] == "alert.action":
            return
        out.events += 1
        mark.observe(source_of(row["event_type"]), ev.envelope.occurred_at, 0.0)
        state = states.setdefault(cid, new_state(cid))
        if health.fold(state, row, payload):
            for kind, result in health.settle(
                state, health_cfg, alert_cfg=alert_cfg, model=None, held=mark.lagging(lag)
            ):
                if kind == "alert":
                    out.alerts.append(result)

    for topic, _key, value, ts in messages:
        first = ts if first is None else first
        last = ts
        while next_tick is not None and next_tick <= ts:
            for state in states.values():
                for kind, result in health.absent(state, next_tick, health_cfg, alert_cfg):
                    if kind == "alert":
                        out.alerts.append(result)
            next_tick += tick
        if next_tick is None:
            next_tick = ts + tick
        if outage is not None and outage.start <= ts < outage.end and _source(topic) == outage.source:
            late.append((topic, value))
            continue
        if outage is not None and late and ts >= outage.end:
            for t, v in late:
                deliver(t, v)
            late.clear()
        deliver(topic, value)
    for t, v in late:
        deliver(t, v)
    for cid, state in states.items():
        if state["last"] is not None:
            out.scores[cid] = (state["last"]["score"], state["last"]["band"])
    out.span = None if first is None or last is None else (first, last)
    return out


TOPIC_SOURCE = {
    "pos.transactions": "pos",
    "app.telemetry": "app",
    "messaging.events": "messaging",
    "store.notes": "notes",
}


def _source(topic: str) -> str:
    return TOPIC_SOURCE.get(topic, "other")
