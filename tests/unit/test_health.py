"""Health-score math: bounds, monotone components, idempotent replays, reasons."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.health.features import Features, apply_event, features, new_state
from pipeline.health.scoring import HealthConfig, load_config, reasons, score

CFG = load_config()
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

feature_st = st.builds(
    Features,
    logins_7d=st.integers(0, 50),
    opens_7d=st.integers(0, 50),
    opens_30d=st.integers(0, 200),
    depth_30d=st.floats(0, 1),
    days_since_open=st.one_of(st.none(), st.floats(0, 400)),
    reply_hours=st.lists(st.floats(0, 500), max_size=3).map(tuple),
    purchases_30d=st.integers(0, 30),
    amount_30d=st.just(Decimal("0")),
    returns_30d=st.integers(0, 30),
)
segments = st.sampled_from(["b2b_contact", "retail_member", "unknown"])


@given(feature_st, segments)
def test_score_is_bounded(f: Features, segment: str) -> None:
    s = score(f, segment, CFG, {}, NOW)
    assert 0.0 <= s.score <= 100.0
    assert all(0.0 <= v <= 1.0 for v in s.components.values())


@given(feature_st, segments, st.integers(1, 10))
def test_more_engagement_never_lowers_the_score(f: Features, segment: str, more: int) -> None:
    base = score(f, segment, CFG, {}, NOW).score
    for better in (
        replace(f, logins_7d=f.logins_7d + more),
        replace(f, opens_7d=f.opens_7d + more),
        replace(f, purchases_30d=f.purchases_30d + more),
        replace(f, depth_30d=min(1.0, f.depth_30d + 0.1)),
        replace(f, days_since_open=None if f.days_since_open is None else max(0.0, f.days_since_open - more)),
        replace(f, reply_hours=tuple(max(0.0, h - more) for h in f.reply_hours)),
        replace(f, returns_30d=max(0, f.returns_30d - more)),
    ):
        assert score(better, segment, CFG, {}, NOW).score >= base


def row(event_id: str, etype: str, ts: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": etype,
        "occurred_at": ts.isoformat(),
        "payload": orjson.dumps(payload).decode(),
    }


def history() -> list[dict[str, Any]]:
    t0 = NOW - timedelta(days=20)
    rows = [row("c1", "pos.checkin", t0, segment="b2b_contact")]
    for i in range(8):
        rows.append(row(f"v{i}", "app.material_view", t0 + timedelta(days=i), pages_read=6, pages_total=12))
        rows.append(row(f"l{i}", "app.login", t0 + timedelta(days=i, hours=1)))
    for i in range(3):
        sent = t0 + timedelta(days=10 + i)
        rows.append(row(f"o{i}", "messaging.outbound", sent, conversation_id=f"cv{i}"))
        rows.append(row(f"r{i}", "messaging.reply", sent + timedelta(hours=60), conversation_id=f"cv{i}"))
    return rows


def test_replaying_and_reordering_events_gives_the_same_state() -> None:
    a = new_state("C-1")
    for r in history():
        apply_event(a, r)
    b = new_state("C-1")
    shuffled = list(reversed(history()))
    for r in shuffled + shuffled:  # reversed order, and every event twice
        apply_event(b, r)
    # Issue 15: replies were paired in arrival order (a shuffled contact scored 78.5 vs 75.7);
    # a reply now answers the earliest message still waiting before it, in event time.
    assert features(a, NOW) == features(b, NOW)
    assert a["days"] == b["days"] and a["fresh"] == b["fresh"] and a["last_open_at"] == b["last_open_at"]
    assert a["replies"] == b["replies"] and a["pending"] == b["pending"] and len(a["replies"]) == 3
    assert not apply_event(a, history()[3])


@given(st.randoms(use_true_random=False))
def test_any_arrival_order_of_messages_gives_the_same_replies(rnd: Any) -> None:
    t0 = NOW - timedelta(days=9)
    rows = []
    for c in range(4):  # four conversations: some answered late, one twice asked, one never answered
        for k in range(3):
            rows.append(
                row(f"o{c}{k}", "messaging.outbound", t0 + timedelta(days=2 * k, hours=c), conversation_id=f"c{c}")
            )
            if c != 3 and k != 1:
                at = t0 + timedelta(days=2 * k, hours=c + 7 * (c + 1))
                rows.append(row(f"r{c}{k}", "messaging.reply", at, conversation_id=f"c{c}"))
    ordered = new_state("C-1")
    for r in sorted(rows, key=lambda r: r["occurred_at"]):
        apply_event(ordered, r)
    shuffled = new_state("C-1")
    rnd.shuffle(rows)
    for r in rows:
        apply_event(shuffled, r)
    assert shuffled["replies"] == ordered["replies"] and shuffled["pending"] == ordered["pending"]
    assert features(shuffled, NOW) == features(ordered, NOW)


def test_a_purchase_sent_again_after_many_other_events_counts_once() -> None:
    """Issue 15: with only the last 100 ids remembered, a purchase re-sent after 105 other
    events was counted twice (the score went from 40.0 to 57.5)."""
    state = new_state("C-1")
    t0 = NOW - timedelta(days=10)
    purchase = row("p-1", "pos.purchase", t0, total="598.00")
    assert apply_event(state, purchase)
    for i in range(300):
        apply_event(state, row(f"l-{i}", "app.login", t0 + timedelta(hours=i)))
    assert not apply_event(state, purchase)
    assert sum(b["purchases"] for b in state["days"].values()) == 1
    assert features(state, NOW).purchases_30d == 1


def test_field_example_silent_contact_with_slow_replies_loses_points_with_reasons() -> None:
    st_ = new_state("C-1")
    for r in history():
        apply_event(st_, r)
    f = features(st_, NOW)
    assert f.reply_hours == (60.0, 60.0, 60.0)
    assert f.days_since_open is not None and f.days_since_open >= 12
    s = score(f, st_["segment"], CFG, st_["fresh"], NOW)
    assert s.band == "at_risk"
    why = reasons(None, s, f, CFG, "b2b_contact")
    assert any("最近3次消息均超过48小时未回复或回复（-" in w for w in why)
    early = features(st_, NOW - timedelta(days=12))
    before = score(early, "b2b_contact", CFG, st_["fresh"], NOW - timedelta(days=12))
    drop = reasons(before.points, s, f, CFG, "b2b_contact")
    assert "（较上次-" in drop[0] and "天未打开资料" in " ".join(drop)
    assert s.score < before.score


def test_a_first_score_is_explained_by_the_points_it_misses_not_against_zero() -> None:
    """Issue 11: the lowest demo customer (22) was explained by free default points; the
    77 missing points (no purchases, no logins, no material) were never named."""
    nothing = Features(0, 0, 0, 0.0, None, (), 0, Decimal("0"), 0)
    fresh = {"pos": NOW.isoformat(), "app": NOW.isoformat()}
    s = score(nothing, "retail_member", CFG, fresh, NOW)
    why = reasons(None, s, nothing, CFG, "retail_member")
    assert why[0].startswith("近30天未到店消费（-") and not any("+" in w for w in why)
    assert "近7天未登录、未打开资料" in " ".join(why)
    missing = sum(int(w.rsplit("（-", 1)[1].rstrip("）")) for w in why if "（-" in w)
    assert abs(missing - (100 - s.score)) <= len(why) + 2  # the gaps add up to what is missing


def test_a_member_who_only_shops_in_store_can_be_healthy() -> None:
    """Issue 11: 35% of a member's weight was app behaviour, so the till alone capped ~65."""
    loyal = Features(0, 0, 0, 0.0, None, (), 3, Decimal("1200"), 0)
    in_store = score(loyal, "retail_member", CFG, {"pos": NOW.isoformat()}, NOW)
    assert in_store.band == "healthy" and in_store.stale_sources == ()
    with_app = score(loyal, "retail_member", CFG, {"pos": NOW.isoformat(), "app": NOW.isoformat()}, NOW)
    assert with_app.score < in_store.score  # an app user who stopped using it is judged on it


