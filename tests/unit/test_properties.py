"""Property-based checks (issue 15) over what every event passes through: the contracts, the
masker plus the tagger, and the intake of a whole event. Hypothesis writes the input; the
properties are what a user relies on whatever arrives: a clear refusal or a valid result,
never another exception, no tag from inside a masked number, no personal number left."""

from __future__ import annotations

import re
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp.pii import Pii
from nlp.tagger import NoteTagger
from pipeline import intake
from schemas.events import EventError, validate
from tests.unit.test_events import purchase

PII = Pii(b"property-test-key-0123456789")
TAGGER = NoteTagger()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ["event_id", "event_type", "schema_version", "occurred_at", "source", "store_id", "customer_id", "payload"]
NOTE_BITS = st.sampled_from(
    [
        "顾客",
        "喜欢",
        "不喜欢",
        "红色",
        "黑色的不要",
        "M码",
        "偏大",
        "手机",
        "13812345678",
        "电话",
        "s***@qq.com",
        "微信",
        "wx_abc123",
        "110101199003071234",
        "6222 0212 3456 7890 123",
        "裤子",
        "老公",
        "说",
        "，",
        "。",
        " ",
        "'; DROP TABLE events; --",
        "<script>alert(1)</script>",
        "25号到货",
        "S型身材",
        "5L保温杯",
        "羊毛过敏",
        "😀",
        "Ｍ",
        "尺碼",
    ]
)
PHONE = re.compile(r"1[3-9]\d{9}")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELDS), json_values)
def test_any_value_in_any_envelope_field_is_accepted_or_refused_with_a_reason(field: str, value: Any) -> None:
    doc = purchase(**{field: value})
    try:
        ev = validate(doc, expected_topic="pos.transactions")
    except EventError as exc:
        assert exc.kind and str(exc)
        return
    row, _payload = intake.accepted(ev, PII)
    assert row["event_type"] == "pos.purchase" and row["occurred_at"].endswith("+00:00")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_any_bytes_are_an_event_or_a_refusal_with_a_reason(raw: bytes) -> None:
    try:
        intake.decode(raw, "pos.transactions", 65_536)
    except EventError as exc:
        assert exc.kind and str(exc)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(NOTE_BITS, max_size=25).map("".join))
def test_a_masked_note_keeps_no_phone_and_gets_no_tag_from_a_masked_span(text: str) -> None:
    masked, found = PII.scan(text)
    assert PHONE.search(masked) is None
    spans = [(f.start, f.end) for f in found]
    for tag in TAGGER.tag(masked, spans):
        assert 0 <= tag.start < tag.end <= len(masked)
        assert all(tag.end <= s or tag.start >= e for s, e in spans), (tag, spans, masked)
        assert tag.weight >= 0.0


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(NOTE_BITS, max_size=25).map("".join))
def test_a_note_with_any_content_is_stored_as_plain_masked_text(text: str) -> None:
    doc = {
        "event_id": "e-n",
        "event_type": "store.note",
        "schema_version": 1,
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "source": "app",
        "store_id": "S-SH-001",
        "customer_id": "C-1",
        "payload": {"note_id": "N-1", "associate_id": "A-1", "text": text},
    }
    try:
        ev = validate(doc, expected_topic="store.notes")
    except EventError as exc:
        assert exc.kind  # e.g. an empty note
        return
    row, payload = intake.accepted(ev, PII)
    stored = orjson.loads(row["payload"])
    assert stored["text"] == payload["text"]
    assert PHONE.search(row["payload"]) is None
