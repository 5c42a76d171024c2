"""Topic creation and consumer lag, through kafka-python's admin client."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import CoordinatorNotAvailableError, KafkaError

from pipeline.infra import topics
from pipeline.infra.kafka_auth import client_kwargs
from pipeline.infra.settings import Settings

log = logging.getLogger(__name__)


def admin(settings: Settings) -> Any:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="salespulse-admin", **client_kwargs(settings)
    )


def ensure_topics(settings: Settings, names: tuple[str, ...] = topics.ALL_TOPICS) -> list[str]:
    """Create missing topics with the configured partition count; return those created."""
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        wanted = {settings.topic(n) for n in names} - existing
        if not wanted:
            return []
        specs = {
            name: {
                "num_partitions": settings.partitions,
                "replication_factor": 1,
                "configs": {"retention.ms": str(7 * 24 * 3600 * 1000)},
            }
            for name in wanted
        }
        client.create_topics(specs, raise_errors=False, wait_for_metadata=True)
        return sorted(wanted)
    finally:
        client.close()


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0) if self.committed is not None else self.end


def consumer_lag(settings: Settings, groups: list[str] | None = None) -> list[PartitionLag]:
    """Per group/topic/partition: committed offset, end offset (LATEST), lag."""
    client = admin(settings)
    try:
        if groups is None:
            groups = sorted(g["group_id"] if isinstance(g, dict) else g[0] for g in client.list_groups())
            if settings.topic_prefix:
                groups = [g for g in groups if g.startswith(settings.topic_prefix)]
        out: list[PartitionLag] = []
        committed_by_group: dict[str, dict[Any, Any]] = {}
        for g in groups:
            committed_by_group[g] = _group_offsets(client, g)
        tps = {tp for offs in committed_by_group.values() for tp in offs}
        ends = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}) if tps else {}
        for g, offs in committed_by_group.items():
            for tp, meta in sorted(offs.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                committed = meta.offset if meta.offset is not None and meta.offset >= 0 else None
                out.append(PartitionLag(g, tp.topic, tp.partition, committed, int(ends[tp].offset)))
        return out
    finally:
        client.close()


def _group_offsets(client: Any, group: str, wait: float = 15.0) -> dict[Any, Any]:
    """Committed offsets; retries while the group coordinator is still being elected
    (a fresh broker has no __consumer_offsets topic until the first group appears)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            offsets: dict[Any, Any] = client.list_group_offsets(group).get(group, {})
            return offsets
        except CoordinatorNotAvailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def group_backlog(settings: Settings, group: str, names: tuple[str, ...]) -> int:
    """Messages on ``names`` the group has not committed yet; a partition it never
    committed counts from 0, so a group that has not started is not mistaken for idle."""
    full = [settings.topic(n) for n in names]
    ends = end_offsets(settings, full)
    client = admin(settings)
    try:
        committed = _group_offsets(client, group)
    finally:
        client.close()
    done = {(tp.topic, tp.partition): max(0, meta.offset or 0) for tp, meta in committed.items()}
    return sum(max(0, end - done.get(key, 0)) for key, end in ends.items())


def end_offsets(settings: Settings, names: list[str]) -> dict[tuple[str, int], int]:
    client = admin(settings)
    try:
        meta = client.describe_topics(names)
        tps = [TopicPartition(t["name"], p["partition_index"]) for t in meta for p in t["partitions"]]
        res = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}) if tps else {}
        return {(tp.topic, tp.partition): int(v.offset) for tp, v in res.items()}
    finally:
        client.close()


def wait_drained(settings: Settings, timeout: float) -> bool:
    """Wait until the worker and the sink have committed everything on the topics they read."""
    from schemas.results import RESULT_TABLES

    reads = {
        settings.group_worker: (*topics.SOURCE_TOPICS, *topics.INTERNAL_TOPICS),
        settings.group_sink: tuple(RESULT_TABLES),
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all(group_backlog(settings, g, names) == 0 for g, names in reads.items()):
                return True
        except KafkaError as exc:  # the groups may not exist yet
            log.debug("lag not available yet: %s", exc)
        time.sleep(1.0)
    return False


def known_stores(settings: Settings, timeout: float = 20.0) -> set[str]:
    """Every store the worker keeps state for (it has sent stock or had a visit): the keys of the
    store table's changelog, read from the broker, so this works while serve holds chDB."""
    import orjson
    from kafka import KafkaConsumer

    name = f"{settings.group_worker}-stores-changelog"
    ends = {TopicPartition(t, p): end for (t, p), end in end_offsets(settings, [name]).items() if end > 0}
    found: set[str] = set()
    if not ends:
        return found
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, **client_kwargs(settings)
    )
    try:
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise KafkaError(f"could not read {name} within {timeout:.0f}s")
            for records in consumer.poll(timeout_ms=500).values():
                found.update(orjson.loads(r.key) for r in records if r.key)
    finally:
        consumer.close()
    return found
