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
    assert all(ln["rule_version"] == "2026-Q4.2" for ln in lines)
    assert lines[3]["title"] == "达标系数 ×1.2（达标）" and lines[3]["met"]
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
    line = rebates.quarter_lines(q, RULES)[-1]
    assert line["rule"] == "condition:collections_and_new_products" and line["met"] is applies
    assert line["title"].endswith("（达标）" if applies else "（未达标）")
    if not applies:
        assert got["condition:collections_and_new_products"] == D("0.00")
    else:
        sub = got["quarterly_tier"] + got["new_product_bonus"] + got["payment_timeliness_bonus"]
        assert got["condition:collections_and_new_products"] == (sub * D("0.2")).quantize(D("0.01"))


def test_lines_round_half_up_to_the_fen() -> None:
    # 0.5% of 1,001.00 = 5.005 -> 5.01 (half up, not half even)
    assert amounts(quarter(on_time_collections="1001.00"))["payment_timeliness_bonus"] == D("5.01")


def test_no_receivables_counts_as_fully_collected() -> None:
    q = quarter(purchases="100000", new_product_purchases="300000")
    assert rebates.quarter_lines(q, RULES)[-1]["met"]


def test_a_finance_leads_edit_is_validated_and_versioned() -> None:
    text = (resources.files("pipeline.money") / "data" / "rebates.yaml").read_text(encoding="utf-8")
    current = rebates.parse(text)
    with pytest.raises(ValueError, match="give it a new version"):
        rebates.successor(current, text.replace('coefficient: "1.2"', 'coefficient: "1.3"'))
    newer = rebates.successor(
        current, text.replace('coefficient: "1.2"', 'coefficient: "1.3"').replace("2026-Q4.2", "2026-Q4.3")
    )
    q = quarter(purchases="1000000", new_product_purchases="300000", receivables="100", collections="100")
    line = rebates.quarter_lines(q, newer.rules)[-1]
    assert line["rule_version"] == "2026-Q4.3" and line["rate"] == D("0.3")
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


class Ledger:
    """A distributor's ledger fed events the way the agent feeds them (one source, rising offsets)."""

    def __init__(self) -> None:
        from pipeline.money import ledger

        self.ledger = ledger
        self.state = ledger.new_distributor("DIST-01")
        self.n = 0

    def send(self, etype: str, payload: dict[str, Any], at: datetime) -> dict[str, list[dict[str, Any]]]:
        self.n += 1
        row = {"event_type": etype, "occurred_at": at.isoformat()}
        out: dict[str, list[dict[str, Any]]] = {}
        for table, r in self.ledger.fold(
            self.state, row, payload, source="m:0", offset=self.n, rebate_rules=RULES, match_rules=MATCH
        ):
            out.setdefault(table, []).append(r)
        return out


def order(oid: str, contract_id: str, amount: str, product: str = "PL-BIO", qty: int = 10, **kw: Any) -> dict[str, Any]:
    unit = (D(amount) / qty).quantize(D("0.01"))
    return {
        "order_id": oid,
        "contract_id": contract_id,
        "rep_id": "R-1",
        "region": "华东",
        "hospital_account_id": "H-1",
        "lines": [{"product_line_id": product, "qty": qty, "unit_price": str(unit)}],
        "amount": amount,
        "promised_delivery": "2026-10-20",
        **kw,
    }


