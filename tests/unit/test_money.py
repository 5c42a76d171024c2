"""Rebates by hand-worked examples, every rule type and every boundary (pure, Decimal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from pipeline.money import matching, rebates

D = Decimal
RULES = rebates.shipped().rules


def quarter(**kw: str) -> rebates.Quarter:
    base = {
        "purchases": "0",
        "new_product_purchases": "0",
        "receivables": "0",
        "collections": "0",
        "on_time_collections": "0",
    }
    base.update(kw)
    return rebates.Quarter("DIST-01", "2026-Q4", **{k: D(v) for k, v in base.items()})


def amounts(q: rebates.Quarter, rules: rebates.RebateRules = RULES) -> dict[str, Decimal]:
    return {ln["rule"]: ln["amount"] for ln in rebates.quarter_lines(q, rules)}


def test_a_quarter_by_hand() -> None:
    # 1,200,000 purchased: the 1,000,000 tier, 3% on the whole = 36,000.00; new products
    # 320,000 x 1% = 3,200.00; on-time collections 950,000 x 0.5% = 4,750.00; subtotal
    # 43,950.00; collections 1,020,000 of 1,200,000 receivables = 85% and new products
    # >= 300,000: x1.2, a line of 43,950.00 x 0.2 = 8,790.00. Total 52,740.00.
    q = quarter(
        purchases="1200000",
        new_product_purchases="320000",
        receivables="1200000",
        collections="1020000",
        on_time_collections="950000",
    )
    lines = rebates.quarter_lines(q, RULES)
    assert [(ln["rule"], ln["amount"]) for ln in lines] == [
        ("quarterly_tier", D("36000.00")),
        ("new_product_bonus", D("3200.00")),
        ("payment_timeliness_bonus", D("4750.00")),
        ("condition:collections_and_new_products", D("8790.00")),
    ]
    assert rebates.total(lines) == D("52740.00")
    assert lines[0]["title"] == "季度阶梯返点（满¥1,000,000档 3%）"
    assert all(ln["rule_version"] == "2026-Q4.1" for ln in lines)
    assert lines[3]["inputs"]["collections_ratio"] == "0.8500" and lines[3]["base"] == D("43950.00")


@pytest.mark.parametrize(
    ("purchases", "tier"),
    [
        ("499999.99", "0.00"),
        ("500000.00", "10000.00"),
        ("999999.99", "20000.00"),  # 19,999.9998 rounds to the fen
        ("1000000.00", "30000.00"),
        ("2000000.00", "100000.00"),
    ],
)
def test_tier_boundaries(purchases: str, tier: str) -> None:
    assert amounts(quarter(purchases=purchases))["quarterly_tier"] == D(tier)


def test_marginal_tiers_by_hand() -> None:
    rules = RULES.model_copy(update={"tier_mode": "marginal"})
    # 1,200,000: 0 on the first 500,000, 2% of 500,000 = 10,000, 3% of 200,000 = 6,000
    assert amounts(quarter(purchases="1200000"), rules)["quarterly_tier"] == D("16000.00")


@pytest.mark.parametrize(
    ("collections", "new_products", "applies"),
    [
        ("849900.00", "300000.00", False),  # 84.99% of 1,000,000
        ("850000.00", "300000.00", True),  # 85.00%
        ("850000.00", "299999.99", False),
        ("1000000.00", "300000.00", True),
    ],
)
def test_the_coefficient_condition_boundaries(collections: str, new_products: str, applies: bool) -> None:
    q = quarter(purchases="1000000", new_product_purchases=new_products, receivables="1000000", collections=collections)
    got = amounts(q)
    assert ("condition:collections_and_new_products" in got) is applies
    if applies:
        sub = got["quarterly_tier"] + got["new_product_bonus"] + got["payment_timeliness_bonus"]
        assert got["condition:collections_and_new_products"] == (sub * D("0.2")).quantize(D("0.01"))


def test_lines_round_half_up_to_the_fen() -> None:
    # 0.5% of 1,001.00 = 5.005 -> 5.01 (half up, not half even)
    assert amounts(quarter(on_time_collections="1001.00"))["payment_timeliness_bonus"] == D("5.01")


def test_no_receivables_counts_as_fully_collected() -> None:
    q = quarter(purchases="100000", new_product_purchases="300000")
    assert "condition:collections_and_new_products" in amounts(q)


def test_a_finance_leads_edit_is_validated_and_versioned() -> None:
    text = (resources.files("pipeline.money") / "data" / "rebates.yaml").read_text(encoding="utf-8")
    current = rebates.parse(text)
    with pytest.raises(ValueError, match="give it a new version"):
        rebates.successor(current, text.replace('coefficient: "1.2"', 'coefficient: "1.3"'))
    newer = rebates.successor(
        current, text.replace('coefficient: "1.2"', 'coefficient: "1.3"').replace("2026-Q4.1", "2026-Q4.2")
    )
    q = quarter(purchases="1000000", new_product_purchases="300000", receivables="100", collections="100")
    line = rebates.quarter_lines(q, newer.rules)[-1]
    assert line["rule_version"] == "2026-Q4.2" and line["rate"] == D("0.3")
    with pytest.raises(ValueError, match="rise strictly"):
        rebates.parse(text.replace("from: 500000", "from: 2500000"))


# --- three-way match -----------------------------------------------------------------------

T0 = datetime(2026, 10, 1, 2, tzinfo=UTC)
MATCH = matching.shipped().rules


def contract(
    order: str | None, invoices: tuple[tuple[str, int], ...] = (), payments: tuple[tuple[str, int], ...] = ()
) -> dict[str, Any]:
    c = matching.new_contract("K-1")
    if order is not None:
        c["order"] = {"amount": order, "at": T0.isoformat()}
    c["invoices"] = {
        f"I{i}": {"amount": a, "at": (T0 + timedelta(days=d)).isoformat()} for i, (a, d) in enumerate(invoices)
    }
    c["payments"] = {
        f"P{i}": {"amount": a, "at": (T0 + timedelta(days=d)).isoformat()} for i, (a, d) in enumerate(payments)
    }
    return c


def colour(c: dict[str, Any], days: float) -> tuple[str, list[str]]:
    got, why = matching.status(c, T0 + timedelta(days=days), MATCH)
    return got, [code for code, _text in why]


def test_matched_within_the_tolerance_is_green_and_one_fen_more_is_red() -> None:
    assert colour(contract("100000.00", (("100000.00", 2),), (("99500.00", 20),)), 90) == ("green", [])
    assert colour(contract("100000.00", (("100000.00", 2),), (("99499.99", 20),)), 90) == ("red", ["amount_mismatch"])
    # within the grace periods a short payment is not yet wrong: still waiting for the rest
    assert colour(contract("100000.00", (("100000.00", 2),), (("60000.00", 20),)), 30)[0] == "pending"


def test_a_missing_document_turns_yellow_after_its_grace_period() -> None:
    assert colour(contract("50000.00"), 14.9) == ("pending", [])
    assert colour(contract("50000.00"), 15) == ("yellow", ["invoice_missing"])
    invoiced = contract("50000.00", (("50000.00", 5),))
    assert colour(invoiced, 49.9) == ("pending", [])
    assert colour(invoiced, 50) == ("yellow", ["payment_missing"])


def test_anomalies_are_red_payments_without_a_contract_and_invoices_above_the_order() -> None:
    orphan = contract(None, payments=(("30000.00", 0),))
    assert colour(orphan, 1) == ("pending", [])  # the order may still be on its way
    assert colour(orphan, 2) == ("red", ["payment_without_contract"])
    _, reasons = matching.status(orphan, T0 + timedelta(days=3), MATCH)
    assert reasons[0][1] == "收到回款 ¥30,000.00 但没有对应的合同/订单"
    assert colour(contract("10000.00", (("10500.00", 1),)), 1) == ("pending", [])  # ¥500 above: within
    assert colour(contract("10000.00", (("10500.01", 1),)), 1) == ("red", ["invoice_above_order"])


def test_a_distributors_ledger_matches_contracts_and_estimates_the_rebate_live() -> None:
    """Work in progress (issue 14): the pure fold the money agent will run."""
    from pipeline.money import ledger

    state = ledger.new_distributor("DIST-01")
    n = 0

    def send(etype: str, payload: dict[str, Any], at: datetime) -> list[tuple[str, dict[str, Any]]]:
        nonlocal n
        n += 1
        row = {"event_type": etype, "occurred_at": at.isoformat()}
        return ledger.fold(
            state,
            row,
            payload,
            source="m:0",
            offset=n,
            rebate_rules=RULES,
            match_rules=MATCH,
            new_lines=frozenset({"PL-POC"}),
        )

    lines = [{"product_line_id": "PL-BIO", "qty": 10, "unit_price": "60000.00"}]
    out = send(
        "money.order",
        {"order_id": "SO-1", "contract_id": "K-1", "rep_id": "R-1", "amount": "600000.00", "lines": lines},
        T0,
    )
    est = dict(out)["rebate_estimates"]
    assert est["estimate"] == "12000.00" and est["quarter"] == "2026-Q4"  # the 500,000 tier: 2% of 600,000
    assert dict(out)["three_way_match"]["status"] == "pending"
    send(
        "money.invoice",
        {"invoice_id": "I-1", "contract_id": "K-1", "amount": "600000.00", "due_on": "2026-11-01"},
        T0 + timedelta(days=3),
    )
    out = send(
        "money.payment",
        {"payment_id": "P-1", "contract_id": "K-1", "invoice_id": "I-1", "amount": "599600.00"},
        T0 + timedelta(days=20),
    )
    assert dict(out)["three_way_match"]["status"] == "green"  # ¥400 short: within ¥500
    assert state["quarters"]["2026-Q4"]["on_time_collections"] == "599600.00"
    before = str(state)
    replay = ledger.fold(
        state,
        {"event_type": "money.payment", "occurred_at": T0.isoformat()},
        {"payment_id": "P-9", "contract_id": "K-1", "amount": "1.00"},
        source="m:0",
        offset=2,
        rebate_rules=RULES,
        match_rules=MATCH,
    )
    assert replay == [] and str(state) == before  # an offset already folded changes nothing
