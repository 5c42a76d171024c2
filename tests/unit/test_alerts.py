from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipeline.health.alerts import (
    alert_id,
    all_rules_on,
    apply_action,
    assign,
    evaluate,
    load_alert_config,
    notify_after,
)
from pipeline.health.features import Features

CFG = load_alert_config()
# The score rules ship switched off (see alerts.yaml); their logic is still tested, switched on.
ALL = all_rules_on(CFG)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def feats(days_since_open: float | None, replies: tuple[float, ...]) -> Features:
    return Features(
        logins_7d=0,
        opens_7d=0,
        opens_30d=0,
        depth_30d=0.0,
        days_since_open=days_since_open,
        reply_hours=replies,
        purchases_30d=0,
        amount_30d=Decimal("0"),
        returns_30d=0,
    )


def state(key_contact: bool = True, app: bool = True) -> dict[str, Any]:
    first = (NOW - timedelta(days=30)).isoformat()
    return {
        "customer_id": "C-1",
        "segment": "b2b_contact",
        "key_contact": key_contact,
        "first_at": first,
        "first_used": {"app": first} if app else {},
    }


def run(st: dict[str, Any], f: Features, at: datetime = NOW, cfg: Any = CFG, **kw: Any) -> list[dict[str, Any]]:
    args = {"score": 55.0, "band": "watch", "previous_band": "watch", "trend_7d": None, **kw}
    return evaluate(cfg, st, f, as_of=at, open_counts={}, **args)


def test_field_rule_fires_for_a_silent_key_contact_with_three_slow_replies() -> None:
    out = run(state(), feats(8, (50, 60, 72)))
    assert [a["rule_id"] for a in out] == ["silent_key_contact"]
    assert out[0]["title"] == "重点联系人连续7天未打开产品资料，且最近3次回复均超过48小时"
    assert out[0]["assignee"] in {"CS-01", "CS-02", "CS-04"}


def test_field_rule_needs_every_condition() -> None:
    assert run(state(), feats(6.9, (50, 60, 72))) == []  # opened something within 7 days
    assert run(state(), feats(8, (50, 47, 72))) == []  # one reply was quick enough
    assert run(state(), feats(8, (50, 60))) == []  # fewer than three replies


def test_everyone_else_who_uses_the_app_is_alerted_after_two_slow_replies_unless_already_gone() -> None:
    out = run(state(key_contact=False), feats(11, (5, 60, 72)))
    assert [a["rule_id"] for a in out] == ["silent_slow_customer"]
    assert out[0]["title"] == "连续10天未打开资料，且最近2次消息均超过48小时未回复"
    assert run(state(key_contact=False), feats(9, (60, 72))) == []  # opened something within 10 days
    assert run(state(key_contact=False, app=False), feats(None, (60, 72))) == []  # never had the app
    assert run(state(key_contact=False), feats(11, (60, 72)), score=28.0) == []  # score under 30: gone already
    assert run(state(key_contact=False), feats(11, (60, 30))) == []  # the last reply came in time


def test_a_key_contact_long_gone_is_not_news_for_the_field_rule() -> None:
    assert run(state(), feats(8, (50, 60, 72)), score=14.0) == []  # under 15: the win-back list
    assert [a["rule_id"] for a in run(state(), feats(8, (50, 60, 72)), score=15.0)] == ["silent_key_contact"]


