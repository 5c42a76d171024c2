"""One account's book: its contacts and opportunities, folded event by event (pure, no Faust).

The deals agent groups a batch by account and calls ``fold`` per event and ``settle`` once
per account, as the customer agent does. Stage requests are judged by the gates in force
and answered at once (a decision row, keyed by opportunity, that a CRM front end
subscribes to and that is also the audit row). Money is kept as text in the state (the
changelog is JSON) and is Decimal wherever it is used.

Idempotent as the customer fold: ``applied`` keeps the last offset per source
topic-partition, so a replayed event changes nothing and the rows' ``version`` (events folded
so far) is the same as before; the ids folded in the last ``KEEP_IDS_DAYS`` days of event time
are kept too, so an event sent twice (a retry at a new offset) is folded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline import dedup
from pipeline.bizday import business_tz, day_of_stamp
from pipeline.customer import Results
from pipeline.deals import gates, grading
from pipeline.intake import now_iso
from schemas.crm import ROLE_ZH, STAGE_ZH, STAGES

KEEP_IDS_DAYS = 120  # a retried CRM event is recognised this long (cycles run 47 days on average)
ACTIVITY_TIMES = 50  # recent activity times kept per account (grading counts the last 30 days)
KEEP = 5  # documents per type, quotes and activities kept per opportunity
QUALITY_DEMO_MINUTES = 45.0  # a demo this long that showed the hospital's own parameter pages
LATE_UPDATE = timedelta(hours=24)
DEEP_READ_SHARE = 0.6  # pages read / total from which a view is a deep read
DEEP_READ_SECONDS = 180.0


class Rules:
    """The gates and the grading in force; each swapped whole when an edited file is picked up."""

    def __init__(self, loaded: gates.Loaded, graded: grading.Loaded | None = None) -> None:
        self.loaded = loaded
        self.graded = graded or grading.shipped()

    @property
    def current(self) -> gates.GateRules:
        return self.loaded.rules


@dataclass
class Touched:
    account: bool = False
    opps: set[str] = field(default_factory=set)
    at: str = ""  # event time of the latest event folded: the account is graded as of then


def new_account(account_id: str) -> dict[str, Any]:
    return {"account_id": account_id, "account": None, "contacts": {}, "opps": {}, "applied": {}, "seq": 0}


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def fold(
    state: dict[str, Any],
    row: dict[str, Any],
    payload: dict[str, Any],
    *,
    source: str,
    offset: int,
    rules: Rules,
    out: Results,
    touched: Touched,
) -> bool:
    """Fold one accepted CRM event (``payload``: its masked payload); False if already folded."""
    applied: dict[str, int] = state["applied"]
    if applied.get(source, -1) >= offset:
        return False
    applied[source] = offset
    if not dedup.first_time(state, row["event_id"], row["occurred_at"], KEEP_IDS_DAYS):
        return False  # a retried event: a stage request judged twice could refuse what it moved
    state["seq"] += 1
    etype = row["event_type"]
    at = row["occurred_at"]
    touched.at = max(touched.at, at)
    p = payload
    opps: dict[str, dict[str, Any]] = state["opps"]
    if etype == "crm.account":
        state["account"] = {k: p[k] for k in ("name", "region", "tier", "owner_rep_id")}
        touched.account = True
    elif etype == "crm.contact":
        state["contacts"][p["contact_id"]] = {
            "name": p["name"],
            "department": p["department"],
            "role": p["role"],
            "phone_masked": p.get("phone_masked", ""),
        }
        out.add("crm_contacts", contact_row(state, p["contact_id"], at))
        touched.account = True
    elif etype == "crm.opportunity_created":
        opp = opps.get(p["opportunity_id"]) or _new_opp(state["account_id"], p, at)
        opp.update(name=p["name"], product_line_id=p["product_line_id"], rep_id=p["rep_id"])
        opp.update(expected_amount=str(p["expected_amount"]), budget_deadline=p.get("budget_deadline"))
        opps[p["opportunity_id"]] = opp
        touched.opps.add(p["opportunity_id"])
        touched.account = True
    elif etype == "crm.stage_request":
        _request(state, p, row, rules, out, touched)
    else:
        found = opps.get(p.get("opportunity_id") or "")
        if etype == "crm.doc_view":
            _viewed(state, p, row, out, touched)
        elif found is None:
            if etype == "crm.activity" and not p.get("opportunity_id"):
                out.add("deal_activities", activity_row(state, None, p, row))  # account-level visit
                return True
            raise UnknownOpportunity(f"{etype} for unknown opportunity {p.get('opportunity_id')!r}")
        else:
            _change(state, found, etype, p, row, out)
            touched.opps.add(found["opportunity_id"])
    return True


def _change(
    state: dict[str, Any], opp: dict[str, Any], etype: str, p: dict[str, Any], row: dict[str, Any], out: Results
) -> None:
    """A document, quote, approval, update or activity of a known deal."""
    at = row["occurred_at"]
    if etype == "crm.opportunity_updated":
        if p.get("expected_amount") is not None:
            opp["expected_amount"] = str(p["expected_amount"])
        if p.get("budget_deadline") is not None:
            opp["budget_deadline"] = p["budget_deadline"]
        if p.get("next_step"):
            opp["next_step"] = p["next_step"]
        opp["updated_at"] = at
    elif etype == "crm.document":
        docs = opp["docs"].setdefault(p["doc_type"], [])
        docs.append({"document_id": p["document_id"], "title": p["title"], "fields": p["fields"], "at": at})
        del docs[:-KEEP]
        opp["updated_at"] = at
    elif etype == "crm.quote":
        opp["quotes"].append(
            {
                "quote_id": p["quote_id"],
                "amount": str(p["amount"]),
                "competitor": p.get("competitor"),
                "competitor_amount": None if p.get("competitor_amount") is None else str(p["competitor_amount"]),
                "at": at,
            }
        )
        del opp["quotes"][:-KEEP]
        opp["updated_at"] = at
    elif etype == "crm.approval":
        opp["approvals"].setdefault(p["quote_id"], {})[p["approver_role"]] = p["decision"]
    elif etype == "crm.activity":
        _activity(state, opp, p, row, out)


class UnknownOpportunity(ValueError):
    """A document, quote, approval or update for a deal never created: kept as a dead letter."""


def _new_opp(account_id: str, p: dict[str, Any], at: str) -> dict[str, Any]:
    return {
        "opportunity_id": p["opportunity_id"],
        "account_id": account_id,
        "stage": "lead",
        "stage_since": at,
        "created_at": at,
        "updated_at": at,
        "docs": {},
        "quotes": [],
        "approvals": {},
        "activities": [],
        "next_step": "",
        "last_activity_at": None,
        "demo_minutes": 0.0,
        "quality_demo": False,
        "intent_at": None,
        "intent_title": "",
        "intent_contact": "",
        "followed_up_at": None,
        "pushed_day": "",
        "refusals": 0,
        "closed_at": None,
    }


def _request(
    state: dict[str, Any], p: dict[str, Any], row: dict[str, Any], rules: Rules, out: Results, touched: Touched
) -> None:
    opp = state["opps"].get(p["opportunity_id"])
    to = p["to_stage"]
    in_force = rules.current
    found = gates.check(opp, to, in_force)
    missing = [text for _code, text in found]
    frm = opp["stage"] if opp else ""
    if opp is not None:
        if missing:
            opp["refusals"] += 1
        else:
            opp["stage"] = to
            opp["stage_since"] = row["occurred_at"]
            if to in ("won", "lost"):
                opp["closed_at"] = row["occurred_at"]
        opp["updated_at"] = row["occurred_at"]
        touched.opps.add(p["opportunity_id"])
    decision = "refused" if missing else "accepted"
    out.keyed["opportunity_audit"].append(
        (
            p["opportunity_id"],
            {
                "decision_id": f"{p['opportunity_id']}:{row['event_id']}",
                "opportunity_id": p["opportunity_id"],
                "account_id": state["account_id"],
                "rep_id": opp["rep_id"] if opp else "",
                "requested_by": p["requested_by"],
                "requested_at": row["occurred_at"],
                "from_stage": frm,
                "to_stage": to,
                "decision": decision,
                "missing": missing,
                "missing_codes": [code for code, _text in found],
                "reason": (
                    f"已从「{STAGE_ZH.get(frm, frm)}」推进到「{STAGE_ZH[to]}」"
                    if not missing
                    else f"不能推进到「{STAGE_ZH[to]}」：" + "；".join(missing)
                ),
                "request_reason": p.get("reason", ""),
                "rule_version": in_force.version,
                "decided_at": now_iso(),
            },
        )
    )


def _activity(state: dict[str, Any], opp: dict[str, Any], p: dict[str, Any], row: dict[str, Any], out: Results) -> None:
    at = row["occurred_at"]
    opp["n_activities"] = opp.get("n_activities", 0) + 1
    times = state.setdefault("activity_times", [])
    times.append(at)
    del times[:-ACTIVITY_TIMES]
    opp["activities"].append(
        {"kind": p["kind"], "at": at, "minutes": p["duration_minutes"], "summary": p.get("summary", "")}
    )
    del opp["activities"][:-KEEP]
    opp["last_activity_at"] = max(opp["last_activity_at"] or at, at)
    logged = p.get("logged_at") or at
    opp["updated_at"] = max(opp["updated_at"], logged)
    if p["kind"] == "demo":
        opp["demo_minutes"] = max(opp["demo_minutes"], float(p["duration_minutes"]))
        if p["duration_minutes"] >= QUALITY_DEMO_MINUTES and p.get("custom_pages_shown"):
            opp["quality_demo"] = True
    if opp["intent_at"] and not opp["followed_up_at"] and at >= opp["intent_at"]:
        opp["followed_up_at"] = at
    out.add("deal_activities", activity_row(state, opp, p, row))


def activity_row(
    state: dict[str, Any], opp: dict[str, Any] | None, p: dict[str, Any], row: dict[str, Any]
) -> dict[str, Any]:
    at = datetime.fromisoformat(row["occurred_at"])
    logged = datetime.fromisoformat(p["logged_at"]) if p.get("logged_at") else at
    delay = max(0.0, (logged - at).total_seconds() / 3600)
    return {
        "activity_id": p["activity_id"],
        "opportunity_id": p.get("opportunity_id") or "",
        "account_id": state["account_id"],
        "rep_id": p["rep_id"],
        "region": (state["account"] or {}).get("region", ""),
        "kind": p["kind"],
        "occurred_at": row["occurred_at"],
        "logged_at": _iso(logged),
        "delay_hours": round(delay, 2),
        "late": int(logged - at > LATE_UPDATE),
        "duration_minutes": float(p["duration_minutes"]),
        "custom_pages_shown": int(bool(p.get("custom_pages_shown"))),
        "quality_demo": int(
            p["kind"] == "demo" and p["duration_minutes"] >= QUALITY_DEMO_MINUTES and bool(p.get("custom_pages_shown"))
        ),
        "stage": opp["stage"] if opp else "",
    }


def _viewed(state: dict[str, Any], p: dict[str, Any], row: dict[str, Any], out: Results, touched: Touched) -> None:
    """A contact opened a product document: each open deal of the account on that product line
    (every open deal when the document names none) is high-intent, and its rep gets one push a
    business day with the recent conversation and the competitor quote on record."""
    at = row["occurred_at"]
    deep = (p["pages_read"] / p["pages_total"] >= DEEP_READ_SHARE) or p["dwell_seconds"] >= DEEP_READ_SECONDS
    contact = state["contacts"].get(p["contact_id"], {})
    who = contact.get("name") or p["contact_id"]
    if contact.get("role"):
        who = f"{who}（{ROLE_ZH[contact['role']]}）"
    day = datetime.fromisoformat(at).astimezone(business_tz()).strftime("%Y%m%d")
    for opp in state["opps"].values():
        if opp["closed_at"] or (p.get("product_line_id") and p["product_line_id"] != opp["product_line_id"]):
            continue
        opp["intent_at"], opp["intent_title"], opp["intent_contact"] = at, p["title"], who
        opp["followed_up_at"] = None
        touched.opps.add(opp["opportunity_id"])
        if opp["pushed_day"] == day:
            continue
        opp["pushed_day"] = day
        out.add("deal_pushes", push_row(state, opp, p, at, deep, who, day))


def push_row(
    state: dict[str, Any], opp: dict[str, Any], p: dict[str, Any], at: str, deep: bool, who: str, day: str
) -> dict[str, Any]:
    account = state["account"] or {}
    talk = [
        f"{day_of_stamp(a['at'])} {ACTIVITY_ZH[a['kind']]}：{a['summary']}"
        for a in opp["activities"][-3:]
        if a["summary"]
    ]
    rival = next((q for q in reversed(opp["quotes"]) if q.get("competitor")), None)
    rival_text = (
        f"{rival['competitor']} 报价 {gates.yuan(Decimal(rival['competitor_amount']))}" if rival else "暂无竞品报价记录"
    )
    verb = "深度阅读了" if deep else "打开了"
    return {
        "push_id": f"{opp['opportunity_id']}:intent:{day}",
        "kind": "deal_intent",
        "opportunity_id": opp["opportunity_id"],
        "account_id": state["account_id"],
        "rep_id": opp["rep_id"],
        "title": f"高意向：{account.get('name', state['account_id'])} {who}{verb}《{p['title']}》",
        "conversation": talk,
        "competitor_quote": rival_text,
        "raised_at": at,
        "severity": "high",
    }


ACTIVITY_ZH = {"visit": "拜访", "demo": "演示", "call": "电话"}


def contact_row(state: dict[str, Any], contact_id: str, at: str) -> dict[str, Any]:
    c = state["contacts"][contact_id]
    return {
        "contact_id": contact_id,
        "account_id": state["account_id"],
        "name": c["name"],
        "department": c["department"],
        "role": c["role"],
        "phone_masked": c["phone_masked"],
        "updated_at": at,
        "version": state["seq"],
    }


def settle(state: dict[str, Any], touched: Touched, rules: Rules, out: Results) -> None:
    """Once per account per batch: the rows of the deals and of the account that changed."""
    for opp_id in sorted(touched.opps):
        out.add("opportunities", opportunity_row(state, state["opps"][opp_id], rules.current))
    if state["account"] is None or not (touched.account or touched.opps or touched.at):
        return
    at = datetime.fromisoformat(touched.at) if touched.at else None
    row = account_row(state, rules.graded.rules, at)
    if touched.account or (row["grade"], row["grade_score"]) != tuple(state.get("graded", ("", -1.0))):
        state["graded"] = [row["grade"], row["grade_score"]]
        out.add("crm_accounts", row)


def next_stage(stage: str) -> str:
    if stage in ("won", "lost"):
        return ""
    return STAGES[STAGES.index(stage) + 1]


def opportunity_row(state: dict[str, Any], opp: dict[str, Any], rules: gates.GateRules) -> dict[str, Any]:
    """The deal as a rep and a manager see it: stage, what the next gate still misses, intent."""
    account = state["account"] or {}
    nxt = next_stage(opp["stage"])
    surveys = opp["docs"].get("needs_survey", [])
    latest = opp["quotes"][-1] if opp["quotes"] else None
    rival = next((q for q in reversed(opp["quotes"]) if q.get("competitor")), None)
    return {
        "opportunity_id": opp["opportunity_id"],
        "account_id": state["account_id"],
        "account_name": account.get("name", ""),
        "region": account.get("region", ""),
        "name": opp.get("name", ""),
        "product_line_id": opp.get("product_line_id", ""),
        "rep_id": opp.get("rep_id", ""),
        "stage": opp["stage"],
        "stage_since": opp["stage_since"],
        "created_at": opp["created_at"],
        "updated_at": opp["updated_at"],
        "last_activity_at": opp["last_activity_at"],
        "expected_amount": opp.get("expected_amount", "0"),
        "quote_amount": latest["amount"] if latest else None,
        "competitor": rival["competitor"] if rival else "",
        "competitor_amount": rival["competitor_amount"] if rival else None,
        "budget_deadline": opp.get("budget_deadline"),
        "next_step": opp.get("next_step", ""),
        "activities": opp.get("n_activities", 0),
        "demo_minutes": opp["demo_minutes"],
        "quality_demo": int(opp["quality_demo"]),
        "survey_complete": int(survey_complete(opp)),
        "decision_roles": max((len(set(d["fields"].get("decision_roles") or [])) for d in surveys), default=0),
        "intent_at": opp["intent_at"],
        "intent_title": opp["intent_title"],
        "followed_up_at": opp["followed_up_at"],
        "next_stage": nxt,
        "missing": gates.judge(opp, nxt, rules) if nxt else [],
        "refusals": opp["refusals"],
        "closed_at": opp["closed_at"],
        "rule_version": rules.version,
        "version": state["seq"],
    }


def survey_complete(opp: dict[str, Any]) -> bool:
    """A needs survey with the budget range and at least two decision-chain roles."""
    return any(
        d["fields"].get("budget_min") is not None
        and d["fields"].get("budget_max") is not None
        and len(set(d["fields"].get("decision_roles") or [])) >= 2
        for d in opp["docs"].get("needs_survey", [])
    )


def account_row(state: dict[str, Any], rules: grading.GradingRules, at: datetime | None) -> dict[str, Any]:
    a = state["account"]
    roles = sorted({c["role"] for c in state["contacts"].values()})
    letter, score, why = grading.grade(state, at, rules) if at is not None else ("C", 0.0, [])
    return {
        "account_id": state["account_id"],
        "name": a["name"],
        "region": a["region"],
        "tier": a["tier"],
        "owner_rep_id": a["owner_rep_id"],
        "contacts": len(state["contacts"]),
        "decision_roles": roles,
        "open_opportunities": sum(1 for o in state["opps"].values() if not o["closed_at"]),
        "grade": letter,
        "grade_score": score,
        "grade_reasons": why,
        "grading_version": rules.version,
        "version": state["seq"],
    }
