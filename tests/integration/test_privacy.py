"""Personal numbers in the shapes people really type never reach a result topic or a table.

Reproduces issue 10's findings on the real broker and chDB: a note typed with an alert
action, identifiers that are phone numbers, full-width digits, a 15-digit ID, an e-mail with
a full-width ＠, a WeChat id, a landline after 座机, numbers in basket and stock item names.
Every topic the system writes (all but the producers' own source topics) and every
ClickHouse table are read back whole and searched for the raw values, in both widths.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.infra import kafka_admin
from pipeline.infra.produce import send_alert_action
from pipeline.infra.settings import Settings
from schemas.events import EVENT_TOPICS
from tests.integration.conftest import count, wait_until

pytestmark = pytest.mark.integration

RAW = ["13900001111", "13900002222", "13812345678", "13712345678", "110101900307457", "110101199003074573",
       "zhangsan_88", "s1234", "62881234", "13698765432", "18611112222"]  # fmt: skip
FULL = str.maketrans("0123456789", "０１２３４５６７８９")
WHEN = "2026-11-20T10:00:00+08:00"


def doc(event_id: str, etype: str, customer: str, payload: dict[str, Any], store: str | None = "S-SH-001") -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": WHEN,
            "source": "pos-7",
            "store_id": store,
            "customer_id": customer,
            "payload": payload,
        }
    )


def leaks(blob: str) -> list[str]:
    digits = re.sub(r"[^0-9A-Za-z_]", "", blob.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    return [r for r in RAW if r in blob or r.translate(FULL) in blob or r in digits]


def test_no_raw_personal_value_reaches_any_topic_table_or_tag(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    phone_id, cid = "C-13900001111", "C-9001"
    line = {"sku": "SKU-1", "name": "外套 代购13698765432", "category": "外套", "size": "M", "colour": "黑色"}
    events = [
        ("pos.transactions", phone_id, doc("e-0", "pos.checkin", phone_id, {"member_no": "M-1"})),
        ("pos.transactions", cid, doc("e-1", "pos.checkin", cid, {"member_no": "13900002222", "phone": "13900001111"})),
        ("pos.transactions", cid, doc("ord-13812345678", "pos.purchase", cid, {
            "order_id": "PO-13812345678", "lines": [{**line, "qty": 1, "unit_price": "100.00"}], "total": "100.00"})),
        ("store.notes", cid, doc("e-3", "store.note", cid, {"note_id": "N-1", "associate_id": "A-1", "text":
            "客户手机１３７１２３４５６７８，老身份证110101900307457，邮箱s1234＠qq.com，"
            "微信号 zhangsan_88，座机6288 1234"})),
        ("pos.inventory", "S-SH-001", doc("e-4", "pos.stock_level", None, {  # type: ignore[arg-type]
            "sku": "SKU-1", "name": "外套 联系18611112222", "size": "M", "colour": "黑色", "on_hand": 3})),
    ]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for topic, key, value in events:
        producer.send(settings.topic(topic), key=key.encode(), value=value).get(timeout=30)
    producer.close()
    # A person acknowledges an alert and types a phone and an ID number into the note.
    send_alert_action(settings, f"{cid}:fell_to_at_risk:20261120", "acknowledge", "店长",
                      "已电话联系客户13812345678，身份证110101199003074573")  # fmt: skip

    worker()
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM events FINAL") >= 4, what="events stored")
    wait_until(lambda: count(db, "SELECT count() FROM note_tags FINAL") == 1, what="note tagged")
    wait_until(lambda: count(db, "SELECT count() FROM dead_letters FINAL") == 2, what="dead letters kept")
    kinds = {r[0] for r in db.query("SELECT error_class FROM dead_letters FINAL").result_rows}
    assert kinds == {"personal_identifier", "refused_action"}, kinds

    # Every table, every column, read back as text.
    tables = [r[0] for r in db.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows]
    assert {"events", "customers", "note_tags", "dead_letters"} <= set(tables)
    for table in tables:
        rows = db.query("SELECT * FROM {t:Identifier}", parameters={"t": table}).result_rows
        blob = "\n".join(repr(r) for r in rows)
        assert not leaks(blob), (table, leaks(blob))

    # Every topic the system writes, read from the beginning; the store's state is written to
    # its changelog at the worker's next flush, after the rows: wait for it, or the scan can
    # miss it (it held the raw stock item name, phone number included, until the stock fold
    # read the masked payload).
    stores = f"{settings.group_worker}-stores-changelog"
    wait_until(lambda: sum(kafka_admin.end_offsets(settings, [stores]).values()) > 0, 60, "store state changelog")
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, consumer_timeout_ms=3000)
    sources = {settings.topic(t) for t in EVENT_TOPICS} - {settings.topic("alert.actions")}
    mine = [t for t in consumer.topics() if t.startswith(settings.topic_prefix) and t not in sources]
    assert settings.topic("alert.actions") in mine and any("changelog" in t for t in mine)
    parts = [TopicPartition(t, p) for t in mine for p in consumer.partitions_for_topic(t) or ()]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    seen = 0
    for msg in consumer:
        blob = (msg.value or b"").decode("utf-8", "replace") + (msg.key or b"").decode("utf-8", "replace")
        blob += "".join(v.decode("utf-8", "replace") for _k, v in msg.headers or [])
        assert not leaks(blob), (msg.topic, leaks(blob))
        seen += 1
    consumer.close()
    assert seen > 5

    # The masked e-mail s***@qq.com is not a size S; masked spans never make tags.
    tags = db.query("SELECT tags, text FROM note_tags FINAL").result_rows[0]
    assert not any(t.startswith("size:") for t in tags[0]), tags
    assert "137****5678" in tags[1] and "s***@qq.com" in tags[1]
    # Other identifiers holding a number became keyed tokens; the member number too.
    ids = {r[0] for r in db.query("SELECT event_id FROM events FINAL").result_rows}
    assert sum(1 for i in ids if i.startswith("pii.")) == 1, ids
    member = db.query("SELECT member_no, phone_masked FROM customers FINAL").result_rows
    assert member[0][0].startswith("pii.") and member[0][1] == "139****1111", member


def test_the_demo_summary_counts_every_table_including_the_audit_log(db: Any) -> None:
    """`make demo` broke on FINAL over the plain MergeTree audit table; the count covers it."""
    from pipeline.infra import store

    counts = store.table_counts(db)
    assert {"events", "customers", "phone_lookups", "dead_letters"} <= set(counts)
