"""Outside peer for `make bench`: Quix Streams doing salespulse's health job on the same input.

Runs in its own virtualenv (Quix pins pydantic < 2.14; salespulse needs 2.14), never imported
by the product. Per source event, as Quix's per-message API shapes it: validate and mask
(``intake``), fold into the customer's health state and score (``health.step``, the same
pure functions the worker uses), state in Quix's RocksDB store with its changelog, the
accepted row and the health results produced to an output topic.

Prints ``RESULT <events> <seconds> <cpu-seconds>`` from the first event to the N-th.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import orjson
from quixstreams import Application, State

from nlp.pii import Pii
from pipeline import intake
from pipeline.health import engine as health
from pipeline.health.alerts import load_alert_config
from pipeline.health.features import new_state
from pipeline.health.scoring import load_config
from schemas.events import EventError, validate


def main() -> None:
    topic_name, out_name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = Application(
        broker_address=os.environ["SALESPULSE_KAFKA_BOOTSTRAP"],
        consumer_group=f"quix-peer-{topic_name}",
        auto_offset_reset="earliest",
        commit_interval=1.0,
        state_dir=os.environ.get("QUIX_STATE_DIR", "var/bench/quix-state"),
        loglevel="WARNING",
    )
    pii = Pii(os.environ["SALESPULSE_PII_HMAC_KEY"].encode())
    cfg, alert_cfg = load_config(), load_alert_config()
    source = app.topic(topic_name, key_deserializer="bytes", value_deserializer="bytes")
    output = app.topic(out_name, key_serializer="bytes", value_serializer="bytes")
    seen = {"count": 0, "first": 0.0, "cpu": 0.0}

    def process(value: bytes, key: Any, timestamp: int, headers: Any, state: State) -> list[bytes]:
        if seen["count"] == 0:
            seen["first"], seen["cpu"] = time.perf_counter(), time.process_time()
        seen["count"] += 1
        out: list[bytes] = []
        try:
            ev = validate(orjson.loads(value))
            row = intake.accepted_row(ev, pii)
            out.append(orjson.dumps(row))
            cid = ev.envelope.customer_id
            if cid:
                st = state.get("health") or new_state(cid)
                changed, results = health.step(st, row, cfg, source="bench", offset=seen["count"], alert_cfg=alert_cfg)
                if changed:
                    state.set("health", st)
                out.extend(orjson.dumps(r) for _kind, r in results)
        except EventError:
            pass
        if seen["count"] == n:
            elapsed = time.perf_counter() - seen["first"]
            print(f"RESULT {n} {elapsed:.4f} {time.process_time() - seen['cpu']:.4f}", flush=True)
            os._exit(0)
        return out

    sdf = app.dataframe(source)
    sdf = sdf.apply(process, stateful=True, metadata=True, expand=True)
    sdf.to_topic(output)
    app.run()


if __name__ == "__main__":
    main()
