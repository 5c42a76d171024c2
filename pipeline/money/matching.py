"""Three-way match of order, payments and invoices per contract, in event time (pure).

``status`` reads a contract's documents at a moment: green (order, invoices and payments all
on record and no two totals more than the tolerance apart), yellow (a document still missing
after its grace period), red (amounts apart by more than the tolerance, or an anomaly: an
invoice or a payment above the order, a payment or invoice with no order on record), or
pending (within the grace periods, nothing wrong yet). Reasons come with stable codes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline import rulefile
from pipeline.money.rebates import fen

COLOUR_ZH = {"green": "绿（已匹配）", "yellow": "黄（缺单据）", "red": "红（金额不符或异常）", "pending": "待齐"}


class MatchRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")
    tolerance: Decimal = Field(default=Decimal(500), ge=0)
    invoice_grace_days: float = Field(default=15, ge=0)
    payment_grace_days: float = Field(default=45, ge=0)
    orphan_grace_hours: float = Field(default=48, ge=0)


Loaded = rulefile.Loaded[MatchRules]
FILE = rulefile.Kind(MatchRules, "matching.yaml", "pipeline.money")
parse, shipped, load, successor = FILE.parse, FILE.shipped, FILE.load, FILE.successor


def new_contract(contract_id: str) -> dict[str, Any]:
    return {"contract_id": contract_id, "order": None, "payments": {}, "invoices": {}, "status": "", "codes": []}


def _sum(docs: dict[str, dict[str, Any]]) -> Decimal:
    return sum((Decimal(d["amount"]) for d in docs.values()), Decimal(0))


def _first(docs: dict[str, dict[str, Any]]) -> datetime | None:
    return min((datetime.fromisoformat(d["at"]) for d in docs.values()), default=None)


def _last(docs: dict[str, dict[str, Any]]) -> datetime | None:
    return max((datetime.fromisoformat(d["at"]) for d in docs.values()), default=None)


def deadlines(c: dict[str, Any], rules: MatchRules) -> list[datetime]:
    """The moments at which the contract's colour may turn with no new document: the grace
    periods' ends."""
    out = []
    if c["order"] is None:
        seen = min((t for t in (_first(c["payments"]), _first(c["invoices"])) if t is not None), default=None)
        if seen is not None:
            out.append(seen + timedelta(hours=rules.orphan_grace_hours))
        return out
    ordered_at = datetime.fromisoformat(c["order"]["at"])
    out.append(ordered_at + timedelta(days=rules.invoice_grace_days))
    out.append((_last(c["invoices"]) or ordered_at) + timedelta(days=rules.payment_grace_days))
    return sorted(out)


def status(c: dict[str, Any], at: datetime, rules: MatchRules) -> tuple[str, list[tuple[str, str]]]:
    """(colour, [(code, reason in Chinese)]) of a contract at ``at``."""
    tol = rules.tolerance
    paid, invoiced = _sum(c["payments"]), _sum(c["invoices"])
    if c["order"] is None:
        seen = min((t for t in (_first(c["payments"]), _first(c["invoices"])) if t is not None), default=None)
        if seen is None or at - seen < timedelta(hours=rules.orphan_grace_hours):
            return "pending", []
        out = []
        if c["payments"]:
            out.append(("payment_without_contract", f"收到回款 ¥{fen(paid):,} 但没有对应的合同/订单"))
        if c["invoices"]:
            out.append(("invoice_without_contract", f"开票 ¥{fen(invoiced):,} 但没有对应的合同/订单"))
        return "red", out
    amount = Decimal(c["order"]["amount"])
    ordered_at = datetime.fromisoformat(c["order"]["at"])
    red: list[tuple[str, str]] = []
    if invoiced - amount > tol:
        red.append(("invoice_above_order", f"开票 ¥{fen(invoiced):,} 高于订单 ¥{fen(amount):,}"))
    if paid - amount > tol:
        red.append(("payment_above_order", f"回款 ¥{fen(paid):,} 高于订单 ¥{fen(amount):,}"))
    if red:
        return "red", red
    invoices_due = at - ordered_at >= timedelta(days=rules.invoice_grace_days)
    last_invoice = _last(c["invoices"]) or ordered_at
    payments_due = c["invoices"] and at - last_invoice >= timedelta(days=rules.payment_grace_days)
    if c["invoices"] and c["payments"]:
        spread = max(amount, invoiced, paid) - min(amount, invoiced, paid)
        if spread <= tol:
            return "green", []
        if invoices_due and payments_due:
            return "red", [
                (
                    "amount_mismatch",
                    f"订单 ¥{fen(amount):,}、开票 ¥{fen(invoiced):,}、回款 ¥{fen(paid):,} "
                    f"相差 ¥{fen(spread):,}，超过 ¥{fen(tol):,}",
                )
            ]
    yellow: list[tuple[str, str]] = []
    if invoices_due and amount - invoiced > tol:
        yellow.append(
            ("invoice_missing", f"订单后 {rules.invoice_grace_days:g} 天仍缺发票 ¥{fen(amount - invoiced):,}")
        )
    if payments_due and min(amount, invoiced) - paid > tol:
        yellow.append(
            (
                "payment_missing",
                f"开票后 {rules.payment_grace_days:g} 天仍缺回款 ¥{fen(min(amount, invoiced) - paid):,}",
            )
        )
    return ("yellow", yellow) if yellow else ("pending", [])