def test_stale_source_lowers_confidence_not_the_score() -> None:
    f = features(new_state("C-1"), NOW)
    fresh = {"app": (NOW - timedelta(days=1)).isoformat(), "messaging": (NOW - timedelta(days=30)).isoformat()}
    s = score(f, "b2b_contact", CFG, fresh, NOW)
    assert s.stale_sources == ("messaging",) and s.confidence == 0.5


def test_config_is_validated() -> None:
    raw = CFG.model_dump()
    raw["profiles"]["b2b_contact"]["weights"].pop("reading")
    with pytest.raises(ValidationError):
        HealthConfig.model_validate(raw)
    raw = CFG.model_dump()
    raw["bands"] = {"healthy": 40, "watch": 70}
    with pytest.raises(ValidationError):
        HealthConfig.model_validate(raw)


def test_watermark_waits_for_the_slowest_active_source_and_skips_idle_ones() -> None:
    from pipeline.health.engine import Watermark

    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    w = Watermark(idle=60)
    assert w.current(0) is None
    w.observe("app", t0 + timedelta(days=3), wall=0)
    w.observe("pos", t0, wall=1)  # POS is three days behind (a lagging topic)
    assert w.current(10) == t0  # absence rules must not run ahead of POS
    w.observe("app", t0 + timedelta(days=4), wall=50)
    assert w.current(65) == t0 + timedelta(days=4)  # POS silent for 64 s: it no longer holds back
    assert w.current(500) == t0 + timedelta(days=4)  # everything idle: the newest time seen
    w.observe("pos", t0 + timedelta(days=1), wall=501)
    assert w.current(502) == t0 + timedelta(days=1)


