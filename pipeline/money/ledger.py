"""One distributor's ledger, folded event by event (issue 14, work in progress; pure).

Keeps each contract's documents for the three-way match and the quarter's sums for the
rebate; every order event yields a live rebate estimate for the quarter so far, and every
change of a contract's colour a ``three_way_match`` row. Money is text in the state (JSON
changelog) and Decimal wherever it is used.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.bizday import business_tz
from pipeline.money import matching, rebates


def new_distributor(distributor_id: str) -> dict[str, Any]:
    return {"distributor_id": distributor_id, "contracts": {}, "quarters": {}, "launched": {}, "applied": {}}


def quarter_of(at: datetime) -> str:
    local = at.astimezone(business_tz())
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def _add(q: dict[str, str], key: str, amount: Decimal) -> None:
    q[key] = str(Decimal(q.get(key, "0")) + amount)


def fold(
    state: dict[str, Any],
    row: dict[str, Any],
    p: dict[str, Any],
    *,
    source: str,
    offset: int,
    rebate_rules: rebates.RebateRules,
    match_rules: matching.MatchRules,
    new_lines: frozenset[str] = frozenset(),
) -> list[tuple[str, dict[str, Any]]]:
    """Fold one money event; return the rows it produced as (table, row). ``new_lines``: the
    product lines that count as new products for the bonus."""
    applied: dict[str, int] = state["applied"]
    if applied.get(source, -1) >= offset:
        return []
    applied[source] = offset
    etype = row["event_type"]
    at = datetime.fromisoformat(row["occurred_at"])
    out: list[tuple[str, dict[str, Any]]] = []
    contract_id = p.get("contract_id")
    c = None
    if contract_id:
        c = state["contracts"].setdefault(contract_id, matching.new_contract(contract_id))
    q = state["quarters"].setdefault(quarter_of(at), {})
    if etype == "money.order" and c is not None:
        c["order"] = {"amount": str(p["amount"]), "at": row["occurred_at"], "rep_id": p["rep_id"]}
        amount = Decimal(str(p["amount"]))
        _add(q, "purchases", amount)
        new = sum(
            (Decimal(str(ln["unit_price"])) * ln["qty"] for ln in p["lines"] if ln["product_line_id"] in new_lines),
            Decimal(0),
        )
        _add(q, "new_product_purchases", new)
        out.append(("rebate_estimates", estimate(state, quarter_of(at), rebate_rules, p["order_id"], row)))
    elif etype == "money.invoice" and c is not None:
        c["invoices"][p["invoice_id"]] = {"amount": str(p["amount"]), "at": row["occurred_at"], "due_on": p["due_on"]}
        _add(q, "receivables", Decimal(str(p["amount"])))
    elif etype == "money.payment":
        target = c if c is not None else state["contracts"].setdefault("", matching.new_contract(""))
        target["payments"][p["payment_id"]] = {"amount": str(p["amount"]), "at": row["occurred_at"]}
        _add(q, "collections", Decimal(str(p["amount"])))
        due = None
        if c is not None and p.get("invoice_id") in c["invoices"]:
            due = c["invoices"][p["invoice_id"]]["due_on"]
        if due is not None and at.astimezone(business_tz()).date().isoformat() <= due:
            _add(q, "on_time_collections", Decimal(str(p["amount"])))
    for contract in [c] if c is not None else []:
        colour, why = matching.status(contract, at, match_rules)
        if colour != contract["status"] or [w[0] for w in why] != contract["codes"]:
            contract["status"], contract["codes"] = colour, [w[0] for w in why]
            out.append(("three_way_match", match_row(state, contract, colour, why, row, match_rules)))
    return out


def match_row(
    state: dict[str, Any],
    c: dict[str, Any],
    colour: str,
    why: list[tuple[str, str]],
    row: dict[str, Any],
    rules: matching.MatchRules,
) -> dict[str, Any]:
    return {
        "contract_id": c["contract_id"],
        "distributor_id": state["distributor_id"],
        "status": colour,
        "status_zh": matching.COLOUR_ZH[colour],
        "codes": [w[0] for w in why],
        "reasons": [w[1] for w in why],
        "order_amount": c["order"]["amount"] if c["order"] else None,
        "invoiced": str(sum((Decimal(d["amount"]) for d in c["invoices"].values()), Decimal(0))),
        "paid": str(sum((Decimal(d["amount"]) for d in c["payments"].values()), Decimal(0))),
        "changed_at": row["occurred_at"],
        "rules_version": rules.version,
    }


def estimate(
    state: dict[str, Any], quarter: str, rules: rebates.RebateRules, order_id: str, row: dict[str, Any]
) -> dict[str, Any]:
    """The quarter's rebate so far, as the order that just came in leaves it."""
    s = state["quarters"][quarter]
    q = rebates.Quarter(
        distributor_id=state["distributor_id"],
        quarter=quarter,
        purchases=Decimal(s.get("purchases", "0")),
        new_product_purchases=Decimal(s.get("new_product_purchases", "0")),
        receivables=Decimal(s.get("receivables", "0")),
        collections=Decimal(s.get("collections", "0")),
        on_time_collections=Decimal(s.get("on_time_collections", "0")),
    )
    lines = rebates.quarter_lines(q, rules)
    return {
        "order_id": order_id,
        "distributor_id": state["distributor_id"],
        "quarter": quarter,
        "estimate": str(rebates.total(lines)),
        "lines": [f"{ln['title']} ¥{ln['amount']:,}" for ln in lines],
        "rule_version": rules.version,
        "as_of": row["occurred_at"],
    }
