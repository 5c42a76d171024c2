"""One distributor's ledger, folded event by event (pure).

Keeps each contract's documents for the three-way match and each month's sums for the rebate.
Every event yields the rows it changes: the order's lines (``money_orders``), payments with
the rep they are credited to (``money_payments``), deliveries, service tickets, a live rebate
estimate per order, the rebate statement lines of every month it moves (``rebate_lines``) and
each change of a contract's colour (``three_way_match``), stamped with the event-time moment
it came true; judgements run on one clock per distributor that never goes back (the later of
the event's time and the last moment judged), so the latest row is the latest knowledge.
Money is text in the state (JSON changelog) and Decimal wherever it is used.

A month's statement is the quarter to date as of that month's end: the state keeps sums per
month, so an event that arrives late (dated in October, read in November) moves October's and
November's lines alike, whatever the order of arrival.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from pipeline.bizday import business_tz
from pipeline.money import matching, rebates

VERSIONED = frozenset({"money_orders", "money_payments", "deliveries", "rebate_lines"})
SUMS = ("purchases", "new_product_purchases", "receivables", "collections", "on_time_collections")
Rows = list[tuple[str, dict[str, Any]]]


def new_distributor(distributor_id: str) -> dict[str, Any]:
    return {"distributor_id": distributor_id, "contracts": {}, "months": {}, "applied": {}, "checked_until": None}


def month_of(at: datetime) -> str:
    local = at.astimezone(business_tz())
    return f"{local.year}-{local.month:02d}"


def quarter_of_month(month: str) -> str:
    year, m = month.split("-")
    return f"{year}-Q{(int(m) - 1) // 3 + 1}"


def quarter_of(at: datetime) -> str:
    return quarter_of_month(month_of(at))


def _add(state: dict[str, Any], month: str, key: str, amount: Decimal) -> None:
    m = state["months"].setdefault(month, {})
    m[key] = str(Decimal(m.get(key, "0")) + amount)


DOCUMENTS = {
    "money.order": ("orders", "order_id"),
    "money.invoice": ("invoices", "invoice_id"),
    "money.payment": ("payments", "payment_id"),
}


def is_repeat(state: dict[str, Any], event_type: str, p: dict[str, Any]) -> bool:
    """Whether this order, invoice or payment is on record already (sent twice, or a retry at
    a new offset): its amount is counted once. A correction is a new document (a credit
    note, a refund), never the same id again."""
    kind = DOCUMENTS.get(event_type)
    if kind is None:
        return False  # deliveries and tickets are kept by id: a repeat writes the same row
    contract = state["contracts"].get(p.get("contract_id") or "")
    return contract is not None and p[kind[1]] in contract.get(kind[0], {})


def fold(
    state: dict[str, Any],
    row: dict[str, Any],
    p: dict[str, Any],
    *,
    source: str,
    offset: int,
    rebate_rules: rebates.RebateRules,
    match_rules: matching.MatchRules,
) -> Rows:
    """Fold one money event; return the rows it produced as (table, row)."""
    applied: dict[str, int] = state["applied"]
    if applied.get(source, -1) >= offset:
        return []
    applied[source] = offset
    if is_repeat(state, row["event_type"], p):
        return []
    state["seq"] = state.get("seq", 0) + 1
    out = _fold(state, row, p, rebate_rules, match_rules)
    for table, r in out:
        if table in VERSIONED:
            r["version"] = state["seq"]
    return out


def _fold(
    state: dict[str, Any],
    row: dict[str, Any],
    p: dict[str, Any],
    rebate_rules: rebates.RebateRules,
    match_rules: matching.MatchRules,
) -> Rows:
    etype = row["event_type"]
    at = datetime.fromisoformat(row["occurred_at"])
    out: Rows = advance(state, at, match_rules)  # what came true before this event, at its moment
    month = month_of(at)
    if etype == "service.ticket":
        ticket = {k: p[k] for k in ("ticket_id", "hospital_account_id", "product_line_id", "step")}
        out.append(("service_tickets", {**ticket, "distributor_id": state["distributor_id"], "at": row["occurred_at"]}))
        return out
    contract_id = p.get("contract_id") or ""
    c = state["contracts"].setdefault(contract_id, matching.new_contract(contract_id))
    moved: set[str] = set()  # months whose sums changed
    if etype == "money.order":
        out.extend(_order(state, c, row, p, rebate_rules))
        moved.add(month)
    elif etype == "money.invoice":
        c["invoices"][p["invoice_id"]] = {"amount": str(p["amount"]), "at": row["occurred_at"], "due_on": p["due_on"]}
        _add(state, month, "receivables", Decimal(str(p["amount"])))
        moved.add(month)
        for pay in c["payments"].values():  # payments read before their invoice: on time after all?
            if pay.get("invoice_id") == p["invoice_id"] and not pay.get("on_time"):
                moved |= _count_on_time(state, c, pay, rebate_rules)
    elif etype == "money.payment":
        pay = {
            "amount": str(p["amount"]),
            "at": row["occurred_at"],
            "invoice_id": p.get("invoice_id"),
            "on_time": False,
        }
        c["payments"][p["payment_id"]] = pay
        _add(state, month, "collections", Decimal(str(p["amount"])))
        moved.add(month)
        moved |= _count_on_time(state, c, pay, rebate_rules)
        out.append(("money_payments", payment_row(state, c, p["payment_id"])))
    elif etype == "money.delivery":
        c.setdefault("deliveries", {})[p["delivery_id"]] = {
            "promised_on": p["promised_on"],
            "delivered_on": p["delivered_on"],
            "at": row["occurred_at"],
        }
        out.append(("deliveries", delivery_row(state, c, p["delivery_id"])))
    if moved:
        out.extend(statement_rows(state, moved, rebate_rules, row["occurred_at"]))
    if contract_id:
        # judged on the distributor's one clock: never before a moment already judged, so a
        # document read late (its topic behind the others) still has the last word
        since = state.get("checked_until")
        when = max(at, datetime.fromisoformat(since)) if since else at
        out.extend(_judge(state, c, when, match_rules))
    return out


def _order(
    state: dict[str, Any], c: dict[str, Any], row: dict[str, Any], p: dict[str, Any], rules: rebates.RebateRules
) -> Rows:
    at = datetime.fromisoformat(row["occurred_at"])
    month = month_of(at)
    orders = c.setdefault("orders", {})
    orders[p["order_id"]] = str(p["amount"])
    total = sum((Decimal(a) for a in orders.values()), Decimal(0))
    first = c["order"]["at"] if c["order"] else row["occurred_at"]
    c["order"] = {
        "amount": str(total),
        "at": first,
        "rep_id": p["rep_id"],
        "region": p["region"],
        "hospital_account_id": p.get("hospital_account_id") or "",
    }
    amount = Decimal(str(p["amount"]))
    _add(state, month, "purchases", amount)
    new_lines = set(rules.new_product_bonus.product_lines) if rules.new_product_bonus else set()
    new = sum(
        (Decimal(str(ln["unit_price"])) * ln["qty"] for ln in p["lines"] if ln["product_line_id"] in new_lines),
        Decimal(0),
    )
    _add(state, month, "new_product_purchases", new)
    deliverable = (
        not p.get("repeat_customer", False) and p.get("scheduled_for_production", True) and p.get("cash", True)
    )
    out: Rows = [
        (
            "money_orders",
            {
                "order_id": p["order_id"],
                "line_no": n,
                "contract_id": c["contract_id"],
                "distributor_id": state["distributor_id"],
                "hospital_account_id": p.get("hospital_account_id") or "",
                "opportunity_id": p.get("opportunity_id") or "",
                "rep_id": p["rep_id"],
                "region": p["region"],
                "product_line_id": ln["product_line_id"],
                "qty": ln["qty"],
                "amount": str(rebates.fen(Decimal(str(ln["unit_price"])) * ln["qty"])),
                "repeat_customer": int(bool(p.get("repeat_customer", False))),
                "scheduled_for_production": int(bool(p.get("scheduled_for_production", True))),
                "cash": int(bool(p.get("cash", True))),
                "deliverable": int(deliverable),
                "new_product": int(ln["product_line_id"] in new_lines),
                "ordered_at": row["occurred_at"],
                "promised_delivery": p["promised_delivery"],
            },
        )
        for n, ln in enumerate(p["lines"], 1)
    ]
    out.append(("rebate_estimates", estimate(state, quarter_of(at), rules, p["order_id"], row)))
    # payments and deliveries that came before the order now know their rep and hospital
    out.extend(("money_payments", payment_row(state, c, pid)) for pid in c["payments"])
    out.extend(("deliveries", delivery_row(state, c, did)) for did in c.get("deliveries", {}))
    return out


def _count_on_time(
    state: dict[str, Any], c: dict[str, Any], pay: dict[str, Any], rules: rebates.RebateRules
) -> set[str]:
    """Count a payment as on time once it is known to be: received within the rule's days of
    the invoice it names (no invoice named, or not on record yet: not yet). The months moved."""
    b = rules.payment_timeliness_bonus
    inv = c["invoices"].get(pay.get("invoice_id") or "")
    if b is None or inv is None or pay.get("on_time"):
        return set()
    at = datetime.fromisoformat(pay["at"])
    if at - datetime.fromisoformat(inv["at"]) > timedelta(days=b.due_days):
        return set()
    pay["on_time"] = True
    _add(state, month_of(at), "on_time_collections", Decimal(pay["amount"]))
    return {month_of(at)}


def payment_row(state: dict[str, Any], c: dict[str, Any], payment_id: str) -> dict[str, Any]:
    pay = c["payments"][payment_id]
    order = c["order"] or {}
    return {
        "payment_id": payment_id,
        "contract_id": c["contract_id"],
        "invoice_id": pay.get("invoice_id") or "",
        "distributor_id": state["distributor_id"],
        "rep_id": order.get("rep_id", ""),
        "region": order.get("region", ""),
        "amount": pay["amount"],
        "paid_at": pay["at"],
    }


def delivery_row(state: dict[str, Any], c: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    d = c["deliveries"][delivery_id]
    order = c["order"] or {}
    late = (date.fromisoformat(d["delivered_on"]) - date.fromisoformat(d["promised_on"])).days
    return {
        "delivery_id": delivery_id,
        "contract_id": c["contract_id"],
        "distributor_id": state["distributor_id"],
        "hospital_account_id": order.get("hospital_account_id", ""),
        "rep_id": order.get("rep_id", ""),
        "region": order.get("region", ""),
        "promised_on": d["promised_on"],
        "delivered_on": d["delivered_on"],
        "days_late": late,
        "on_time": int(late <= 0),
        "delivered_at": d["at"],
    }


def _judge(state: dict[str, Any], c: dict[str, Any], at: datetime, rules: matching.MatchRules) -> Rows:
    colour, why = matching.status(c, at, rules)
    if colour == c["status"] and [w[0] for w in why] == c["codes"]:
        return []
    c["status"], c["codes"] = colour, [w[0] for w in why]
    return [("three_way_match", match_row(state, c, colour, why, at.isoformat(), rules))]


def advance(state: dict[str, Any], until: datetime, rules: matching.MatchRules) -> Rows:
    """Colours that turn with time alone (a document missing after its grace period, a payment
    with no order): judged at each deadline passed since the last look, stamped with it."""
    since = state.get("checked_until")
    if since is not None and until <= datetime.fromisoformat(since):
        return []
    out: Rows = []
    start = datetime.fromisoformat(since) if since is not None else None
    for cid, c in state["contracts"].items():
        if not cid:
            continue
        for moment in matching.deadlines(c, rules):
            if (start is None or moment > start) and moment <= until:
                out.extend(_judge(state, c, moment, rules))
    state["checked_until"] = until.isoformat()
    out.sort(key=lambda t: t[1]["changed_at"])
    return out


def match_row(
    state: dict[str, Any],
    c: dict[str, Any],
    colour: str,
    why: list[tuple[str, str]],
    changed_at: str,
    rules: matching.MatchRules,
) -> dict[str, Any]:
    order = c["order"] or {}
    return {
        "contract_id": c["contract_id"],
        "distributor_id": state["distributor_id"],
        "rep_id": order.get("rep_id", ""),
        "region": order.get("region", ""),
        "hospital_account_id": order.get("hospital_account_id", ""),
        "status": colour,
        "status_zh": matching.COLOUR_ZH[colour],
        "codes": [w[0] for w in why],
        "reasons": [w[1] for w in why],
        "order_amount": order.get("amount"),
        "invoiced": str(sum((Decimal(d["amount"]) for d in c["invoices"].values()), Decimal(0))),
        "paid": str(sum((Decimal(d["amount"]) for d in c["payments"].values()), Decimal(0))),
        "changed_at": changed_at,
        "rules_version": rules.version,
    }


def quarter_to(state: dict[str, Any], month: str | None = None, quarter: str | None = None) -> rebates.Quarter:
    """The quarter's sums up to and including ``month`` (or every month of ``quarter``)."""
    q = quarter or quarter_of_month(month or "")
    sums = dict.fromkeys(SUMS, Decimal(0))
    for m, s in state["months"].items():
        if quarter_of_month(m) == q and (month is None or m <= month):
            for k in SUMS:
                sums[k] += Decimal(s.get(k, "0"))
    return rebates.Quarter(distributor_id=state["distributor_id"], quarter=q, **sums)


