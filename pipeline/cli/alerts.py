"""`salespulse report` and `salespulse alerts`: row counts, alert actions and the precision report."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.cli.demo import summary
from pipeline.infra import store
from pipeline.infra.settings import Settings


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    client = store.connect(settings)
    try:
        print(json.dumps(summary(client), ensure_ascii=False, indent=2))
    finally:
        client.close()
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    if args.action in ("ack", "resolve"):
        from pipeline.infra.produce import send_alert_action
        from schemas.events import EventError

        if not args.alert_id or not args.by:
            print("alerts ack|resolve needs ALERT_ID and --by", file=sys.stderr)
            return 2
        verb = "acknowledge" if args.action == "ack" else "resolve"
        try:
            doc = send_alert_action(settings, args.alert_id, verb, args.by, args.note)
        except (EventError, ValueError) as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 1
        print(f"sent {verb} of {args.alert_id} by {args.by} ({doc['event_id']}); refusals go to the dead letters")
        return 0
    from pipeline.health.reports import alert_outcomes, alert_truth, truth_table

    client = store.connect(settings)
    try:
        rows = alert_outcomes(client, days=args.days)
        truth = alert_truth(client)
    finally:
        client.close()
    print(f"{'rule':24} {'alerts':>7} {'judged':>7} {'recovered':>10} {'precision':>10}")
    for r in rows:
        precision = "-" if r["precision"] is None else f"{r['precision']:.1%}"
        print(f"{r['rule_id']:24} {r['alerts']:>7} {r['judged']:>7} {r['recovered_within_days']:>10} {precision:>10}")
    print(f"judged = at least {args.days} days of data after the alert; precision = share not recovered by itself")
    if truth:
        print()
        print(truth_table(truth))
    return 0