def test_one_alert_per_episode_and_the_cooldown_is_in_event_time() -> None:
    st = state()
    first = run(st, feats(8, (50, 60, 72)))
    assert run(st, feats(9, (50, 60, 72)), NOW + timedelta(days=1)) == []
    assert run(st, feats(15, (50, 60, 72)), NOW + timedelta(days=7)) == []  # still the same silence
    assert run(st, feats(15, (60, 72, 3)), NOW + timedelta(days=7, hours=1)) == []  # a quick reply: over
    assert run(st, feats(16, (72, 3, 50)), NOW + timedelta(days=8)) == []
    again = run(st, feats(19, (50, 60, 49)), NOW + timedelta(days=11))  # silent and slow again: news
    assert len(again) == 1 and again[0]["alert_id"] != first[0]["alert_id"]
    assert first[0]["alert_id"] == alert_id("C-1", "silent_key_contact", NOW + timedelta(hours=3))
    st2 = state()
    run(st2, feats(8, (50, 60, 72)))
    run(st2, feats(8, (60, 72, 3)), NOW + timedelta(days=1))
    assert run(st2, feats(9, (72, 3, 50)), NOW + timedelta(days=3)) == []
    assert run(st2, feats(12, (50, 60, 49)), NOW + timedelta(days=5)) == []  # again, but within the cooldown


def test_band_drop_and_score_fall() -> None:
    out = run(state(False), feats(1, ()), cfg=ALL, band="at_risk", previous_band="watch", score=35.0, trend_7d=-25.0)
    assert sorted(a["rule_id"] for a in out) == ["fell_to_at_risk", "score_fall_7d"]
    assert any(a["title"] == "健康度7天内下降25分" for a in out)
    assert run(state(False), feats(1, ()), cfg=ALL, band="at_risk", previous_band="at_risk") == []
    # hovering at the line is not a fall: the band rule wants 10 points in 7 days
    assert run(state(False), feats(1, ()), cfg=ALL, band="at_risk", previous_band="watch", trend_7d=-4.0) == []
    assert run(state(False), feats(1, ()), band="at_risk", previous_band="watch", trend_7d=-25.0) == []  # shipped: off


def test_score_rules_wait_until_a_customer_has_two_weeks_of_history() -> None:
    young = {**state(False), "first_at": (NOW - timedelta(days=5)).isoformat()}
    kw = {"band": "at_risk", "previous_band": "watch", "score": 35.0, "trend_7d": -25.0}
    assert run(young, feats(1, ()), cfg=ALL, **kw) == []
    assert len(run(state(False), feats(1, ()), cfg=ALL, **kw)) == 2


def test_assignment_prefers_the_specialist_with_fewest_open_alerts() -> None:
    counts = {"CS-01": 3, "CS-02": 0, "CS-04": 5}
    assert assign(CFG, "b2b_contact", counts, "C-9") == "CS-02"
    assert assign(CFG, "retail_member", {"CS-03": 2, "CS-04": 1, "CS-05": 3}, "C-9") == "CS-04"


def test_assignment_prefers_the_customers_region() -> None:
    from pipeline.health.alerts import region_of

    assert region_of(CFG, "S-SH-002") == "华东" and region_of(CFG, "S-CD-001") == "西南"
    assert region_of(CFG, "H-0001") is None and region_of(CFG, None) is None
    busy = {"CS-03": 9, "CS-04": 0, "CS-05": 0}
    assert assign(CFG, "retail_member", busy, "C-1", "华东") == "CS-03"  # the only one for 华东, however busy
    assert assign(CFG, "retail_member", {"CS-04": 2, "CS-05": 1}, "C-1", "华南") == "CS-05"
    assert assign(CFG, "retail_member", {}, "C-1", "西北") in {"CS-03", "CS-04", "CS-05"}  # nobody there: anyone


def test_alert_is_routed_by_the_store_the_customer_was_last_seen_at() -> None:
    st = {**state(False), "segment": "retail_member", "store": "S-CD-001"}
    out = run(st, feats(1, ()), cfg=ALL, band="at_risk", previous_band="watch", trend_7d=-15.0)
    assert [a["assignee"] for a in out] == ["CS-05"]


