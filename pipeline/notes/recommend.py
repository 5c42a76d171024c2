"""Stock-aware recommendations for a customer who shows up at a store, pure (no Faust).

Inputs: the visit's request (derived from the customer's tag profile: size, liked colours,
dislikes, items recommended in earlier notes with those notes' ids), the store's stock,
and co-purchase rules mined from POS baskets. Output: up to ``limit`` items in stock in the
customer's size, none in a disliked colour or category, each with its reasons (Chinese,
for the store screen) and the notes it came from. An opted-out customer gets the store's
best-stocked popular items instead, marked not personalised (PIPL art. 24).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from itertools import permutations
from pathlib import Path
from typing import Any

from pipeline.intake import now_iso


class Categories:
    """Product name -> canonical category: the longest lexicon category inside the name.

    Built once; names repeat (a catalogue), so answers are memoised off the hot path."""

    def __init__(self, lexicon: dict[str, tuple[str, str]]) -> None:
        entries = [(surface, canon) for surface, (kind, canon) in lexicon.items() if kind == "category"]
        self._entries = sorted(entries, key=lambda e: -len(e[0]))  # stable: lexicon order breaks ties
        self._memo: dict[str, str | None] = {}

    def __call__(self, name: str) -> str | None:
        if name not in self._memo:
            low = name.lower()
            self._memo[name] = next((canon for surface, canon in self._entries if surface in low), None)
        return self._memo[name]


def category_of(lexicon: dict[str, tuple[str, str]], name: str) -> str | None:
    return Categories(lexicon)(name)


# Older levels kept per SKU variant (a versioned store's history retention): a visit read
# late is answered with the stock of its moment. 48 hours and 4 levels were too short: after a
# rebalance the store side ran days ahead of the visits, and the fault table's second worker got
# other "popular" answers than the clean run (fewer units left in the levels it still knew).
# 14 days were too short as well: input sent in bulk reaches the broker in per-partition
# batches, and a batch of stock counts weeks ahead of the visits sent with it (the customer
# side caught up, so nothing held them) had trimmed the level a visit of 10-14 needed (a count
# of 10-05, next counted 10-20, newest 11-04): 197-1,314 answers of 35,800 differed from the
# clean run. 60 days cover a backfill or replay of two months; the cap bounds the state.
PREV_HOURS = 60 * 24
PREV_MAX = 64


def apply_stock(
    stock: dict[str, Any], payload: dict[str, Any], category: str | None, at: str = "", event_id: str = ""
) -> bool:
    """One stock level for a SKU's size and colour; the newest in event time wins, so a level
    read late (a replay, a retry after newer counts) never takes stock back. The levels of the
    last ``PREV_HOURS`` before it are kept, so a visit is answered with the stock of its own
    moment whenever it is read. False if it changed nothing: that very event again."""
    item = stock.setdefault(payload["sku"], {"name": payload.get("name") or payload["sku"], "category": None, "on": {}})
    variant = f"{payload['size']}|{payload['colour']}"
    held = item.setdefault("at", {}).get(variant)  # [event time, event id] of the level held
    level = payload["on_hand"]
    if payload.get("name"):
        item["name"] = payload["name"]
    if category:
        item["category"] = category
    if held is not None and (held[0], held[1]) == (at, event_id):
        return False
    prev: list[list[Any]] = item.setdefault("prev", {}).get(variant, [])
    if held is not None and (held[0], held[1]) > (at, event_id):  # older than the level held
        if any(p[0] == at for p in prev):
            return False
        prev = sorted([*prev, [at, level, event_id]])
    else:
        if held is not None:
            prev = [*prev, [held[0], item["on"][variant], held[1]]]
        item["on"][variant] = level
        item["at"][variant] = [at, event_id]
    newest = item["at"][variant][0]
    cutoff = (datetime.fromisoformat(newest) - timedelta(hours=PREV_HOURS)).isoformat() if newest else ""
    # The level in effect at the cutoff stays too: a count set weeks ago and counted again just
    # after a visit still answers the visit (dropping it once answered a visit differently when
    # the next count happened to be read first, 310 answers of 4,832 in a fault-table run).
    older = [p for p in prev if p[0] < cutoff]
    prev = [*older[-1:], *(p for p in prev if p[0] >= cutoff)][-PREV_MAX:]
    if prev:
        item["prev"][variant] = prev
    else:
        item["prev"].pop(variant, None)
    return True


def as_of(stock: dict[str, Any], at: str) -> dict[str, Any]:
    """The stock as it stood at ``at`` (a visit's event time): each variant's newest level not
    after it. A variant first counted after it, or whose levels before it are forgotten (the
    level in effect ``PREV_HOURS`` before its newest is the oldest kept), is not offered."""
    if not at:
        return stock
    view: dict[str, Any] = {}
    for sku, item in stock.items():
        stamps: dict[str, list[Any]] = item.get("at", {})
        if all(stamp[0] <= at for stamp in stamps.values()):
            view[sku] = item  # nothing newer than the visit: as it is
            continue
        on: dict[str, int] = {}
        for variant, level in item["on"].items():
            stamp = stamps.get(variant)
            if stamp is None or stamp[0] <= at:
                on[variant] = level
                continue
            older = [p for p in item.get("prev", {}).get(variant, []) if p[0] <= at]
            if older:
                on[variant] = older[-1][1]
        view[sku] = {**item, "on": on}
    return view


def new_store(store_id: str) -> dict[str, Any]:
    """A store's state on the store side: its stock by SKU and the offsets folded in."""
    return {"store_id": store_id, "stock": {}, "applied": {}}


def seen(state: dict[str, Any], payload: dict[str, Any], event_id: str) -> bool:
    """Whether this very count is folded already: the level held for its SKU's size and
    colour, or one of the earlier levels kept (a copy read after a newer count, which once
    stored its ``events`` row a second time)."""
    item = state["stock"].get(payload["sku"])
    if not item:
        return False
    variant = f"{payload['size']}|{payload['colour']}"
    held = item.get("at", {}).get(variant)
    if held and held[1] == event_id:
        return True
    return any(len(p) > 2 and p[2] == event_id for p in item.get("prev", {}).get(variant, ()))


def fold_stock(
    state: dict[str, Any],
    payload: dict[str, Any],
    category: str | None,
    *,
    source: str,
    offset: int,
    at: str = "",
    event_id: str = "",
) -> bool:
    """One stock level into the store's state; False if this offset was already folded or
    the level is not newer than the one held (the same event sent twice included)."""
    applied: dict[str, int] = state["applied"]
    if applied.get(source, -1) >= offset:
        return False
    applied[source] = offset
    return apply_stock(state["stock"], payload, category, at, event_id)


def answer(state: dict[str, Any], req: dict[str, Any], rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``recommendations`` rows for one visit request from the store's stock at the visit."""
    wanted = {r["category"] for r in req["recommended"]} | set(req["pairings"]) | set(req["categories"][:2])
    wanted |= {r["then"] for r in rules if r["if"] in wanted}
    stock: dict[str, Any] = state["stock"]
    if not req["opted_out"]:
        stock = {sku: item for sku, item in stock.items() if item["category"] in wanted}
    stock = as_of(stock, req.get("occurred_at") or "")  # of what is wanted only: the rest is never read
    return rows(req, recommend(req, stock, rules))


def _candidates(
    stock: dict[str, Any],
    category: str,
    size: str | None,
    dislikes: set[str],
    liked: list[str],
    colour: str | None,
    avoid: frozenset[str] = frozenset(),
) -> list[tuple[str, str, str, int, str]]:
    out = []
    for sku, item in stock.items():
        if item["category"] != category or any(m in item["name"] for m in avoid):
            continue  # a disliked or allergenic material (or colour) named in the item: never offered
        for key, on_hand in item["on"].items():
            sz, col = key.split("|", 1)
            if on_hand <= 0 or (size is not None and sz != size) or col in dislikes:
                continue
            out.append((sku, sz, col, on_hand, item["name"]))
    rank = {c: i for i, c in enumerate(liked)}
    # colour last: on a full tie the order was that of the counts' arrival (dict order)
    out.sort(key=lambda x: (x[2] != colour, rank.get(x[2], len(rank)), -x[3], x[0], x[1], x[2]))
    return out


def recommend(
    req: dict[str, Any], stock: dict[str, Any], rules: list[dict[str, Any]], *, limit: int = 3
) -> list[dict[str, Any]]:
    if req["opted_out"]:
        return _fallback(req, stock, rules, limit)
    size, dislikes, liked = req["size"], set(req["dislikes"]), list(req["liked_colours"])
    avoid = frozenset(req.get("allergies", ())) | frozenset(d for d in dislikes if len(d) > 1)
    chosen: list[dict[str, Any]] = []
    taken: set[str] = set()

    def add(
        kind: str, cand: tuple[str, str, str, int, str], category: str, reasons: list[str], notes: list[str]
    ) -> None:
        sku, sz, col, on_hand, name = cand
        chosen.append(
            {
                "kind": kind,
                "sku": sku,
                "name": name,
                "category": category,
                "size": sz,
                "colour": col,
                "on_hand": on_hand,
                "reasons": reasons,
                "source_notes": notes,
            }
        )
        taken.add(category)

    for r in req["recommended"]:
        cat = r["category"]
        if cat in taken or cat in dislikes:
            continue
        cands = _candidates(stock, cat, size, dislikes, liked, None, avoid)
        if cands:
            c = cands[0]
            add("noted", c, cat, [f"上次推荐的{cat}有库存（{c[1]}码 {c[2]}，库存{c[3]}件）"], r["notes"])
    anchors = [(c["category"], c["colour"]) for c in chosen] + [(cat, None) for cat in req["categories"][:2]]
    same_colour = "同色系" in req["pairings"]
    for anchor, anchor_colour in anchors:
        targets: list[tuple[str, dict[str, Any] | None]] = [
            (p, None) for p in req["pairings"] if p not in ("同色系", "撞色", "叠穿", "内搭", "套装")
        ]
        targets += [(r["then"], r) for r in sorted(rules, key=lambda r: -r["lift"]) if r["if"] == anchor]
        for target, rule in targets:
            if len(chosen) >= limit:
                break
            if target in taken or target in dislikes or target == anchor:
                continue
            colour = anchor_colour if same_colour else None
            cands = _candidates(stock, target, size, dislikes, liked, colour, avoid)
            if not cands:
                continue
            c = cands[0]
            if rule is None:
                why = f"笔记中的搭配偏好：{target}"
            else:
                why = f"常一起购买：{anchor}→{target}（置信度{rule['confidence']:.0%}）"
            prefix = "同色系" if same_colour and colour is not None and c[2] == colour else ""
            notes = [n for r in req["recommended"] if r["category"] == anchor for n in r["notes"]]
            add("pairing", c, target, [f"搭配建议：{prefix}{target}（{c[2]}，{c[1]}码）", why], notes)
    return chosen[:limit]


def _fallback(
    req: dict[str, Any], stock: dict[str, Any], rules: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Not personalised: the best-stocked items of the store's most bought categories."""
    popularity = Counter({r["if"]: r["support_if"] for r in rules})
    totals: Counter[tuple[str, str]] = Counter()
    for sku, item in stock.items():
        if item["category"]:
            totals[(item["category"], sku)] += sum(max(0, n) for n in item["on"].values())
    ranked = sorted(totals, key=lambda k: (-popularity.get(k[0], 0.0), -totals[k], k[1]))
    out, seen = [], set()
    for cat, sku in ranked:
        if cat in seen or totals[(cat, sku)] <= 0:
            continue
        seen.add(cat)
        out.append(
            {
                "kind": "popular",
                "sku": sku,
                "name": stock[sku]["name"],
                "category": cat,
                "size": "",
                "colour": "",
                "on_hand": totals[(cat, sku)],
                "reasons": ["门店热销且有库存（客户已关闭个性化推荐）"],
                "source_notes": [],
            }
        )
        if len(out) >= limit:
            break
    return out


def message(recs: list[dict[str, Any]]) -> str:
    """The one line for the store screen, e.g. 上次推荐的阔腿裤有库存，搭配建议：同色系针织开衫;
    items of a kind share their words (上次推荐的毛衣、针织开衫有库存，搭配建议：针织开衫、西装外套)."""
    groups: dict[str, list[str]] = {}
    for r in recs:
        if r["kind"] == "noted":
            item = r["category"]
        elif r["kind"] == "pairing":
            item = r["reasons"][0].split("（", 1)[0].removeprefix("搭配建议：")
        else:
            item = r["category"]
        items = groups.setdefault(r["kind"], [])
        if item not in items:
            items.append(item)
    parts = []
    for kind, items in groups.items():
        listed = "、".join(items)
        if kind == "noted":
            parts.append(f"上次推荐的{listed}有库存")
        elif kind == "pairing":
            parts.append(f"搭配建议：{listed}")
        else:
            parts.append(f"热销：{listed}")
    return "，".join(parts)


def rows(req: dict[str, Any], recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``recommendations`` records: one per item, ranked, with the visit they answer."""
    line = message(recs)
    return [
        {
            "recommendation_id": f"{req['request_id']}:{rank}",
            "request_id": req["request_id"],
            "customer_id": req["customer_id"],
            "store_id": req["store_id"],
            "visit_type": req["visit_type"],
            "occurred_at": req["occurred_at"],
            "rank": rank,
            "personalised": not req["opted_out"],
            "message": line,
            **rec,
            "created_at": now_iso(),
        }
        for rank, rec in enumerate(recs, 1)
    ]


def mine_rules(
    baskets: list[set[str]], *, min_support: float = 0.01, min_confidence: float = 0.1
) -> list[dict[str, Any]]:
    """Category -> category association rules (support, confidence, lift) from POS baskets."""
    n = len(baskets)
    if n == 0:
        return []
    single: Counter[str] = Counter()
    pair: Counter[tuple[str, str]] = Counter()
    for basket in baskets:
        single.update(basket)
        pair.update(permutations(sorted(basket), 2))
    out = []
    for (a, b), both in pair.items():
        support, confidence = both / n, both / single[a]
        if support < min_support or confidence < min_confidence:
            continue
        lift = confidence / (single[b] / n)
        out.append(
            {
                "if": a,
                "then": b,
                "support": round(support, 4),
                "support_if": round(single[a] / n, 4),
                "confidence": round(confidence, 4),
                "lift": round(lift, 3),
            }
        )
    return sorted(out, key=lambda r: (-r["lift"], r["if"], r["then"]))


def load_rules(model_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """The newest mined rules (``copurchase-<version>.json``), or none."""
    files = sorted(model_dir.glob("copurchase-*.json"), reverse=True)
    if not files:
        return "none", []
    doc = json.loads(files[0].read_text(encoding="utf-8"))
    return str(doc["version"]), list(doc["rules"])


def mine_from_store(client: Any, lexicon: dict[str, tuple[str, str]], out_dir: Path) -> dict[str, Any]:
    """`salespulse reco mine`: baskets of every stored purchase -> rules -> a versioned file."""
    from datetime import UTC, datetime

    category = Categories(lexicon)
    baskets = []
    for (payload,) in client.query("SELECT payload FROM events FINAL WHERE event_type = 'pos.purchase'").result_rows:
        cats = {category(ln["name"]) for ln in json.loads(payload)["lines"]}
        cats.discard(None)
        if cats:
            baskets.append({c for c in cats if c is not None})
    mined = mine_rules(baskets)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {"version": version, "baskets": len(baskets), "rules": mined}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"copurchase-{version}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return doc
