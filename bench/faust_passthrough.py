"""Faust pass-through floor: count N raw messages from one topic; print count, seconds, CPU seconds."""

from __future__ import annotations

import os
import sys
import time

import faust
import mode.loop

from pipeline.infra.faust_app import create_app, faust_topic
from pipeline.infra.settings import load


def main() -> None:
    topic_name, n = sys.argv[1], int(sys.argv[2])
    mode.loop.use("uvloop")
    settings = load()
    app = create_app(settings)
    topic = faust_topic(app, topic_name, partitions=settings.partitions)
    state = {"count": 0, "first": 0.0, "cpu": 0.0}

    @app.agent(topic, name="passthrough")
    async def passthrough(stream: object) -> None:
        async for _value in stream:  # type: ignore[attr-defined]
            if state["count"] == 0:
                state["first"], state["cpu"] = time.perf_counter(), time.process_time()
            state["count"] += 1
            if state["count"] == n:
                elapsed = time.perf_counter() - state["first"]
                print(f"RESULT {n} {elapsed:.4f} {time.process_time() - state['cpu']:.4f}", flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0]]
    faust.Worker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
