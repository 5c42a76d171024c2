"""Tag profiles and the recommender, pure: no Kafka needed to pin their behaviour."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp.tagger import NoteTagger, Tag, load_lexicon
from pipeline.notes import recommend, tags
from pipeline.simulate import generate

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def tagger() -> NoteTagger:
    return NoteTagger()


def test_profile_is_the_same_whatever_order_notes_arrive_in(tagger: NoteTagger) -> None:
    notes = [
        (f"N-{i}", NOW - timedelta(days=3 * i), text) for i, text in enumerate(["M码藏青阔腿裤", "喜欢藏青", "M码卫衣"])
    ]
    profiles = []
    for order in (notes, notes[::-1], [notes[1], notes[0], notes[2]]):
        p = tags.new_profile("C-1")
        for nid, ts, text in order:
            tags.apply_note(p, nid, ts, tagger.tag(text))
        tags.apply_note(p, "N-0", NOW, tagger.tag("M码藏青阔腿裤"))  # a replay counts once
        profiles.append({k: (round(v["w"], 5), v["at"]) for k, v in p["tags"].items()})
    assert profiles[0] == profiles[1] == profiles[2]
    # size:M was said twice (now and 6 days ago): it weighs more than one mention
    assert profiles[0]["size:M"][0] > profiles[0]["preference:藏青"][0]


def test_a_visit_is_answered_with_what_was_noted_before_it_in_event_time(tagger: NoteTagger) -> None:
    """The worker may fold a later note before an earlier visit (two topics, no order between
    them): the visit must not be offered what the associate wrote down days after it."""
    p = tags.new_profile("C-1")
    tags.apply_note(p, "N-old", NOW - timedelta(days=20), tagger.tag("推荐了卫衣，S码"))
    tags.apply_note(p, "N-new", NOW - timedelta(days=10), tagger.tag("顾客试穿M码藏青阔腿裤，推荐了阔腿裤，喜欢藏青"))
    tags.apply_note(p, "N-newer", NOW - timedelta(days=2), tagger.tag("又推荐了卫衣"))
    visit = {"event_id": "v", "store_id": "S-1", "event_type": "pos.checkin"}
    before = tags.request_for_visit(p, {**visit, "occurred_at": (NOW - timedelta(days=12)).isoformat()})
    assert [(r["category"], r["notes"]) for r in before["recommended"]] == [("卫衣", ["N-old"])]
    assert before["size"] == "S" and before["liked_colours"] == []
    after = tags.request_for_visit(p, {**visit, "occurred_at": NOW.isoformat()})
    assert {r["category"] for r in after["recommended"]} == {"卫衣", "阔腿裤"}
    assert after["size"] == "M" and after["liked_colours"] == ["藏青"]


def test_a_visit_read_after_later_notes_is_answered_as_if_read_before_them(tagger: NoteTagger) -> None:
    """A tag known before the visit but noted again after it: its later weight must not count
    at the visit, nor its later mention decide the size. Read before or after the later notes,
    the visit's request is the same (colours ranked by weight at the visit)."""
    early = [
        ("N-1", NOW - timedelta(days=30), "顾客喜欢藏青，M码"),
        ("N-2", NOW - timedelta(days=25), "喜欢黑色"),
        ("N-3", NOW - timedelta(days=24), "喜欢黑色，推荐了卫衣"),
    ]
    late = [
        ("N-4", NOW - timedelta(days=5), "还是喜欢藏青，L码"),
        ("N-5", NOW - timedelta(days=4), "喜欢藏青，推荐了卫衣"),
        ("N-6", NOW - timedelta(days=3), "藏青，喜欢藏青"),
    ]
    visit = {"event_id": "v", "store_id": "S-1", "event_type": "pos.checkin"}
    at = {**visit, "occurred_at": (NOW - timedelta(days=20)).isoformat()}
    p = tags.new_profile("C-1")
    for nid, ts, text in early:
        tags.apply_note(p, nid, ts, tagger.tag(text))
    read_first = tags.request_for_visit(p, at)
    for nid, ts, text in late:
        tags.apply_note(p, nid, ts, tagger.tag(text))
    read_after = tags.request_for_visit(p, at)
    assert read_first["liked_colours"] == ["黑色", "藏青"]  # 黑色 twice, 藏青 once, by then
    assert read_after == read_first


def test_weight_halves_every_half_life() -> None:
    assert tags.decayed(1.0, NOW, NOW + timedelta(days=tags.HALF_LIFE_DAYS)) == pytest.approx(0.5)


def stock_of(*items: tuple[str, str, str, str, int]) -> dict[str, Any]:
    lex = load_lexicon()
    out: dict[str, Any] = {}
    for sku, name, size, colour, n in items:
        payload = {"sku": sku, "name": name, "size": size, "colour": colour, "on_hand": n}
        recommend.apply_stock(out, payload, recommend.category_of(lex, name))
    return out


