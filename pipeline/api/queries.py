"""Scoped, parameterised reads for the API. Every customer query goes through ``scope``.

The scope is a subquery of customer ids derived from the credential: a store manager sees
customers seen at their stores, a sales rep the customers they have messaged, a
customer-success specialist the customers of alerts assigned to them, an admin everyone.
Out of scope and nonexistent look the same to the caller (404).

Store scope, the rule: a customer is "seen at" a store only through a POS or check-in event
there (a note or a message naming a store does not count). For such a customer, a store
manager reads the cross-store fields the floor needs (score, band, trend and their reasons,
the tag profile, open alerts) and the identity the till already knows (member number, masked
phone, segment), but only their own stores' notes, recommendations and visits; where else
and when else the customer shopped (first store, first and last seen anywhere) stays out.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import orjson

from nlp.pii import Pii
from pipeline.api.keys import Principal
from pipeline.bizday import business_tz
from pipeline.health.alerts import load_alert_config
from pipeline.health.scoring import load_config
from pipeline.infra import store
from pipeline.notes.tags import decayed

VISITS = ("pos.checkin", "pos.coupon_scan", "pos.purchase")
# Customers seen at the stores in {scope_stores}: only the till says a customer was there.
SEEN_AT_STORES = (
    "SELECT DISTINCT customer_id FROM events WHERE store_id IN {scope_stores:Array(String)} "
    "AND startsWith(event_type, 'pos.') AND customer_id != ''"
)
# A recommendation's source notes as a store manager may follow them: those written at their stores.
OWN_NOTES = (
    "arrayFilter(n -> n IN (SELECT note_id FROM note_tags WHERE customer_id = {cid:String} "
    "AND store_id IN {stores:Array(String)}), source_notes)"
)
CROSS_STORE_FIELDS = ("first_store_id", "first_seen_at", "last_seen_at")  # not for a store manager

POLARITY = {"preference": "positive", "dislike": "negative", "allergy": "negative"}
POLARITY_ORDER = {"negative": 0, "positive": 1, "neutral": 2}  # what not to offer comes first


def scope(p: Principal) -> tuple[str, dict[str, Any]]:
    """(SQL that selects the customer ids this principal may read, its parameters)."""
    if p.role == "admin":
        return "SELECT customer_id FROM customers", {}
    if p.role == "store_manager":
        return SEEN_AT_STORES, {"scope_stores": list(p.stores)}
    if p.role == "sales_rep":
        return (
            "SELECT DISTINCT customer_id FROM events WHERE event_type = 'messaging.outbound' "
            "AND JSONExtractString(payload, 'sender_id') = {scope_rep:String}",
            {"scope_rep": p.rep_id},
        )
    if p.role == "cs":
        return (
            "SELECT DISTINCT customer_id FROM alerts WHERE assignee = {scope_cs:String}",
            {"scope_cs": p.specialist_id},
        )
    return "SELECT '' WHERE 0", {}  # ops: no customer data


_rows, _iso = store.rows, store.iso_utc
ROUND = {"score": 1, "trend_7d": 1, "confidence": 2, "churn_risk": 3, "grade_score": 1}  # as people read them


@functools.cache
def specialists() -> dict[str, str]:
    """Specialist id -> name, from the alert rules' roster (the console shows people by name)."""
    return {s.id: s.name for s in load_alert_config().roster}


@functools.cache
def bands() -> dict[str, float]:
    """Where the bands start, for the trend chart to draw them where the scoring puts them."""
    b = load_config().bands
    return {"healthy": b.healthy, "watch": b.watch}


def _round(d: dict[str, Any]) -> dict[str, Any]:
    for k, n in ROUND.items():
        if isinstance(d.get(k), float):
            d[k] = round(d[k], n)
    if "assignee" in d:
        d["assignee_name"] = specialists().get(d["assignee"], d["assignee"])
    return d


def shown(display_name: str, member_no: str, customer_id: str) -> str:
    """What staff call a customer: the masked name from the till, else the member number."""
    return display_name or (f"会员 {member_no}" if member_no else customer_id)


def names(client: Any, items: list[dict[str, Any]]) -> None:
    """Give each row with a ``customer_id`` the customer's ``display_name``."""
    ids = sorted({str(i["customer_id"]) for i in items if i.get("customer_id")})
    if not ids:
        return
    found = {
        str(cid): shown(str(dn), str(mn), str(cid))
        for cid, dn, mn in client.query(
            "SELECT customer_id, display_name, member_no FROM customers FINAL WHERE customer_id IN {ids:Array(String)}",
            parameters={"ids": ids},
        ).result_rows
    }
    for i in items:
        if i.get("customer_id"):
            i["display_name"] = found.get(str(i["customer_id"]), str(i["customer_id"]))


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return _round({k: _iso(v) for k, v in d.items()})


