"""Raw CRM events in, gate decisions, audit rows, deals and intent pushes out, on the real
Kafka and chDB; and a running worker picking up a sales manager's edited gates file."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from pipeline.bizday import business_tz
from pipeline.deals import gates
from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 1, tzinfo=UTC)


class Crm:
    """Envelopes as a CRM would send them, one account."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.n = 0
        self.msgs: list[tuple[str, bytes, bytes]] = []

    def __call__(self, topic: str, etype: str, payload: dict[str, Any], at: datetime) -> None:
        self.n += 1
        doc = {
            "event_id": f"{self.account}-{self.n}",
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": at.isoformat(),
            "source": "crm",
            "account_id": self.account,
            "payload": payload,
        }
        self.msgs.append((topic, self.account.encode(), orjson.dumps(doc)))

    def ask(self, opp: str, to: str, at: datetime) -> None:
        self(
            "crm.opportunities",
            "crm.stage_request",
            {"opportunity_id": opp, "to_stage": to, "requested_by": "R-001"},
            at,
        )


def send(settings: Settings, msgs: list[tuple[str, bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for topic, key, value in msgs:
        producer.send(settings.topic(topic), key=key, value=value)
    producer.flush()
    producer.close()


def book(crm: Crm) -> None:
    """A deal that tries to skip the needs survey, then the director's approval."""
    crm("crm.accounts", "crm.account", {"name": "绍兴市立医院", "region": "华东", "owner_rep_id": "R-001"}, T0)
    crm(
        "crm.accounts",
        "crm.contact",
        {
            "contact_id": "CT-1",
            "name": "王主任",
            "department": "检验科",
            "role": "department_head",
            "phone": "13812345678",
        },
        T0,
    )
    crm(
        "crm.opportunities",
        "crm.opportunity_created",
        {
            "opportunity_id": "OP-1",
            "name": "生化分析仪采购",
            "product_line_id": "PL-BIO",
            "rep_id": "R-001",
            "expected_amount": "76000.00",
        },
        T0,
    )
    crm.ask("OP-1", "solution", T0 + timedelta(days=1))
    crm.ask("OP-1", "quote", T0 + timedelta(days=2))  # refused: no needs survey
    crm(
        "crm.documents",
        "crm.document",
        {
            "document_id": "D-1",
            "opportunity_id": "OP-1",
            "doc_type": "needs_survey",
            "title": "需求调研表",
            "uploaded_by": "R-001",
            "fields": {
                "budget_min": "60000",
                "budget_max": "90000",
                "decision_roles": ["department_head", "equipment"],
            },
        },
        T0 + timedelta(days=3),
    )
    crm.ask("OP-1", "quote", T0 + timedelta(days=4))
    crm(
        "crm.opportunities",
        "crm.quote",
        {
            "quote_id": "Q-1",
            "opportunity_id": "OP-1",
            "amount": "76000.00",
            "lines": [{"product_line_id": "PL-BIO", "qty": 2, "unit_price": "38000.00"}],
            "competitor": "罗氏",
            "competitor_amount": "72000.00",
        },
        T0 + timedelta(days=4, hours=1),
    )
    crm.ask("OP-1", "contract", T0 + timedelta(days=5))  # refused: over 50,000 without the director
    crm(
        "crm.activities",
        "crm.doc_view",
        {
            "view_id": "V-1",
            "contact_id": "CT-1",
            "material_id": "MAT-BIO-01",
            "title": "全自动生化分析仪参数对比表",
            "product_line_id": "PL-BIO",
            "dwell_seconds": 300,
            "pages_read": 11,
            "pages_total": 12,
        },
        T0 + timedelta(days=6),
    )


def test_crm_events_become_gate_decisions_audit_rows_deals_and_pushes(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    crm = Crm("H-0001")
    book(crm)
    crm(
        "crm.opportunities", "crm.quote", {"quote_id": "Q-X", "opportunity_id": "OP-1", "amount": "1.00"}, T0
    )  # no lines
    product = {
        "event_id": "p-1",
        "event_type": "crm.product",
        "schema_version": 1,
        "occurred_at": T0.isoformat(),
        "source": "crm",
        "payload": {
            "product_line_id": "PL-BIO",
            "name": "全自动生化分析仪",
            "category": "生化",
            "registration_no": "国械注准20213220456",
            "list_price": "38000.00",
        },
    }
    send(settings, [("crm.catalogue", b"PL-BIO", orjson.dumps(product)), *crm.msgs])
    worker(model_dir=tmp_path)
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM opportunity_audit") == 4, what="four decisions")
    audit = db.query(
        "SELECT from_stage, to_stage, decision, missing, rule_version, requested_by FROM opportunity_audit FINAL "
        "WHERE opportunity_id = 'OP-1' ORDER BY requested_at"
    ).result_rows
    version = gates.shipped().rules.version
    assert [(a[0], a[1], a[2]) for a in audit] == [
        ("lead", "solution", "accepted"),
        ("solution", "quote", "refused"),
        ("solution", "quote", "accepted"),
        ("quote", "contract", "refused"),
    ]
    assert audit[1][3] == ["缺少需求调研表（必填：预算范围、决策链角色）"]
    assert audit[3][3] == ["报价 ¥76,000.00 超过 ¥50,000.00，需先经总监审批"]
    assert {a[4] for a in audit} == {version} and {a[5] for a in audit} == {"R-001"}

    # the answer a CRM front end subscribes to: one message per request, keyed by the deal
    consumer = KafkaConsumer(
        settings.topic("opportunity.decisions"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    answers = [(m.key, orjson.loads(m.value)) for m in consumer]
    consumer.close()
    assert {k for k, _ in answers} == {b"OP-1"} and len(answers) == 4
    assert [a["decision"] for _, a in sorted(answers, key=lambda x: x[1]["requested_at"])][:2] == [
        "accepted",
        "refused",
    ]

    wait_until(
        lambda: (
            count(db, "SELECT count() FROM opportunities FINAL WHERE opportunity_id = 'OP-1' AND intent_at IS NOT NULL")
            == 1
        ),
        what="the deal marked high-intent",
    )
    stage, missing, quote, rival, refusals = db.query(
        "SELECT stage, missing, quote_amount, competitor, refusals FROM opportunities FINAL "
        "WHERE opportunity_id = 'OP-1'"
    ).result_rows[0]
    assert stage == "quote" and missing == ["报价 ¥76,000.00 超过 ¥50,000.00，需先经总监审批"]
    assert str(quote) == "76000.00" and rival == "罗氏" and refusals == 2
    wait_until(lambda: count(db, "SELECT count() FROM deal_pushes") == 1, what="the intent push")
    title, rep, competitor = db.query("SELECT title, rep_id, competitor_quote FROM deal_pushes FINAL").result_rows[0]
    assert "深度阅读了《全自动生化分析仪参数对比表》" in title and rep == "R-001"
    assert competitor == "罗氏 报价 ¥72,000.00"
    assert db.query("SELECT registration_no FROM crm_products FINAL").result_rows == [("国械注准20213220456",)]
    wait_until(lambda: count(db, "SELECT count() FROM dead_letters") == 1, what="the invalid quote dead-lettered")
    kind, message = db.query("SELECT error_class, error_message FROM dead_letters").result_rows[0]
    assert kind == "invalid_payload" and "lines" in message
    assert count(db, "SELECT count() FROM crm_contacts FINAL WHERE phone_masked = '138****5678'") == 1
    raw = db.query("SELECT count() FROM events WHERE payload LIKE '%13812345678%'").result_rows[0][0]
    assert raw == 0


def test_a_running_worker_picks_up_an_edited_gates_file(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    crm = Crm("H-0002")
    book(crm)
    send(settings, crm.msgs)
    w = worker(model_dir=tmp_path)
    sink()
    wait_until(lambda: count(db, "SELECT count() FROM opportunity_audit") == 4, what="the first decisions")
    shipped = (resources.files("pipeline.deals") / "data" / "gates.yaml").read_text(encoding="utf-8")
    # the same version with a change: refused, the rules in force stay
    (tmp_path / "gates.yaml").write_text(shipped.replace("quote_over: 50000", "quote_over: 100000"), encoding="utf-8")
    wait_until(lambda: "stage gates" in w.log_path.read_text() and "refused" in w.log_path.read_text(), 30, "refusal")
    time.sleep(1)
    edited = shipped.replace("quote_over: 50000", "quote_over: 100000").replace("2026-11-30.1", "2026-12-01.1")
    (tmp_path / "gates.yaml").write_text(edited, encoding="utf-8")
    wait_until(lambda: "version 2026-12-01.1" in w.log_path.read_text(), 30, "the new gates loaded")
    crm.msgs.clear()
    crm.ask("OP-1", "contract", T0 + timedelta(days=7))
    send(settings, crm.msgs)
    wait_until(
        lambda: count(db, "SELECT count() FROM opportunity_audit WHERE rule_version = '2026-12-01.1'") == 1,
        what="a decision under the new rules",
    )
    decision = db.query(
        "SELECT decision, to_stage FROM opportunity_audit FINAL WHERE rule_version = '2026-12-01.1'"
    ).result_rows
    assert decision == [("accepted", "contract")]  # ¥76,000 is under the new line


def test_a_high_intent_push_reaches_the_reps_wecom_robot_with_the_talks_and_the_rival_quote(
    settings: Settings, db: Any, worker: Any, sink: Any, tmp_path: Path
) -> None:
    import asyncio
    import threading

    from pipeline.infra.notifier import Notifier
    from tests.robot_server import robot

    now = datetime.now(UTC).replace(microsecond=0)
    crm = Crm("H-0003")
    since = now - timedelta(days=10)
    crm("crm.accounts", "crm.account", {"name": "绍兴市立医院", "region": "华东", "owner_rep_id": "R-007"}, since)
    crm(
        "crm.accounts",
        "crm.contact",
        {"contact_id": "CT-1", "name": "王主任", "department": "检验科", "role": "department_head"},
        since,
    )
    crm(
        "crm.opportunities",
        "crm.opportunity_created",
        {
            "opportunity_id": "OP-7",
            "name": "生化分析仪采购",
            "product_line_id": "PL-BIO",
            "rep_id": "R-007",
            "expected_amount": "38000.00",
        },
        now - timedelta(days=9),
    )
    crm(
        "crm.activities",
        "crm.activity",
        {
            "activity_id": "A-1",
            "opportunity_id": "OP-7",
            "rep_id": "R-007",
            "kind": "visit",
            "contact_id": "CT-1",
            "duration_minutes": 30,
            "summary": "王主任关注检测速度和试剂成本",
        },
        now - timedelta(days=5),
    )
    crm(
        "crm.opportunities",
        "crm.quote",
        {
            "quote_id": "Q-7",
            "opportunity_id": "OP-7",
            "amount": "38000.00",
            "lines": [{"product_line_id": "PL-BIO", "qty": 1, "unit_price": "38000.00"}],
            "competitor": "迈瑞",
            "competitor_amount": "35800.00",
        },
        now - timedelta(days=3),
    )
    crm(
        "crm.activities",
        "crm.doc_view",
        {
            "view_id": "V-7",
            "contact_id": "CT-1",
            "material_id": "MAT-BIO-01",
            "title": "全自动生化分析仪参数对比表",
            "dwell_seconds": 40,
            "pages_read": 2,
            "pages_total": 12,
        },
        now - timedelta(minutes=30),
    )
    with robot([(200, {"errcode": 0, "errmsg": "ok"})]) as (url, received):
        notifier = Notifier(settings.with_(wecom_webhook=url), base_delay=0.05)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=lambda: loop.run_until_complete(notifier.run()), daemon=True)
        thread.start()
        send(settings, crm.msgs)
        worker(model_dir=tmp_path)
        sink()
        try:
            wait_until(lambda: count(db, "SELECT count() FROM alert_deliveries FINAL") >= 1, what="delivery record")
        finally:
            loop.call_soon_threadsafe(notifier.stop)
            thread.join(30)
    text = received[0]["body"]["markdown"]["content"]
    assert "高意向：绍兴市立医院 王主任（使用科室主任）打开了《全自动生化分析仪参数对比表》" in text
    assert "拜访：王主任关注检测速度和试剂成本" in text and "竞品报价：迈瑞 报价 ¥35,800.00" in text
    day = (now - timedelta(minutes=30)).astimezone(business_tz()).strftime("%Y%m%d")  # the view's day
    delivered = db.query("SELECT alert_id, status FROM alert_deliveries FINAL").result_rows
    assert delivered == [(f"OP-7:intent:{day}", "delivered")]


def test_serve_ranks_each_reps_top3_in_the_morning_stores_it_and_pushes_it(
    settings: Settings, db: Any, worker: Any, tmp_path: Path
) -> None:
    """Raw CRM events -> worker -> sink -> serve's morning job (model on disk) -> rep_top3
    rows in ClickHouse and one push per rep to the WeCom robot."""
    from nlp.pii import Pii
    from pipeline import intake
    from pipeline.deals import model
    from pipeline.deals.simulate import Book, generate_crm
    from schemas.crm import STATELESS
    from schemas.events import validate
    from tests.integration.conftest import ServeRunner, free_port
    from tests.robot_server import robot

    now = datetime.now(UTC)
    pii = Pii(b"any-key-for-the-model-0123456789")
    train_book = Book(11, now=now, days=180, deals=300)  # trained elsewhere, on another book
    rows = []
    for _at, topic, key, env in train_book.stream():
        if env["event_type"] not in STATELESS:
            rows.append((*intake.accepted(validate(env, topic), pii), key))
    snaps, outcomes = model.replay(rows)
    (tmp_path / model.MODEL_FILE).write_text(model.train(snaps, outcomes).to_json(), encoding="utf-8")
    book = list(generate_crm(5, now=now, days=90, deals=60, hospitals=40, reps=8))
    send(settings, [(t, k, v) for t, k, v, _at in book])
    with robot([(200, {"errcode": 0, "errmsg": "ok"})]) as (url, received):
        s = settings.with_(model_dir=tmp_path, top3_hour=0, api_port=free_port(), wecom_webhook=url)
        worker(model_dir=tmp_path)
        server = ServeRunner(s).start()
        try:
            wait_until(lambda: count(db, "SELECT count() FROM rep_top3") > 0, 150, "the morning TOP-3 stored")
            wait_until(
                lambda: count(db, "SELECT count() FROM alert_deliveries FINAL WHERE alert_id LIKE '%:top3:%'") > 0,
                60,
                "a TOP-3 push delivered",
            )
        finally:
            server.stop()
    top = db.query("SELECT rep_id, rank, probability, factors, opportunity_id FROM rep_top3 FINAL").result_rows
    by_rep: dict[str, list[Any]] = {}
    for rep, rank, p, factors, opp in top:
        by_rep.setdefault(rep, []).append((rank, p, factors, opp))
    for rep, items in by_rep.items():
        assert sorted(r[0] for r in items) == list(range(1, len(items) + 1)) and len(items) <= 3
        assert all(0 < r[1] < 1 for r in items)
        owned = count(
            db,
            "SELECT count() FROM opportunities FINAL WHERE rep_id = {r:String} AND opportunity_id IN {o:Array(String)}",
            r=rep,
            o=[r[3] for r in items],
        )
        assert owned == len(items)  # every ranked deal is the rep's own
    pushed = [
        r["body"]["markdown"]["content"] for r in received if "今日TOP3待推进商机" in r["body"]["markdown"]["content"]
    ]
    assert pushed and all("成交概率" in t for t in pushed)
