"""Notes -> tag rows and a per-customer tag profile with time decay, pure (no Faust).

The profile is order-independent: a tag's weight as of its newest note time is
``sum(w_i * 0.5 ** ((newest - t_i) / half_life))`` whichever order the notes arrive in,
so a replay or a late note gives the same profile. Readers decay further to "now"
(``decayed``). What the recommender needs (size, liked and disliked colours, items
recommended earlier with the notes they came from) is read from the same profile.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from nlp.tagger import Tag
from pipeline.intake import iso, now_iso

HALF_LIFE_DAYS = 60.0
KEEP_NOTES_PER_TAG = 3
KEEP_CONTRIBUTIONS = 8  # a tag's newest notes' weights: a visit read after later notes takes them out
KEEP_TAGS = 200
KEEP_SEEN = 500  # note ids already folded (a replay, a retry), newest last


def _decay(days: float, half_life: float = HALF_LIFE_DAYS) -> float:
    return float(0.5 ** (days / half_life))


def decayed(weight: float, as_of: datetime, now: datetime, half_life: float = HALF_LIFE_DAYS) -> float:
    return weight * _decay(max(0.0, (now - as_of).total_seconds() / 86_400), half_life)


def new_profile(customer_id: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "tags": {}, "seen": [], "version": 0, "opted_out": False, "weeks": {}}


def note_row(
    row: dict[str, Any], tags: list[Tag], tagger_version: str, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``note_tags`` record: one per note, tags as parallel arrays with their spans
    (``payload``: the row's payload as data, when the caller has it)."""
    p = orjson.loads(row["payload"]) if payload is None else payload
    return {
        "note_id": p["note_id"],
        "event_id": row["event_id"],
        "customer_id": row["customer_id"],
        "store_id": row.get("store_id") or "",
        "associate_id": p["associate_id"],
        "occurred_at": row["occurred_at"],
        "text": p["text"],  # already PII-masked by intake
        "tags": [t.key for t in tags],
        "tag_types": [t.type for t in tags],
        "starts": [t.start for t in tags],
        "ends": [t.end for t in tags],
        "surfaces": [t.surface for t in tags],
        "weights": [t.weight for t in tags],
        "tagger": tagger_version,
        "tagged_at": now_iso(),
    }


def apply_note(profile: dict[str, Any], note_id: str, ts: datetime, tags: list[Tag]) -> list[str]:
    """Fold one note's tags into the profile; return the tag keys whose weight changed."""
    seen: list[str] = profile["seen"]
    if note_id in seen:
        return []
    seen.append(note_id)
    if len(seen) > KEEP_SEEN:
        del seen[:-KEEP_SEEN]
    stamp = iso(ts)
    ref = f"{stamp}|{note_id}"
    best: dict[str, Tag] = {}
    for t in tags:
        key = t.key
        held = best.get(key)
        if held is None or t.weight > held.weight:
            best[key] = t
    known: dict[str, Any] = profile["tags"]
    for key, t in best.items():
        cur = known.get(key)
        if cur is None:  # the common case in a note: a tag new to the customer (no decay to apply)
            known[key] = {
                "type": t.type,
                "value": t.value,
                "w": round(t.weight, 6),
                "at": stamp,
                "first": stamp,
                "notes": [ref],
                "c": [[stamp, t.weight]],
            }
            continue
        if stamp < cur.get("first", cur["at"]):
            cur["first"] = stamp
        if stamp == cur["at"] and ts.microsecond % 1000 == 0:
            cur["w"] = cur["w"] + t.weight  # the same instant: a decay of 0 days is a factor of 1
        else:
            at = datetime.fromisoformat(cur["at"])
            if ts >= at:
                cur["w"] = cur["w"] * _decay((ts - at).total_seconds() / 86_400) + t.weight
                cur["at"] = stamp
            else:
                cur["w"] += t.weight * _decay((at - ts).total_seconds() / 86_400)
        cur["w"] = round(cur["w"], 6)
        cur["notes"] = sorted({*cur["notes"], ref})[-KEEP_NOTES_PER_TAG:]
        cur["c"] = sorted([*cur.get("c", []), [stamp, t.weight]])[-KEEP_CONTRIBUTIONS:]
    if len(known) > KEEP_TAGS:  # drop the faintest
        ranked = sorted(known, key=lambda k: known[k]["w"])
        for k in ranked[: len(known) - KEEP_TAGS]:
            del known[k]
    profile["version"] += 1
    return [k for k in best if k in known]


