"""`salespulse ...`: the composition root. Nothing imports this module."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from pipeline import kafka_admin, kafka_local, store
from pipeline.settings import Settings, SettingsError, load, to_env

log = logging.getLogger("salespulse")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- kafka -------------------------------------------------------------------------------


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


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.events import json_schemas

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {len(json_schemas())} JSON Schemas to {out}")
    return 0


# --- traffic -----------------------------------------------------------------------------


def _simulate(settings: Settings, args: argparse.Namespace) -> Any:
    from pipeline.produce import send_generated
    from pipeline.simulate import generate

    events = generate(
        args.seed,
        days=args.days,
        live=args.duration > 0,
        customers=args.customers,
        bad_rate=args.bad_rate,
        max_bytes=settings.max_event_bytes,
    )
    return asyncio.run(send_generated(settings, events, rate=args.rate, duration=args.duration))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    kafka_admin.ensure_topics(settings)
    rep = _simulate(settings, args)
    print(
        f"sent {rep.sent} events in {rep.seconds:.1f}s: "
        + ", ".join(f"{t}={n}" for t, n in sorted(rep.per_topic.items()))
    )
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.produce import produce_file

    kafka_admin.ensure_topics(settings)
    rep = produce_file(settings, args.topic, Path(args.file))
    for lineno, kind, msg in rep.rejected:
        print(f"{args.file}:{lineno}: rejected ({kind}): {msg}", file=sys.stderr)
    print(f"sent {rep.sent}, rejected {len(rep.rejected)}")
    return 1 if rep.rejected else 0


# --- processes ---------------------------------------------------------------------------


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from agents.worker import run  # the CLI is the composition root; agents import pipeline

    kafka_admin.ensure_topics(settings)
    sys.argv = [sys.argv[0]]  # faust's Worker parses argv itself
    run(settings)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.serve import serve

    asyncio.run(serve(settings))
    return 0


def cmd_lag(settings: Settings, args: argparse.Namespace) -> int:
    rows = kafka_admin.consumer_lag(settings, args.group or None)
    if args.json:
        print(json.dumps([{**r.__dict__, "lag": r.lag} for r in rows], indent=2))
        return 0
    print(f"{'group':32} {'topic':28} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        print(f"{r.group:32} {r.topic:28} {r.partition:>4} {committed:>10} {r.end:>10} {r.lag:>8}")
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    client = store.connect(settings)
    try:
        print(json.dumps(summary(client), ensure_ascii=False, indent=2))
    finally:
        client.close()
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    if args.action in ("ack", "resolve"):
        from pipeline.produce import send_alert_action
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
    from pipeline.reports import alert_outcomes

    client = store.connect(settings)
    try:
        rows = alert_outcomes(client, days=args.days)
    finally:
        client.close()
    print(f"{'rule':24} {'alerts':>7} {'judged':>7} {'recovered':>10} {'precision':>10}")
    for r in rows:
        precision = "-" if r["precision"] is None else f"{r['precision']:.1%}"
        print(f"{r['rule_id']:24} {r['alerts']:>7} {r['judged']:>7} {r['recovered_within_days']:>10} {precision:>10}")
    print(f"judged = at least {args.days} days of data after the alert; precision = share not recovered by itself")
    return 0


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.churn import train

    client = store.connect(settings)
    try:
        report = train(client, settings.model_dir)
    finally:
        client.close()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def summary(client: Any) -> dict[str, Any]:
    dl = client.query(
        "SELECT error_class, count() FROM dead_letters FINAL GROUP BY error_class ORDER BY 2 DESC"
    ).result_rows
    return {"rows": store.table_counts(client), "dead_letters_by_class": {str(k): int(v) for k, v in dl}}


def demo_health(client: Any, lowest: int = 3) -> str:
    """What the demo's scores and alerts look like: bands, the lowest scores with reasons, alerts."""
    bands = client.query("SELECT band, count() FROM customer_health FINAL GROUP BY band ORDER BY 2 DESC").result_rows
    low = client.query(
        "SELECT customer_id, segment, score, trend_7d, confidence, reasons FROM customer_health FINAL "
        "ORDER BY score LIMIT {n:UInt32}",
        parameters={"n": lowest},
    ).result_rows
    alerts = client.query(
        "SELECT rule_id, status, count() FROM alerts FINAL GROUP BY rule_id, status ORDER BY rule_id, status"
    ).result_rows
    sample = client.query(
        "SELECT alert_id, title, assignee FROM alerts FINAL WHERE status = 'open' ORDER BY raised_at DESC LIMIT 3"
    ).result_rows
    out = ["health bands: " + ", ".join(f"{b} {n}" for b, n in bands)]
    out.append(f"lowest {lowest} scores:")
    for cid, segment, score, trend, conf, reasons in low:
        trend_txt = "n/a" if trend is None else f"{trend:+.0f}"
        out.append(f"  {cid} ({segment}) score {score:.0f}, 7-day trend {trend_txt}, confidence {conf:.2f}")
        out.extend(f"      {r}" for r in reasons[:4])
    out.append("alerts by rule and status: " + ", ".join(f"{r}/{st} {n}" for r, st, n in alerts))
    out.extend(f"  {aid} -> {who}: {title}" for aid, title, who in sample)
    return "\n".join(out)


