"""Issue 14: raw orders, invoices and payments to rebate estimates, statement lines and
three-way match rows, on the real Kafka and chDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
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


def order_of(oid: str, contract: str, amount: str, product: str, **kw: Any) -> dict[str, Any]:
    return {
        "order_id": oid,
        "contract_id": contract,
        "rep_id": "R-1",
        "region": "华东",
        "hospital_account_id": "H-1",
        "lines": [{"product_line_id": product, "qty": 1, "unit_price": amount}],
        "amount": amount,
        "promised_delivery": "2026-11-01",
        **kw,
    }


def test_rebate_lines_in_clickhouse_hold_the_condition_boundaries_and_time_turns_colours(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    """Three distributors, one quarter each: 1,000,000 invoiced and 300,000 of new products
    (PL-POC, declared new), collecting 84.99% / 85.00%; a third with 299,999.99 of new products
    collecting 85.00%. Only the second gets the x1.2 line. A fourth distributor's order is never
    invoiced: it turns yellow at day 15 although that distributor sends nothing more."""
    events: list[tuple[str, bytes, bytes]] = []
    n = 0

    def add(topic: str, etype: str, payload: dict[str, Any], at: datetime, account: str) -> None:
        nonlocal n
        n += 1
        events.append(ev(n, topic, etype, payload, at, account))

    for account, collected, new in (
        ("D-84", "849900.00", "300000.00"),
        ("D-85", "850000.00", "300000.00"),
        ("D-NP", "850000.00", "299999.99"),
    ):
        old = str(Decimal("1000000.00") - Decimal(new))
        add("money.orders", "money.order", order_of(f"{account}-SO1", f"{account}-K1", new, "PL-POC"), T0, account)
        add("money.orders", "money.order", order_of(f"{account}-SO2", f"{account}-K2", old, "PL-BIO"), T0, account)
        for k, amount in ((1, new), (2, old)):
            add(
                "money.invoices",
                "money.invoice",
                {
                    "invoice_id": f"{account}-I{k}",
                    "contract_id": f"{account}-K{k}",
                    "amount": amount,
                    "due_on": "2026-11-30",
                },
                T0 + timedelta(days=1),
                account,
            )
        add(
            "money.payments",
            "money.payment",
            {
                "payment_id": f"{account}-P1",
                "contract_id": f"{account}-K2",
                "invoice_id": f"{account}-I2",
                "amount": collected,
            },
            T0 + timedelta(days=40),
            account,
        )
    add("money.orders", "money.order", order_of("D-Y-SO1", "D-Y-K1", "50000.00", "PL-BIO"), T0, "D-Y")
    add(
        "money.forecasts",
        "money.forecast",
        {"forecast_id": "F-1", "rep_id": "R-1", "region": "华东", "amount": "900000.00"},
        T0 + timedelta(days=10),
        "R-1",
    )
    send(settings, events)
    worker(model_dir=tmp_path)
    sink()
    wait_until(
        lambda: (
            count(db, "SELECT count() FROM three_way_match WHERE contract_id = 'D-Y-K1' AND status = 'yellow'") >= 1
        ),
        what="the yellow turn of a contract whose distributor sent nothing more",
    )
    changed = db.query(
        "SELECT changed_at FROM three_way_match FINAL WHERE contract_id = 'D-Y-K1' AND status = 'yellow'"
    ).result_rows
    assert [c[0].replace(tzinfo=UTC) for c in changed] == [T0 + timedelta(days=15)]  # at its moment, in event time
    wait_until(lambda: count(db, "SELECT count() FROM money_forecasts") >= 1, what="the forecast row")

    def condition(account: str) -> tuple[int, Decimal]:
        rows = db.query(
            "SELECT met, amount FROM rebate_lines FINAL WHERE distributor_id = {d:String} "
            "AND month = '2026-11' AND rule = 'condition:collections_and_new_products'",
            parameters={"d": account},
        ).result_rows
        assert len(rows) == 1, rows
        return rows[0][0], rows[0][1]

    wait_until(
        lambda: count(db, "SELECT count() FROM rebate_lines WHERE month = '2026-11'") >= 12, what="November lines"
    )
    # 1,000,000: the 3% tier = 30,000; new products 1% of 300,000 = 3,000 (or 2,999.9999 -> 3,000.00)
    assert condition("D-84") == (0, Decimal(0))  # 84.99% collected
    assert condition("D-85") == (1, Decimal("6600.00"))  # 85.00%: (30,000 + 3,000 + 0 on time) x 0.2
    assert condition("D-NP") == (0, Decimal(0))  # ¥299,999.99 of new products
    versions = db.query("SELECT DISTINCT rule_version FROM rebate_lines").result_rows
    assert versions == [("2026-Q4.2",)]
    orders = db.query(
        "SELECT sum(amount), sum(new_product) FROM money_orders FINAL WHERE distributor_id = 'D-85'"
    ).result_rows
    assert orders == [(Decimal("1000000.00"), 1)]
