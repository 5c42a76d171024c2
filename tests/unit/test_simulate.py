"""The simulator's ground truth describes the world its events come from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from pipeline.simulate import generate, ground_truth

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_ground_truth_is_the_world_the_events_come_from() -> None:
    truth = {t["customer_id"]: t for t in ground_truth(7, 80, NOW)}
    assert len(truth) == 80 and truth == {t["customer_id"]: t for t in ground_truth(7, 80, NOW)}  # same seed
    seen: dict[str, list[datetime]] = {}
    for _topic, _key, value, ts in generate(7, days=30, now=NOW, customers=80, bad_rate=0.0):
        cid = orjson.loads(value).get("customer_id")
        if cid:
            seen.setdefault(cid, []).append(ts)
    assert set(seen) <= set(truth)
    churned = [t for t in truth.values() if t["churn_at"] is not None and t["churn_at"] < NOW - timedelta(days=5)]
    assert churned and any(t["churn_at"] is None for t in truth.values())
    # after churning, a simulated customer is far less active than before: the truth is in the data
    after = sum(sum(1 for ts in seen.get(t["customer_id"], []) if ts >= t["churn_at"]) for t in churned)
    before = sum(sum(1 for ts in seen.get(t["customer_id"], []) if ts < t["churn_at"]) for t in churned)
    assert after < before
