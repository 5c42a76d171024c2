"""Scoped, parameterised reads of the B2B book: a rep sees their own deals, a sales manager
their region's, an admin all. Every query goes through ``deal_scope``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.api.keys import Principal
from pipeline.api.queries import _clean, _rows
from schemas.crm import STAGE_ZH, STAGES

LATE_HOURS = 24


def deal_scope(p: Principal) -> tuple[str, dict[str, Any]]:
    """(a condition on rows that carry rep_id and region, its parameters) for this principal."""
    if p.role == "admin":
        return "1", {}
    if p.role == "sales_manager":
        return "region = {scope_region:String}", {"scope_region": p.region}
    if p.role == "sales_rep":
        return "rep_id = {scope_rep:String}", {"scope_rep": p.rep_id}
    return "0", {}


def deals(client: Any, p: Principal, stage: str | None, limit: int, offset: int) -> dict[str, Any]:
    """Open and closed deals in scope, newest change first, with what the next gate misses."""
    cond, params = deal_scope(p)
    where = [cond]
    if stage:
        where.append("stage = {stage:String}")
        params["stage"] = stage
    sql_where = " AND ".join(where)
    total = client.query(f"SELECT count() FROM opportunities FINAL WHERE {sql_where}", parameters=params)  # noqa: S608  # fixed fragments
    rows = _rows(
        client,
        "SELECT opportunity_id, account_id, account_name, region, name, product_line_id, rep_id, stage, "  # noqa: S608  # as above
        "stage_since, updated_at, last_activity_at, expected_amount, quote_amount, competitor, competitor_amount, "
        "budget_deadline, next_stage, missing, refusals, intent_at, intent_title, followed_up_at, quality_demo, "
        f"closed_at FROM opportunities FINAL WHERE {sql_where} "
        "ORDER BY isNotNull(closed_at), updated_at DESC, opportunity_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {**params, "limit": limit, "offset": offset},
    )
    for r in rows:
        r["stage_zh"] = STAGE_ZH.get(r["stage"], r["stage"])
        r["next_stage_zh"] = STAGE_ZH.get(r["next_stage"], "")
        for money in ("expected_amount", "quote_amount", "competitor_amount"):
            if r[money] is not None:
                r[money] = str(r[money])
    return {"total": int(total.result_rows[0][0]), "items": [_clean(r) for r in rows]}


def audit(client: Any, p: Principal, opportunity_id: str) -> list[dict[str, Any]] | None:
    """Every move and refusal of one deal, oldest first; None when out of scope or unknown."""
    cond, params = deal_scope(p)
    params["opp"] = opportunity_id
    seen = client.query(
        f"SELECT count() FROM opportunities FINAL WHERE opportunity_id = {{opp:String}} AND {cond}",  # noqa: S608  # fixed
        parameters=params,
    )
    if not seen.result_rows[0][0]:
        return None
    rows = _rows(
        client,
        "SELECT requested_at, requested_by, from_stage, to_stage, decision, missing, reason, rule_version "
        "FROM opportunity_audit FINAL WHERE opportunity_id = {opp:String} ORDER BY requested_at, decision_id",
        {"opp": opportunity_id},
    )
    return [_clean(r) for r in rows]


def in_scope_ids(p: Principal) -> tuple[str, dict[str, Any]]:
    """The same scope for tables that name only the deal: its id among the deals in scope."""
    cond, params = deal_scope(p)
    return f"opportunity_id IN (SELECT opportunity_id FROM opportunities FINAL WHERE {cond})", params  # noqa: S608  # fixed fragments, values are parameters


def pushes(client: Any, p: Principal, limit: int) -> list[dict[str, Any]]:
    cond, params = in_scope_ids(p)
    rows = _rows(
        client,
        "SELECT push_id, opportunity_id, account_id, rep_id, title, conversation, competitor_quote, raised_at "  # noqa: S608  # fixed
        f"FROM deal_pushes FINAL WHERE {cond} ORDER BY raised_at DESC LIMIT {{limit:UInt32}}",
        {**params, "limit": limit},
    )
    return [_clean(r) for r in rows]


def funnel(client: Any, p: Principal) -> dict[str, Any]:
    """Deals per stage, conversion from each stage to the next (deals that ever reached it), and
    the gate refusals by what was missing."""
    cond, params = deal_scope(p)
    now = dict(
        client.query(
            f"SELECT stage, count() FROM opportunities FINAL WHERE {cond} GROUP BY stage",  # noqa: S608  # fixed
            parameters=params,
        ).result_rows
    )
    ids, _ = in_scope_ids(p)
    reached = dict(
        client.query(
            "SELECT to_stage, uniqExact(opportunity_id) FROM opportunity_audit FINAL WHERE decision = 'accepted' "  # noqa: S608  # fixed
            f"AND {ids} GROUP BY to_stage",
            parameters=params,
        ).result_rows
    )
    reached["lead"] = sum(now.values())
    stages = []
    for i, s in enumerate(STAGES):
        nxt = STAGES[i + 1] if i + 1 < len(STAGES) else None
        n = int(reached.get(s, 0))
        stages.append(
            {
                "stage": s,
                "stage_zh": STAGE_ZH[s],
                "now": int(now.get(s, 0)),
                "reached": n,
                "to_next": None if nxt is None or not n else round(int(reached.get(nxt, 0)) / n, 3),
            }
        )
    refusals = client.query(
        "SELECT splitByString('（', splitByString('：', m)[1])[1] AS kind, count() FROM opportunity_audit FINAL "  # noqa: S608  # fixed
        f"ARRAY JOIN missing AS m WHERE decision = 'refused' AND {ids} "
        "GROUP BY kind ORDER BY 2 DESC LIMIT 10",
        parameters=params,
    ).result_rows
    return {
        "stages": stages,
        "lost": int(now.get("lost", 0)),
        "refusals": [{"missing": str(k), "count": int(n)} for k, n in refusals],
    }


def coaching(client: Any, p: Principal, now: datetime, days: int) -> list[dict[str, Any]]:
    """Reps whose activities reached the CRM more than 24 h after they happened (data
    timeliness), with their follow-up timeout rate: high-intent deals with no activity of the
    rep within 24 h of the reading."""
    cond, params = deal_scope(p)
    since = now - timedelta(days=days)
    params.update(since=since, late=LATE_HOURS)
    rows = _rows(
        client,
        "SELECT rep_id, any(region) AS rep_region, count() AS activities, countIf(late = 1) AS late, "  # noqa: S608  # fixed
        "round(quantile(0.5)(delay_hours), 1) AS median_delay_hours, round(max(delay_hours), 1) AS worst_delay_hours "
        f"FROM deal_activities FINAL WHERE occurred_at >= {{since:DateTime64(3)}} AND {cond} "
        "GROUP BY rep_id HAVING late > 0 ORDER BY late / activities DESC, rep_id",
        params,
    )
    timeouts = client.query(
        "SELECT rep_id, count(), countIf(if(followed_up_at IS NULL, intent_at < {cutoff:DateTime64(3)}, "  # noqa: S608  # fixed
        "followed_up_at > intent_at + toIntervalHour({late:UInt32}))) "
        f"FROM opportunities FINAL WHERE intent_at >= {{since:DateTime64(3)}} AND {cond} GROUP BY rep_id",
        parameters={**params, "cutoff": now - timedelta(hours=LATE_HOURS)},
    ).result_rows
    follow = {str(rep): (int(n), int(t)) for rep, n, t in timeouts}
    for r in rows:
        r["region"] = r.pop("rep_region")
        n, t = follow.get(r["rep_id"], (0, 0))
        r["late_share"] = round(r["late"] / r["activities"], 3) if r["activities"] else 0.0
        r["intent_deals"] = int(n)
        r["follow_up_timeouts"] = int(t)
        r["follow_up_timeout_rate"] = round(t / n, 3) if n else None
    return rows


def top3(client: Any, p: Principal, now: datetime, m: Any) -> dict[str, Any]:
    """Today's TOP-3 per rep in scope: as the morning job stored it, else ranked now with the
    same model (before the morning run, or right after a first training)."""
    from pipeline.bizday import business_tz
    from pipeline.deals.morning import ranking

    day = now.astimezone(business_tz()).date()
    cond, params = deal_scope(p)
    if p.role == "sales_manager":
        cond = "rep_id IN (SELECT rep_id FROM opportunities FINAL WHERE region = {scope_region:String})"
    rows = _rows(
        client,
        "SELECT rep_id, rank, opportunity_id, name, account_name, stage, probability, urgency, factors, "  # noqa: S608  # fixed
        f"urgent_because, model_version FROM rep_top3 FINAL WHERE day = {{day:Date}} AND {cond} ORDER BY rep_id, rank",
        {**params, "day": day},
    )
    source = "morning"
    if not rows and m is not None:
        source = "live"
        allowed = {r["opportunity_id"] for r in deals(client, p, None, 100_000, 0)["items"]}
        rows = [r for r in ranking(client, m, now) if r["opportunity_id"] in allowed]
    for r in rows:
        r["stage_zh"] = STAGE_ZH.get(r["stage"], r["stage"])
        r["probability"] = round(float(r["probability"]), 3)
        r["urgency"] = round(float(r["urgency"]), 2)
    return {"day": day.isoformat(), "source": source if rows else "none", "items": [_clean(r) for r in rows]}
