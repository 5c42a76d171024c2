"""Raw events in, health scores with reasons out, on the real Kafka and chDB."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration


def ev(i: int, etype: str, ts: datetime, payload: dict[str, Any], **env: Any) -> tuple[str, bytes]:
    env = {"customer_id": "C-KEY-1", **env}
    topic = {"pos": "pos.transactions", "app": "app.telemetry", "messaging": "messaging.events"}[etype.split(".")[0]]
    doc = {
        "event_id": f"h-{i}",
        "event_type": etype,
        "schema_version": 1,
        "occurred_at": ts.isoformat(),
        "source": "test",
        "customer_id": "C-KEY-1",
        "payload": payload,
        **env,
    }
    return topic, orjson.dumps(doc)


def send_silent_key_contact(settings: Settings, between: Callable[[], None] | None = None) -> datetime:
    """Key contact C-KEY-1: reads for a week, then silence; last 3 replies 60 h late.

    ``between`` runs after the reading week is sent: a backlog is scored once per customer per
    batch, so a test that wants the fall in the history lets the first score land first."""
    # Recent: the notifier does not push alerts raised (in event time) over a day ago (backfills).
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = now - timedelta(days=20)
    events = [ev(0, "pos.checkin", t0, {"segment": "b2b_contact", "is_key_contact": True}, store_id="H-0001")]
    for d in range(6):
        events.append(
            ev(
                10 + d,
                "app.material_view",
                t0 + timedelta(days=d),
                {
                    "material_id": "MAT-BIO-01",
                    "title": "全自动生化分析仪参数对比表",
                    "dwell_seconds": 300.0,
                    "pages_read": 10,
                    "pages_total": 12,
                    "scroll_pct": 83.0,
                },
            )
        )
        events.append(ev(20 + d, "app.login", t0 + timedelta(days=d, hours=1), {"device": "pc"}))
    reading = len(events)
    # Three messages in the last week, each answered after 60 hours (the last one just now); the
    # rule came true 12 hours ago, when the third had waited 48 hours: recent enough to push.
    for k in range(3):
        sent = now - timedelta(days=7 - 2 * k) + timedelta(hours=12)
        events.append(
            ev(
                30 + k,
                "messaging.outbound",
                sent,
                {"conversation_id": f"cv{k}", "channel": "wecom", "sender_id": "REP-01", "text": "参数对比表已发您"},
            )
        )
        events.append(
            ev(
                40 + k,
                "messaging.reply",
                sent + timedelta(hours=60),
                {"conversation_id": f"cv{k}", "channel": "wecom", "text": "收到"},
            )
        )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for i, (topic, value) in enumerate(events):
        if i == reading and between is not None:
            producer.flush()
            between()
        producer.send(settings.topic(topic), key=b"C-KEY-1", value=value)
    producer.flush()
    producer.close()
    return now


def test_silent_key_contact_with_slow_replies_scores_at_risk_with_reasons(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    worker()
    sink()

    def first_score() -> None:
        wait_until(lambda: count(db, "SELECT count() FROM customer_health FINAL") == 1, what="the first score")

    now = send_silent_key_contact(settings, between=first_score)

    def history_reasons() -> str:
        rows = db.query(
            "SELECT reasons FROM customer_health_history FINAL WHERE customer_id = 'C-KEY-1' ORDER BY day"
        ).result_rows
        return " | ".join(" ".join(r[0]) for r in rows)

    # Each table's rows travel on their own topic: the current score can be stored before the
    # day closes folded with it (a suite run beside a fault run read the history too early).
    wait_until(lambda: "次消息均超过48小时未回复或回复" in history_reasons(), what="the slow replies' day closed")
    wait_until(
        lambda: (
            count(
                db,
                "SELECT count() FROM customer_health FINAL WHERE as_of >= {t:DateTime64(3)}",
                t=(now - timedelta(days=4)).replace(tzinfo=None),
            )
            == 1
        ),
        what="current score at the last reply",
    )
    score, band, reasons, conf, stale = db.query(
        "SELECT score, band, reasons, confidence, stale_sources FROM customer_health FINAL "
        "WHERE customer_id = 'C-KEY-1'"
    ).result_rows[0]
    assert band == "at_risk" and 0 <= score < 40 and reasons
    history = db.query(
        "SELECT score, previous_score, reasons FROM customer_health_history FINAL WHERE customer_id = 'C-KEY-1' "
        "ORDER BY day"
    ).result_rows
    assert history[0][1] is None  # the first score has no predecessor
    assert any(r[1] is not None and r[0] < r[1] for r in history), "the score must fall at some point"
    all_reasons = " | ".join(" ".join(r[2]) for r in history)
    assert "次消息均超过48小时未回复或回复" in all_reasons
    assert "天未打开资料" in all_reasons
    # each reason names what stands where, with the points it costs or the change it made
    shaped = re.compile(r"（(较上次)?[+-]\d+(\.\d)?）$")
    assert all(shaped.search(r) or r.startswith("客户类型变更") for h in history for r in h[2])
    # The field rule: a key contact silent for 7+ days whose last 3 replies each took > 48 h.
    wait_until(
        lambda: count(db, "SELECT count() FROM alerts FINAL WHERE rule_id = 'silent_key_contact'") == 1,
        what="the field alert",
    )
    title, assignee, status, severity = db.query(
        "SELECT title, assignee, status, severity FROM alerts FINAL WHERE rule_id = 'silent_key_contact'"
    ).result_rows[0]
    assert title == "重点联系人连续7天未打开产品资料，且最近3次回复均超过48小时"
    assert assignee in {"CS-01", "CS-02", "CS-04"} and status == "open" and severity == "high"
    # Nothing from the app for two weeks: the score says it rests on old app data.
    assert stale == ["app"] and conf == 0.5


def test_every_simulated_customer_gets_a_bounded_score(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    exp = simulated(17, days=5, customers=60, bad_rate=0.0, settings=settings)
    worker()
    sink()
    send(settings, exp.messages)
    wait_until(
        lambda: count(db, "SELECT count() FROM customer_health FINAL") == len(exp.customers),
        what="a score per customer",
    )
    lo, hi = db.query("SELECT min(score), max(score) FROM customer_health FINAL").result_rows[0]
    assert 0 <= lo <= hi <= 100
    bands = {r[0] for r in db.query("SELECT DISTINCT band FROM customer_health FINAL").result_rows}
    assert bands <= {"healthy", "watch", "at_risk"}
    assert (
        count(
            db,
            "SELECT count() FROM customer_health_history FINAL WHERE length(reasons) = 0 "
            "AND previous_score IS NOT NULL",
        )
        == 0
    )


def test_field_alert_reaches_the_wecom_robot_and_the_delivery_is_stored(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    import asyncio
    import threading

    from pipeline.infra.notifier import Notifier
    from tests.robot_server import robot

    with robot([(502, {}), (200, {"errcode": 0, "errmsg": "ok"})]) as (url, received):
        notifier = Notifier(settings.with_(wecom_webhook=url), base_delay=0.05)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=lambda: loop.run_until_complete(notifier.run()), daemon=True)
        thread.start()
        send_silent_key_contact(settings)
        worker()
        sink()
        try:
            wait_until(lambda: count(db, "SELECT count() FROM alert_deliveries FINAL") >= 1, what="delivery record")
        finally:
            loop.call_soon_threadsafe(notifier.stop)
            thread.join(30)
    titles = [r["body"]["markdown"]["content"] for r in received]
    assert any("重点联系人连续7天未打开产品资料" in t for t in titles)
    status, attempts, channel = db.query(
        "SELECT status, attempts, channel FROM alert_deliveries FINAL ORDER BY finished_at LIMIT 1"
    ).result_rows[0]
    assert (status, attempts, channel) == ("delivered", 2, "wecom")


def test_quiet_key_contact_is_alerted_at_the_watermark_without_events_of_their_own(
    settings: Settings, db: Any, worker: Any, sink: Any
) -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    key = {"customer_id": "C-KEY-2"}
    events = [
        ev(
            100,
            "pos.checkin",
            now - timedelta(days=20),
            {"segment": "b2b_contact", "is_key_contact": True},
            store_id="H-0002",
            **key,
        )
    ]
    events.append(
        ev(
            101,
            "app.material_view",
            now - timedelta(days=14),
            {
                "material_id": "MAT-IMM-01",
                "title": "化学发光免疫分析仪白皮书",
                "dwell_seconds": 90.0,
                "pages_read": 3,
                "pages_total": 24,
                "scroll_pct": 12.5,
            },
            **key,
        )
    )
    for k in range(3):
        sent = now - timedelta(days=16 - 2 * k)
        events.append(
            ev(
                110 + k,
                "messaging.outbound",
                sent,
                {"conversation_id": f"q{k}", "channel": "dingtalk", "sender_id": "REP-02", "text": "演示安排"},
                **key,
            )
        )
        events.append(
            ev(
                120 + k,
                "messaging.reply",
                sent + timedelta(hours=50),
                {"conversation_id": f"q{k}", "channel": "dingtalk", "text": "再说"},
                **key,
            )
        )
    # Someone else's activity today moves the event-time watermark; C-KEY-2 stays silent.
    events.append(ev(130, "app.login", now, {"device": "ios"}, customer_id="C-OTHER"))
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for topic, value in events:
        producer.send(settings.topic(topic), key=orjson.loads(value)["customer_id"].encode(), value=value)
    producer.flush()
    producer.close()
    worker()
    sink()
    wait_until(
        lambda: (
            count(
                db, "SELECT count() FROM alerts FINAL WHERE customer_id = 'C-KEY-2' AND rule_id = 'silent_key_contact'"
            )
            == 1
        ),
        what="the watermark alert",
    )
    raised_at = db.query(
        "SELECT raised_at FROM alerts FINAL WHERE customer_id = 'C-KEY-2' AND rule_id = 'silent_key_contact'"
    ).result_rows[0][0]
    # Raised in event time at the moment the rule came true (seven days after the last open,
    # a minute past the limit), not at the wall clock nor at the watermark that found it,
    # however the source topics interleaved on the way in.
    assert raised_at.replace(tzinfo=UTC) == now - timedelta(days=7) + timedelta(minutes=1)
    # The specialist acknowledges, then resolves; a second resolve is refused and kept.
    from pipeline.infra.produce import send_alert_action

    alert = db.query(
        "SELECT alert_id, assignee FROM alerts FINAL WHERE customer_id = 'C-KEY-2' AND rule_id = 'silent_key_contact'"
    ).result_rows[0]
    assert alert[0].startswith("C-KEY-2:silent_key_contact:")
    send_alert_action(settings, alert[0], "acknowledge", alert[1], "已电话联系")
    wait_until(
        lambda: (
            count(
                db,
                "SELECT count() FROM alerts FINAL WHERE status = 'acknowledged' AND alert_id = {a:String}",
                a=alert[0],
            )
            == 1
        ),
        what="acknowledged alert",
    )
    send_alert_action(settings, alert[0], "resolve", alert[1])
    wait_until(
        lambda: (
            count(
                db, "SELECT count() FROM alerts FINAL WHERE status = 'resolved' AND alert_id = {a:String}", a=alert[0]
            )
            == 1
        ),
        what="resolved alert",
    )
    row = db.query(
        "SELECT acknowledged_by, acknowledged_at IS NOT NULL, resolved_by, resolved_at >= acknowledged_at, note, "
        "version FROM alerts FINAL WHERE alert_id = {a:String}",
        parameters={"a": alert[0]},
    ).result_rows[0]
    assert row == (alert[1], True, alert[1], True, "已电话联系", 3)
    send_alert_action(settings, alert[0], "resolve", "CS-99")
    wait_until(
        lambda: count(db, "SELECT count() FROM dead_letters WHERE error_class = 'refused_action'") == 1,
        what="refused action in the dead letters",
    )
    assert count(db, "SELECT count() FROM alerts FINAL WHERE resolved_by = 'CS-99'") == 0


def test_quiet_hours_hold_a_push_until_notify_after_and_suppressed_alerts_are_not_pushed(settings: Settings) -> None:
    """The notifier on the real alerts topic: a due alert goes at once, one raised in the quiet
    hours waits for its notify_after, a suppressed one (weekly cap) is never pushed, nor is one
    raised days ago in event time (a backfill once pushed every historical alert at once)."""
    import asyncio
    import threading
    import time

    from pipeline.infra.notifier import Notifier
    from tests.robot_server import robot

    now = datetime.now(UTC)

    def alert(aid: str, status: str, notify_after: datetime, raised: datetime | None = None) -> bytes:
        return orjson.dumps(
            {
                "alert_id": aid,
                "customer_id": "C-Q",
                "rule_id": "fell_to_at_risk",
                "severity": "medium",
                "title": f"健康度降至高风险（{aid}）",
                "score": 30.0,
                "band": "at_risk",
                "assignee": "CS-03",
                "status": status,
                "raised_at": (raised or now).isoformat(),
                "notify_after": notify_after.isoformat(),
                "version": 1,
            }
        )

    with robot([(200, {"errcode": 0, "errmsg": "ok"})]) as (url, received):
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        for value in (
            alert("night", "open", now + timedelta(seconds=4)),  # raised at night: held until "08:00"
            alert("capped", "suppressed", now - timedelta(seconds=1)),
            # a backfill: raised three days ago in event time; kept, never pushed
            alert("old", "open", now - timedelta(days=3), raised=now - timedelta(days=3)),
            alert("due", "open", now - timedelta(seconds=1)),
        ):
            producer.send(settings.topic("alerts"), key=b"C-Q", value=value)  # one partition, in this order
        producer.flush()
        producer.close()
        notifier = Notifier(settings.with_(wecom_webhook=url), base_delay=0.05)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=lambda: loop.run_until_complete(notifier.run()), daemon=True)
        thread.start()
        try:
            wait_until(lambda: len(received) >= 1, what="the due alert")
            first = [r["body"]["markdown"]["content"] for r in received]
            assert len(first) == 1 and "（due）" in first[0]  # not stuck behind the held one
            wait_until(lambda: len(received) >= 2, what="the held alert after its notify_after")
            assert datetime.now(UTC) >= now + timedelta(seconds=4)
            time.sleep(1)
        finally:
            loop.call_soon_threadsafe(notifier.stop)
            thread.join(30)
    texts = [r["body"]["markdown"]["content"] for r in received]
    assert len(texts) == 2 and "（night）" in texts[1] and not any("capped" in t or "old" in t for t in texts)
    assert notifier.skipped == 1  # the backfilled one, recorded as not pushed
