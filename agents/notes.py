"""Notes and recommendations agents.

``notes`` (keyed by customer, on events.accepted): tags each note, keeps the customer's
tag profile, and on a visit (check-in, coupon scan, purchase) sends a recommendation
request re-keyed by store to ``reco.requests``. ``reco`` (keyed by store, on pos.inventory
and reco.requests, co-partitioned): keeps stock per store and category and answers each
request with items in stock. The re-keying is the stream join: no global table.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson

from agents.deadletters import guarded, make_dead
from nlp.pii import Pii
from nlp.tagger import NoteTagger, load_idf
from pipeline import intake, recommend, tags, topics
from pipeline.app import faust_topic
from pipeline.settings import Settings
from schemas.events import EventError

log = logging.getLogger(__name__)

VISITS = {"pos.checkin", "pos.coupon_scan", "pos.purchase"}
RECOS_PER_WEEK = 3  # personalised recommendation sets per customer per 7 days (event time)
TAGGER_VERSION = "rules-1"


def register(app: Any, settings: Settings, stats: Counter[str], pii: Pii) -> None:
    refit = settings.model_dir / "tag_idf.json"  # `salespulse notes fit-idf`, else the shipped IDF
    tagger = NoteTagger(idf=load_idf(refit.read_text(encoding="utf-8")) if refit.exists() else None)
    categories = recommend.Categories(tagger.lexicon)
    version, loaded = recommend.load_rules(settings.model_dir)
    mined: dict[str, Any] = {"version": version, "rules": loaded}  # swapped whole by the reload timer
    log.info("notes: tagger %s; co-purchase rules %s (%d)", TAGGER_VERSION, version, len(loaded))
    accepted = faust_topic(app, settings.topic(topics.ACCEPTED), settings.partitions)
    requests = faust_topic(app, settings.topic(topics.RECO_REQUESTS), settings.partitions)
    store_source = faust_topic(
        app, settings.topic("pos.inventory"), settings.partitions, settings.topic(topics.RECO_REQUESTS)
    )
    note_out = faust_topic(app, settings.topic(topics.NOTE_TAGS), settings.partitions)
    tags_out = faust_topic(app, settings.topic(topics.CUSTOMER_TAGS), settings.partitions)
    recos_out = faust_topic(app, settings.topic(topics.RECOMMENDATIONS), settings.partitions)
    dead = make_dead(app, settings, pii, stats)
    profiles = app.Table("tag_profiles", default=None, partitions=settings.partitions)
    stock = app.Table("stock", default=None, partitions=settings.partitions)

    async def on_note_or_visit(event: Any) -> None:
        msg = event.message
        row = orjson.loads(event.value)
        etype, cid = row["event_type"], row.get("customer_id")
        if not cid or (etype != "store.note" and etype not in VISITS):
            return
        profile = profiles.get(cid) or tags.new_profile(cid)
        applied = profile.setdefault("applied", {})
        source = f"{msg.topic}:{msg.partition}"
        if applied.get(source, -1) >= msg.offset:
            return  # a replay: this partition's state already has it
        applied[source] = msg.offset
        ts = datetime.fromisoformat(row["occurred_at"])
        if etype == "store.note":
            p = orjson.loads(row["payload"])
            try:
                found = tagger.tag(p["text"])
            except ValueError as exc:
                await dead(msg, "tag_note", "untaggable_note", str(exc))
                profiles[cid] = profile
                return
            changed = tags.apply_note(profile, p["note_id"], ts, found)
            profiles[cid] = profile
            await note_out.send(key=cid.encode(), value=orjson.dumps(tags.note_row(row, found, TAGGER_VERSION)))
            for r in tags.tag_rows(profile, changed):
                await tags_out.send(key=cid.encode(), value=orjson.dumps(r))
            stats["notes.tagged"] += 1
            stats["notes.tags"] += len(found)
            return
        p = orjson.loads(row["payload"])
        if p.get("opted_out") is not None:
            profile["opted_out"] = bool(p["opted_out"])
        week_ago = (ts - timedelta(days=7)).isoformat()
        recent = [t for t in profile.get("recos", []) if t > week_ago]
        if not row.get("store_id") or len(recent) >= RECOS_PER_WEEK:
            profiles[cid] = profile
            stats["reco.capped" if row.get("store_id") else "reco.no_store"] += 1
            return
        profile["recos"] = [*recent, ts.isoformat()]
        profiles[cid] = profile
        req = tags.request_for_visit(profile, row)
        await requests.send(key=row["store_id"].encode(), value=orjson.dumps(req))
        stats["reco.requests"] += 1

    app.agent(accepted, name="notes", concurrency=1)(guarded(dead, "notes", on_note_or_visit))

    inventory_topic = settings.topic("pos.inventory")

    async def on_stock_or_request(event: Any) -> None:
        msg = event.message
        if msg.topic == inventory_topic:
            try:
                ev = intake.decode(event.value, "pos.inventory", settings.max_event_bytes)
            except EventError:
                return  # the intake agent dead-letters it with the reason
            payload = ev.payload.model_dump()
            store_id = ev.envelope.store_id or ""
            category = categories(payload.get("name") or "")
            key = f"{store_id}|{category or '?'}"
            items = stock.get(key) or {}
            recommend.apply_stock(items, payload, category)
            stock[key] = items
            index = stock.get(f"{store_id}|*") or []
            if category and category not in index:
                stock[f"{store_id}|*"] = sorted([*index, category])
            stats["stock.updates"] += 1
            return
        req = orjson.loads(event.value)
        store_id = req["store_id"]
        wanted = {r["category"] for r in req["recommended"]} | set(req["pairings"]) | set(req["categories"][:2])
        rules = mined["rules"]
        wanted |= {r["then"] for r in rules if r["if"] in wanted}
        if req["opted_out"]:
            wanted |= set(stock.get(f"{store_id}|*") or [])
        merged: dict[str, Any] = {}
        for cat in sorted(wanted):
            merged.update(stock.get(f"{store_id}|{cat}") or {})
        recs = recommend.recommend(req, merged, rules)
        for r in recommend.rows(req, recs):
            await recos_out.send(key=req["customer_id"].encode(), value=orjson.dumps(r))
        stats["reco.sent" if recs else "reco.nothing_in_stock"] += 1

    app.agent(store_source, name="reco", concurrency=1)(guarded(dead, "reco", on_stock_or_request))

    async def reload_rules() -> None:
        """A nightly `salespulse reco mine` is picked up without restarting the worker."""
        version, loaded = recommend.load_rules(settings.model_dir)
        if version != mined["version"]:
            mined.update(version=version, rules=loaded)
            log.info("co-purchase rules reloaded: %s (%d)", version, len(loaded))
            stats["reco.rules_reloads"] += 1

    app.timer(interval=30.0)(reload_rules)
