"""Event contracts producers must follow.

Every event is a JSON envelope; ``(event_type, schema_version)`` selects the payload
model. Validation is strict (unknown fields are rejected) so a producer bug surfaces as a
dead letter with a reason instead of silently-wrong state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidationError, model_validator

__all__ = [
    "EVENT_TOPICS",
    "PAYLOADS",
    "AlertAction",
    "Envelope",
    "EventError",
    "ValidationError",
]

from schemas.base import Id, Money, _Strict
from schemas.crm import CRM_PAYLOADS, CRM_TOPICS, NEEDS_ACCOUNT
from schemas.money import MONEY_PAYLOADS, MONEY_TOPICS, UNKEYED


class BasketLine(_Strict):
    sku: Id
    name: str = Field(max_length=120)
    category: str = Field(max_length=40)
    size: str = Field(max_length=16)
    colour: str = Field(max_length=16)
    qty: int = Field(ge=1, le=999)
    unit_price: Money = Field(ge=0)


class Purchase(_Strict):
    order_id: Id
    lines: list[BasketLine] = Field(min_length=1, max_length=200)
    total: Money = Field(ge=0)
    associate_id: Id | None = None

    @model_validator(mode="after")
    def _total_matches_lines(self) -> Purchase:
        expected = sum((ln.unit_price * ln.qty for ln in self.lines), Decimal("0"))
        if expected != self.total:
            raise ValueError(f"total {self.total} != sum of lines {expected}")
        return self


class Return(_Strict):
    order_id: Id
    original_order_id: Id | None = None
    lines: list[BasketLine] = Field(min_length=1, max_length=200)
    refund: Money = Field(ge=0)
    reason: str = Field(default="", max_length=200)


class CheckIn(_Strict):
    """A member or contact identifies themselves; the first one creates the profile."""

    member_no: Id | None = None
    name: str | None = Field(default=None, max_length=40)  # kept only masked (王女士)
    gender: Literal["F", "M"] | None = None
    phone: str | None = Field(default=None, pattern=r"^1[3-9]\d{9}$")
    segment: Literal["retail_member", "b2b_contact"] = "retail_member"
    is_key_contact: bool = False
    consent_marketing: bool | None = None
    opted_out: bool | None = None


class CouponScan(CheckIn):
    coupon_code: Id


class StockLevel(_Strict):
    sku: Id
    name: str | None = Field(default=None, max_length=120)  # product name: its category is read from it
    category: str | None = Field(default=None, max_length=40)
    size: str = Field(max_length=16)
    colour: str = Field(max_length=16)
    on_hand: int = Field(ge=0, le=1_000_000)


class Login(_Strict):
    device: Literal["ios", "android", "web", "pc"] = "web"


class MaterialView(_Strict):
    material_id: Id
    title: str = Field(max_length=200)
    dwell_seconds: float = Field(ge=0, le=86_400)
    pages_read: int = Field(ge=0, le=10_000)
    pages_total: int = Field(ge=1, le=10_000)
    scroll_pct: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _pages(self) -> MaterialView:
        if self.pages_read > self.pages_total:
            raise ValueError("pages_read exceeds pages_total")
        return self


class DocumentClick(_Strict):
    document_id: Id
    title: str = Field(max_length=200)


class Outbound(_Strict):
    conversation_id: Id
    channel: Literal["wecom", "dingtalk", "sms"]
    sender_id: Id
    text: str = Field(max_length=4000)


class Reply(_Strict):
    conversation_id: Id
    channel: Literal["wecom", "dingtalk", "sms"]
    text: str = Field(max_length=4000)


class Note(_Strict):
    note_id: Id
    associate_id: Id
    text: str = Field(max_length=4000)


class AlertAction(_Strict):
    """A person acknowledges or resolves an alert; key and customer_id = the alert's customer."""

    alert_id: str = Field(min_length=12, max_length=200)
    action: Literal["acknowledge", "resolve"]
    by: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")  # a staff id or name (audit)
    note: str = Field(default="", max_length=500)


def alert_customer(alert_id: str) -> str:
    """The customer an alert id (``customer:rule:YYYYMMDD``) belongs to."""
    parts = alert_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or len(parts[2]) != 8 or not parts[2].isdigit():
        raise ValueError(f"not an alert id: {alert_id!r}")
    return parts[0]


class Envelope(_Strict):
    """The common envelope; ``payload`` is validated separately against ``PAYLOADS``."""

    event_id: Id
    event_type: str = Field(max_length=64)
    schema_version: int = Field(ge=1, le=1000)
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=64)
    store_id: Id | None = None
    customer_id: Id | None = None
    account_id: Id | None = None  # CRM events: the hospital or company account (their key)
    payload: dict[str, Any]


# (event_type, schema_version) -> (payload model, topic suffix, needs customer_id, needs store_id)
PAYLOADS: dict[tuple[str, int], tuple[type[_Strict], str, bool, bool]] = {
    ("pos.purchase", 1): (Purchase, "pos.transactions", True, True),
    ("pos.return", 1): (Return, "pos.transactions", True, True),
    ("pos.coupon_scan", 1): (CouponScan, "pos.transactions", True, True),
    ("pos.checkin", 1): (CheckIn, "pos.transactions", True, True),
    ("pos.stock_level", 1): (StockLevel, "pos.inventory", False, True),
    ("app.login", 1): (Login, "app.telemetry", True, False),
    ("app.material_view", 1): (MaterialView, "app.telemetry", True, False),
    ("app.document_click", 1): (DocumentClick, "app.telemetry", True, False),
    ("messaging.outbound", 1): (Outbound, "messaging.events", True, False),
    ("messaging.reply", 1): (Reply, "messaging.events", True, False),
    ("store.note", 1): (Note, "store.notes", True, True),
    ("alert.action", 1): (AlertAction, "alert.actions", True, False),
    **CRM_PAYLOADS,
    **MONEY_PAYLOADS,
}

