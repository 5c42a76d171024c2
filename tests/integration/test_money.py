"""Work in progress (issue 14): raw orders, invoices and payments to rebate estimates and
three-way match rows, on the real Kafka and chDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until
from tests.integration.test_deals import send

pytestmark = pytest.mark.integration
T0 = datetime(2026, 10, 8, 2, tzinfo=UTC)


def ev(
    n: int, topic: str, etype: str, payload: dict[str, Any], at: datetime, account: str = "D-1"
) -> tuple[str, bytes, bytes]:
    doc = {
        "event_id": f"m-{n}",
        "event_type": etype,
        "schema_version": 1,
        "occurred_at": at.isoformat(),
        "source": "erp",
        "account_id": account,
        "payload": payload,
    }
    return topic, account.encode(), orjson.dumps(doc)


def test_orders_invoices_and_payments_become_estimates_and_match_colours(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    lines = [{"product_line_id": "PL-BIO", "qty": 10, "unit_price": "60000.00"}]
    order = {"order_id": "SO-1", "contract_id": "K-1", "rep_id": "R-1", "region": "华东", "lines": lines}
    order |= {"amount": "600000.00", "promised_delivery": "2026-11-01"}
    over = {**order, "order_id": "SO-2", "contract_id": "K-2", "lines": [{**lines[0], "qty": 1}], "amount": "60000.00"}
    send(
        settings,
        [
            ev(1, "money.orders", "money.order", order, T0),
            ev(
                2,
                "money.invoices",
                "money.invoice",
                {"invoice_id": "I-1", "contract_id": "K-1", "amount": "600000.00", "due_on": "2026-11-08"},
                T0 + timedelta(days=2),
            ),
            ev(
                3,
                "money.payments",
                "money.payment",
                {"payment_id": "P-1", "contract_id": "K-1", "invoice_id": "I-1", "amount": "599500.00"},
                T0 + timedelta(days=20),
            ),
            ev(4, "money.orders", "money.order", over, T0 + timedelta(days=1)),
            ev(
                5,
                "money.invoices",
                "money.invoice",
                {"invoice_id": "I-2", "contract_id": "K-2", "amount": "60500.01", "due_on": "2026-11-08"},
                T0 + timedelta(days=3),
            ),
        ],
    )
    worker(model_dir=tmp_path)
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM three_way_match") >= 4, what="match rows")
    latest = dict(
        db.query(
            "SELECT contract_id, argMax(status, changed_at) FROM three_way_match FINAL GROUP BY contract_id"
        ).result_rows
    )
    assert latest == {"K-1": "green", "K-2": "red"}  # ¥500.00 short is matched; ¥500.01 above the order is not
    est = db.query("SELECT estimate FROM rebate_estimates FINAL WHERE order_id = 'SO-2'").result_rows
    assert [str(e[0]) for e in est] == ["13200.00"]  # 660,000 in the quarter: the 2% tier