def test_current_row_keeps_up_with_freshness_even_when_the_score_does_not_move() -> None:
    from nlp.pii import Pii
    from pipeline.health import engine as health
    from pipeline.intake import accepted_row, decode
    from pipeline.simulate import generate
    from schemas.events import EventError

    pii, cfg = Pii(b"k" * 32), load_config()
    states: dict[str, Any] = {}
    latest: dict[str, dict[str, Any]] = {}
    quiet_updates = 0
    for i, (topic, _k, value, _ts) in enumerate(generate(2, days=20, now=NOW, customers=40, bad_rate=0.0)):
        try:
            row = orjson.loads(orjson.dumps(accepted_row(decode(value, topic, 65536), pii)))
        except EventError:
            continue
        cid = row.get("customer_id")
        if not cid:
            continue
        state = states.setdefault(cid, new_state(cid))
        _changed, out = health.step(state, row, cfg, source="t:0", offset=i)
        kinds = [k for k, _ in out]
        if kinds == ["current"]:
            quiet_updates += 1
        for kind, r in out:
            if kind == "current":
                assert r["version"] > latest.get(cid, {"version": 0})["version"]  # upserts stay ordered
                latest[cid] = r
    assert quiet_updates > 0  # freshness-only updates happen, without history rows
    for cid, state in states.items():
        shown = orjson.loads(latest[cid]["fresh"])
        scored = {k: v for k, v in state["fresh"].items() if k != "notes"}  # a note is not scored
        assert {k: v[:10] for k, v in shown.items()} == {k: v[:10] for k, v in scored.items()}, cid


