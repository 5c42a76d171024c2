"""Keep a broker outage from flooding the logs.

While a broker is away, aiokafka logs the same line for every attempt: a 20 s outage wrote
10 MB of "Unable connect to node" into a worker's log. Each message template of the Kafka
client loggers is shown at most once per ``EVERY`` seconds; the next one that is shown says
how many like it were held back.
"""

from __future__ import annotations

import logging
import time

EVERY = 10.0
LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "kafka",
    "kafka.conn",
    "kafka.client",
)


class Calm(logging.Filter):
    """At most one record per logger and message template per ``every`` seconds."""

    def __init__(self, every: float = EVERY) -> None:
        super().__init__()
        self.every = every
        self.shown: dict[tuple[str, str], float] = {}
        self.held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self.shown.get(key)
        if last is not None and now - last < self.every:
            self.held[key] = self.held.get(key, 0) + 1
            return False
        self.shown[key] = now
        held = self.held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} like it in the last {self.every:.0f} s not shown]"
        return True


def install(every: float = EVERY) -> Calm:
    calm = Calm(every)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, Calm)]:
            logger.removeFilter(old)  # one per logger: installing again replaces it
        logger.addFilter(calm)
    return calm
