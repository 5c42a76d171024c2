"""Distributor rebates from declared, versioned rules: quarterly tiers, a new-product bonus,
a payment-timeliness bonus and conditional coefficients (e.g. collections >= 85% of
receivables AND new-product purchases >= ¥300,000 -> x1.2).

Pure and in Decimal throughout: ``quarter_lines`` turns a distributor's quarter (the sums the
stream keeps from order, payment and invoice events) into statement lines, each naming its
rule, the rule file's version and the inputs it used, so a statement is reproduced from the
events by the same function. Every line is rounded to the fen, half up, as finance books it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline import rulefile

FEN = Decimal("0.01")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    from_: Decimal = Field(alias="from", ge=0)
    rate: Decimal = Field(ge=0, le=1)


class NewProductBonus(_Strict):
    """On purchases of the product lines finance declares new for the period."""

    rate: Decimal = Field(ge=0, le=1)
    product_lines: list[str] = Field(min_length=1)


class Bonus(_Strict):
    """On collections received within ``due_days`` of their invoice."""

    rate: Decimal = Field(ge=0, le=1)
    due_days: int = Field(default=30, ge=0)


class Condition(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    collections_ratio_at_least: Decimal | None = Field(default=None, ge=0, le=1)
    new_product_purchases_at_least: Decimal | None = Field(default=None, ge=0)
    purchases_at_least: Decimal | None = Field(default=None, ge=0)
    coefficient: Decimal = Field(gt=0, le=10)


class RebateRules(_Strict):
    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:\-]+$")
    tier_mode: Literal["whole", "marginal"] = "whole"
    quarterly_tiers: list[Tier] = Field(min_length=1)
    new_product_bonus: NewProductBonus | None = None
    payment_timeliness_bonus: Bonus | None = None
    conditions: list[Condition] = []

    @model_validator(mode="after")
    def _tiers(self) -> RebateRules:
        starts = [t.from_ for t in self.quarterly_tiers]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError("quarterly_tiers must start at 0 and rise strictly")
        return self


Loaded = rulefile.Loaded[RebateRules]
FILE = rulefile.Kind(RebateRules, "rebates.yaml", "pipeline.money")
parse, shipped, load, successor = FILE.parse, FILE.shipped, FILE.load, FILE.successor


@dataclass(frozen=True)
class Quarter:
    """What a distributor did in a quarter, summed from its events (yuan, Decimal)."""

    distributor_id: str
    quarter: str  # e.g. 2026-Q4
    purchases: Decimal  # orders net of returns
    new_product_purchases: Decimal  # of the product lines the rules declare new
    receivables: Decimal  # invoiced and due in the quarter
    collections: Decimal  # received against those receivables
    on_time_collections: Decimal  # received within due_days of the invoice


def fen(v: Decimal) -> Decimal:
    return v.quantize(FEN, rounding=ROUND_HALF_UP)


def tier_amount(purchases: Decimal, rules: RebateRules) -> tuple[Decimal, str]:
    """The tier rebate and which tier(s) it came from."""
    tiers = rules.quarterly_tiers
    if rules.tier_mode == "whole":
        reached = [t for t in tiers if purchases >= t.from_][-1]
        return fen(purchases * reached.rate), f"满¥{reached.from_:,.0f}档 {pct(reached.rate)}"
    total = Decimal(0)
    for i, t in enumerate(tiers):
        upper = tiers[i + 1].from_ if i + 1 < len(tiers) else None
        part = (min(purchases, upper) if upper is not None else purchases) - t.from_
        if part > 0:
            total += part * t.rate
    return fen(total), "分段累进"


def pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def collections_ratio(q: Quarter) -> Decimal:
    return Decimal(1) if q.receivables == 0 else q.collections / q.receivables


def quarter_lines(q: Quarter, rules: RebateRules) -> list[dict[str, Any]]:
    """The statement lines of one distributor's quarter (amounts in Decimal)."""
    lines: list[dict[str, Any]] = []

    def line(rule: str, title: str, base: Decimal, rate: Decimal | None, amount: Decimal, **inputs: Any) -> None:
        lines.append(
            {
                "distributor_id": q.distributor_id,
                "quarter": q.quarter,
                "rule": rule,
                "title": title,
                "base": fen(base),
                "rate": rate,
                "amount": fen(amount),
                "rule_version": rules.version,
                "inputs": {k: str(v) for k, v in inputs.items()},
            }
        )

    amount, which = tier_amount(q.purchases, rules)
    line("quarterly_tier", f"季度阶梯返点（{which}）", q.purchases, None, amount, purchases=q.purchases)
    if rules.new_product_bonus is not None:
        nb = rules.new_product_bonus
        line(
            "new_product_bonus",
            "新品奖励",
            q.new_product_purchases,
            nb.rate,
            q.new_product_purchases * nb.rate,
            new_product_purchases=q.new_product_purchases,
            product_lines="/".join(nb.product_lines),
        )
    if rules.payment_timeliness_bonus is not None:
        b = rules.payment_timeliness_bonus
        line(
            "payment_timeliness_bonus",
            f"回款及时奖励（{b.due_days}天内）",
            q.on_time_collections,
            b.rate,
            q.on_time_collections * b.rate,
            on_time_collections=q.on_time_collections,
            due_days=b.due_days,
        )
    subtotal = sum((ln["amount"] for ln in lines), Decimal(0))
    ratio = collections_ratio(q)
    met = [c for c in rules.conditions if _holds(c, q, ratio)]
    best = max(met, key=lambda c: c.coefficient) if met else None
    for c in rules.conditions:  # every condition has its line, met or not, so a statement shows why
        applies = c is best
        state = "达标" if applies else "已达标，取更高系数" if c in met else "未达标"
        line(
            f"condition:{c.id}",
            f"达标系数 ×{c.coefficient}（{state}）",
            subtotal,
            c.coefficient - 1,
            subtotal * (c.coefficient - 1) if applies else Decimal(0),
            collections=q.collections,
            receivables=q.receivables,
            collections_ratio=ratio.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
            new_product_purchases=q.new_product_purchases,
            purchases=q.purchases,
        )
        lines[-1]["met"] = applies
    return lines


def _holds(c: Condition, q: Quarter, ratio: Decimal) -> bool:
    if c.collections_ratio_at_least is not None and ratio < c.collections_ratio_at_least:
        return False
    if c.new_product_purchases_at_least is not None and q.new_product_purchases < c.new_product_purchases_at_least:
        return False
    return not (c.purchases_at_least is not None and q.purchases < c.purchases_at_least)


def total(lines: list[dict[str, Any]]) -> Decimal:
    return sum((ln["amount"] for ln in lines), Decimal(0))