def statement_rows(state: dict[str, Any], moved: set[str], rules: rebates.RebateRules, as_of: str) -> Rows:
    """The statement lines of the ``moved`` months and of every later month of their quarters
    on record (a month's statement is its quarter to date)."""
    months: set[str] = set(moved)
    for month in moved:
        q = quarter_of_month(month)
        months |= {m for m in state["months"] if quarter_of_month(m) == q and m >= month}
    out: Rows = []
    for m in sorted(months):
        for n, ln in enumerate(rebates.quarter_lines(quarter_to(state, month=m), rules), 1):
            out.append(("rebate_lines", line_row(ln, m, n, as_of)))
    return out


def line_row(ln: dict[str, Any], month: str, n: int, as_of: str) -> dict[str, Any]:
    return {
        "distributor_id": ln["distributor_id"],
        "month": month,
        "quarter": ln["quarter"],
        "line_no": n,
        "rule": ln["rule"],
        "title": ln["title"],
        "base": str(ln["base"]),
        "rate": None if ln["rate"] is None else str(ln["rate"]),
        "amount": str(ln["amount"]),
        "met": int(ln.get("met", True)),
        "rule_version": ln["rule_version"],
        "inputs": orjson.dumps(ln["inputs"]).decode(),
        "as_of": as_of,
    }


def estimate(
    state: dict[str, Any], quarter: str, rules: rebates.RebateRules, order_id: str, row: dict[str, Any]
) -> dict[str, Any]:
    """The quarter's rebate so far, as the order that just came in leaves it."""
    lines = rebates.quarter_lines(quarter_to(state, quarter=quarter), rules)
    return {
        "order_id": order_id,
        "distributor_id": state["distributor_id"],
        "quarter": quarter,
        "estimate": str(rebates.total(lines)),
        "lines": [f"{ln['title']} ¥{ln['amount']:,}" for ln in lines if ln["amount"] or ln["rule"] == "quarterly_tier"],
        "rule_version": rules.version,
        "as_of": row["occurred_at"],
    }