def test_weekly_contact_cap_suppresses_but_keeps_the_alert() -> None:
    cfg = ALL.model_copy(update={"contacts_per_week": 1})
    st = state(False)

    def go(at: datetime, **kw: Any) -> list[str]:
        args = {"score": 35.0, "band": "at_risk", "previous_band": "at_risk", "trend_7d": -12.0, **kw}
        out = evaluate(cfg, st, feats(1, ()), as_of=at, open_counts={}, **args)
        assert all(
            a["suppressed_reason"] == ("" if a["status"] == "open" else "7天内已提醒1次，达到每周联系上限") for a in out
        )
        return [a["status"] for a in out]

    assert go(NOW, previous_band="watch") == ["open"]
    assert go(NOW + timedelta(days=2), trend_7d=-25.0) == ["suppressed"]  # stored, not pushed
    st["key_contact"] = True  # the high-severity field rule is never capped
    out = evaluate(
        cfg,
        st,
        feats(8, (50, 60, 72)),
        as_of=NOW + timedelta(days=3),
        open_counts={},
        score=35.0,
        band="at_risk",
        previous_band="at_risk",
        trend_7d=None,
    )
    assert [a["status"] for a in out] == ["open"]
    st["alerts"].clear()
    st["key_contact"] = False
    assert go(NOW + timedelta(days=11), previous_band="watch") == ["open"]  # earlier contacts are a week old


def test_quiet_hours_delay_pushes_until_morning_in_shanghai_except_high_severity() -> None:
    night = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    assert notify_after(CFG, night, "medium") == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)  # 08:00 local
    assert notify_after(CFG, night, "high") == night
    early = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # 07:00 next day in Shanghai
    assert notify_after(CFG, early, "low") == datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    day = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # noon
    assert notify_after(CFG, day, "medium") == day


def test_lifecycle_acknowledge_then_resolve_each_a_new_version() -> None:
    a = run(state(), feats(8, (50, 60, 72)))[0]
    acked = apply_action(a, {"action": "acknowledge", "by": "CS-01", "at": "2026-11-21T09:00:00+00:00"})
    assert (acked["status"], acked["version"], acked["acknowledged_by"]) == ("acknowledged", 2, "CS-01")
    resolve = {"action": "resolve", "by": "CS-02", "at": "2026-11-22T09:00:00+00:00", "note": "已回访"}
    done = apply_action(acked, resolve)
    assert (done["status"], done["version"], done["resolved_by"], done["note"]) == ("resolved", 3, "CS-02", "已回访")
    assert done["acknowledged_by"] == "CS-01"
    with pytest.raises(ValueError, match="resolved: cannot acknowledge"):
        apply_action(done, {"action": "acknowledge", "by": "CS-01", "at": "2026-11-23T09:00:00+00:00"})


def test_at_the_watermark_only_silence_is_judged_and_the_alert_cites_the_stored_score() -> None:
    """Issue 11: a watermark alert said 降至高风险（40分） while the stored row said 40.5 watch."""
    import orjson

    from pipeline.health import engine
    from pipeline.health.features import apply_event, new_state
    from pipeline.health.scoring import load_config

    def row(i: str, etype: str, ts: datetime, **p: Any) -> dict[str, Any]:
        return {"event_id": i, "event_type": etype, "occurred_at": ts.isoformat(), "payload": orjson.dumps(p).decode()}

    t0 = NOW - timedelta(days=30)
    st = new_state("C-1")
    events = [row("c", "pos.checkin", t0, segment="b2b_contact", is_key_contact=True)]
    events += [
        row(f"v{i}", "app.material_view", t0 + timedelta(days=i), pages_read=9, pages_total=10) for i in range(5)
    ]
    events += [
        row(f"o{i}", "messaging.outbound", t0 + timedelta(days=6 + i), conversation_id=f"c{i}") for i in range(3)
    ]
    for e in events:
        apply_event(st, e)
    stored = next(r for kind, r in engine.settle(st, load_config(), alert_cfg=CFG) if kind == "current")
    # At the watermark the contact is silent for weeks and none of three messages was answered:
    # the field rule fires; the score a rescoring would give now is lower, but is not cited.
    raised = engine.absence(st, NOW, load_config(), CFG, {})
    assert [a["rule_id"] for a in raised] == ["silent_key_contact"]
    assert raised[0]["score"] == stored["score"] and raised[0]["band"] == stored["band"]
    # with a band-drop-shaped history, the watermark still raises no band or score alert
    st["last"] = {**st["day_close"]["last"], "band": "at_risk"}
    st["alerts"], st["firing"], st["judged_at"] = {}, [], None  # judged afresh
    assert [a["rule_id"] for a in engine.absence(st, NOW, load_config(), ALL, {})] == ["silent_key_contact"]


