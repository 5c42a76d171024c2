"""`salespulse kafka` and `salespulse topics`: the local broker and the topics."""

from __future__ import annotations

import argparse
import json

from pipeline.infra import kafka_admin, kafka_local
from pipeline.infra.settings import Settings


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "fetch":
        print(f"Kafka jars in {kafka_local.fetch(settings, quiet=False)}")
    elif args.action == "start":
        started = kafka_local.start(settings)
        created = kafka_admin.ensure_topics(settings)
        print(("started" if started else "already running") + f" on {settings.kafka_bootstrap}")
        if created:
            print("created topics: " + ", ".join(created))
    elif args.action == "stop":
        print("stopped" if kafka_local.stop(settings) else "not running (no broker started by salespulse)")
    else:
        st = kafka_local.status(settings)
        print(json.dumps(st, indent=2))
        return 0 if st["listening"] else 3
    return 0


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    created = kafka_admin.ensure_topics(settings)
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0
