"""The money contracts (issue 14, work in progress): valid and invalid orders and payments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.money import Order, Payment


def order(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "order_id": "SO-1",
        "contract_id": "K-1",
        "rep_id": "R-001",
        "region": "华东",
        "lines": [{"product_line_id": "PL-BIO", "qty": 2, "unit_price": "38000.00"}],
        "amount": "76000.00",
        "promised_delivery": "2026-12-20",
    }
    doc.update(over)
    return doc


def test_an_order_must_add_up_and_payments_must_be_positive() -> None:
    assert Order.model_validate(order()).cash is True
    with pytest.raises(ValidationError, match="sum of lines"):
        Order.model_validate(order(amount="76000.01"))
    with pytest.raises(ValidationError):
        Payment.model_validate({"payment_id": "P-1", "amount": "0.00"})