def test_a_silence_is_found_at_the_same_moment_whatever_offset_the_judging_event_carries() -> None:
    """A key contact silent for a week with three messages unanswered for over 48 hours and a
    fourth only a day old (not a latency yet). Judged just before an event stamped +08:00 (a
    messaging tool) the silence was missed, as the state's UTC text was compared with +08:00
    text, while judged in UTC it was found: the same input gave an alert on another day."""
    import copy
    from zoneinfo import ZoneInfo

    import orjson

    from pipeline.health import engine
    from pipeline.health.features import apply_event, new_state
    from pipeline.health.scoring import load_config

    def row(i: str, etype: str, ts: datetime, **p: Any) -> dict[str, Any]:
        return {"event_id": i, "event_type": etype, "occurred_at": ts.isoformat(), "payload": orjson.dumps(p).decode()}

    t0 = NOW - timedelta(days=9)
    st = new_state("C-1")
    for e in [
        row("c", "pos.checkin", t0 - timedelta(days=20), segment="b2b_contact", is_key_contact=True),
        row("v", "app.material_view", t0, pages_read=9, pages_total=10),
        *(
            row(f"o{i}", "messaging.outbound", t0 + timedelta(days=d), conversation_id=f"c{i}")
            for i, d in enumerate((2, 3, 4, 6))
        ),
    ]:
        apply_event(st, e)
    engine.settle(st, load_config(), alert_cfg=CFG)
    at = t0 + timedelta(days=7, hours=20)  # the fourth message is 44 hours old
    found = engine.silence_before(copy.deepcopy(st), at, CFG)
    assert found == t0 + timedelta(days=7, minutes=1)  # a week without material, a minute past
    shanghai = at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert engine.silence_before(copy.deepcopy(st), shanghai, CFG) == found


def test_a_silence_comes_true_at_the_same_moment_whenever_the_customer_was_last_judged() -> None:
    """A week without material comes true at a moment the state names (a minute past the
    limit); judged last 20 or 50 s before that limit, the alert was dated a minute after that
    judgement instead, so the watermark's pace decided its time (two clean runs disagreed)."""
    import copy

    import orjson

    from pipeline.health import engine
    from pipeline.health.features import apply_event, new_state
    from pipeline.health.scoring import load_config

    def row(i: str, etype: str, ts: datetime, **p: Any) -> dict[str, Any]:
        return {"event_id": i, "event_type": etype, "occurred_at": ts.isoformat(), "payload": orjson.dumps(p).decode()}

    t0 = NOW - timedelta(days=9)
    st = new_state("C-1")
    for e in [
        row("c", "pos.checkin", t0 - timedelta(days=20), segment="b2b_contact", is_key_contact=True),
        row("v", "app.material_view", t0, pages_read=9, pages_total=10),
        *(
            row(f"o{i}", "messaging.outbound", t0 + timedelta(days=d), conversation_id=f"c{i}")
            for i, d in enumerate((2, 3, 4, 6))
        ),
    ]:
        apply_event(st, e)
    engine.settle(st, load_config(), alert_cfg=CFG)
    limit = t0 + timedelta(days=7)
    at = t0 + timedelta(days=7, hours=20)
    found = set()
    for before in (20, 50, 3600):
        judged = copy.deepcopy(st)
        judged["judged_at"] = (limit - timedelta(seconds=before)).isoformat()
        found.add(engine.silence_before(judged, at, CFG))
    assert found == {limit + timedelta(minutes=1)}