def in_scope(client: Any, p: Principal, customer_id: str) -> bool:
    sub, params = scope(p)
    sql = f"SELECT count() FROM customers FINAL WHERE customer_id = {{cid:String}} AND customer_id IN ({sub})"  # noqa: S608  # fixed fragments; values are parameters
    return bool(client.query(sql, parameters={"cid": customer_id, **params}).result_rows[0][0])


def customer(client: Any, p: Principal, customer_id: str, now: datetime) -> dict[str, Any] | None:
    if not in_scope(client, p, customer_id):
        return None
    cid = {"cid": customer_id}
    base = _rows(
        client,
        "SELECT customer_id, segment, member_no, display_name, phone_masked, first_store_id, first_seen_at, "
        "last_seen_at, is_key_contact, opted_out FROM customers FINAL WHERE customer_id = {cid:String}",
        cid,
    )[0]
    health = _rows(
        client,
        "SELECT score, band, trend_7d, confidence, stale_sources, reasons, churn_risk, score_source, fresh, as_of "
        "FROM customer_health FINAL WHERE customer_id = {cid:String}",
        cid,
    )
    history = _rows(
        client,
        "SELECT as_of, score, band, reasons FROM customer_health_history FINAL WHERE customer_id = {cid:String} "
        "ORDER BY as_of DESC, version DESC LIMIT 60",
        cid,
    )
    tags = _rows(
        client,
        "SELECT tag, tag_type, value, weight, as_of, half_life_days, note_ids FROM customer_tags FINAL "
        "WHERE customer_id = {cid:String}",
        cid,
    )
    cloud = []
    for t in tags:
        as_of = t["as_of"] if t["as_of"].tzinfo else t["as_of"].replace(tzinfo=UTC)
        w = decayed(float(t["weight"]), as_of, now, float(t["half_life_days"]))
        cloud.append(
            {
                "tag": t["tag"],
                "type": t["tag_type"],
                "value": t["value"],
                "weight": round(w, 4),
                "polarity": POLARITY.get(t["tag_type"], "neutral"),
            }
        )
    cloud.sort(key=lambda t: (-t["weight"], t["tag"]))
    # A store manager reads the notes and recommendations written at their own stores only.
    own = p.role == "store_manager"
    at = " AND store_id IN {stores:Array(String)}" if own else ""
    local = {**cid, "stores": list(p.stores)} if own else cid
    notes = _rows(
        client,
        "SELECT note_id, occurred_at, store_id, text, tags FROM note_tags FINAL WHERE customer_id = {cid:String}"  # noqa: S608  # fixed fragments, values are parameters
        f"{at} ORDER BY occurred_at DESC LIMIT 10",
        local,
    )
    recs = _rows(
        client,
        "SELECT rank, kind, sku, name, category, size, colour, on_hand, reasons, "  # noqa: S608  # fixed fragments, values are parameters
        f"{OWN_NOTES if own else 'source_notes'} AS source_notes, message, store_id, "
        f"occurred_at, personalised FROM recommendations FINAL WHERE customer_id = {{cid:String}}{at} AND request_id = "
        f"(SELECT argMax(request_id, occurred_at) FROM recommendations WHERE customer_id = {{cid:String}}{at}) "
        "ORDER BY rank",
        local,
    )
    alerts = _rows(
        client,
        "SELECT alert_id, rule_id, severity, title, status, assignee, raised_at FROM alerts FINAL "
        "WHERE customer_id = {cid:String} ORDER BY raised_at DESC LIMIT 20",
        cid,
    )
    out = _clean(base)
    out["display_name"] = shown(out["display_name"], out["member_no"], customer_id)
    if own:
        for k in CROSS_STORE_FIELDS:
            del out[k]
        out["last_visit_at"] = _iso(
            _rows(
                client,
                "SELECT max(occurred_at) AS at FROM events WHERE customer_id = {cid:String} "
                "AND store_id IN {stores:Array(String)} AND startsWith(event_type, 'pos.')",
                local,
            )[0]["at"]
        )
    if health:
        h = _clean(health[0])
        h["fresh"] = orjson.loads(h["fresh"]) if h["fresh"] else {}
        out["health"] = h
    else:
        out["health"] = None
    out["history"] = [_clean(h) for h in reversed(history)]
    out["bands"] = bands()
    out["tags"] = cloud[:40]
    # Grouped by type, dislikes and allergies apart from preferences: a cloud once drew
    # 燕麦色 largest for a customer whose note said 不喜欢燕麦色.
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in cloud:
        groups.setdefault(t["type"], []).append(t)
    out["tag_groups"] = [
        {"type": k, "polarity": POLARITY.get(k, "neutral"), "tags": v[:10]}
        for k, v in sorted(groups.items(), key=lambda kv: (POLARITY_ORDER[POLARITY.get(kv[0], "neutral")], kv[0]))
    ]
    out["notes"] = [_clean(n) for n in notes]
    out["recommendations"] = [_clean(r) for r in recs]
    out["alerts"] = [_clean(a) for a in alerts]
    names(client, out["alerts"])
    return out


