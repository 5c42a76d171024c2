"""Reports computed in ClickHouse (parameterised SQL only)."""

from __future__ import annotations

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


# Per rule, against the simulator's ground truth: an alert is right when its customer churns
# within {before} days after it (or churned at most {after} days before it: caught late, but
# caught); a churner counts as caught by a rule when such an alert exists.
ALERT_TRUTH = """
SELECT
    rule_id,
    count() AS alerts,
    countIf(hit) AS right,
    uniqExactIf(customer_id, hit AND in_span) AS caught,
    quantileExactIf(0.5)(lead_days, hit) AS median_lead_days
FROM
(
    SELECT
        a.rule_id AS rule_id,
        a.customer_id AS customer_id,
        t.churn_at IS NOT NULL
            AND a.raised_at <= t.churn_at + toIntervalDay({after:UInt16})
            AND a.raised_at >= t.churn_at - toIntervalDay({before:UInt16}) AS hit,
        t.churn_at >= {span_from:DateTime64(3)} AND t.churn_at <= {span_to:DateTime64(3)} AS in_span,
        dateDiff('minute', a.raised_at, t.churn_at) / 1440.0 AS lead_days
    FROM (SELECT rule_id, customer_id, raised_at FROM alerts FINAL) AS a
    LEFT JOIN (SELECT customer_id, churn_at FROM sim_truth FINAL) AS t ON t.customer_id = a.customer_id
)
GROUP BY rule_id
ORDER BY rule_id
"""


def alert_truth(client: Any, before: int = 30, after: int = 7) -> list[dict[str, Any]]:
    """Each rule judged against simulated ground truth: precision (alerts whose customer
    churned within ``before`` days after, or ``after`` days before), recall (churners within
    the data's event-time span caught), median lead time (days from alert to churn, negative
    when late) and alerts per 100 customers per month. Empty without ground truth."""
    customers = int(client.command("SELECT count() FROM sim_truth FINAL"))
    span_from, span_to = client.query("SELECT min(occurred_at), max(occurred_at) FROM events").result_rows[0]
    if not customers or span_from is None:
        return []
    span = {"span_from": span_from, "span_to": span_to}
    churners = int(
        client.query(
            "SELECT count() FROM sim_truth FINAL WHERE churn_at >= {span_from:DateTime64(3)} "
            "AND churn_at <= {span_to:DateTime64(3)}",
            parameters=span,
        ).result_rows[0][0]
    )
    months = max(1.0, (span_to - span_from).total_seconds() / 86400) / 30
    rows = client.query(ALERT_TRUTH, parameters={"before": before, "after": after, **span}).result_rows
    out = []
    for rule_id, alerts, right, caught, lead in rows:
        out.append(
            {
                "rule_id": rule_id,
                "alerts": int(alerts),
                "precision": round(int(right) / int(alerts), 3),
                "recall": round(int(caught) / churners, 3) if churners else None,
                "median_lead_days": None if not right else round(float(lead), 1),
                "per_100_customers_month": round(100 * int(alerts) / customers / months, 2),
            }
        )
    return out


def truth_table(rows: list[dict[str, Any]]) -> str:
    """The rules against the simulator's ground truth, as the demo and `alerts report` print it."""
    out = [
        "against simulated ground truth (who churned, and when):",
        f"{'rule':24} {'alerts':>7} {'precision':>10} {'recall':>7} {'lead (d)':>9} {'per 100/month':>14}",
    ]
    for r in rows:
        recall = "-" if r["recall"] is None else f"{r['recall']:.1%}"
        lead = "-" if r["median_lead_days"] is None else f"{r['median_lead_days']:+.1f}"
        out.append(
            f"{r['rule_id']:24} {r['alerts']:>7} {r['precision']:>10.1%} {recall:>7} {lead:>9} "
            f"{r['per_100_customers_month']:>14.2f}"
        )
    total = sum(r["per_100_customers_month"] for r in rows)
    out.append(
        "precision = alerts whose customer churned within 30 days after (or 7 before); recall = churners "
        f"caught; lead = median days from alert to churn; all rules: {total:.1f} alerts per 100 customers a month"
    )
    return "\n".join(out)
