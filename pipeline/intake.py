"""Pure intake logic: decode, validate, mask, dead-letter records, customer profiles.

Kept apart from Faust so it is tested without a broker; the agents only wire it to topics.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from nlp.pii import Pii, mask_name, mask_phone
from schemas.events import CheckIn, CouponScan, Event, EventError, validate

RAW_KEEP_BYTES = 262_144  # a dead letter keeps up to 256 KiB of the raw payload


def decode(raw: bytes | None, topic: str, max_bytes: int) -> Event:
    """Bytes from a source topic -> validated event, or ``EventError`` with a reason."""
    if raw is None or len(raw) == 0:
        raise EventError("empty", "message has no value")
    if len(raw) > max_bytes:
        raise EventError("oversize", f"event is {len(raw)} bytes, limit is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventError("undecodable", f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventError("malformed_json", f"not JSON: {exc}") from None
    return validate(doc, expected_topic=topic)


def iso(ts: datetime) -> str:
    offset = ts.utcoffset()
    if offset is not None and not offset:  # already UTC (nearly every event): no new datetime
        return ts.isoformat(timespec="milliseconds")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


_now: list[Any] = [0, ""]  # (wall-clock millisecond, its text): rows stamped in one batch share it


def now_iso() -> str:
    ms = time.time_ns() // 1_000_000
    if ms != _now[0]:
        _now[0], _now[1] = ms, iso(datetime.fromtimestamp(ms / 1000, UTC))
    return str(_now[1])


def _identifier_key(key: str) -> bool:
    return key.endswith(("_id", "_no")) or key in ("sku", "coupon_code")


class Plain(str):
    """A payload value that was a number, date or time in the contract (money above all):
    written as text in JSON, but never free text, so never masked (a 5-digit amount is not
    a personal number)."""

    __slots__ = ()


def _plain(j: Any, py: Any) -> Any:
    """The JSON dump ``j`` with every string that is not a string in the python dump ``py`` marked."""
    if isinstance(j, str):
        return j if isinstance(py, str) else Plain(j)
    if isinstance(j, dict):
        return {k: _plain(v, py[k]) for k, v in j.items()}
    if isinstance(j, list):
        return [_plain(a, b) for a, b in zip(j, py, strict=True)]
    return j


def _mask_value(key: str, value: Any, pii: Pii) -> Any:
    if isinstance(value, Plain):
        return value
    if isinstance(value, str):
        return pii.identifier(value) if _identifier_key(key) else pii.scan(value)[0]
    if isinstance(value, dict):
        return {k: _mask_value(k, v, pii) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_value(key, v, pii) for v in value]
    return value


def masked_payload(event: Event, pii: Pii) -> dict[str, Any]:
    """The payload as JSON-ready data, every string value through one masking pass: free
    text masked in place, identifiers holding a personal value turned into keyed tokens,
    the phone field kept only as a masked display and a keyed token. Where free text was
    masked, ``masked_spans`` keeps the masked spans per field, so the tagger keeps out."""
    data: dict[str, Any] = event.payload.model_dump(mode="json")
    phone = data.pop("phone", None)
    name = data.pop("name", None) if isinstance(event.payload, CheckIn) else None  # a till's name: masked whole
    spans: dict[str, list[list[int]]] = {}
    if not pii.might_hold(orjson.dumps(data).decode()):
        items: Any = ()  # nothing in this payload can be personal: no field-by-field pass
    else:
        data = _plain(data, {**event.payload.model_dump(), "phone": phone} if phone else event.payload.model_dump())
        data.pop("phone", None)
        items = list(data.items())
    for key, value in items:
        if isinstance(value, Plain):
            continue
        if isinstance(value, str):
            if _identifier_key(key):
                data[key] = pii.identifier(value)
                continue
            masked, found = pii.scan(value)
            data[key] = masked
            if found:
                spans[key] = [[f.start, f.end] for f in found]
        elif isinstance(value, dict | list):
            data[key] = _mask_value(key, value, pii)
    if phone:
        data["phone_masked"] = mask_phone(phone)
        data["phone_hmac"] = pii.phone_token(phone)
    if name:
        data["name"] = mask_name(name, data.get("gender"))
    if spans:
        data["masked_spans"] = spans
    return data


def accepted_row(event: Event, pii: Pii) -> dict[str, Any]:
    """A row of the ``events`` table."""
    return accepted(event, pii)[0]


def accepted(event: Event, pii: Pii) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the ``events`` row, its masked payload as data): the folds read the data, so the
    payload text is never parsed back."""
    env = event.envelope
    for name, value in (("customer_id", env.customer_id), ("store_id", env.store_id), ("account_id", env.account_id)):
        if value and pii.identifier(value) != value:
            # The partition key: a token would move the customer to another partition than
            # the producer's key put them on (and alert actions, keyed by the token, with them).
            raise EventError(
                "personal_identifier",
                f"{name} holds a personal number (phone, ID, card, e-mail): use a member, CRM or store "
                "code; the event is kept here with the number masked",
            )
    payload = masked_payload(event, pii)
    row = {
        "event_id": pii.identifier(env.event_id),
        "event_type": env.event_type,
        "schema_version": env.schema_version,
        "occurred_at": iso(env.occurred_at),
        "ingested_at": now_iso(),
        "source": pii.scan(env.source)[0],
        "store_id": env.store_id or "",
        "customer_id": env.customer_id or "",
        "account_id": env.account_id or "",
        "payload": orjson.dumps(payload).decode(),
    }
    return row, payload