def test_a_distributors_ledger_matches_contracts_and_estimates_the_rebate_live() -> None:
    book = Ledger()
    out = book.send("money.order", order("SO-1", "K-1", "600000.00"), T0)
    assert out["rebate_estimates"][0]["estimate"] == "12000.00"  # the 500,000 tier: 2% of 600,000
    assert out["rebate_estimates"][0]["quarter"] == "2026-Q4"
    assert out["three_way_match"][0]["status"] == "pending" and out["three_way_match"][0]["rep_id"] == "R-1"
    assert [r["amount"] for r in out["money_orders"]] == ["600000.00"] and out["money_orders"][0]["deliverable"] == 1
    book.send(
        "money.invoice",
        {"invoice_id": "I-1", "contract_id": "K-1", "amount": "600000.00", "due_on": "2026-11-01"},
        T0 + timedelta(days=3),
    )
    out = book.send(
        "money.payment",
        {"payment_id": "P-1", "contract_id": "K-1", "invoice_id": "I-1", "amount": "599600.00"},
        T0 + timedelta(days=20),
    )
    assert out["three_way_match"][0]["status"] == "green"  # ¥400 short: within ¥500
    assert out["money_payments"][0]["rep_id"] == "R-1"
    assert book.state["months"]["2026-10"]["on_time_collections"] == "599600.00"  # within 30 days of the invoice
    before = str(book.state)
    replay = book.ledger.fold(
        book.state,
        {"event_type": "money.payment", "occurred_at": T0.isoformat()},
        {"payment_id": "P-9", "contract_id": "K-1", "amount": "1.00"},
        source="m:0",
        offset=2,
        rebate_rules=RULES,
        match_rules=MATCH,
    )
    assert replay == [] and str(book.state) == before  # an offset already folded changes nothing


def test_a_document_sent_twice_is_counted_once() -> None:
    """A producer's retry (the same order, invoice or payment at a new offset) must not double
    purchases, receivables or collections, nor the rebate they feed."""
    once, twice = Ledger(), Ledger()
    events = [
        ("money.order", order("SO-1", "K-1", "600000.00"), T0),
        (
            "money.invoice",
            {"invoice_id": "I-1", "contract_id": "K-1", "amount": "600000.00", "due_on": "2026-11-01"},
            T0 + timedelta(days=3),
        ),
        (
            "money.payment",
            {"payment_id": "P-1", "contract_id": "K-1", "invoice_id": "I-1", "amount": "599600.00"},
            T0 + timedelta(days=20),
        ),
    ]
    for etype, payload, at in events:
        once.send(etype, payload, at)
        twice.send(etype, payload, at)
    for etype, payload, at in events:
        assert twice.send(etype, payload, at) == {}  # each again, later, at new offsets
    assert twice.state["months"] == once.state["months"]
    assert twice.state["months"]["2026-10"]["collections"] == "599600.00"
    assert twice.state["months"]["2026-10"]["purchases"] == "600000.00"


def test_new_products_are_the_lines_the_rules_declare_new() -> None:
    book = Ledger()
    book.send("money.order", order("SO-1", "K-1", "200000.00", product="PL-POC"), T0)
    out = book.send("money.order", order("SO-2", "K-2", "100000.00", product="PL-BIO"), T0 + timedelta(hours=1))
    assert book.state["months"]["2026-10"]["new_product_purchases"] == "200000.00"
    assert [r["new_product"] for r in out["money_orders"]] == [0]


def test_a_months_statement_is_the_quarter_to_its_end_whatever_the_order_of_arrival() -> None:
    book = Ledger()
    nov = datetime(2026, 11, 10, 2, tzinfo=UTC)
    out = book.send("money.order", order("SO-2", "K-2", "300000.00"), nov)
    assert {r["month"] for r in out["rebate_lines"]} == {"2026-11"}
    late = book.send("money.order", order("SO-1", "K-1", "300000.00"), T0)  # dated October, read after November
    lines = {(r["month"], r["rule"]): r for r in late["rebate_lines"]}
    assert {m for m, _ in lines} == {"2026-10", "2026-11"}  # October's own and November's to date both move
    assert lines[("2026-10", "quarterly_tier")]["amount"] == "0.00"  # 300,000 by the end of October
    assert lines[("2026-11", "quarterly_tier")]["amount"] == "12000.00"  # 600,000 by the end of November: 2%
    assert lines[("2026-11", "quarterly_tier")]["rule_version"] == RULES.version
    assert orjson_loads(lines[("2026-11", "quarterly_tier")]["inputs"]) == {"purchases": "600000.00"}


def orjson_loads(text: str) -> Any:
    import orjson

    return orjson.loads(text)


