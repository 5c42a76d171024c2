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