EVENT_TOPICS: tuple[str, ...] = (
    "pos.transactions",
    "pos.inventory",
    "app.telemetry",
    "messaging.events",
    "store.notes",
    "alert.actions",
    *CRM_TOPICS,
    *MONEY_TOPICS,
)


MONEY_PAYLOADS_TYPES = frozenset(t for (t, _v) in MONEY_PAYLOADS if t not in UNKEYED)  # keyed by the distributor
MAX_CLOCK_AHEAD = timedelta(hours=1)  # producers' clocks may run this far ahead of ours
# A fixed floor, not "now minus N": a replay next year must accept what was accepted today.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)


class EventError(ValueError):
    """A rejected event; ``kind`` is a stable machine-readable class for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Event:
    """A validated event: envelope plus its typed payload."""

    __slots__ = ("envelope", "payload", "topic")

    def __init__(self, envelope: Envelope, payload: _Strict, topic: str) -> None:
        self.envelope = envelope
        self.payload = payload
        self.topic = topic

    @property
    def occurred_at(self) -> datetime:
        return self.envelope.occurred_at


def validate(doc: Any, expected_topic: str | None = None) -> Event:
    """Validate a decoded JSON document; raise ``EventError`` with a reason."""
    if not isinstance(doc, dict):
        raise EventError("not_an_object", f"event must be a JSON object, got {type(doc).__name__}")
    try:
        env = Envelope.model_validate(doc)
    except ValidationError as exc:
        raise EventError("invalid_envelope", _short(exc)) from None
    if env.occurred_at > datetime.now(UTC) + MAX_CLOCK_AHEAD:
        # An event from the future (a typo such as 9999-12-31, a terminal's wrong clock) would
        # move the event-time watermark past every real event and freeze the customer's state.
        raise EventError(
            "future_event_time",
            f"occurred_at {env.occurred_at.isoformat()} is more than {MAX_CLOCK_AHEAD} ahead of now: check the "
            "producer's clock",
        )
    if env.occurred_at < EARLIEST_EVENT_TIME:
        # 0001-01-01 or a 1970 epoch from an unset clock: outside what the tables store faithfully.
        raise EventError(
            "ancient_event_time",
            f"occurred_at {env.occurred_at.isoformat()} is before {EARLIEST_EVENT_TIME.date()}: "
            "check the producer's clock",
        )
    spec = PAYLOADS.get((env.event_type, env.schema_version))
    if spec is None:
        known = sorted(v for (t, v) in PAYLOADS if t == env.event_type)
        if known:
            raise EventError(
                "unknown_schema_version",
                f"{env.event_type} schema_version {env.schema_version} unsupported (known: {known})",
            )
        raise EventError("unknown_event_type", f"unknown event_type {env.event_type!r}")
    model, topic, needs_customer, needs_store = spec
    if expected_topic is not None and topic != expected_topic:
        raise EventError("wrong_topic", f"{env.event_type} belongs on {topic}, not {expected_topic}")
    if needs_customer and not env.customer_id:
        raise EventError("invalid_envelope", f"{env.event_type} requires customer_id")
    if needs_store and not env.store_id:
        raise EventError("invalid_envelope", f"{env.event_type} requires store_id")
    if (env.event_type in NEEDS_ACCOUNT or env.event_type in MONEY_PAYLOADS_TYPES) and not env.account_id:
        raise EventError("invalid_envelope", f"{env.event_type} requires account_id")
    try:
        payload = model.model_validate(env.payload)
    except ValidationError as exc:
        raise EventError("invalid_payload", _short(exc)) from None
    if isinstance(payload, AlertAction):
        try:
            owner = alert_customer(payload.alert_id)
        except ValueError as exc:
            raise EventError("invalid_payload", str(exc)) from None
        if owner != env.customer_id:
            raise EventError("invalid_envelope", f"alert {payload.alert_id} belongs to {owner}, not {env.customer_id}")
    return Event(env, payload, topic)


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - 5
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per (event_type, version): the envelope with its payload inlined."""
    out: dict[str, dict[str, Any]] = {}
    env_schema = Envelope.model_json_schema()
    for (etype, version), (model, topic, needs_customer, needs_store) in sorted(PAYLOADS.items()):
        schema = dict(env_schema)
        props = dict(schema["properties"])
        props["event_type"] = {"const": etype, "type": "string"}
        props["schema_version"] = {"const": version, "type": "integer"}
        payload_schema = model.model_json_schema()
        defs = payload_schema.pop("$defs", {})
        props["payload"] = payload_schema
        schema["properties"] = props
        required = set(schema.get("required", []))
        if needs_customer:
            required.add("customer_id")
        if needs_store:
            required.add("store_id")
        keyed_by_account = etype in NEEDS_ACCOUNT or etype in MONEY_PAYLOADS_TYPES
        if keyed_by_account:
            required.add("account_id")
        schema["required"] = sorted(required)
        if defs:
            schema["$defs"] = defs
        schema["title"] = f"{etype} v{version}"
        key = "account_id" if keyed_by_account else "product_line_id" if topic == "crm.catalogue" else None
        key = key or ("rep_id" if etype == "money.forecast" else None)
        key = key or ("store_id" if topic == "pos.inventory" else "customer_id")
        schema["description"] = f"Send on topic {topic}; key = {key}."
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[f"{etype}.v{version}"] = schema
    return out
