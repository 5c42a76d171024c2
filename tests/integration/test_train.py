"""`salespulse train` on history stored in real chDB, built by the real intake code."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from nlp.pii import Pii
from pipeline.health.churn import load_latest, train
from pipeline.infra.settings import Settings
from pipeline.infra.store import INSERT_SETTINGS
from pipeline.intake import accepted_row, decode
from pipeline.simulate import generate
from schemas.events import EventError
from tests.integration.conftest import count, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration


def test_train_reports_a_time_split_evaluation_and_saves_a_versioned_model(
    settings: Settings, db: Any, pii: Pii, tmp_path: Path, worker: Any, sink: Any
) -> None:
    rows = []
    for topic, _key, value, _ts in generate(4, days=60, now=datetime(2026, 11, 20, tzinfo=UTC), customers=250):
        try:
            rows.append(accepted_row(decode(value, topic, 65536), pii))
        except EventError:
            continue
    cols = [*rows[0], "kafka_topic", "kafka_partition", "kafka_offset"]
    data = [[r[c] for c in rows[0]] + ["events.accepted", 0, i] for i, r in enumerate(rows)]
    for row in data:
        row[3] = datetime.fromisoformat(row[3])
        row[4] = datetime.fromisoformat(row[4])
    db.insert("events", data, column_names=cols, settings=INSERT_SETTINGS)

    report = train(db, tmp_path)
    assert report["split"].startswith("time-based")
    assert report["train_examples"] > 500 and report["test_examples"] > 200
    assert 0.0 < report["test_churn_rate"] < 1.0
    assert report["roc_auc"] > 0.6  # churn in the simulator depends on behaviour: there is signal
    assert 0.0 <= report["brier"] < 0.25
    saved = json.loads((tmp_path / f"churn-{report['version']}.json").read_text())
    assert saved == report and (tmp_path / f"churn-{report['version']}.joblib").stat().st_size > 0

    # A worker started with the artifact scores with it: 100 x (1 - calibrated probability).
    model = load_latest(tmp_path)
    assert model is not None and model.version == report["version"]
    exp = simulated(8, days=10, customers=20, bad_rate=0.0, settings=settings)
    send(settings, exp.messages)
    worker(model_dir=tmp_path)
    sink()
    wait_until(lambda: count(db, "SELECT uniqExact(customer_id) FROM customer_health") == 20, what="scores")
    rows = db.query("SELECT score, churn_risk, score_source, reasons FROM customer_health FINAL").result_rows
    for score, risk, source, why in rows:
        assert source == f"model:{report['version']}" and 0.0 <= risk <= 1.0
        assert abs(score - 100 * (1 - risk)) < 0.11
        assert any(r.startswith(f"流失风险模型{report['version']}：未来14天流失概率") for r in why[:2])
