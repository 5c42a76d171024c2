"""The fault suite's poison does what it says: each kind gets the outcome stated for it."""

from __future__ import annotations

import random

import orjson
import pytest

from nlp.pii import Pii
from pipeline import intake, poison
from pipeline.simulate import generate
from schemas.events import EventError

PII = Pii(b"unit-test-key-0123456789")
GOOD = [
    (t, orjson.loads(v))
    for t, _k, v, _ts in generate(4, days=1, customers=20, bad_rate=0.0)
    if t in ("pos.transactions", "app.telemetry", "messaging.events")
][:30]


@pytest.mark.parametrize("kind", sorted(poison.KINDS))
def test_each_poison_kind_gets_its_stated_outcome(kind: str) -> None:
    rng = random.Random(1)
    for topic, good in GOOD:
        raw, got_kind, dead = poison.poison(rng, good, kind)
        assert got_kind == kind
        where = poison.topic_for(kind, topic)
        if dead is None:
            row, payload = intake.accepted(intake.decode(raw, where, 65_536), PII)
            assert "13912345678" not in row["payload"] and "110101199003071234" not in row["payload"]
            if kind != "numbers_in_text":
                assert payload["text"] in (poison.SQL, poison.HTML)  # text, stored as it came
            continue
        with pytest.raises(EventError) as refused:
            row, _ = intake.accepted(intake.decode(raw, where, 65_536), PII)
        assert refused.value.kind == dead, (kind, topic, str(refused.value))