def test_a_missing_invoice_turns_yellow_at_the_moment_its_grace_ends() -> None:
    book = Ledger()
    book.send("money.order", order("SO-1", "K-1", "50000.00"), T0)
    # the next event for this distributor comes 40 days later: the contract went yellow at day 15
    out = book.send("money.order", order("SO-2", "K-2", "10000.00"), T0 + timedelta(days=40))
    yellow = [r for r in out["three_way_match"] if r["contract_id"] == "K-1"]
    assert [r["status"] for r in yellow] == ["yellow"]
    assert yellow[0]["changed_at"] == (T0 + timedelta(days=15)).isoformat()
    assert book.ledger.advance(book.state, T0 + timedelta(days=41), MATCH) == []  # nothing new came true
    swept = book.ledger.advance(book.state, T0 + timedelta(days=60), MATCH)  # K-2's own invoice grace
    assert [(r["contract_id"], r["status"]) for r in [row for _t, row in swept]] == [("K-2", "yellow")]


def test_payments_and_deliveries_before_their_order_get_its_rep_and_hospital_when_it_comes() -> None:
    book = Ledger()
    book.send(
        "money.delivery",
        {"delivery_id": "DL-1", "contract_id": "K-1", "promised_on": "2026-10-10", "delivered_on": "2026-10-13"},
        T0,
    )
    out = book.send("money.payment", {"payment_id": "P-1", "contract_id": "K-1", "amount": "100.00"}, T0)
    assert out["money_payments"][0]["rep_id"] == ""
    out = book.send("money.order", order("SO-1", "K-1", "100.00", qty=1), T0 + timedelta(hours=1))
    assert out["money_payments"][0]["rep_id"] == "R-1"
    assert out["deliveries"][0]["hospital_account_id"] == "H-1" and out["deliveries"][0]["days_late"] == 3
    assert out["deliveries"][0]["on_time"] == 0


def test_a_running_worker_takes_an_edited_rules_file_only_when_valid_and_versioned(tmp_path: Any) -> None:
    import os

    from pipeline import rulefile

    watched = rulefile.Watched(rebates.FILE, tmp_path)
    assert watched.rules.version == RULES.version and watched.check() == (False, None)  # the shipped file
    text = (resources.files("pipeline.money") / "data" / "rebates.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "rebates.yaml"
    edited.write_text(text.replace('coefficient: "1.2"', 'coefficient: "1.3"'), encoding="utf-8")
    changed, refused = watched.check()
    assert not changed and refused and "new version" in refused and watched.rules.conditions[0].coefficient == D("1.2")
    edited.write_text(text.replace('coefficient: "1.2"', 'coefficient: "1.3"').replace("2026-Q4.2", "2026-Q4.9"))
    os.utime(edited, (1, 2))  # a new mtime, whatever the clock's resolution
    assert watched.check() == (True, None)
    assert watched.rules.version == "2026-Q4.9" and watched.rules.conditions[0].coefficient == D("1.3")
    edited.write_text("version: [broken", encoding="utf-8")
    os.utime(edited, (3, 4))
    changed, refused = watched.check()
    assert not changed and refused and watched.rules.version == "2026-Q4.9"  # the rules in force stay


@pytest.mark.parametrize(("after", "on_time"), [(timedelta(days=30), True), (timedelta(days=30, seconds=1), False)])
def test_the_timeliness_bonus_boundary_is_thirty_days_after_the_invoice(after: timedelta, on_time: bool) -> None:
    book = Ledger()
    book.send("money.order", order("SO-1", "K-1", "100000.00"), T0)
    inv_at = T0 + timedelta(days=2)
    book.send(
        "money.invoice",
        {"invoice_id": "I-1", "contract_id": "K-1", "amount": "100000.00", "due_on": "2026-11-01"},
        inv_at,
    )
    out = book.send(
        "money.payment",
        {"payment_id": "P-1", "contract_id": "K-1", "invoice_id": "I-1", "amount": "100000.00"},
        inv_at + after,
    )
    month = book.ledger.month_of(inv_at + after)
    line = next(r for r in out["rebate_lines"] if r["rule"] == "payment_timeliness_bonus" and r["month"] == month)
    assert line["amount"] == ("500.00" if on_time else "0.00")  # 0.5% of 100,000
