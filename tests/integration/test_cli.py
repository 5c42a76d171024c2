"""The commands a user types, run as real processes against the test broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer

from pipeline.infra import kafka_local
from pipeline.infra.settings import Settings
from tests.integration.conftest import ROOT, settings_env

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_produce_sends_valid_lines_and_reports_rejected_ones(settings: Settings, tmp_path: Path) -> None:
    good = {
        "event_id": "n-1",
        "event_type": "store.note",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "source": "tablet",
        "store_id": "S-1",
        "customer_id": "C-1",
        "payload": {"note_id": "N-1", "associate_id": "A-1", "text": "顾客试穿M码阔腿裤，腰偏紧"},
    }
    lines = [
        json.dumps(good, ensure_ascii=False),
        json.dumps({**good, "event_id": "n-2", "occurred_at": "2026-11-20 10:00"}),
        "{oops",
        "",
        json.dumps({**good, "event_id": "n-3", "event_type": "pos.checkin"}),
        json.dumps({**good, "event_id": "n-4"}, ensure_ascii=False),
    ]
    f = tmp_path / "notes.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = cli(settings, "produce", "--topic", "store.notes", str(f))
    assert res.returncode == 1, res.stderr
    assert "sent 2, rejected 3" in res.stdout
    assert f"{f}:2: rejected (invalid_envelope)" in res.stderr
    assert f"{f}:3: rejected (malformed_json)" in res.stderr
    assert f"{f}:5: rejected (wrong_topic)" in res.stderr
    consumer = KafkaConsumer(
        settings.topic("store.notes"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=4000,
    )
    ids = sorted(orjson.loads(m.value)["event_id"] for m in consumer)
    consumer.close()
    assert ids == ["n-1", "n-4"]


def test_schemas_export_writes_one_schema_per_event_type(settings: Settings, tmp_path: Path) -> None:
    res = cli(settings, "schemas", "export", str(tmp_path / "schemas"))
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert "store.note.v1.schema.json" in files and "alert.action.v1.schema.json" in files
    assert "crm.stage_request.v1.schema.json" in files and len(files) == 30  # 12 retail and app, 12 CRM, 6 money


def test_lag_reports_committed_and_end_per_partition(settings: Settings) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for i in range(10):
        producer.send(settings.topic("store.notes"), key=b"C-1", value=f"m{i}".encode())  # one partition
    producer.flush()
    producer.close()
    group = settings.topic("lagcheck")
    consumer = KafkaConsumer(
        settings.topic("store.notes"),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=4,
    )
    got: list[object] = []
    while len(got) < 4:
        for msgs in consumer.poll(timeout_ms=1000, max_records=4 - len(got)).values():
            got.extend(msgs)
    consumer.commit()
    consumer.close()
    res = cli(settings, "lag", "--json", "--group", group)
    assert res.returncode == 0, res.stderr
    rows = [r for r in json.loads(res.stdout) if r["committed"]]
    assert len(rows) == 1
    assert (rows[0]["committed"], rows[0]["end"], rows[0]["lag"]) == (4, 10, 6)
    # Nobody commits any more while 6 messages wait: Burrow's rules call that STALLED.
    res = cli(settings, "lag", "--status", "--samples", "2", "--interval", "1", "--group", group)
    assert res.returncode == 1, res.stdout + res.stderr
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(group))
    assert line.split()[1:3] == ["STALLED", "6"]


def test_broker_restart_keeps_data(base_settings: Settings, settings: Settings) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for i in range(20):
        producer.send(settings.topic("pos.inventory"), key=b"S-1", value=f"m{i}".encode())
    producer.flush()
    producer.close()
    assert kafka_local.stop(base_settings)
    assert not kafka_local.status(base_settings)["listening"]
    assert kafka_local.start(base_settings)
    consumer = KafkaConsumer(
        settings.topic("pos.inventory"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=8000,
    )
    values = sorted(m.value.decode() for m in consumer)
    consumer.close()
    assert values == sorted(f"m{i}" for i in range(20))


def test_storage_is_formatted_when_the_cluster_id_starts_with_a_dash(tmp_path: Path) -> None:
    """One id in 64 (base64url) starts with "-": Kafka's argparse read it as an option and the
    broker never started (seen on a fresh CI clone)."""
    from pipeline.infra import kafka_local

    root = Path(__file__).resolve().parents[2]
    s = Settings(var_dir=tmp_path, kafka_port=19192, kafka_controller_port=19193)
    p = kafka_local.paths(s)
    p.root.mkdir(parents=True)
    (p.root / "libs").symlink_to(root / "var" / "kafka" / "libs", target_is_directory=True)
    p.logs.mkdir()
    p.config.write_text(kafka_local._properties(s, p))
    p.cluster_id.write_text("-YjUQGAVQT2JysKNjOFKjw")
    kafka_local._format(s, p)
    assert "cluster.id=-YjUQGAVQT2JysKNjOFKjw" in (p.data / "meta.properties").read_text()
