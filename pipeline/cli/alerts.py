"""`salespulse report` and `salespulse alerts`: row counts, alert actions and the precision report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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
    if args.action == "backtest":
        return backtest(args)
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


def backtest(args: argparse.Namespace) -> int:
    """Replay simulated traffic through the worker's pure code and judge a rules file against
    the simulator's ground truth, before a change goes live (no Kafka, no ClickHouse)."""
    from datetime import UTC, datetime

    from pipeline.health.alerts import all_rules_on, load_alert_config
    from pipeline.health.backtest import replay
    from pipeline.health.reports import judge, truth_table
    from pipeline.health.scoring import load_config
    from pipeline.simulate import generate, ground_truth

    cfg = load_alert_config(args.rules)
    if args.all_rules:
        cfg = all_rules_on(cfg)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    traffic = generate(args.seed, days=args.sim_days, now=now, customers=args.customers, bad_rate=0.0)
    result = replay(traffic, load_config(), cfg)
    if result.span is None:
        print("no simulated events", file=sys.stderr)
        return 1
    rows = judge(result.alerts, ground_truth(args.seed, args.customers, now, args.sim_days), result.span)
    print(f"{result.events} simulated events, {args.customers} customers, {args.sim_days:g} days (seed {args.seed})")
    print(truth_table(rows))
    if args.model:
        from pipeline.health.backtest import compare_model

        traffic = generate(args.seed, days=args.sim_days, now=now, customers=args.customers, bad_rate=0.0)
        try:
            cmp = compare_model(traffic, ground_truth(args.seed, args.customers, now, args.sim_days), load_config())
        except ValueError as exc:
            print(f"churn model: {exc}", file=sys.stderr)
            return 1
        print()
        print(model_table(cmp))
    return 0


def model_table(cmp: dict[str, Any]) -> str:
    """The churn model against the rules' score, as `alerts backtest --model` prints it."""
    out = [
        f"churn model vs rules' score on simulated truth (churned within 30 days), time split: {cmp['split']}",
        f"{'':26} {'rules':>7} {'model':>7}",
    ]
    for seg, name in (
        ("all", "ROC AUC, everyone"),
        ("b2b_contact", "ROC AUC, B2B contacts"),
        ("retail_member", "ROC AUC, members"),
    ):
        r, m = cmp["auc"][seg]["rules"], cmp["auc"][seg]["model"]
        out.append(f"{name:26} {'-' if r is None else f'{r:.3f}':>7} {'-' if m is None else f'{m:.3f}':>7}")
    p = cmp["precision_at_budget"]
    out.append(f"{'precision at the budget':26} {p['rules']:>7.1%} {p['model']:>7.1%}")
    out.append(
        f"({cmp['test_examples']} customer-days tested, {cmp['test_churn_rate']:.1%} churn within 30 days; budget = "
        f"the {cmp['budget_examples']} riskiest, 10 alerts per 100 customers a month)"
    )
    out.append("model weights (standardised): " + ", ".join(f"{n} {w:+.2f}" for n, w in cmp["model_weights"]))
    out.append(cmp["verdict"])
    return "\n".join(out)