def request(**kw: Any) -> dict[str, Any]:
    base = {
        "request_id": "v1",
        "customer_id": "C-1",
        "store_id": "S-1",
        "occurred_at": NOW.isoformat(),
        "visit_type": "pos.checkin",
        "opted_out": False,
        "size": "M",
        "liked_colours": [],
        "dislikes": [],
        "recommended": [{"category": "阔腿裤", "notes": ["N-1"], "at": NOW.isoformat()}],
        "pairings": [],
        "categories": [],
    }
    return {**base, **kw}


def test_only_in_stock_in_her_size_and_never_a_disliked_colour() -> None:
    stock = stock_of(
        ("SKU-1", "阔腿裤", "M", "黑色", 0),
        ("SKU-1", "阔腿裤", "L", "黑色", 5),
        ("SKU-1", "阔腿裤", "M", "酒红", 5),
        ("SKU-1", "阔腿裤", "M", "米色", 1),
    )
    recs = recommend.recommend(request(dislikes=["酒红"]), stock, [])
    assert [(r["sku"], r["size"], r["colour"]) for r in recs] == [("SKU-1", "M", "米色")]
    assert recs[0]["source_notes"] == ["N-1"]
    assert recommend.recommend(request(dislikes=["酒红", "米色"]), stock, []) == []


def test_an_allergy_or_a_disliked_material_named_in_the_item_is_never_offered(tagger: NoteTagger) -> None:
    """Issue 12: 羊毛过敏 is a tag the recommender respects, not a colour it ignores."""
    stock = stock_of(("SKU-7", "羊毛阔腿裤", "M", "黑色", 4), ("SKU-8", "纯棉阔腿裤", "M", "黑色", 2))
    p = tags.new_profile("C-1")
    tags.apply_note(p, "N-1", NOW - timedelta(days=1), tagger.tag("推荐了阔腿裤，她羊毛过敏"))
    req = tags.request_for_visit(
        p, {"event_id": "v", "store_id": "S-1", "event_type": "pos.checkin", "occurred_at": NOW.isoformat()}
    )
    assert req["allergies"] == ["羊毛"]
    assert [r["sku"] for r in recommend.recommend({**req, "size": "M"}, stock, [])] == ["SKU-8"]
    assert [r["sku"] for r in recommend.recommend(request(dislikes=["纯棉"]), stock, [])] == ["SKU-7"]


def test_pairing_follows_rules_and_same_colour_preference() -> None:
    stock = stock_of(
        ("SKU-1", "阔腿裤", "M", "藏青", 2),
        ("SKU-3", "针织开衫", "M", "白色", 9),
        ("SKU-3", "针织开衫", "M", "藏青", 1),
    )
    rules = [{"if": "阔腿裤", "then": "针织开衫", "support": 0.1, "support_if": 0.2, "confidence": 0.5, "lift": 2.0}]
    recs = recommend.recommend(request(pairings=["同色系"]), stock, rules)
    assert [(r["kind"], r["colour"]) for r in recs] == [("noted", "藏青"), ("pairing", "藏青")]
    assert recommend.message(recs) == "上次推荐的阔腿裤有库存，搭配建议：同色系针织开衫"
    plain = recommend.recommend(request(), stock, rules)
    assert plain[1]["colour"] == "白色"  # without 同色系 the best-stocked colour wins


def test_opted_out_customers_get_the_non_personalised_fallback() -> None:
    stock = stock_of(("SKU-1", "阔腿裤", "M", "藏青", 2), ("SKU-5", "衬衫", "S", "白色", 7))
    recs = recommend.recommend(request(opted_out=True, dislikes=["白色"]), stock, [])
    assert recs and all(r["kind"] == "popular" and r["source_notes"] == [] for r in recs)
    assert {r["category"] for r in recs} == {"阔腿裤", "衬衫"}  # her tags are not used at all


def test_mining_finds_the_pairs_planted_in_simulated_baskets() -> None:
    lex = load_lexicon()
    baskets = []
    for topic, _k, value, _ts in generate(5, days=30, now=NOW, customers=300, bad_rate=0.0):
        doc = orjson.loads(value)
        if topic == "pos.transactions" and doc["event_type"] == "pos.purchase":
            cats = {recommend.category_of(lex, ln["name"]) for ln in doc["payload"]["lines"]}
            baskets.append({c for c in cats if c})
    rules = recommend.mine_rules(baskets)
    top = {(r["if"], r["then"]) for r in rules if r["lift"] > 1.5}
    assert ("阔腿裤", "针织开衫") in top and ("风衣", "衬衫") in top
    random.Random(0).shuffle(baskets)
    assert recommend.mine_rules(baskets) == rules  # order of baskets does not matter