def test_two_limits_within_a_minute_date_a_silence_at_the_later_one_whenever_it_is_judged() -> None:
    """Seven days without material 1.25 s before the third message's 48 hours: judged a minute
    past the first limit the condition already held (the second had crossed), so the alert
    was dated there or a minute past the second, as the last judgement fell between them."""
    import copy

    import orjson

    from pipeline.health import engine
    from pipeline.health.features import apply_event, new_state
    from pipeline.health.scoring import load_config

    def row(i: str, etype: str, ts: datetime, **p: Any) -> dict[str, Any]:
        return {"event_id": i, "event_type": etype, "occurred_at": ts.isoformat(), "payload": orjson.dumps(p).decode()}

    t0 = NOW - timedelta(days=9)
    third = t0 + timedelta(days=5, seconds=1.25)
    st = new_state("C-1")
    for e in [
        row("c", "pos.checkin", t0 - timedelta(days=20), segment="b2b_contact", is_key_contact=True),
        row("v", "app.material_view", t0, pages_read=9, pages_total=10),
        row("o0", "messaging.outbound", t0 + timedelta(days=2), conversation_id="c0"),
        row("o1", "messaging.outbound", t0 + timedelta(days=3), conversation_id="c1"),
        row("o2", "messaging.outbound", third, conversation_id="c2"),
    ]:
        apply_event(st, e)
    engine.settle(st, load_config(), alert_cfg=CFG)
    at = t0 + timedelta(days=8)
    found = set()
    for judged in (t0 + timedelta(days=6), t0 + timedelta(days=7, seconds=0.5)):
        s = copy.deepcopy(st)
        s["judged_at"] = judged.isoformat()
        found.add(engine.silence_before(s, at, CFG))
    assert found == {third + timedelta(hours=48, minutes=1)}


def test_a_silence_judged_within_the_minute_past_its_limit_is_dated_a_minute_past_it_all_the_same() -> None:
    """The same two limits 1.25 s apart, judged by a watermark that fell between the second
    limit and the minute past it: the condition held there, so the watermark itself was the
    alert's moment (01:14:43.624 in one fault run, 01:14:44.876 in the clean run). Now nothing
    is raised until the minute has passed, and the next judgement dates it a minute past."""
    import copy

    import orjson

    from pipeline.health import engine
    from pipeline.health.features import apply_event, new_state
    from pipeline.health.scoring import load_config

    def row(i: str, etype: str, ts: datetime, **p: Any) -> dict[str, Any]:
        return {"event_id": i, "event_type": etype, "occurred_at": ts.isoformat(), "payload": orjson.dumps(p).decode()}

    t0 = NOW - timedelta(days=9)
    third = t0 + timedelta(days=5, seconds=1.25)
    st = new_state("C-1")
    for e in [
        row("c", "pos.checkin", t0 - timedelta(days=20), segment="b2b_contact", is_key_contact=True),
        row("v", "app.material_view", t0, pages_read=9, pages_total=10),
        row("o0", "messaging.outbound", t0 + timedelta(days=2), conversation_id="c0"),
        row("o1", "messaging.outbound", t0 + timedelta(days=3), conversation_id="c1"),
        row("o2", "messaging.outbound", third, conversation_id="c2"),
    ]:
        apply_event(st, e)
    engine.settle(st, load_config(), alert_cfg=CFG)
    at, want = t0 + timedelta(days=8), third + timedelta(hours=48, minutes=1)
    assert engine.silence_before(copy.deepcopy(st), at, CFG) == want  # judged once, later
    watermark = third + timedelta(hours=48, seconds=30)  # past the limit, within its minute
    early = copy.deepcopy(st)
    assert engine.absence(early, watermark, load_config(), CFG, {}) == []
    assert early["judged_at"] == watermark.isoformat()
    assert engine.silence_before(early, at, CFG) == want
