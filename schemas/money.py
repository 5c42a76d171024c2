"""Money contracts of the B2B book (issue 14): orders, payments, invoices, deliveries and
service tickets, keyed by the distributor (``account_id`` in the envelope is the distributor's
account), so a distributor's rebate quarter and the three-way match of each of its contracts
live in one state record; and reps' collection forecasts, which need no account."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Id, Money, _Strict
from schemas.crm import QuoteLine

MONEY_TOPICS: tuple[str, ...] = (
    "money.orders",
    "money.payments",
    "money.invoices",
    "money.deliveries",
    "service.tickets",
    "money.forecasts",
)


class Order(_Strict):
    """A distributor's order under a contract (销售订单)."""

    order_id: Id
    contract_id: Id
    hospital_account_id: Id | None = None  # the end customer, when known
    opportunity_id: Id | None = None
    rep_id: Id
    region: str = Field(min_length=1, max_length=16)
    lines: list[QuoteLine] = Field(min_length=1, max_length=100)
    amount: Money = Field(ge=0)
    repeat_customer: bool = False  # a repeat order of an existing customer
    scheduled_for_production: bool = True  # 已排产
    cash: bool = True  # 现金订单 (not barter, credit notes or samples)
    promised_delivery: date

    @model_validator(mode="after")
    def _amount(self) -> Order:
        expected = sum((ln.unit_price * ln.qty for ln in self.lines), Decimal("0"))
        if expected != self.amount:
            raise ValueError(f"amount {self.amount} != sum of lines {expected}")
        return self


class Payment(_Strict):
    """Money received (回款), against a contract when the bank slip names one."""

    payment_id: Id
    contract_id: Id | None = None
    invoice_id: Id | None = None
    amount: Money = Field(gt=0)


class Invoice(_Strict):
    """An invoice issued (开票) for a contract."""

    invoice_id: Id
    contract_id: Id
    amount: Money = Field(gt=0)
    due_on: date


class Delivery(_Strict):
    delivery_id: Id
    contract_id: Id
    promised_on: date
    delivered_on: date


class ServiceTicket(_Strict):
    """An equipment fault and the first remote response (tender evidence)."""

    ticket_id: Id
    hospital_account_id: Id
    product_line_id: Id
    step: Literal["fault_reported", "first_remote_response", "resolved"]


class Forecast(_Strict):
    """A rep's forecast of the collections (回款) they expect within the next ``horizon_days``."""

    forecast_id: Id
    rep_id: Id
    region: str = Field(min_length=1, max_length=16)
    amount: Money = Field(gt=0)
    horizon_days: int = Field(default=30, ge=1, le=366)


MONEY_PAYLOADS: dict[tuple[str, int], tuple[type[_Strict], str, bool, bool]] = {
    ("money.order", 1): (Order, "money.orders", False, False),
    ("money.payment", 1): (Payment, "money.payments", False, False),
    ("money.invoice", 1): (Invoice, "money.invoices", False, False),
    ("money.delivery", 1): (Delivery, "money.deliveries", False, False),
    ("service.ticket", 1): (ServiceTicket, "service.tickets", False, False),
    ("money.forecast", 1): (Forecast, "money.forecasts", False, False),
}
UNKEYED: frozenset[str] = frozenset({"money.forecast"})  # a rep's, across distributors