def _spawn(settings: Settings, verb: str, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = log_path.open("ab")
    proc = subprocess.Popen(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-m", "pipeline.cli", verb],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **to_env(settings)},
    )
    out.close()
    return proc


def _stop(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _reset_demo(settings: Settings) -> Settings:
    """A demo starts clean, so its summary adds up: previous demo data would be deduplicated.

    A broker we manage is stopped state: its data folder is wiped before it starts. A broker
    someone else runs is left alone; the demo then uses topics of its own (a fresh prefix).
    The demo's ClickHouse database is dropped and recreated.
    """
    import shutil

    st = kafka_local.status(settings)
    if not st["listening"]:
        shutil.rmtree(kafka_local.paths(settings).data, ignore_errors=True)
    else:
        settings = settings.with_(topic_prefix=f"{settings.topic_prefix}demo{int(time.time())}.")
        print(f"[demo] a broker is already running: using topics prefixed {settings.topic_prefix!r}")
    client = store.connect(settings, migrate=False)
    try:
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")  # identifier validated
    finally:
        client.close()
    return settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    print(f"[demo] Kafka: {settings.kafka_bootstrap}; ClickHouse: {settings.clickhouse_dsn}")
    if not args.keep_data:
        settings = _reset_demo(settings)
        print(f"[demo] starting clean: database {settings.clickhouse_database} dropped (--keep-data keeps it)")
    started_kafka = kafka_local.start(settings)
    print("[demo] started Apache Kafka (KRaft)" if started_kafka else "[demo] using the running Kafka")
    kafka_admin.ensure_topics(settings)
    logs = settings.var_dir / "logs"
    worker = _spawn(settings, "worker", logs / "worker.log")
    sink = _spawn(settings, "serve", logs / "serve.log")
    rc = 0
    try:
        print(f"[demo] worker pid {worker.pid}, serve pid {sink.pid} (logs in {logs})")
        print(f"[demo] simulating {args.days:g} days of history, then {args.rate:g} events/s for {args.duration:g}s")
        rep = _simulate(settings, args)
        print(f"[demo] produced {rep.sent} events: " + ", ".join(f"{t}={n}" for t, n in sorted(rep.per_topic.items())))
        print("[demo] waiting for worker and sink to catch up ...")
        if not kafka_admin.wait_drained(settings, timeout=args.drain_timeout):
            print("[demo] WARNING: not fully drained; see `salespulse lag`", file=sys.stderr)
            rc = 1
        for name, proc in (("worker", worker), ("serve", sink)):
            if proc.poll() is not None:
                print(f"[demo] ERROR: {name} exited early with {proc.returncode}; see {logs}", file=sys.stderr)
                rc = 1
    finally:
        _stop(sink)
        _stop(worker)
        if started_kafka and not args.keep_kafka:
            kafka_local.stop(settings)
    client = store.connect(settings)
    try:
        s = summary(client)
        health_view = demo_health(client)
    finally:
        client.close()
    rows = s["rows"]
    processed = rows.get("events", 0) + rows.get("dead_letters", 0)
    print("\n=== salespulse demo summary ===")
    print(f"events produced     {rep.sent}")
    accepted, dead = rows.get("events", 0), rows.get("dead_letters", 0)
    print(f"events processed    {processed}  (accepted {accepted}, dead-lettered {dead})")
    for cls, n in s["dead_letters_by_class"].items():
        print(f"  dead letters: {cls:24} {n}")
    print("rows per ClickHouse table:")
    for table, n in rows.items():
        print(f"  {table:24} {n}")
    print(health_view)
    print(f"data left in {settings.var_dir.resolve()} (ClickHouse: {store.normalise_dsn(settings.clickhouse_dsn)})")
    print(f"took {time.monotonic() - t0:.0f}s")
    if processed != rep.sent:
        print(f"[demo] ERROR: produced {rep.sent} but stored {processed}", file=sys.stderr)
        rc = 1
    return rc


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
    lg.set_defaults(fn=cmd_lag)

    sub.add_parser("report", help="rows per ClickHouse table (stop serve first when embedded)").set_defaults(
        fn=cmd_report
    )

    al = sub.add_parser("alerts", help="alert actions (ack, resolve) and the precision report")
    al.add_argument("action", choices=["report", "ack", "resolve"])
    al.add_argument("alert_id", nargs="?", help="for ack/resolve: the alert id (customer:rule:YYYYMMDD)")
    al.add_argument("--by", help="for ack/resolve: who acts (recorded on the alert)")
    al.add_argument("--note", default="", help="for ack/resolve: a note kept on the alert")
    al.add_argument("--days", type=int, default=14, help="report: outcome window after each alert")
    al.set_defaults(fn=cmd_alerts)

    sub.add_parser("train", help="fit a calibrated churn model on the history in ClickHouse").set_defaults(fn=cmd_train)

    d = sub.add_parser("demo", help="start everything, simulate, summarise")
    sim_args(d, 45.0)
    d.set_defaults(days=30.0)
    d.add_argument("--drain-timeout", type=float, default=180.0)
    d.add_argument("--keep-kafka", action="store_true", help="leave the broker running afterwards")
    d.add_argument("--keep-data", action="store_true", help="do not wipe the previous demo's data first")
    d.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load()
    except SettingsError as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