def test_a_contact_who_stops_replying_counts_as_three_slow_replies_once_48_hours_pass() -> None:
    """Issue 11: the field rule never fired because unanswered messages were not slow replies."""
    from pipeline.health.alerts import due, load_alert_config

    rule = next(r for r in load_alert_config().rules if r.kind == "silent_slow_contact")
    t0 = NOW - timedelta(days=20)
    st_ = new_state("C-1")
    for r in [row("c1", "pos.checkin", t0, segment="b2b_contact", is_key_contact=True)] + [
        row(f"o{i}", "messaging.outbound", t0 + timedelta(days=5 + i), conversation_id=f"cv{i}") for i in range(3)
    ]:
        apply_event(st_, r)
    last_sent = t0 + timedelta(days=7)
    young = features(st_, last_sent + timedelta(hours=30))  # the last one is only 30 h old: not slow yet
    assert len(young.reply_hours) == 2 and all(h > 48 for h in young.reply_hours)
    old = features(st_, last_sent + timedelta(hours=50))
    assert len(old.reply_hours) == 3 and all(h > 48 for h in old.reply_hours)
    fired = due(rule, old, key_contact=True, band="watch", previous_band=None, trend_7d=None)
    assert fired is not None
    # ...and one who answers within a day is not slow, however silent their reading is
    for i in range(3):
        sent = t0 + timedelta(days=5 + i)
        apply_event(st_, row(f"r{i}", "messaging.reply", sent + timedelta(hours=20), conversation_id=f"cv{i}"))
    quick = features(st_, last_sent + timedelta(hours=50))
    assert quick.reply_hours == (20.0, 20.0, 20.0)
    assert due(rule, quick, key_contact=True, band="watch", previous_band=None, trend_7d=None) is None
    # a reply 60 h late: judged before it came, the message was still waiting (slow since 48 h)
    late = t0 + timedelta(days=10)
    apply_event(st_, row("o9", "messaging.outbound", late, conversation_id="cv9"))
    apply_event(st_, row("r9", "messaging.reply", late + timedelta(hours=60), conversation_id="cv9"))
    assert features(st_, late + timedelta(hours=50)).reply_hours == (20.0, 20.0, 50.0)
    assert features(st_, late + timedelta(hours=70)).reply_hours == (20.0, 20.0, 60.0)


def test_days_are_business_days_in_shanghai() -> None:
    """Issue 11: days were UTC, so a purchase at 07:30 in Shanghai counted for the day before."""
    from pipeline.health.features import close_of, day_of

    st_ = new_state("C-1")
    morning = datetime(2026, 11, 20, 7, 30, tzinfo=ZoneInfo("Asia/Shanghai"))  # 23:30 UTC on the 19th
    apply_event(st_, row("p1", "pos.purchase", morning.astimezone(UTC), total="100.00", order_id="O-1", lines=[]))
    assert list(st_["days"]) == ["2026-11-20"]
    assert day_of(datetime(2026, 11, 20, 16, 30, tzinfo=UTC)) == "2026-11-21"  # 00:30 in Shanghai
    assert close_of("2026-11-20") == datetime(2026, 11, 20, 15, 59, 59, 999999, tzinfo=UTC)
    # a week of purchases counted at a Shanghai "now": the 07:30 purchase is inside the 30 days
    assert features(st_, datetime(2026, 12, 19, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))).purchases_30d == 1
    assert features(st_, datetime(2026, 12, 20, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))).purchases_30d == 0


def test_the_trend_does_not_depend_on_which_topic_the_worker_read_first() -> None:
    """Two workers once disagreed on a member's 7-day trend (-5.6 against +2.5): the week-old
    score counted the app as used or not depending on whether the first app event had been
    read yet. A channel counts for a moment only if it was used by then."""
    from pipeline.health import engine

    purchases = [
        row(f"p{d}", "pos.purchase", NOW - timedelta(days=d), total="300.00", order_id=f"O-{d}", lines=[])
        for d in (20, 16, 12, 0)
    ]
    first_app = row("l1", "app.login", NOW - timedelta(days=2))  # after the trend's base day, before "now"
    trends = []
    for order in ([*purchases, first_app], [first_app, *purchases]):
        st_ = new_state("C-1")
        st_["segment"] = "retail_member"
        out: list[Any] = []
        for r in order:
            apply_event(st_, r)
            out = engine.settle(st_, CFG)  # settled after every event, as a quiet stream would
        trends.append(next(r for kind, r in out if kind == "current")["trend_7d"])
    assert trends[0] is not None and trends[0] == trends[1]