def dashboard(client: Any, p: Principal, store_id: str, now: datetime, limit: int) -> dict[str, Any] | None:
    if p.role == "store_manager" and store_id not in p.stores:
        return None
    if p.role not in ("store_manager", "admin"):
        return None
    local = now.astimezone(business_tz())
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    params = {
        "store": store_id,
        "scope_stores": [store_id],
        "since": day_start.replace(tzinfo=None),
        "limit": limit,
        "visits": list(VISITS),
    }
    visitors = _rows(
        client,
        "SELECT e.customer_id AS customer_id, max(e.occurred_at) AS last_visit, any(c.member_no) AS member_no, "
        "any(c.display_name) AS display_name, any(c.phone_masked) AS phone_masked, any(h.score) AS score, "
        "any(h.band) AS band, any(r.message) AS message "
        "FROM events AS e "
        "LEFT JOIN (SELECT customer_id, member_no, display_name, phone_masked FROM customers FINAL) AS c "
        "ON c.customer_id = e.customer_id "
        "LEFT JOIN (SELECT customer_id, score, band FROM customer_health FINAL) AS h ON h.customer_id = e.customer_id "
        "LEFT JOIN (SELECT customer_id, argMax(message, occurred_at) AS message FROM recommendations "
        "WHERE store_id = {store:String} GROUP BY customer_id) AS r ON r.customer_id = e.customer_id "
        "WHERE e.store_id = {store:String} AND e.event_type IN {visits:Array(String)} "
        "AND e.occurred_at >= {since:DateTime64(3)} "
        "GROUP BY e.customer_id ORDER BY last_visit DESC LIMIT {limit:UInt32}",
        params,
    )
    visitors_total = _rows(
        client,
        "SELECT uniqExact(customer_id) AS n FROM events WHERE store_id = {store:String} "
        "AND event_type IN {visits:Array(String)} AND occurred_at >= {since:DateTime64(3)} AND customer_id != ''",
        params,
    )[0]["n"]
    # The at-risk list and the alerts come from one place: customers of these stores whose
    # current band is at risk (an alert that they fell there is shown beside them).
    risk_where = f"band = 'at_risk' AND customer_id IN ({SEEN_AT_STORES})"
    at_risk = _rows(
        client,
        f"SELECT customer_id, score, band, trend_7d, reasons FROM customer_health FINAL WHERE {risk_where} "  # noqa: S608  # fixed fragments, values are parameters
        "ORDER BY score, customer_id LIMIT {limit:UInt32}",
        params,
    )
    at_risk_total = _rows(
        client,
        f"SELECT count() AS n FROM customer_health FINAL WHERE {risk_where}",  # noqa: S608  # fixed fragments, values are parameters
        params,
    )[0]["n"]
    alerts = _rows(
        client,
        "SELECT alert_id, customer_id, rule_id, severity, title, status, assignee, raised_at, band FROM alerts FINAL "  # noqa: S608  # fixed fragments, values are parameters
        f"WHERE status IN ('open', 'acknowledged') AND customer_id IN ({SEEN_AT_STORES}) "
        "ORDER BY status = 'open' DESC, raised_at DESC LIMIT {limit:UInt32}",
        params,
    )
    current = {
        str(cid): str(band)
        for cid, band in client.query(
            "SELECT customer_id, band FROM customer_health FINAL WHERE customer_id IN {ids:Array(String)}",
            parameters={"ids": sorted({str(a["customer_id"]) for a in alerts})},
        ).result_rows
    }
    out_alerts = [_clean(a) for a in alerts]
    for a in out_alerts:
        a["band_now"] = current.get(str(a["customer_id"]), "")
    risky = [_clean(a) for a in at_risk]
    names(client, risky)
    names(client, out_alerts)
    seen = [_clean(v) for v in visitors]
    for v in seen:
        v["display_name"] = shown(v.get("display_name") or "", v.get("member_no") or "", v["customer_id"])
    return {
        "store_id": store_id,
        "day": local.date().isoformat(),
        "visitors": seen,
        "visitors_total": int(visitors_total),
        "at_risk": risky,
        "at_risk_total": int(at_risk_total),
        "alerts": out_alerts,
        "open_alerts": int(
            _rows(
                client,
                f"SELECT count() AS n FROM alerts FINAL WHERE status = 'open' AND customer_id IN ({SEEN_AT_STORES})",  # noqa: S608  # fixed fragments, values are parameters
                params,
            )[0]["n"]
        ),
    }


