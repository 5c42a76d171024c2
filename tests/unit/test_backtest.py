"""The shipped alert rules on simulated customers whose fate is known (issue 11).

The simulator's churners drift away (reading stops, replies slow down and stop), others dip
and recover, and the ground truth says who churned and when. These replays run the same pure
code the worker runs and judge the alerts against that truth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.health.alerts import AlertConfig, all_rules_on, load_alert_config
from pipeline.health.backtest import Outage, Replay, replay
from pipeline.health.reports import ALL_RULES, judge
from pipeline.health.scoring import load_config
from pipeline.simulate import generate, ground_truth

NOW = datetime(2026, 11, 20, tzinfo=UTC)
CFG = load_alert_config()


def run(seed: int, customers: int, days: int, cfg: AlertConfig = CFG, outage: Outage | None = None) -> Replay:
    return replay(
        generate(seed, days=days, now=NOW, customers=customers, bad_rate=0.0), load_config(), cfg, outage=outage
    )


@pytest.fixture(scope="module")
def book() -> tuple[Replay, list[dict[str, Any]]]:
    """The demo's shape: 300 customers, 30 days."""
    return run(42, 300, 30), ground_truth(42, 300, NOW, 30)


def test_the_field_rule_fires_days_before_simulated_key_contacts_churn_and_never_on_healthy_ones(
    book: tuple[Replay, list[dict[str, Any]]],
) -> None:
    result, truth = book
    fate = {t["customer_id"]: t for t in truth}
    field = [a for a in result.alerts if a["rule_id"] == "silent_key_contact"]
    ahead = [
        a
        for a in field
        if fate[a["customer_id"]]["churn_at"] is not None
        and datetime.fromisoformat(a["raised_at"]) < fate[a["customer_id"]]["churn_at"] - timedelta(days=2)
    ]
    assert len(ahead) >= 3  # pre-churn key contacts, caught days before they leave
    assert all(fate[a["customer_id"]]["key_contact"] for a in field)
    healthy = {c for c, t in fate.items() if t["key_contact"] and t["churn_at"] is None and t["dip_from"] is None}
    assert len(healthy) >= 10 and not [a for a in field if a["customer_id"] in healthy]


def test_shipped_rules_are_right_at_least_six_times_in_ten_and_stay_under_ten_per_hundred_a_month(
    book: tuple[Replay, list[dict[str, Any]]],
) -> None:
    result, truth = book
    assert result.span is not None
    report = {r["rule_id"]: r for r in judge(result.alerts, truth, result.span)}
    assert {"silent_key_contact", "silent_slow_customer"} <= set(report)
    for row in report.values():
        assert row["precision"] >= 0.6, row
        assert row["median_lead_days"] > 0, row  # before the churn, not after
    assert report[ALL_RULES]["per_100_customers_month"] <= 10
    assert report[ALL_RULES]["recall"] >= 0.25


def test_a_source_outage_raises_no_wave_of_score_alerts() -> None:
    """An app-telemetry outage of 8 days makes every app user look quiet; once the source is 12
    hours behind the others, a fall it causes raises no band or score alert."""
    on = all_rules_on(CFG)
    outage = Outage("app.telemetry", NOW - timedelta(days=14), NOW - timedelta(days=6))

    def score_alerts(r: Replay) -> int:
        lo, hi = outage.start.isoformat(), (outage.end + timedelta(days=1)).isoformat()
        return sum(
            1 for a in r.alerts if a["rule_id"] in ("fell_to_at_risk", "score_fall_7d") and lo <= a["raised_at"] <= hi
        )

    base = score_alerts(run(5, 200, 30, on))
    held = score_alerts(run(5, 200, 30, on, outage))
    blind = score_alerts(run(5, 200, 30, on.model_copy(update={"source_lag_hours": 1e6}), outage))
    assert held <= base < blind / 2


def test_judge_counts_late_catches_dips_and_all_rules_together() -> None:
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    truth = [
        {"customer_id": "C-1", "churn_at": t0 + timedelta(days=20), "dip_from": None, "dip_to": None},
        {"customer_id": "C-2", "churn_at": None, "dip_from": t0 + timedelta(days=5), "dip_to": t0 + timedelta(days=12)},
        {"customer_id": "C-3", "churn_at": t0 + timedelta(days=25), "dip_from": None, "dip_to": None},
        {"customer_id": "C-4", "churn_at": None, "dip_from": None, "dip_to": None},
    ]

    def alert(rule: str, cid: str, day: float) -> dict[str, Any]:
        return {"rule_id": rule, "customer_id": cid, "raised_at": (t0 + timedelta(days=day)).isoformat()}

    alerts = [alert("a", "C-1", 14), alert("a", "C-2", 15), alert("b", "C-3", 30), alert("b", "C-3", 40)]
    rows = {r["rule_id"]: r for r in judge(alerts, truth, (t0, t0 + timedelta(days=60)))}
    assert rows["a"] == {
        "rule_id": "a",
        "alerts": 2,
        "precision": 0.5,
        "recall": 0.5,
        "median_lead_days": 6.0,
        "per_100_customers_month": 25.0,
        "on_recovering_dips": 1,  # three days after C-2's slump ended
    }
    assert rows["b"]["precision"] == 0.5 and rows["b"]["median_lead_days"] == -5.0  # 5 days late counts, 15 not
    assert rows[ALL_RULES]["recall"] == 1.0 and rows[ALL_RULES]["alerts"] == 4


def test_the_churn_model_is_judged_beside_the_rules_on_the_same_truth_and_the_verdict_follows() -> None:
    from pipeline.health.backtest import compare_model

    truth = ground_truth(8, 200, NOW, 50)
    cmp = compare_model(generate(8, days=50, now=NOW, customers=200, bad_rate=0.0), truth, load_config())
    for seg in ("all", "b2b_contact", "retail_member"):
        assert {"rules", "model"} == set(cmp["auc"][seg])
    a, p = cmp["auc"]["all"], cmp["precision_at_budget"]
    assert 0.5 < a["rules"] <= 1.0  # the rules' score knows something about who leaves
    beats = a["model"] > a["rules"] and p["model"] >= p["rules"]
    assert cmp["verdict"].startswith("the model beats" if beats else "the model does not beat")
    assert [n for n, _w in cmp["model_weights"]] and cmp["budget_examples"] >= 1
    with pytest.raises(ValueError, match="too short"):
        compare_model(
            generate(8, days=20, now=NOW, customers=50, bad_rate=0.0), ground_truth(8, 50, NOW, 20), load_config()
        )
