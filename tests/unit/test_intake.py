import orjson

from nlp.pii import Pii
from pipeline import intake
from pipeline.intake import apply_to_profile, decode

PII = Pii(b"unit-test-key-0123456789")


def ev(etype: str, ts: str, payload: dict[str, object], topic: str = "pos.transactions", **env: object) -> intake.Event:
    doc = {
        "event_id": f"e-{etype}-" + "".join(ch for ch in ts if ch.isdigit()),
        "event_type": etype,
        "schema_version": 1,
        "occurred_at": ts,
        "source": "pos",
        "customer_id": "C-1",
        "store_id": "S-1",
        "payload": payload,
        **env,
    }
    return decode(orjson.dumps(doc), topic, 65536)


def test_checkin_by_unknown_customer_creates_a_masked_profile() -> None:
    e = ev(
        "pos.checkin",
        "2026-11-01T10:00:00+08:00",
        {"member_no": "M1", "phone": "13812345678", "segment": "b2b_contact", "is_key_contact": True},
    )
    profile, changed = apply_to_profile(None, e, PII, source="pos.transactions:0", offset=5)
    assert changed and profile is not None
    assert profile["phone_masked"] == "138****5678"
    assert profile["phone_hmac"] == PII.phone_token("13812345678")
    assert "13812345678" not in orjson.dumps(intake.profile_row(profile)).decode()
    assert profile["segment"] == "b2b_contact" and profile["is_key_contact"] == 1
    assert profile["first_store_id"] == "S-1" and profile["created_by"] == "pos.checkin"


def test_replaying_an_applied_offset_changes_nothing() -> None:
    first = ev("pos.checkin", "2026-11-01T10:00:00+08:00", {"member_no": "M1"})
    later = ev("pos.checkin", "2026-11-03T10:00:00+08:00", {"member_no": "M2", "opted_out": True})
    p1, _ = apply_to_profile(None, first, PII, source="t:0", offset=1)
    p2, changed = apply_to_profile(p1, later, PII, source="t:0", offset=2)
    assert changed and p2 is not None and p2["version"] == 2 and p2["opted_out"] == 1
    p3, changed = apply_to_profile(p2, later, PII, source="t:0", offset=2)
    assert not changed and p3 == p2
    p4, changed = apply_to_profile(p2, first, PII, source="t:0", offset=1)
    assert not changed and p4 == p2


def test_earlier_event_arriving_late_moves_first_seen_back() -> None:
    late = ev("pos.checkin", "2026-11-05T10:00:00+00:00", {})
    early = ev(
        "pos.purchase",
        "2026-10-01T10:00:00+00:00",
        {
            "order_id": "O",
            "total": "1.00",
            "lines": [
                {
                    "sku": "A",
                    "name": "T恤",
                    "category": "上装",
                    "size": "M",
                    "colour": "白色",
                    "qty": 1,
                    "unit_price": "1.00",
                }
            ],
        },
        store_id="S-9",
    )
    p, _ = apply_to_profile(None, late, PII, source="t:0", offset=1)
    p, changed = apply_to_profile(p, early, PII, source="t:1", offset=1)
    assert changed and p is not None
    assert p["first_seen_at"].startswith("2026-10-01") and p["first_store_id"] == "S-9"
    assert p["last_seen_at"].startswith("2026-11-05")


def test_accepted_row_masks_free_text_and_phone_fields() -> None:
    e = ev(
        "store.note",
        "2026-11-01T10:00:00+08:00",
        {"note_id": "N1", "associate_id": "A1", "text": "顾客留了电话13912345678，试穿M码"},
        topic="store.notes",
    )
    row = intake.accepted_row(e, PII)
    assert "13912345678" not in orjson.dumps(row).decode()
    assert "139****5678" in row["payload"]
    assert row["occurred_at"] == "2026-11-01T02:00:00.000+00:00"


def test_dead_letter_record_keeps_raw_but_masks_pii_and_names_its_origin() -> None:
    raw = b'{"event_id": "e-9", "text": "phone 13712345678", "broken": '
    rec = intake.deadletter_record(
        raw,
        topic="store.notes",
        partition=2,
        offset=41,
        stage="validate",
        error_class="malformed_json",
        message="bad",
        pii=PII,
        headers=[("trace", b"13712345678")],
    )
    assert rec["source_topic"] == "store.notes" and rec["source_partition"] == 2 and rec["source_offset"] == 41
    assert "13712345678" not in orjson.dumps(rec).decode()
    assert rec["raw_payload"].startswith('{"event_id": "e-9"')
    assert rec["raw_size"] == len(raw)
    assert dict(intake.deadletter_headers(rec))["error_class"] == b"malformed_json"


def test_a_name_from_the_till_is_kept_only_as_staff_greet_her() -> None:
    """王芳 (F) is 王女士 on the console; the given name reaches neither the profile nor the
    events row. Compound surnames stay whole; without a gender the title is a star."""
    from nlp.pii import mask_name

    e = ev("pos.checkin", "2026-11-01T10:00:00+08:00", {"member_no": "M1", "name": "王芳", "gender": "F"})
    profile, _ = apply_to_profile(None, e, PII, source="pos.transactions:0", offset=5)
    assert profile is not None and intake.profile_row(profile)["display_name"] == "王女士"
    row, payload = intake.accepted(e, PII)
    assert payload["name"] == "王女士" and "芳" not in row["payload"]
    assert mask_name("欧阳娜娜", "M") == "欧阳先生" and mask_name("李静") == "李*"
    assert mask_name(" Lily  Wang ", "F") == "L***" and mask_name("") == ""
    old = {k: v for k, v in profile.items() if k != "display_name"}  # a profile kept from before names
    assert intake.profile_row(old)["display_name"] == ""
