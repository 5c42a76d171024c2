"""Prometheus metrics of `serve`: consumer lag (kafka_consumergroup_* names, as the
Kafka exporters use), Burrow-style status, the sink's batches, dead letters, freshness."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.infra import kafka_admin
from pipeline.infra.lagstatus import GroupTracker
from pipeline.infra.settings import Settings

log = logging.getLogger(__name__)
STATUSES = ("OK", "WARN", "STALLED", "STOPPED")


class LagWatcher:
    """Polls committed and end offsets of our groups and keeps a Burrow-style window."""

    def __init__(self, settings: Settings, interval: float = 10.0) -> None:
        self.settings = settings
        self.interval = interval
        self.tracker = GroupTracker()
        self.last: list[kafka_admin.PartitionLag] = []
        self.error: str | None = None

    def groups(self) -> list[str]:
        s = self.settings
        return [s.group_worker, s.group_sink, s.group_notify]

    def poll_once(self) -> None:
        try:
            rows = kafka_admin.consumer_lag(self.settings, self.groups())
        except Exception as exc:  # a broker hiccup must not stop the API; reported instead
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.error = None
        self.last = rows
        self.tracker.observe(time.time(), rows)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await asyncio.to_thread(self.poll_once)
            try:
                await asyncio.wait_for(stopping.wait(), self.interval)
            except TimeoutError:
                pass

    def report(self) -> dict[str, Any]:
        """The current statuses; polls first when nothing has been observed yet."""
        if not self.tracker.windows:
            self.poll_once()
        rep = self.tracker.report(stopped_after=max(300.0, 10 * self.interval))
        return {
            "error": self.error,
            "groups": {
                g: {"status": st.status, "lag": st.lag, "partitions": st.partitions} for g, st in sorted(rep.items())
            },
        }


class SalespulseCollector(Collector):
    def __init__(self, watcher: LagWatcher, stats: Counter[str], freshness: dict[str, float]) -> None:
        self.watcher = watcher
        self.stats = stats
        self.freshness = freshness

    def collect(self) -> Iterator[Any]:
        lag = GaugeMetricFamily(
            "kafka_consumergroup_lag", "Messages not yet committed", labels=["consumergroup", "topic", "partition"]
        )
        lag_s = GaugeMetricFamily(
            "kafka_consumergroup_lag_seconds",
            "Estimated seconds to catch up at the recent commit rate (absent when nothing moves)",
            labels=["consumergroup", "topic", "partition"],
        )
        status = GaugeMetricFamily(
            "salespulse_consumergroup_status",
            "1 for the group's current Burrow-style status",
            labels=["group", "status"],
        )
        for group, g in self.watcher.report()["groups"].items():
            for part in g["partitions"]:
                labels = [group, part["topic"], str(part["partition"])]
                lag.add_metric(labels, part["lag"])
                if part["lag_seconds"] is not None:
                    lag_s.add_metric(labels, part["lag_seconds"])
            for st in STATUSES:
                status.add_metric([group, st], 1.0 if g["status"] == st else 0.0)
        yield lag
        yield lag_s
        yield status
        rows = CounterMetricFamily("salespulse_sink_rows", "Rows stored in ClickHouse", labels=["table"])
        for key, n in sorted(self.stats.items()):
            if key.startswith("rows."):
                rows.add_metric([key[5:]], n)
        yield rows
        dead = CounterMetricFamily("salespulse_deadletters", "Dead letters stored (bad input kept with its reason)")
        dead.add_metric([], self.stats.get("rows.dead_letters", 0))
        yield dead
        processed = CounterMetricFamily("salespulse_events_processed", "Events stored: accepted plus dead-lettered")
        processed.add_metric([], self.stats.get("rows.events", 0) + self.stats.get("rows.dead_letters", 0))
        yield processed
        fresh = GaugeMetricFamily(
            "salespulse_freshness_seconds", "Seconds since the newest stored item", labels=["what"]
        )
        for what, sec in sorted(self.freshness.items()):
            fresh.add_metric([what], sec)
        yield fresh


def registry(watcher: LagWatcher, stats: Counter[str], freshness: dict[str, float]) -> tuple[CollectorRegistry, Any]:
    """The registry and the sink's flush hook (batch latency and size histograms)."""
    reg = CollectorRegistry()
    reg.register(SalespulseCollector(watcher, stats, freshness))
    latency = Histogram(
        "salespulse_sink_batch_seconds",
        "Time to store one sink batch",
        registry=reg,
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    size = Histogram(
        "salespulse_sink_batch_rows",
        "Rows in one sink batch",
        registry=reg,
        buckets=(1, 10, 100, 500, 1000, 5000, 20000),
    )

    def on_flush(seconds: float, rows: int) -> None:
        latency.observe(seconds)
        size.observe(rows)

    return reg, on_flush