def test_silence_is_raised_at_the_moment_it_came_true_however_late_the_watermark_finds_it() -> None:
    """A backfill is judged in batches that span days; the alert must not move with them."""
    from pipeline.health import engine
    from pipeline.health.alerts import load_alert_config

    alerts = load_alert_config()
    t0 = NOW - timedelta(days=20)
    events = [row("c1", "pos.checkin", t0, segment="b2b_contact", is_key_contact=True)]
    events += [row(f"l{i}", "app.login", t0 + timedelta(days=i, hours=1)) for i in range(3)]  # not gone yet
    events += [
        row(f"o{i}", "messaging.outbound", t0 + timedelta(days=1 + i), conversation_id=f"cv{i}") for i in range(3)
    ]
    onset = t0 + timedelta(days=3, hours=48, minutes=1)  # the third message unanswered for over 48 hours
    raised = []
    for late in (timedelta(hours=2), timedelta(days=1), timedelta(days=9)):
        st_ = new_state("C-1")
        for r in events:
            engine.fold(st_, r)
            engine.settle(st_, CFG, alert_cfg=alerts)
        out = engine.absent(st_, onset + late, CFG, alerts)
        assert [a["rule_id"] for _k, a in out] == ["silent_key_contact"]
        raised.append(out[0][1]["raised_at"])
        assert engine.absent(st_, onset + late + timedelta(days=2), CFG, alerts) == []  # one alert per episode
    assert len(set(raised)) == 1 and datetime.fromisoformat(raised[0]) == onset


def test_a_profile_cannot_expect_store_notes_which_never_score(tmp_path: Any) -> None:
    """A note feeds the tags and does not score the customer again, so a profile expecting
    notes would judge a source it never re-reads: refused at start-up with the reason."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "pipeline/health/data/health.yaml").read_text(encoding="utf-8")
    assert "expected_sources: [pos, app]" in text
    bad = tmp_path / "health.yaml"
    expecting_notes = text.replace("expected_sources: [pos, app]", "expected_sources: [pos, app, notes]")
    bad.write_text(expecting_notes, encoding="utf-8")
    with pytest.raises(ValueError, match="expected_sources"):  # pydantic's ValidationError names the field
        load_config(str(bad))


def test_reply_latencies_at_an_earlier_moment_do_not_depend_on_the_replies_folded_after_it() -> None:
    """Issue 15: a judgement looks back over what its batch folded. With only the last three
    replies kept, replies folded after the moment judged pushed out the ones before it, and
    whether a silent contact was alerted depended on where the batches fell."""
    t0 = NOW - timedelta(days=30)
    early: list[dict[str, Any]] = []
    for k, hours in enumerate((50, 50, 48)):  # three answers, the last one 48 h exactly: not slow
        sent = t0 + timedelta(days=3 * k)
        early += [
            row(f"o{k}", "messaging.outbound", sent, conversation_id=f"c{k}"),
            row(f"r{k}", "messaging.reply", sent + timedelta(hours=hours), conversation_id=f"c{k}"),
        ]
    judged = t0 + timedelta(days=6, hours=48, minutes=1)
    later: list[dict[str, Any]] = []
    for k in range(4):  # four more, answered after the moment judged
        answered = judged + timedelta(days=1 + k)
        later += [
            row(f"lo{k}", "messaging.outbound", answered - timedelta(hours=60), conversation_id=f"d{k}"),
            row(f"lr{k}", "messaging.reply", answered, conversation_id=f"d{k}"),
        ]
    small, big = new_state("C-1"), new_state("C-1")
    for r in early:
        apply_event(small, r)
    for r in early + later:
        apply_event(big, r)
    assert features(small, judged).reply_hours == (50.0, 50.0, 48.0)
    assert features(big, judged).reply_hours == features(small, judged).reply_hours
    assert features(big, judged + timedelta(days=10)).reply_hours == (60.0, 60.0, 60.0)


def test_days_without_material_at_an_earlier_moment_do_not_depend_on_the_opens_folded_after_it() -> None:
    """Issue 15: judged after a later open was folded, the last open before the moment judged
    was rounded to the start of its day (18 h earlier here), so a silence rule could hold at
    that moment in one run and not in another."""
    t0 = NOW - timedelta(days=20)
    opened = t0 + timedelta(hours=18)
    judged = opened + timedelta(days=7, hours=-6)  # 6 h short of a week without material
    view = {"pages_read": 3, "pages_total": 4}
    small, big = new_state("C-1"), new_state("C-1")
    for st_ in (small, big):
        apply_event(st_, row("v1", "app.material_view", opened, **view))
    apply_event(big, row("v2", "app.material_view", judged + timedelta(days=2), **view))
    assert features(small, judged).days_since_open == pytest.approx(6.75)
    assert features(big, judged).days_since_open == features(small, judged).days_since_open