def customers(client: Any, p: Principal, band: str | None, limit: int, offset: int) -> dict[str, Any]:
    """The customers in scope, the lowest score first (a rep's or a manager's list to work
    through), with the total and the count per band."""
    sub, sp = scope(p)
    params: dict[str, Any] = {**sp, "limit": limit, "offset": offset}
    base = f"FROM customer_health FINAL WHERE customer_id IN ({sub})"  # fixed fragments, values are parameters
    by_band = client.query(f"SELECT band, count() {base} GROUP BY band", parameters=params).result_rows
    counts = {str(b): int(n) for b, n in by_band}
    cond = ""
    if band:
        cond = " AND band = {band:String}"
        params["band"] = band
    sql = f"SELECT customer_id, score, band, trend_7d, reasons, as_of {base}{cond} ORDER BY score, customer_id "
    items = [_clean(r) for r in _rows(client, sql + "LIMIT {limit:UInt32} OFFSET {offset:UInt32}", params)]
    names(client, items)
    return {"items": items, "total": counts.get(band, 0) if band else sum(counts.values()), "counts": counts}


ALERT_SORTS = {
    "newest": "raised_at DESC, alert_id",
    "oldest": "raised_at, alert_id",
    "severity": "severity = 'high' DESC, raised_at DESC, alert_id",
    "score": "score, raised_at DESC, alert_id",
}


