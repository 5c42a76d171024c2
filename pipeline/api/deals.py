"""Scoped, parameterised reads of the B2B book: a rep sees their own deals, a sales manager
their region's, an admin all. Every query goes through ``deal_scope``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.api.keys import Principal
from pipeline.api.queries import _clean, _rows
from pipeline.deals import gates
from schemas.crm import STAGE_ZH, STAGES

LATE_HOURS = 24


def deal_scope(p: Principal, rep: str = "rep_id", region: str = "region") -> tuple[str, dict[str, Any]]:
    """(a condition on the columns ``rep`` and ``region`` of the rows read, its parameters)."""
    if p.role == "admin":
        return "1", {}
    if p.role == "sales_manager":
        return f"{region} = {{scope_region:String}}", {"scope_region": p.region}
    if p.role == "sales_rep":
        return f"{rep} = {{scope_rep:String}}", {"scope_rep": p.rep_id}
    return "0", {}


def rep_names(client: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each row its rep's name from the roster (people are shown by name, not REP-07)."""
    ids = sorted({str(r["rep_id"]) for r in rows if r.get("rep_id")})
    names = (
        dict(
            client.query(
                "SELECT rep_id, name FROM crm_reps FINAL WHERE rep_id IN {ids:Array(String)}", parameters={"ids": ids}
            ).result_rows
        )
        if ids
        else {}
    )
    for r in rows:
        if r.get("rep_id"):
            r["rep_name"] = str(names.get(r["rep_id"]) or r["rep_id"])
    return rows


def deals(client: Any, p: Principal, stage: str | None, limit: int, offset: int, m: Any = None) -> dict[str, Any]:
    """Open and closed deals in scope, newest change first, with what the next gate misses
    and, for open deals when a model is trained, the close probability and its factors."""
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
        "created_at, activities, demo_minutes, survey_complete, decision_roles, "
        f"closed_at FROM opportunities FINAL WHERE {sql_where} "
        "ORDER BY isNotNull(closed_at), updated_at DESC, opportunity_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {**params, "limit": limit, "offset": offset},
    )
    now = datetime.now(UTC)
    for r in rows:
        r["probability"], r["factors"] = None, []
        if m is not None and r["closed_at"] is None:
            from pipeline.deals.model import features

            x = features(r, now)
            r["probability"], r["factors"] = round(m.probability(x), 3), m.factors(x)
        r["stage_zh"] = STAGE_ZH.get(r["stage"], r["stage"])
        r["next_stage_zh"] = STAGE_ZH.get(r["next_stage"], "")
        for money in ("expected_amount", "quote_amount", "competitor_amount"):
            if r[money] is not None:
                r[money] = str(r[money])
    return {"total": int(total.result_rows[0][0]), "items": rep_names(client, [_clean(r) for r in rows])}


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


def funnel(client: Any, p: Principal, model_dir: Path | None = None) -> dict[str, Any]:
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
        "SELECT code, count() FROM opportunity_audit FINAL ARRAY JOIN missing_codes AS code "  # noqa: S608  # fixed
        f"WHERE decision = 'refused' AND {ids} GROUP BY code ORDER BY 2 DESC, code LIMIT 20",
        parameters=params,
    ).result_rows
    in_force = gates.shipped() if model_dir is None else gates.load(model_dir)
    return {
        "stages": stages,
        "lost": int(now.get("lost", 0)),
        "refusals": [
            {"code": str(k), "missing": gates.label(str(k), in_force.rules), "count": int(n)} for k, n in refusals
        ],
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
    return rep_names(client, rows)


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
    items = rep_names(client, [_clean(r) for r in rows])
    return {"day": day.isoformat(), "source": source if rows else "none", "items": items}


def accounts(client: Any, p: Principal, grade: str | None, limit: int, offset: int) -> dict[str, Any]:
    """Accounts with their A/B/C grade and what earned it (a rep: the accounts they own)."""
    cond, params = deal_scope(p, rep="owner_rep_id")
    if grade:
        cond += " AND grade = {grade:String}"
        params["grade"] = grade
    counts = dict(
        client.query(
            f"SELECT grade, count() FROM crm_accounts FINAL WHERE {cond} GROUP BY grade",  # noqa: S608  # fixed
            parameters=params,
        ).result_rows
    )
    rows = _rows(
        client,
        "SELECT account_id, name, region, tier, owner_rep_id, contacts, open_opportunities, grade, grade_score, "  # noqa: S608  # fixed
        f"grade_reasons, grading_version FROM crm_accounts FINAL WHERE {cond} "
        "ORDER BY grade_score DESC, account_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {**params, "limit": limit, "offset": offset},
    )
    return {"by_grade": {str(k): int(v) for k, v in counts.items()}, "total": sum(counts.values()), "items": rows}


def quality(client: Any, p: Principal) -> dict[str, Any]:
    """Contact quality: closed deals with a demo of at least 45 minutes that showed the
    hospital's own parameter pages, against the rest, and how often each was won."""
    cond, params = deal_scope(p)
    rows = client.query(
        "SELECT quality_demo, count(), countIf(stage = 'won') FROM opportunities FINAL "  # noqa: S608  # fixed
        f"WHERE closed_at IS NOT NULL AND {cond} GROUP BY quality_demo",
        parameters=params,
    ).result_rows
    by = {int(q): (int(n), int(w)) for q, n, w in rows}
    n1, w1 = by.get(1, (0, 0))
    n0, w0 = by.get(0, (0, 0))
    rate1 = w1 / n1 if n1 else None
    rate0 = w0 / n0 if n0 else None
    return {
        "closed_deals": n0 + n1,
        "quality_share": round(n1 / (n0 + n1), 3) if n0 + n1 else None,
        "won_rate_quality": None if rate1 is None else round(rate1, 3),
        "won_rate_rest": None if rate0 is None else round(rate0, 3),
        "lift": round(rate1 / rate0, 2) if rate1 is not None and rate0 else None,
    }


def new_reps(client: Any, p: Principal, now: datetime, within_days: int) -> list[dict[str, Any]]:
    """First-order cycle of reps who started within ``within_days``: days from their start to
    their first won deal (None while they have none)."""
    cond, params = deal_scope(p, rep="r.rep_id", region="r.region")
    params["since"] = (now - timedelta(days=within_days)).date()
    rows = _rows(
        client,
        "SELECT r.rep_id AS rep_id, r.name AS name, r.region AS region, r.started_on AS started_on, "  # noqa: S608  # fixed
        "dateDiff('day', r.started_on, toDate(w.first_won)) AS first_order_days "
        "FROM (SELECT * FROM crm_reps FINAL) AS r LEFT JOIN (SELECT rep_id, min(closed_at) AS first_won "
        "FROM opportunities FINAL WHERE stage = 'won' GROUP BY rep_id) AS w ON r.rep_id = w.rep_id "
        f"WHERE r.started_on >= {{since:Date}} AND {cond} ORDER BY r.started_on, r.rep_id",
        params,
    )
    return [_clean(r) for r in rows]
