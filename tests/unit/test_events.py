import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jsonschema
import orjson
import pytest

from pipeline.intake import decode
from pipeline.simulate import generate
from schemas.events import EventError, Purchase, json_schemas


def purchase(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "event_id": "e-1",
        "event_type": "pos.purchase",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "source": "pos",
        "store_id": "S-SH-001",
        "customer_id": "C-1",
        "payload": {
            "order_id": "O-1",
            "total": "598.00",
            "lines": [
                {
                    "sku": "SKU-001",
                    "name": "阔腿裤",
                    "category": "裤装",
                    "size": "M",
                    "colour": "藏青",
                    "qty": 2,
                    "unit_price": "299.00",
                }
            ],
        },
    }
    doc.update(over)
    return doc


def test_valid_purchase_keeps_money_exact_and_time_zone_aware() -> None:
    ev = decode(orjson.dumps(purchase()), "pos.transactions", 65536)
    assert isinstance(ev.payload, Purchase)
    assert ev.payload.total == Decimal("598.00")
    assert ev.occurred_at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"", "empty"),
        (b"{not json", "malformed_json"),
        (b"\xff\xfe{}", "undecodable"),
        (b"[1,2]", "not_an_object"),
        (orjson.dumps(purchase(occurred_at="2026-11-20T10:00:00")), "invalid_envelope"),  # naive time
        (orjson.dumps(purchase(schema_version=7)), "unknown_schema_version"),
        (orjson.dumps(purchase(event_type="pos.teleport")), "unknown_event_type"),
        (orjson.dumps(purchase(customer_id=None)), "invalid_envelope"),
        (orjson.dumps(purchase(payload={"order_id": "O-1", "total": "1.00", "lines": []})), "invalid_payload"),
        (orjson.dumps(purchase(payload={**purchase()["payload"], "total": "1.00"})), "invalid_payload"),  # type: ignore[dict-item]
        (orjson.dumps(purchase(extra_field=1)), "invalid_envelope"),
        (b'{"pad": "' + b"x" * 70000 + b'"}', "oversize"),
    ],
)
def test_bad_events_are_rejected_with_a_kind_and_reason(raw: bytes, kind: str) -> None:
    with pytest.raises(EventError) as err:
        decode(raw, "pos.transactions", 65536)
    assert err.value.kind == kind
    assert str(err.value)


def test_event_on_the_wrong_topic_is_rejected() -> None:
    with pytest.raises(EventError) as err:
        decode(orjson.dumps(purchase()), "app.telemetry", 65536)
    assert err.value.kind == "wrong_topic"


def test_exported_json_schemas_accept_simulated_events_and_reject_broken_ones() -> None:
    schemas = json_schemas()
    validators = {name: jsonschema.Draft202012Validator(s) for name, s in schemas.items()}
    seen = set()
    now = datetime(2026, 11, 20, tzinfo=UTC)
    for _topic, _key, value, _ts in generate(3, days=2, now=now, customers=60, bad_rate=0.0):
        doc = json.loads(value)
        name = f"{doc['event_type']}.v{doc['schema_version']}"
        validators[name].validate(doc)
        seen.add(name)
    assert len(seen) >= 9
    bad = purchase()
    del bad["occurred_at"]
    assert not validators["pos.purchase.v1"].is_valid(bad)


def test_simulator_is_deterministic_for_a_seed() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    a = [v for _t, _k, v, _ts in generate(11, days=1, now=now, customers=40)]
    b = [v for _t, _k, v, _ts in generate(11, days=1, now=now, customers=40)]
    c = [v for _t, _k, v, _ts in generate(12, days=1, now=now, customers=40)]
    assert a == b
    assert a != c


def test_an_event_from_the_future_is_refused_with_a_reason() -> None:
    """9999-12-31 once moved the watermark to year 9999 and left the customer at_risk for good."""
    with pytest.raises(EventError, match="ahead of now") as refused:
        decode(orjson.dumps(purchase(occurred_at="9999-12-31T00:00:00+00:00")), "pos.transactions", 65_536)
    assert refused.value.kind == "future_event_time"
    soon = (datetime.now(UTC) + timedelta(minutes=50)).isoformat()  # a clock a little ahead: kept
    assert decode(orjson.dumps(purchase(occurred_at=soon)), "pos.transactions", 65_536).occurred_at.year >= 2026


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+00:00", "1970-01-01T00:00:00+00:00", "1999-12-31T15:59:59+00:00"]
)
def test_an_event_from_before_2000_is_refused_with_a_reason(when: str) -> None:
    """An unset terminal clock (the 1970 epoch, year 1): outside what the tables store faithfully."""
    with pytest.raises(EventError, match="before 2000-01-01") as refused:
        decode(orjson.dumps(purchase(occurred_at=when)), "pos.transactions", 65_536)
    assert refused.value.kind == "ancient_event_time"
    kept = decode(orjson.dumps(purchase(occurred_at="2000-01-01T00:00:00+00:00")), "pos.transactions", 65_536)
    assert kept.occurred_at.year == 2000