def alerts(
    client: Any,
    p: Principal,
    status: str | None,
    limit: int,
    offset: int,
    *,
    rule: str | None = None,
    store_id: str | None = None,
    assignee: str | None = None,
    sort: str = "newest",
) -> dict[str, Any]:
    """A page of the alerts in scope, filtered, sorted; with the total and the count per
    status under the same filters (the console's paging and its status chips)."""
    where: list[str] = ["1"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if p.role == "cs":
        where.append("assignee = {me:String}")
        params["me"] = p.specialist_id
    elif p.role != "admin":
        sub, sp = scope(p)
        where.append(f"customer_id IN ({sub})")
        params.update(sp)
    if rule:
        where.append("rule_id = {rule:String}")
        params["rule"] = rule
    if assignee:
        where.append("assignee = {assignee:String}")
        params["assignee"] = assignee
    if store_id:
        where.append(
            "customer_id IN (SELECT DISTINCT customer_id FROM events WHERE store_id = {store_id:String} "
            "AND startsWith(event_type, 'pos.') AND customer_id != '')"
        )
        params["store_id"] = store_id
    common = " AND ".join(where)
    counts = {
        str(k): int(n)
        for k, n in client.query(
            f"SELECT status, count() FROM alerts FINAL WHERE {common} GROUP BY status",  # noqa: S608  # fixed fragments, values are parameters
            parameters=params,
        ).result_rows
    }
    facets = client.query(
        f"SELECT groupUniqArray(rule_id), groupUniqArray(assignee) FROM alerts FINAL WHERE {common}",  # noqa: S608  # fixed fragments, values are parameters
        parameters=params,
    ).result_rows[0]
    if status:
        where.append("status = {status:String}")
        params["status"] = status
    sql = (
        "SELECT alert_id, customer_id, rule_id, severity, title, score, band, status, suppressed_reason, "  # noqa: S608  # fixed fragments, values are parameters
        "assignee, raised_at, notify_after, acknowledged_by, acknowledged_at, resolved_by, resolved_at, note, version "
        f"FROM alerts FINAL WHERE {' AND '.join(where)} ORDER BY {ALERT_SORTS[sort]} "
        "LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
    )
    items = [_clean(a) for a in _rows(client, sql, params)]
    names(client, items)
    return {
        "items": items,
        "total": counts.get(status, 0) if status else sum(counts.values()),
        "counts": counts,
        "rules": sorted(facets[0]),
        "assignees": [{"id": a, "name": specialists().get(a, a)} for a in sorted(facets[1])],
    }


def alert(client: Any, p: Principal, alert_id: str) -> dict[str, Any] | None:
    rows = alerts_by_id(client, alert_id)
    if not rows:
        return None
    a = rows[0]
    if p.role == "admin" or (p.role == "cs" and a["assignee"] == p.specialist_id):
        return a
    if p.role in ("store_manager", "sales_rep") and in_scope(client, p, a["customer_id"]):
        return a
    return None


def alerts_by_id(client: Any, alert_id: str) -> list[dict[str, Any]]:
    return [
        _clean(a)
        for a in _rows(
            client,
            "SELECT alert_id, customer_id, status, assignee, version FROM alerts FINAL WHERE alert_id = {a:String}",
            {"a": alert_id},
        )
    ]


PHONE = re.compile(r"^1[3-9]\d{9}$")
MASKED = re.compile(r"^1[3-9]\d\*{4}\d{4}$")


PHONE_LOOKUPS_PER_DAY = 20  # per key and China business day; every lookup is audited


class QuotaExceeded(Exception):
    pass


def search(client: Any, p: Principal, q: str, pii: Pii, limit: int) -> list[dict[str, Any]]:
    """By member number, by full mobile number (matched through its keyed hash, never stored
    raw), or by the masked form shown on receipts (138****5678).

    A full number is the one search that can be turned into an oracle (the profile shows
    196****5667; trying the 10^4 middles finds the number), so each key has a small daily
    quota of them, and every one is recorded in ``phone_lookups`` (who, when, hit or miss)."""
    q = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", q.strip()))
    if q.startswith("+86"):
        q = q[3:]
    if PHONE.match(q):
        now = datetime.now(UTC)
        day = now.astimezone(business_tz()).date()
        used = _rows(
            client,
            "SELECT count() AS n FROM phone_lookups WHERE key_id = {k:String} AND day = {d:Date}",
            {"k": p.key_id, "d": day},
        )[0]["n"]
        if int(used) >= PHONE_LOOKUPS_PER_DAY:
            raise QuotaExceeded(f"{PHONE_LOOKUPS_PER_DAY} phone-number searches a day")
        found = _search(client, p, "phone_hmac = {v:String}", {"v": pii.phone_token(q)}, limit)
        client.insert(
            "phone_lookups",
            [[p.key_id, p.name, p.role, now, day, int(bool(found)), len(found)]],
            column_names=["key_id", "name", "role", "at", "day", "hit", "results"],
        )
        return found
    if MASKED.match(q):
        return _search(client, p, "phone_masked = {v:String}", {"v": q}, limit)
    return _search(client, p, "(member_no = {v:String} OR customer_id = {v:String})", {"v": q}, limit)


def _search(client: Any, p: Principal, cond: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    sub, sp = scope(p)
    sql = (
        "SELECT c.customer_id AS customer_id, segment, member_no, display_name, phone_masked, first_store_id, "  # noqa: S608  # fixed fragments, values are parameters
        "last_seen_at, h.score AS score, h.band AS band FROM (SELECT * FROM customers FINAL) AS c "
        "LEFT JOIN (SELECT customer_id, score, band FROM customer_health FINAL) AS h ON h.customer_id = c.customer_id "
        f"WHERE {cond} AND c.customer_id IN ({sub}) ORDER BY c.customer_id LIMIT {{limit:UInt32}}"
    )
    rows = [_clean(r) for r in _rows(client, sql, {**params, **sp, "limit": limit})]
    for r in rows:
        r["display_name"] = shown(r["display_name"], r["member_no"], r["customer_id"])
    if p.role == "store_manager":
        for r in rows:
            for k in CROSS_STORE_FIELDS:
                r.pop(k, None)
    return rows


def freshness(client: Any) -> dict[str, float]:
    """Seconds since the newest score and the newest stored event (for /metrics)."""
    now = datetime.now(UTC)
    out = {}
    for name, sql in (
        ("score", "SELECT max(as_of) FROM customer_health"),
        ("event", "SELECT max(occurred_at) FROM events"),
    ):
        v = client.query(sql).result_rows[0][0]
        if v is not None and v.year > 1970:
            v = v if v.tzinfo else v.replace(tzinfo=UTC)
            out[name] = max(0.0, (now - v).total_seconds())
    return out
