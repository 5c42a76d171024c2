"""A broker outage must not flood the logs (a 20 s outage once wrote 10 MB per worker)."""

from __future__ import annotations

import logging

import pytest

from pipeline.infra import logcalm


def test_a_repeated_client_line_is_shown_once_per_interval_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    calm = logcalm.install(every=60.0)
    log = logging.getLogger("aiokafka")
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        for _ in range(5000):
            log.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused")
        log.error("Unable to update metadata from %s", [1])
    assert [r.getMessage() for r in caplog.records] == [
        "Unable connect to node with id 1: [Errno 111] Connection refused",
        "Unable to update metadata from [1]",
    ]
    key = ("aiokafka", "Unable connect to node with id %s: %s")
    calm.shown[key] -= 61  # the interval has passed
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        log.error("Unable connect to node with id %s: %s", 1, "again")
    last = caplog.records[-1].getMessage()
    assert last == "Unable connect to node with id 1: again [4999 like it in the last 60 s not shown]"
    for name in logcalm.LOGGERS:
        logging.getLogger(name).removeFilter(calm)
