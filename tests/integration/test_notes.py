"""Notes and stock in, tags and a stock-aware recommendation out, on the real Kafka and chDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)
STORE = "S-SH-001"


def env(i: str, etype: str, ts: datetime, payload: dict[str, Any], customer: str | None = None) -> bytes:
    doc = {
        "event_id": f"n-{i}",
        "event_type": etype,
        "schema_version": 1,
        "occurred_at": ts.isoformat(),
        "source": "test",
        "store_id": STORE,
        "payload": payload,
    }
    if customer:
        doc["customer_id"] = customer
    return orjson.dumps(doc)


def stock(i: int, sku: str, name: str, size: str, colour: str, on_hand: int) -> tuple[str, bytes, bytes]:
    payload = {"sku": sku, "name": name, "size": size, "colour": colour, "on_hand": on_hand}
    return "pos.inventory", STORE.encode(), env(f"s{i}", "pos.stock_level", NOW - timedelta(days=1), payload)


def send(settings: Settings, msgs: list[tuple[str, bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for topic, key, value in msgs:
        producer.send(settings.topic(topic), key=key, value=value)
    producer.flush()
    producer.close()


def test_note_tags_and_a_stock_aware_recommendation_reach_clickhouse(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    rules = [{"if": "阔腿裤", "then": "针织开衫", "support": 0.1, "support_if": 0.3, "confidence": 0.35, "lift": 2.1}]
    (tmp_path / "copurchase-20261101T000000Z.json").write_text(
        json.dumps({"version": "20261101T000000Z", "baskets": 100, "rules": rules}, ensure_ascii=False)
    )
    send(
        settings,
        [
            stock(1, "SKU-001", "阔腿裤", "M", "黑色", 0),  # out of stock: must not be offered
            stock(2, "SKU-001", "阔腿裤", "M", "藏青", 2),
            stock(3, "SKU-001", "阔腿裤", "L", "藏青", 9),  # not her size
            stock(4, "SKU-003", "针织开衫", "M", "酒红", 5),  # a colour she dislikes
            stock(5, "SKU-003", "针织开衫", "M", "藏青", 3),
            stock(6, "SKU-005", "衬衫", "M", "白色", 4),
        ],
    )
    note = "顾客试穿M码藏青阔腿裤，腰偏紧，推荐了阔腿裤，搭配同色系，不喜欢酒红，电话13812345678"
    c1, c2 = b"C-NOTE-1", b"C-NOTE-2"
    send(
        settings,
        [
            (
                "pos.transactions",
                c1,
                env("c1", "pos.checkin", NOW - timedelta(days=12), {"member_no": "M1"}, "C-NOTE-1"),
            ),
            (
                "store.notes",
                c1,
                env(
                    "note1",
                    "store.note",
                    NOW - timedelta(days=10),
                    {"note_id": "N-1", "associate_id": "A-SH-1", "text": note},
                    "C-NOTE-1",
                ),
            ),
            (
                "pos.transactions",
                c2,
                env("c2", "pos.checkin", NOW - timedelta(days=5), {"member_no": "M2", "opted_out": True}, "C-NOTE-2"),
            ),
            (
                "store.notes",
                c2,
                env(
                    "note2",
                    "store.note",
                    NOW - timedelta(days=4),
                    {"note_id": "N-2", "associate_id": "A-SH-2", "text": "推荐了衬衫，M码"},
                    "C-NOTE-2",
                ),
            ),
        ],
    )
    worker(model_dir=tmp_path)
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM note_tags") == 2, what="tagged notes")
    tags, spans_ok, text = db.query(
        "SELECT tags, arrayAll((s, e, x) -> substringUTF8(text, s + 1, e - s) = x, starts, ends, surfaces), text "
        "FROM note_tags FINAL WHERE note_id = 'N-1'"
    ).result_rows[0]
    assert {"size:M", "colour:藏青", "category:阔腿裤", "fit:腰偏紧", "recommended:阔腿裤", "pairing:同色系"} <= set(
        tags
    )
    assert "dislike:酒红" in tags and spans_ok
    assert "13812345678" not in text  # masked before it was stored
    tag_sql = "SELECT tag, weight FROM customer_tags FINAL WHERE customer_id = 'C-NOTE-1'"
    wait_until(lambda: len(db.query(tag_sql).result_rows) >= 6, what="the tag profile")
    profile = dict(db.query(tag_sql).result_rows)
    assert profile["recommended:阔腿裤"] > 0 and profile["dislike:酒红"] > 0

    # She comes back and scans a coupon: the screen shows what was recommended, now in stock.
    send(
        settings,
        [
            ("pos.transactions", c1, env("v1", "pos.coupon_scan", NOW, {"coupon_code": "CP-1"}, "C-NOTE-1")),
            ("pos.transactions", c2, env("v2", "pos.coupon_scan", NOW, {"coupon_code": "CP-2"}, "C-NOTE-2")),
        ],
    )
    wait_until(
        lambda: count(db, "SELECT uniqExact(customer_id) FROM recommendations") == 2,
        what="recommendations for both visits",
    )
    recs = db.query(
        "SELECT rank, kind, sku, size, colour, reasons, source_notes, message, personalised FROM recommendations FINAL "
        "WHERE customer_id = 'C-NOTE-1' ORDER BY rank"
    ).result_rows
    assert [(r[1], r[2], r[3], r[4]) for r in recs] == [
        ("noted", "SKU-001", "M", "藏青"),
        ("pairing", "SKU-003", "M", "藏青"),
    ]
    assert recs[0][5][0].startswith("上次推荐的阔腿裤有库存") and recs[0][6] == ["N-1"]
    assert recs[0][7] == "上次推荐的阔腿裤有库存，搭配建议：同色系针织开衫" and recs[0][8] is True
    fallback = db.query(
        "SELECT kind, personalised, source_notes FROM recommendations FINAL WHERE customer_id = 'C-NOTE-2'"
    ).result_rows
    assert fallback and all(k == "popular" and p is False and s == [] for k, p, s in fallback)


def test_a_running_worker_picks_up_an_edited_lexicon_and_keeps_it_when_a_broken_one_follows(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    """Issue 12: store operations grow the lexicon without code and without a restart."""
    import time
    from importlib import resources

    def note(i: int, text: str) -> tuple[str, bytes, bytes]:
        payload = {"note_id": f"NL-{i}", "associate_id": "A-SH-1", "text": text}
        return "store.notes", b"C-LEX-1", env(f"lex{i}", "store.note", NOW + timedelta(minutes=i), payload, "C-LEX-1")

    def tags_of(i: int) -> set[str]:
        sql = "SELECT tags FROM note_tags FINAL WHERE note_id = {n:String}"
        wait_until(
            lambda: count(db, "SELECT count() FROM note_tags FINAL WHERE note_id = {n:String}", n=f"NL-{i}") == 1
        )
        return set(db.query(sql, parameters={"n": f"NL-{i}"}).result_rows[0][0])

    worker(model_dir=tmp_path)
    sink()
    send(settings, [note(1, "顾客试了冲锋衣，L码")])
    assert "category:冲锋衣" not in tags_of(1)
    shipped = resources.files("nlp").joinpath("data/retail_lexicon.tsv").read_text(encoding="utf-8")
    (tmp_path / "retail_lexicon.tsv").write_text(shipped + "冲锋衣\tcategory\t冲锋衣\n", encoding="utf-8")
    time.sleep(12)  # the worker looks every 10 s
    send(settings, [note(2, "顾客试了冲锋衣，L码")])
    assert "category:冲锋衣" in tags_of(2)
    (tmp_path / "retail_lexicon.tsv").write_text(shipped + "羽绒背心\tgarment\t马甲\n", encoding="utf-8")
    time.sleep(12)
    send(settings, [note(3, "又试了冲锋衣")])
    assert "category:冲锋衣" in tags_of(3)  # the broken file was refused; the edited lexicon stays


def test_a_backlog_of_stock_weeks_ahead_answers_a_visit_with_the_stock_of_its_day(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    """All input already on the broker when the worker starts: the store side reads every
    stock count at once, long before the customer side sends the visit. The visit must still
    see the stock of its own day (in stock then), not that of five weeks later, whose earlier
    levels are no longer kept; the same input read live gives that answer."""

    def count_at(i: int, on_hand: int, at: datetime) -> tuple[str, bytes, bytes]:
        payload = {"sku": "SKU-001", "name": "阔腿裤", "size": "M", "colour": "藏青", "on_hand": on_hand}
        return "pos.inventory", STORE.encode(), env(f"b{i}", "pos.stock_level", at, payload)

    start = NOW - timedelta(days=40)
    c, scan = b"C-NOTE-3", {"coupon_code": "CP-3"}
    note = {"note_id": "N-3", "associate_id": "A-SH-1", "text": "顾客试穿M码藏青阔腿裤，推荐了阔腿裤"}
    send(
        settings,
        [
            count_at(0, 2, start),
            *(count_at(n, 0, start + timedelta(days=n)) for n in range(10, 36)),  # sold out from day 10 on
            ("store.notes", c, env("note3", "store.note", start - timedelta(days=3), note, "C-NOTE-3")),
            ("pos.transactions", c, env("v3", "pos.coupon_scan", start + timedelta(days=1), scan, "C-NOTE-3")),
        ],
    )
    worker(model_dir=tmp_path, event_time_pause=True)  # the default, said here: the test is about it
    sink()
    mine = "FROM recommendations FINAL WHERE customer_id = 'C-NOTE-3'"
    wait_until(lambda: count(db, f"SELECT count() {mine}") > 0, what="an answer")
    recs = db.query(f"SELECT kind, sku, size, colour, on_hand {mine} ORDER BY rank").result_rows

    assert recs[0] == ("noted", "SKU-001", "M", "藏青", 2)