def test_the_screen_line_names_each_kind_once() -> None:
    """Issue 16: the line repeated its prefix (搭配建议：阔腿裤，搭配建议：西装外套)."""
    recs = [
        {"kind": "noted", "category": "毛衣", "reasons": ["上次推荐"]},
        {"kind": "noted", "category": "针织开衫", "reasons": ["上次推荐"]},
        {"kind": "pairing", "category": "阔腿裤", "reasons": ["搭配建议：阔腿裤（黑色，M码）", "规则"]},
        {"kind": "pairing", "category": "西装外套", "reasons": ["搭配建议：同色系西装外套（藏青，M码）", "规则"]},
        {"kind": "popular", "category": "卫衣", "reasons": ["热销"]},
    ]
    assert recommend.message(recs) == "上次推荐的毛衣、针织开衫有库存，搭配建议：阔腿裤、同色系西装外套，热销：卫衣"


def test_stock_is_the_newest_count_in_event_time_and_a_retried_count_changes_nothing() -> None:
    """A count read late (a replay, a retry after newer counts) must not take stock back."""
    state = recommend.new_store("S-01")
    count = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": "黑色"}
    t1, t2 = "2026-11-20T02:00:00.000+00:00", "2026-11-20T05:00:00.000+00:00"
    assert recommend.fold_stock(state, {**count, "on_hand": 4}, "裤装", source="i:0", offset=1, at=t1, event_id="a")
    assert recommend.fold_stock(state, {**count, "on_hand": 0}, "裤装", source="i:0", offset=2, at=t2, event_id="b")
    assert recommend.seen(state, count, "b") and recommend.seen(state, count, "a")
    assert not recommend.seen(state, count, "c")  # a new count: its events row is stored
    # the older count again, at a new offset: sold out stays sold out, and it counts as seen
    # (a copy read after the newer count once stored its events row twice)
    assert not recommend.fold_stock(state, {**count, "on_hand": 4}, "裤装", source="i:0", offset=3, at=t1, event_id="a")
    assert recommend.seen(state, count, "a")
    # the newest again: nothing changes either
    assert not recommend.fold_stock(state, {**count, "on_hand": 0}, "裤装", source="i:0", offset=4, at=t2, event_id="b")
    assert state["stock"]["SKU-1"]["on"] == {"M|黑色": 0}


def test_a_visit_is_answered_with_the_stock_of_its_own_moment_however_late_it_is_read() -> None:
    """After an outage the store side reads visits and counts in another order than they
    happened; the answer must be the one the stock allowed at the visit."""
    state = recommend.new_store("S-01")
    count = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": "黑色"}
    t1, t2 = "2026-11-20T02:00:00.000+00:00", "2026-11-20T05:00:00.000+00:00"
    recommend.fold_stock(state, {**count, "on_hand": 0}, "裤装", source="i:0", offset=1, at=t2, event_id="b")
    recommend.fold_stock(state, {**count, "on_hand": 4}, "裤装", source="i:0", offset=2, at=t1, event_id="a")  # late
    assert state["stock"]["SKU-1"]["on"] == {"M|黑色": 0}  # now: sold out
    between = recommend.as_of(state["stock"], "2026-11-20T03:00:00.000+00:00")
    assert between["SKU-1"]["on"] == {"M|黑色": 4}  # at the visit: four on the shelf
    assert recommend.as_of(state["stock"], "2026-11-20T01:00:00.000+00:00")["SKU-1"]["on"] == {}  # not yet counted
    assert recommend.as_of(state["stock"], t2)["SKU-1"]["on"] == {"M|黑色": 0}


def test_a_visit_read_days_late_after_many_counts_still_gets_the_stock_of_its_moment() -> None:
    """After a rebalance the store side ran days ahead of the visits; two days and four levels of
    history answered those visits with the stock they could still see, not the stock they had."""

    state = recommend.new_store("S-01")
    count = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": "黑色"}
    t0 = datetime(2026, 11, 20, 2, tzinfo=UTC)
    for n in range(12):  # a count every 12 hours for six days: 12, 11, ..., 1 on the shelf
        at = (t0 + timedelta(hours=12 * n)).isoformat(timespec="milliseconds")
        recommend.fold_stock(
            state, {**count, "on_hand": 12 - n}, "裤装", source="i:0", offset=n, at=at, event_id=f"c{n}"
        )
    visit = (t0 + timedelta(hours=13)).isoformat(timespec="milliseconds")  # after the second count
    assert recommend.as_of(state["stock"], visit)["SKU-1"]["on"] == {"M|黑色": 11}


