"""Reports computed in ClickHouse (parameterised SQL only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

ALERT_OUTCOMES = """
SELECT
    a.rule_id AS rule_id,
    count() AS alerts,
    countIf(a.raised_at + toIntervalDay({days:UInt16}) <= h.horizon) AS judged,
    countIf(a.raised_at + toIntervalDay({days:UInt16}) <= h.horizon AND h.recovered) AS recovered
FROM (SELECT alert_id, rule_id, customer_id, raised_at, score FROM alerts FINAL) AS a
LEFT JOIN
(
    SELECT al.alert_id AS alert_id,
           max(hh.as_of) AS last_seen,
           countIf(hh.as_of > al.raised_at
                   AND hh.as_of <= al.raised_at + toIntervalDay({days:UInt16})
                   AND hh.band != 'at_risk' AND hh.score >= al.score + {points:Float32}) > 0 AS recovered,
           (SELECT max(as_of) FROM customer_health_history) AS horizon
    FROM (SELECT alert_id, customer_id, raised_at, score FROM alerts FINAL) AS al
    LEFT JOIN customer_health_history AS hh ON hh.customer_id = al.customer_id
    GROUP BY al.alert_id, al.raised_at, al.score
) AS h ON h.alert_id = a.alert_id
GROUP BY a.rule_id
ORDER BY a.rule_id
"""


def alert_outcomes(client: Any, days: int = 14, points: float = 10.0) -> list[dict[str, Any]]:
    """Per rule: alerts raised, alerts old enough to judge (``days`` of data after them), and
    how many of those customers recovered on their own (left at_risk and gained ``points``).

    ``precision`` is the share of judged alerts whose customer did not recover by itself:
    the alert pointed at a risk that was real.
    """
    rows = client.query(ALERT_OUTCOMES, parameters={"days": days, "points": points}).result_rows
    out = []
    for rule_id, alerts, judged, recovered in rows:
        out.append(
            {
                "rule_id": rule_id,
                "alerts": int(alerts),
                "judged": int(judged),
                "recovered_within_days": int(recovered),
                "precision": None if not judged else round(1 - int(recovered) / int(judged), 3),
            }
        )
    return out


BEFORE_DAYS = 30  # an alert is right when its customer churns within this many days after it
AFTER_DAYS = 7  # ... or churned at most this many days before it (late, but caught)


def alert_truth(client: Any, before: int = BEFORE_DAYS, after: int = AFTER_DAYS) -> list[dict[str, Any]]:
    """The stored alerts judged against the stored simulator ground truth (``judge``); empty
    without ground truth (real traffic)."""
    truth = [
        dict(zip(("customer_id", "churn_at", "dip_from", "dip_to"), row, strict=True))
        for row in client.query("SELECT customer_id, churn_at, dip_from, dip_to FROM sim_truth FINAL").result_rows
    ]
    span_from, span_to = client.query(  # the customers' events: CRM history spans other months
        "SELECT min(occurred_at), max(occurred_at) FROM events WHERE NOT startsWith(event_type, 'crm.')"
    ).result_rows[0]
    if not truth or span_from is None:
        return []
    alerts = [
        {"rule_id": rule_id, "customer_id": cid, "raised_at": raised}
        for rule_id, cid, raised in client.query(
            "SELECT rule_id, customer_id, raised_at FROM alerts FINAL ORDER BY raised_at"
        ).result_rows
    ]
    return judge(alerts, truth, (_ts(span_from), _ts(span_to)), before=before, after=after)


ALL_RULES = "(all rules)"


def judge(
    alerts: list[dict[str, Any]],
    truth: list[dict[str, Any]],
    span: tuple[datetime, datetime],
    *,
    before: int = BEFORE_DAYS,
    after: int = AFTER_DAYS,
) -> list[dict[str, Any]]:
    """Per rule, then all rules together (``ALL_RULES``): precision (alerts whose customer
    churned within ``before`` days after, or ``after`` days before), recall (churners within
    ``span`` caught by a right alert), median lead time (days from a right alert to the churn;
    negative when late), alerts per 100 customers per month, and how many alerts went to
    customers in a slump they came out of by themselves (a dip, up to a week after it)."""
    churn = {t["customer_id"]: None if t["churn_at"] is None else _ts(t["churn_at"]) for t in truth}
    dips = {
        t["customer_id"]: (_ts(t["dip_from"]), _ts(t["dip_to"]))
        for t in truth
        if t.get("dip_from") is not None and t.get("dip_to") is not None
    }
    lo, hi = _ts(span[0]), _ts(span[1])
    churners = {c for c, at in churn.items() if at is not None and lo <= at <= hi}
    months = max(1.0, (hi - lo).total_seconds() / 86400) / 30
    customers = max(1, len(truth))

    def row(rule_id: str, mine: list[dict[str, Any]]) -> dict[str, Any]:
        right, leads, caught, on_dips = 0, [], set(), 0
        for a in mine:
            raised = _ts(a["raised_at"])
            at = churn.get(a["customer_id"])
            if at is not None and at - timedelta(days=before) <= raised <= at + timedelta(days=after):
                right += 1
                leads.append((at - raised).total_seconds() / 86400)
                if a["customer_id"] in churners:
                    caught.add(a["customer_id"])
            dip = dips.get(a["customer_id"])
            if dip is not None and dip[0] <= raised <= dip[1] + timedelta(days=7):
                on_dips += 1
        return {
            "rule_id": rule_id,
            "alerts": len(mine),
            "precision": round(right / len(mine), 3) if mine else None,
            "recall": round(len(caught) / len(churners), 3) if churners else None,
            "median_lead_days": round(median(leads), 1) if leads else None,
            "per_100_customers_month": round(100 * len(mine) / customers / months, 2),
            "on_recovering_dips": on_dips,
        }

    rules = sorted({a["rule_id"] for a in alerts})
    out = [row(r, [a for a in alerts if a["rule_id"] == r]) for r in rules]
    if len(rules) > 1:
        out.append(row(ALL_RULES, alerts))
    return out


def _ts(value: Any) -> datetime:
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def truth_table(rows: list[dict[str, Any]]) -> str:
    """The rules against the simulator's ground truth, as the demo and `alerts report` print it."""
    out = [
        "against simulated ground truth (who churned, and when):",
        f"{'rule':24} {'alerts':>7} {'precision':>10} {'recall':>7} {'lead (d)':>9} {'per 100/month':>14} "
        f"{'on dips':>8}",
    ]
    for r in rows:
        precision = "-" if r["precision"] is None else f"{r['precision']:.1%}"
        recall = "-" if r["recall"] is None else f"{r['recall']:.1%}"
        lead = "-" if r["median_lead_days"] is None else f"{r['median_lead_days']:+.1f}"
        out.append(
            f"{r['rule_id']:24} {r['alerts']:>7} {precision:>10} {recall:>7} {lead:>9} "
            f"{r['per_100_customers_month']:>14.2f} {r['on_recovering_dips']:>8}"
        )
    out.append(
        "precision = alerts whose customer churned within 30 days after (or 7 before); recall = churners "
        "caught; lead = median days from alert to churn; on dips = alerts on a slump the customer came out of"
    )
    return "\n".join(out)
