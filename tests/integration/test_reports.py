"""`salespulse alerts report`: outcomes computed by ClickHouse over real tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.health.reports import alert_outcomes
from pipeline.infra.store import INSERT_SETTINGS

pytestmark = pytest.mark.integration
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def alert(alert_id: str, customer: str, rule: str, day: int, score: float) -> list[Any]:
    ts = T0 + timedelta(days=day)
    return [alert_id, customer, rule, "medium", "t", score, "at_risk", "CS-01", "open", ts, ts, 1, "alerts", 0, 0]


def hist(customer: str, day: int, score: float, band: str, version: int) -> list[Any]:
    ts = T0 + timedelta(days=day)
    return [customer, "retail_member", score, None, band, "", 1.0, [], ts, ts.date(), version, "h", 0, version]


def test_outcome_per_rule_counts_only_alerts_with_enough_data_after_them(db: Any) -> None:
    cols_a = [
        "alert_id",
        "customer_id",
        "rule_id",
        "severity",
        "title",
        "score",
        "band",
        "assignee",
        "status",
        "raised_at",
        "updated_at",
        "version",
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
    ]
    db.insert(
        "alerts",
        [
            alert("a1", "C-1", "fell_to_at_risk", 0, 30),  # recovers on day 5 -> not a real risk
            alert("a2", "C-2", "fell_to_at_risk", 0, 30),  # stays at risk -> real
            alert("a3", "C-3", "fell_to_at_risk", 25, 30),  # too recent to judge
            alert("a4", "C-2", "score_fall_7d", 1, 35),  # C-2 never recovers -> real
        ],
        column_names=cols_a,
        settings=INSERT_SETTINGS,
    )
    cols_h = [
        "customer_id",
        "segment",
        "score",
        "previous_score",
        "band",
        "previous_band",
        "confidence",
        "reasons",
        "as_of",
        "day",
        "version",
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
    ]
    db.insert(
        "customer_health_history",
        [
            hist("C-1", 5, 72, "healthy", 1),
            hist("C-2", 5, 33, "at_risk", 1),
            hist("C-3", 26, 31, "at_risk", 1),
            hist("C-2", 30, 34, "at_risk", 2),  # the data horizon: day 30
        ],
        column_names=cols_h,
        settings=INSERT_SETTINGS,
    )
    report = {r["rule_id"]: r for r in alert_outcomes(db, days=14)}
    assert report["fell_to_at_risk"] == {
        "rule_id": "fell_to_at_risk",
        "alerts": 3,
        "judged": 2,
        "recovered_within_days": 1,
        "precision": 0.5,
    }
    assert report["score_fall_7d"]["judged"] == 1 and report["score_fall_7d"]["precision"] == 1.0


def test_rules_are_judged_against_the_simulators_ground_truth(db: Any) -> None:
    """Precision, recall, lead time and alert volume per rule against who really churned."""
    from pipeline.health.reports import alert_truth
    from pipeline.infra.store import insert_truth

    assert alert_truth(db) == []  # real traffic: no ground truth, no such report
    cols_e = ["event_id", "event_type", "schema_version", "occurred_at", "ingested_at", "source", "payload"]
    cols_e += ["kafka_topic", "kafka_partition", "kafka_offset"]
    db.insert(  # the data's span: 60 days, so 2 months
        "events",
        [[f"e{d}", "app.login", 1, T0 + timedelta(days=d), T0, "app", "{}", "t", 0, d] for d in (0, 60)],
        column_names=cols_e,
        settings=INSERT_SETTINGS,
    )
    truth = [
        {"customer_id": f"C-{i}", "segment": "b2b_contact", "key_contact": 1, "churn_at": None, "engagement": 0.5}
        for i in range(10)
    ]
    truth[1]["churn_at"] = T0 + timedelta(days=20)  # caught 10 days ahead
    truth[2]["churn_at"] = T0 + timedelta(days=40)  # caught 2 days late
    truth[3]["churn_at"] = T0 + timedelta(days=50)  # never caught
    truth[4]["churn_at"] = T0 - timedelta(days=30)  # churned before the data: not a churner to catch
    insert_truth(db, truth)
    cols_a = ["alert_id", "customer_id", "rule_id", "severity", "title", "score", "band", "assignee", "status"]
    cols_a += ["raised_at", "updated_at", "version", "kafka_topic", "kafka_partition", "kafka_offset"]
    db.insert(
        "alerts",
        [
            alert("s1", "C-1", "silent_key_contact", 10, 30),
            alert("s2", "C-2", "silent_key_contact", 42, 30),
            alert("s3", "C-5", "silent_key_contact", 30, 30),  # C-5 never churns: a false alarm
            alert("s4", "C-1", "silent_key_contact", 0, 30),  # 20 days ahead: still within 30
            alert("f1", "C-3", "fell_to_at_risk", 5, 30),  # 45 days ahead: too early to count
        ],
        column_names=cols_a,
        settings=INSERT_SETTINGS,
    )
    report = {r["rule_id"]: r for r in alert_truth(db, before=30, after=7)}
    silent = report["silent_key_contact"]
    assert silent["alerts"] == 4 and silent["precision"] == 0.75
    assert silent["recall"] == round(2 / 3, 3)  # C-1 and C-2 of the three churners in the span
    assert silent["median_lead_days"] == 10.0  # leads 20, 10 and -2 days
    assert silent["per_100_customers_month"] == 20.0  # 4 alerts, 10 customers, 2 months
    assert report["fell_to_at_risk"]["precision"] == 0.0 and report["fell_to_at_risk"]["recall"] == 0.0