def test_a_level_set_long_ago_still_answers_a_visit_whose_next_count_was_read_first() -> None:
    """A variant counted once, weeks before a visit, and counted again the day after it: the
    visit is answered with the old level whichever of the two was read first (dropping levels
    older than the history window gave another answer when the next count came first)."""
    count = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": "白色"}
    first = "2026-09-21T12:00:00.000+00:00"
    visit, later = "2026-10-05T08:44:35.643+00:00", "2026-10-06T06:05:25.411+00:00"
    answers = []
    for order in ((first, later), (later, first)):
        state = recommend.new_store("S-01")
        for n, at in enumerate(order):
            level = 8 if at == first else 10
            recommend.fold_stock(state, {**count, "on_hand": level}, "裤装", source="i:0", offset=n, at=at, event_id=at)
        answers.append(recommend.as_of(state["stock"], visit)["SKU-1"]["on"])
    assert answers == [{"M|白色": 8}, {"M|白色": 8}]


def test_a_visit_read_weeks_of_stock_counts_late_is_answered_as_it_was_live() -> None:
    """Input sent in bulk reaches the broker in per-partition batches: a batch of stock counts
    three weeks ahead of the visits sent with it was folded first, and the level a visit needed
    (counted 9 days before it, next counted 6 days after it) had been trimmed from the history:
    the visit got other items than in the run that read them in step."""
    count = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": "白色"}
    t0 = datetime(2026, 10, 5, 4, tzinfo=UTC)
    stamps = [t0, t0 + timedelta(days=15), t0 + timedelta(days=30)]
    visit = (t0 + timedelta(days=9)).isoformat(timespec="milliseconds")
    answers = []
    for upto in (1, 3):  # in step: the first count only; read ahead: all three
        state = recommend.new_store("S-01")
        for n, at in enumerate(stamps[:upto]):
            stamp = at.isoformat(timespec="milliseconds")
            payload = {**count, "on_hand": 9 - n}
            recommend.fold_stock(state, payload, "裤装", source="i:0", offset=n, at=stamp, event_id=f"c{n}")
        answers.append(recommend.as_of(state["stock"], visit)["SKU-1"]["on"])
    assert answers == [{"M|白色": 9}, {"M|白色": 9}]


def test_a_full_tie_between_colours_is_broken_by_colour_not_by_the_order_counts_arrived() -> None:
    """Two colours of the customer's size with as many units, neither liked: the first
    count to arrive used to win, so a replay that read them in another order answered otherwise."""
    req = {"opted_out": False, "size": "M", "dislikes": [], "liked_colours": [], "pairings": [], "categories": []}
    req["recommended"] = [{"category": "裤装", "notes": ["N-1"]}]
    picks = []
    for colours in (["白色", "黑色"], ["黑色", "白色"]):
        state = recommend.new_store("S-01")
        for n, colour in enumerate(colours):
            payload = {"sku": "SKU-1", "name": "阔腿裤", "size": "M", "colour": colour, "on_hand": 5}
            recommend.fold_stock(
                state, payload, "裤装", source="i:0", offset=n, at=f"2026-10-0{n + 1}", event_id=f"c{n}"
            )
        picks.append(recommend.recommend(req, state["stock"], [])[0]["colour"])
    assert picks[0] == picks[1]


@settings(max_examples=150, deadline=None)
@given(
    notes=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=40),  # day of the note (several notes share an instant)
            st.lists(st.sampled_from(["颜色:藏青", "颜色:黑色", "尺码:M", "品类:卫衣"]), min_size=1, max_size=3),
            st.floats(min_value=0.1, max_value=1.0),
        ),
        min_size=1,
        max_size=8,
    ),
    seed=st.integers(min_value=0, max_value=1_000),
)
def test_profile_is_the_same_in_any_order_with_notes_at_one_instant(
    notes: list[tuple[int, list[str], float]], seed: int
) -> None:
    """Weights, first and newest times, kept notes and contributions do not depend on the order
    notes arrive in, also when several are at the same instant (folded without a decay)."""

    def tags_of(keys: list[str], weight: float) -> list[Tag]:
        return [Tag(k.split(":")[0], k.split(":")[1], i, i + 1, k, weight) for i, k in enumerate(keys)]

    items = [(f"N-{i}", NOW - timedelta(days=day), tags_of(keys, w)) for i, (day, keys, w) in enumerate(notes)]
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    profiles = []
    for order in (items, shuffled):
        p = tags.new_profile("C-1")
        for nid, ts, found in order:
            tags.apply_note(p, nid, ts, found)
        profiles.append(p["tags"])
    first, second = profiles
    assert first.keys() == second.keys()
    for key, held in first.items():
        other = second[key]
        assert {k: v for k, v in held.items() if k != "w"} == {k: v for k, v in other.items() if k != "w"}
        assert held["w"] == pytest.approx(other["w"], rel=1e-5, abs=1e-5)
