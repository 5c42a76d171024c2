"""`salespulse train`: the churn model."""

from __future__ import annotations

import argparse
import json

from pipeline.infra import store
from pipeline.infra.settings import Settings


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.health.churn import train

    client = store.connect(settings)
    try:
        report = train(client, settings.model_dir)
    finally:
        client.close()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
