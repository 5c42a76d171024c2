"""The `salespulse` command: the composition root, one module per command. Nothing imports it."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from kafka.errors import KafkaError

from pipeline.api.keys import ROLES
from pipeline.cli.alerts import cmd_alerts, cmd_report
from pipeline.cli.contracts import cmd_schemas
from pipeline.cli.deals import cmd_deals
from pipeline.cli.demo import cmd_demo
from pipeline.cli.kafka import cmd_kafka, cmd_topics
from pipeline.cli.keys import cmd_keys
from pipeline.cli.lag import cmd_lag
from pipeline.cli.money import cmd_money
from pipeline.cli.notes import cmd_notes, cmd_reco
from pipeline.cli.run import cmd_serve, cmd_up, cmd_worker
from pipeline.cli.traffic import cmd_produce, cmd_simulate
from pipeline.cli.train import cmd_train
from pipeline.infra import kafka_local, logcalm, store
from pipeline.infra.settings import Settings, SettingsError, load


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logcalm.install()  # a broker outage repeats each client line thousands of times


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="salespulse", description="Streaming customer health, tags and alerts.")
    sub = p.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="run the local single-node Apache Kafka (KRaft)")
    k.add_argument("action", choices=["start", "stop", "status", "fetch"])
    k.set_defaults(fn=cmd_kafka)

    sub.add_parser("topics", help="create missing topics").set_defaults(fn=cmd_topics)

    sc = sub.add_parser("schemas", help="event contracts")
    sc.add_argument("action", choices=["export"])
    sc.add_argument("dir")
    sc.set_defaults(fn=cmd_schemas)

    def sim_args(sp: argparse.ArgumentParser, duration: float) -> None:
        sp.add_argument("--rate", type=float, default=200.0, help="live events per second")
        sp.add_argument("--duration", type=float, default=duration, help="seconds of live traffic")
        sp.add_argument("--seed", type=int, default=42)
        sp.add_argument("--days", type=float, default=0.0, help="backfill this many days of history first")
        sp.add_argument("--customers", type=int, default=300)
        sp.add_argument("--bad-rate", type=float, default=0.005, help="share of deliberately broken events")
        sp.add_argument("--deals", type=int, default=400, help="B2B deals in the simulated CRM book (0: none)")
        sp.add_argument("--crm-days", type=float, default=120.0, help="days of CRM history (deals take weeks)")

    s = sub.add_parser("simulate", help="send realistic synthetic traffic")
    sim_args(s, 60.0)
    s.set_defaults(fn=cmd_simulate)

    pr = sub.add_parser("produce", help="validate and send a JSONL file")
    pr.add_argument("--topic", required=True)
    pr.add_argument("file")
    pr.set_defaults(fn=cmd_produce)

    sub.add_parser("worker", help="run the stream processors (Faust)").set_defaults(fn=cmd_worker)
    sub.add_parser("serve", help="run the ClickHouse sink (owns the embedded store)").set_defaults(fn=cmd_serve)

    lg = sub.add_parser("lag", help="consumer lag per group/topic/partition")
    lg.add_argument("--group", action="append")
    lg.add_argument("--json", action="store_true")
    lg.add_argument(
        "--status", action="store_true", help="Burrow-style OK/WARN/STALLED/STOPPED per group (exit 1 if not OK)"
    )
    lg.add_argument("--samples", type=int, default=3, help="with --status: snapshots to compare")
    lg.add_argument("--interval", type=float, default=5.0, help="with --status: seconds between snapshots")
    lg.set_defaults(fn=cmd_lag)

    sub.add_parser("report", help="rows per ClickHouse table (stop serve first when embedded)").set_defaults(
        fn=cmd_report
    )

    al = sub.add_parser(
        "alerts", help="alert actions (ack, resolve), the precision report, and rules judged on simulated truth"
    )
    al.add_argument("action", choices=["report", "ack", "resolve", "backtest"])
    al.add_argument("alert_id", nargs="?", help="for ack/resolve: the alert id (customer:rule:YYYYMMDD)")
    al.add_argument("--by", help="for ack/resolve: who acts (recorded on the alert)")
    al.add_argument("--note", default="", help="for ack/resolve: a note kept on the alert")
    al.add_argument("--days", type=int, default=14, help="report: outcome window after each alert")
    al.add_argument("--rules", help="backtest: an alert rules file to judge (default: the shipped one)")
    al.add_argument("--all-rules", action="store_true", help="backtest: judge the switched-off rules too")
    al.add_argument("--seed", type=int, default=42, help="backtest: simulator seed")
    al.add_argument("--customers", type=int, default=300, help="backtest: simulated customers")
    al.add_argument("--sim-days", type=float, default=30, help="backtest: days of simulated history")
    al.add_argument(
        "--model", action="store_true", help="backtest: also the churn model against the rules' score (45+ days)"
    )
    al.set_defaults(fn=cmd_alerts)

    ky = sub.add_parser("keys", help="API keys for the console and API (stored hashed)")
    ky.add_argument("action", choices=["create", "list", "revoke"])
    ky.add_argument("key_id", nargs="?", help="for revoke")
    ky.add_argument("--name", default="", help="who holds the key (shown in audit fields)")
    ky.add_argument("--role", choices=list(ROLES))
    ky.add_argument("--store", action="append", help="store_manager: a store id (repeatable)")
    ky.add_argument("--rep", help="sales_rep: the rep id used as sender_id in messages")
    ky.add_argument("--specialist", help="cs: the specialist id alerts are assigned to")
    ky.add_argument("--region", help="sales_manager: the sales region (as the CRM names it, e.g. 华东)")
    ky.set_defaults(fn=cmd_keys)

    nt = sub.add_parser("notes", help="tagger upkeep (stop serve first when embedded)")
    nt.add_argument("action", choices=["fit-idf", "candidates", "check-lexicon"])
    nt.add_argument("--limit", type=int, default=30, help="candidates: how many words")
    nt.add_argument("--min-count", type=int, default=3, help="candidates: in at least this many notes")
    nt.add_argument(
        "--file", help="check-lexicon: the edited lexicon (default: SALESPULSE_MODEL_DIR/retail_lexicon.tsv)"
    )
    nt.add_argument("--simulated", action="store_true", help="the shipped recipe instead of the stored notes")
    nt.add_argument("--out", help="where to write (default: SALESPULSE_MODEL_DIR/tag_idf.json)")
    nt.set_defaults(fn=cmd_notes)

    rc = sub.add_parser("reco", help="co-purchase rules for recommendations (stop serve first when embedded)")
    rc.add_argument("action", choices=["mine"])
    rc.add_argument("--top", type=int, default=10)
    rc.set_defaults(fn=cmd_reco)

    dl = sub.add_parser("deals", help="the B2B pipeline: gates, close-probability model, TOP-3")
    dl.add_argument("action", choices=["check-gates", "check-grading", "train", "top3"])
    dl.add_argument("file", nargs="?", help="check-gates, check-grading: the edited file")
    dl.add_argument("--rep", help="top3: one rep only")
    dl.set_defaults(fn=cmd_deals)

    mo = sub.add_parser("money", help="rebates and matching rules, statements, the match board")
    mo.add_argument("action", choices=["check-rebates", "check-matching", "statement", "board"])
    mo.add_argument("args", nargs="*", help="check-*: the edited FILE; statement: DISTRIBUTOR MONTH")
    mo.add_argument("--csv", help="statement: also write it as CSV here")
    mo.add_argument("--xlsx", help="statement: also write it as XLSX here")
    mo.set_defaults(fn=cmd_money)

    sub.add_parser("train", help="fit a calibrated churn model on the history in ClickHouse").set_defaults(fn=cmd_train)

    up = sub.add_parser("up", help="run Kafka, worker and serve (console) until Ctrl-C")
    up.add_argument("--keep-kafka", action="store_true", help="leave the broker running afterwards")
    up.set_defaults(fn=cmd_up)

    d = sub.add_parser("demo", help="start everything, simulate, summarise")
    sim_args(d, 45.0)
    d.set_defaults(days=30.0)
    d.add_argument("--drain-timeout", type=float, default=180.0)
    d.add_argument("--keep-kafka", action="store_true", help="leave the broker running afterwards")
    d.add_argument("--keep-data", action="store_true", help="do not wipe the previous demo's data first")
    d.set_defaults(fn=cmd_demo)
    return p


def private_var(var: Path) -> None:
    """var/ holds Kafka segments with the producers' raw payloads, ClickHouse data, logs and
    API keys: only the user running salespulse may enter it (0700, which closes everything
    below it), and what salespulse creates from now on is private too (umask 077: folders
    0700, files 0600; the broker it starts inherits the umask)."""
    os.umask(0o077)
    var.mkdir(parents=True, exist_ok=True)
    var.chmod(0o700)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load()
    except SettingsError as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
    private_var(settings.var_dir)
    _setup_logging(settings)
    try:
        rc: int = args.fn(settings, args)
        return rc
    except (SettingsError, kafka_local.KafkaLocalError, store.StoreError) as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(
            f"salespulse: Kafka at {settings.kafka_bootstrap} is not answering ({exc}). "
            "Start the local broker with `salespulse kafka start`.",
            file=sys.stderr,
        )
        return 2