def _header_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def deadletter_record(
    raw: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    stage: str,
    error_class: str,
    message: str,
    pii: Pii,
    headers: Any = None,
) -> dict[str, Any]:
    """A dead letter: the (masked) raw payload and where it came from, never the raw PII."""
    raw = raw or b""
    text = raw[:RAW_KEEP_BYTES].decode("utf-8", "backslashreplace")
    masked, _ = pii.mask_text(text)
    event_id = ""
    try:
        doc = orjson.loads(raw) if len(raw) <= RAW_KEEP_BYTES else None
        if isinstance(doc, dict) and isinstance(doc.get("event_id"), str):
            event_id = doc["event_id"][:64]
    except orjson.JSONDecodeError:
        pass
    hdrs: dict[str, str] = {}
    if headers:
        items = headers.items() if isinstance(headers, dict) else headers
        hdrs = {str(k): pii.mask_text(_header_text(v))[0] for k, v in items}
    return {
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "stage": stage,
        "error_class": error_class,
        "error_message": pii.mask_text(message)[0][:2000],
        "event_id": event_id,
        "raw_payload": masked,
        "raw_size": len(raw),
        "raw_truncated": int(len(raw) > RAW_KEEP_BYTES),
        "headers": orjson.dumps(hdrs).decode(),
        "failed_at": now_iso(),
    }


def deadletter_headers(rec: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Kafka headers on the dead-letter message so tools can route without parsing it."""
    keys = ("source_topic", "source_partition", "source_offset", "stage", "error_class", "error_message")
    return [(k, str(rec[k])[:1000].encode()) for k in keys]


# --- customer profiles ------------------------------------------------------------------

_PROFILE_EVENTS = ("pos.coupon_scan", "pos.checkin")


def apply_to_profile(
    profile: dict[str, Any] | None,
    event: Event,
    pii: Pii,
    *,
    source: str,
    offset: int,
    occurred: str | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """Fold one event into a customer's profile; return (profile, changed).

    Idempotent: ``applied`` keeps, per source topic-partition, the last offset folded in,
    and anything at or below it is ignored, so a replay after a crash changes nothing.
    ``last_seen_at`` is the newest event time, whatever order the events arrive in (the
    state is written once per flush interval, not per event, so this costs no writes).
    """
    env = event.envelope
    if not env.customer_id:
        return profile, False
    # "Seen at" a store only from the till (POS and check-in): a note or a message that names
    # a store does not make the customer that store's (store scope reads it).
    at_till = env.store_id and env.event_type.startswith("pos.")
    store_id = env.store_id if at_till and env.store_id else ""
    if profile is not None and profile["applied"].get(source, -1) >= offset:
        return profile, False
    seen = occurred if occurred is not None else iso(env.occurred_at)
    changed = False
    if profile is None:
        profile = {
            "customer_id": env.customer_id,
            "segment": "unknown",
            "member_no": "",
            "display_name": "",
            "phone_masked": "",
            "phone_hmac": "",
            "first_store_id": store_id,
            "_first_store_at": seen,
            "first_seen_at": seen,
            "last_seen_at": seen,
            "created_by": env.event_type,
            "is_key_contact": 0,
            "consent_marketing": 0,
            "opted_out": 0,
            "version": 0,
            "applied": {},
        }
        changed = True
    else:
        profile = {**profile, "applied": dict(profile["applied"])}
    # First seen, first store and the creating event are those of the earliest event (in
    # event time), so every arrival order of the same events gives the same profile.
    if seen < profile["first_seen_at"]:
        profile["first_seen_at"] = seen
        profile["created_by"] = env.event_type
        changed = True
    if store_id and (not profile["first_store_id"] or seen < profile.get("_first_store_at", seen)):
        profile["first_store_id"] = store_id
        profile["_first_store_at"] = seen
        changed = True
    if seen > profile["last_seen_at"]:
        profile["last_seen_at"] = seen
        changed = True
    p = event.payload
    if isinstance(p, CouponScan | CheckIn):
        updates: dict[str, Any] = {"segment": p.segment, "is_key_contact": int(p.is_key_contact)}
        if p.member_no:
            updates["member_no"] = pii.identifier(p.member_no)
        if p.name:
            updates["display_name"] = mask_name(p.name, p.gender)
        if p.phone:
            updates["phone_masked"] = mask_phone(p.phone)
            updates["phone_hmac"] = pii.phone_token(p.phone)
        if p.consent_marketing is not None:
            updates["consent_marketing"] = int(p.consent_marketing)
        if p.opted_out is not None:
            updates["opted_out"] = int(p.opted_out)
        for key, value in updates.items():
            if profile.get(key) != value:  # .get: a profile from before the field
                profile[key] = value
                changed = True
    profile["applied"][source] = offset
    if changed:
        profile["version"] += 1
    return profile, changed


def profile_row(profile: dict[str, Any]) -> dict[str, Any]:
    """The ``customers`` row for a profile (state bookkeeping left out)."""
    row = {k: v for k, v in profile.items() if k != "applied" and not k.startswith("_")}
    row.setdefault("display_name", "")  # a profile kept from before names
    row["updated_at"] = now_iso()
    return row
