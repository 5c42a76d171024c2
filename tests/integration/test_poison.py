"""5% poison (issue 15): the worker keeps running, every bad event is a dead letter with the
error class stated for its kind (in ``pipeline.poison``, not worked out by the pipeline), every
good one is stored, and no personal number reaches a table."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from pipeline import poison
from pipeline.infra.settings import Settings
from tests.integration.conftest import count, wait_until
from tests.integration.helpers import send, simulated

pytestmark = pytest.mark.integration
CUSTOMER_TOPICS = ("pos.transactions", "app.telemetry", "messaging.events", "store.notes")


def test_five_percent_poison_every_event_accounted_for(settings: Settings, db: Any, worker: Any, sink: Any) -> None:
    rng = random.Random(11)
    exp = simulated(41, days=3, customers=60, bad_rate=0.0, settings=settings)
    sent, dead, good, nasty = [], Counter[str](), set(), Counter[str]()
    for topic, key, value, ts in exp.messages:
        doc = orjson.loads(value)
        if topic in CUSTOMER_TOPICS and rng.random() < 0.05:
            raw, kind, outcome = poison.poison(rng, doc)
            sent.append((poison.topic_for(kind, topic), key, raw, ts))
            if outcome is None:
                good.add(doc["event_id"])
                nasty[kind] += 1
            else:
                dead[outcome] += 1
        else:
            sent.append((topic, key, value, ts))
            good.add(doc["event_id"])
    customer_events = sum(1 for t, *_ in exp.messages if t in CUSTOMER_TOPICS)
    assert sum(dead.values()) + sum(nasty.values()) >= 0.03 * customer_events and nasty
    w = worker()
    sink()
    send(settings, sent)
    wait_until(
        lambda: (
            count(db, "SELECT count() FROM events FINAL") == len(good)
            and count(db, "SELECT count() FROM dead_letters FINAL") == sum(dead.values())
        ),
        timeout=150,
        what="every event stored or dead-lettered",
        state=lambda: (count(db, "SELECT count() FROM events FINAL"), len(good), dict(dead)),
    )
    assert w.proc is not None and w.proc.poll() is None  # still running
    stored = {r[0] for r in db.query("SELECT event_id FROM events FINAL").result_rows}
    assert stored == good
    classes = dict(db.query("SELECT error_class, count() FROM dead_letters FINAL GROUP BY 1").result_rows)
    assert classes == dict(dead)
    # SQL and HTML are text: stored as they came, never run or escaped away.
    for kind, text in (("sql_text", poison.SQL), ("html_text", poison.HTML)):
        n = count(db, "SELECT count() FROM note_tags FINAL WHERE text = {t:String}", t=text)
        assert n == nasty[kind], kind
    for number in ("13912345678", "110101199003071234", "6222021234567890123", "li.na@qq.com"):
        for table, column in (("events", "payload"), ("dead_letters", "raw_payload"), ("note_tags", "text")):
            sql = f"SELECT count() FROM {table} WHERE position({column}, {{n:String}}) > 0"  # our names
            hits = count(db, sql, n=number)
            assert hits == 0, (number, table)