def tag_rows(profile: dict[str, Any], keys: list[str]) -> list[dict[str, Any]]:
    """``customer_tags`` records for the changed tags (weight as of ``as_of``; decay on read)."""
    out = []
    for k in keys:
        t = profile["tags"][k]
        out.append(
            {
                "customer_id": profile["customer_id"],
                "tag": k,
                "tag_type": t["type"],
                "value": t["value"],
                "weight": t["w"],
                "as_of": t["at"],
                "half_life_days": HALF_LIFE_DAYS,
                "note_ids": [n.split("|", 1)[1] for n in t["notes"]],
                "version": profile["version"],
            }
        )
    return out


def _known(t: dict[str, Any], now: datetime) -> bool:
    """Written down at or before ``now`` (event time): a visit is answered with what was known
    then, whichever of the visit and a later note the worker happens to read first."""
    return datetime.fromisoformat(t.get("first", t["at"])) <= now


def weight_at(t: dict[str, Any], now: datetime) -> float:
    """The tag's weight at ``now`` from its notes written by then. Notes written after it
    but read before (a visit read after them) are taken out again with their kept weights, so
    the colours and items a visit is answered with do not depend on which was read first.
    Rounded so that the same sum taken in another order ranks the same."""
    at = datetime.fromisoformat(t["at"])
    if at <= now:
        return round(decayed(t["w"], at, now), 4)
    w = t["w"]
    for stamp, weight in t.get("c", ()):
        ts = datetime.fromisoformat(stamp)
        if ts > now:
            w -= weight * _decay((at - ts).total_seconds() / 86_400)
    return round(max(0.0, float(w)) / _decay((at - now).total_seconds() / 86_400), 4)


def said_at(t: dict[str, Any], now: datetime) -> str:
    """When the tag was last written down at or before ``now``."""
    if datetime.fromisoformat(t["at"]) <= now:
        return str(t["at"])
    before = [stamp for stamp, _w in t.get("c", ()) if datetime.fromisoformat(stamp) <= now]
    return str(max(before)) if before else str(t.get("first", t["at"]))


def _values(profile: dict[str, Any], tag_type: str, now: datetime) -> list[tuple[str, float, dict[str, Any]]]:
    out = []
    for t in profile["tags"].values():
        if t["type"] == tag_type and _known(t, now):
            out.append((t["value"], weight_at(t, now), t))
    return sorted(out, key=lambda x: (-x[1], x[0]))


def request_for_visit(profile: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """What the store side needs to recommend for this visit: nothing but derived tags."""
    now = datetime.fromisoformat(row["occurred_at"])
    sizes = sorted(
        ((said_at(t, now), t["value"]) for t in profile["tags"].values() if t["type"] == "size" and _known(t, now)),
        reverse=True,
    )  # the newest size mentioned by the visit is the one that fits now
    recommended = [
        {
            "category": v,
            "notes": [n.split("|", 1)[1] for n in t["notes"] if datetime.fromisoformat(n.split("|", 1)[0]) <= now],
            "at": said_at(t, now),
        }
        for v, _w, t in _values(profile, "recommended", now)
    ]
    return {
        "request_id": row["event_id"],
        "customer_id": profile["customer_id"],
        "store_id": row["store_id"],
        "occurred_at": row["occurred_at"],
        "visit_type": row["event_type"],
        "opted_out": bool(profile.get("opted_out")),
        "size": sizes[0][1] if sizes else None,
        "liked_colours": [v for v, _w, _t in _values(profile, "preference", now)],
        "dislikes": [v for v, _w, _t in _values(profile, "dislike", now)],
        "allergies": [v for v, _w, _t in _values(profile, "allergy", now)],
        "recommended": recommended,
        "pairings": [v for v, _w, _t in _values(profile, "pairing", now)],
        "categories": [v for v, _w, _t in _values(profile, "category", now)],
    }
