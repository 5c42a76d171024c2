"""`salespulse ...`: the composition root. Nothing imports this module."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
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


def _events(settings: Settings, args: argparse.Namespace) -> Iterator[tuple[str, bytes, bytes, datetime]]:
    from pipeline.simulate import generate

    return generate(
        args.seed,
        days=args.days,
        live=args.duration > 0,
        customers=args.customers,
        bad_rate=args.bad_rate,
        max_bytes=settings.max_event_bytes,
    )


def _simulate(settings: Settings, args: argparse.Namespace) -> Any:
    from pipeline.produce import send_generated

    events = _events(settings, args)
    return asyncio.run(send_generated(settings, events, rate=args.rate, duration=args.duration))


class _Feed:
    """The simulator's stream split at the first live event: the history, then live traffic."""

    def __init__(self, events: Iterator[tuple[str, bytes, bytes, datetime]]) -> None:
        self.events = events
        self.head: list[tuple[str, bytes, bytes, datetime]] = []

    def history(self) -> Iterator[tuple[str, bytes, bytes, datetime]]:
        cutoff = datetime.now(UTC).timestamp() - 1
        for item in self.events:
            if item[3].timestamp() >= cutoff:
                self.head.append(item)  # the first live event, kept for the live phase
                return
            yield item

    def live(self) -> Iterator[tuple[str, bytes, bytes, datetime]]:
        return itertools.chain(self.head, self.events)


def _send_phase(settings: Settings, feed: _Feed, args: argparse.Namespace, phase: str) -> Any:
    from pipeline.produce import SendReport, send_generated

    if phase == "history":
        return asyncio.run(send_generated(settings, feed.history()))
    if args.duration <= 0:
        return SendReport()
    return asyncio.run(send_generated(settings, feed.live(), rate=args.rate, duration=args.duration))


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
    if args.status:
        return _lag_status(settings, args)
    rows = kafka_admin.consumer_lag(settings, args.group or None)
    if args.json:
        print(json.dumps([{**r.__dict__, "lag": r.lag} for r in rows], indent=2))
        return 0
    print(f"{'group':32} {'topic':28} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}")
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        print(f"{r.group:32} {r.topic:28} {r.partition:>4} {committed:>10} {r.end:>10} {r.lag:>8}")
    return 0


def _lag_status(settings: Settings, args: argparse.Namespace) -> int:
    """Burrow-style status per group from ``samples`` snapshots ``interval`` seconds apart."""
    from pipeline.lagstatus import GroupTracker

    tracker = GroupTracker()
    for i in range(args.samples):
        if i:
            time.sleep(args.interval)
        tracker.observe(time.time(), kafka_admin.consumer_lag(settings, args.group or None))
    report = tracker.report(stopped_after=max(300.0, args.interval * args.samples), min_samples=args.samples)
    if args.json:
        print(json.dumps({g: st.__dict__ for g, st in report.items()}, indent=2, ensure_ascii=False))
    else:
        print(f"{'group':32} {'status':8} {'lag':>8}  lagging partitions (lag, est. seconds)")
        for g, st in report.items():
            behind = [
                f"{p['topic']}#{p['partition']}={p['lag']}"
                + ("" if p["lag_seconds"] is None else f" (~{p['lag_seconds']:.0f}s)")
                for p in st.partitions
                if p["lag"] > 0
            ]
            print(f"{g:32} {st.status:8} {st.lag:>8}  {' '.join(behind) or '-'}")
    return 0 if all(st.status == "OK" for st in report.values()) else 1


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.api.keys import KeyStore

    ks = KeyStore(settings.keys_file)
    if args.action == "create":
        try:
            token, rec = ks.create(
                args.name, args.role, stores=args.store, rep_id=args.rep or "", specialist_id=args.specialist or ""
            )
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        print(f"key {rec.key_id} for {rec.name} ({rec.role}); shown once, only its hash is kept:")
        print(token)
        return 0
    if args.action == "revoke":
        if not args.key_id or not ks.revoke(args.key_id):
            print(f"no key {args.key_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0
    for r in ks.list():
        scope = ",".join(r.stores) or r.rep_id or r.specialist_id or "-"
        print(f"{r.key_id}  {r.role:13} {scope:20} {'revoked' if r.revoked else 'active':8} {r.created_at}  {r.name}")
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


def cmd_reco(settings: Settings, args: argparse.Namespace) -> int:
    from nlp.tagger import load_lexicon
    from pipeline.recommend import mine_from_store

    client = store.connect(settings)
    try:
        doc = mine_from_store(client, load_lexicon(), settings.model_dir)
    finally:
        client.close()
    print(f"{len(doc['rules'])} co-purchase rules from {doc['baskets']} baskets -> {settings.model_dir}")
    for r in doc["rules"][: args.top]:
        print(
            f"  {r['if']} -> {r['then']}: support {r['support']:.3f}, "
            f"confidence {r['confidence']:.0%}, lift {r['lift']}"
        )
    print("restart the worker to use them")
    return 0


def cmd_notes(settings: Settings, args: argparse.Namespace) -> int:
    """`notes fit-idf`: refit the tag IDF on the stored notes (or on the shipped recipe)."""
    from nlp.tagger import NoteTagger, fit_idf

    if args.simulated:  # how nlp/data/tag_idf.json is made: simulator notes + the labelled notes
        import orjson

        from nlp.evaluate import load_labelled
        from pipeline.simulate import generate

        at = datetime(2026, 11, 20, tzinfo=UTC)
        texts = [
            orjson.loads(v)["payload"]["text"]
            for t, _k, v, _ts in generate(1, days=30, now=at, customers=300, bad_rate=0)
            if t == "store.notes"
        ]
        data = Path(__file__).resolve().parents[1] / "tests" / "data"
        texts += [t for f in ("notes_dev.tsv", "notes_holdout.tsv") for t, _ in load_labelled(data / f)]
        source = "salespulse simulate (seed 1, 30 days) notes + tests/data labelled notes"
    else:
        client = store.connect(settings)
        try:
            rows = client.query(
                "SELECT JSONExtractString(payload, 'text') FROM events FINAL WHERE event_type = 'store.note'"
            )
        finally:
            client.close()
        texts = [r[0] for r in rows.result_rows]
        source = f"{len(texts)} stored notes"
    if not texts:
        print("no notes to fit on", file=sys.stderr)
        return 1
    doc = fit_idf(NoteTagger(idf={}), texts)
    doc["fitted_on"] = source
    out = Path(args.out) if args.out else settings.model_dir / "tag_idf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"IDF of {len(doc['idf'])} tags from {doc['documents']} notes -> {out}; restart the worker to use it")
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


def _demo_keys(settings: Settings) -> str:
    """Keys to look around the console with after the demo (stored hashed like any other)."""
    from pipeline.api.keys import KeyStore

    ks = KeyStore(settings.keys_file)
    admin, _ = ks.create("演示管理员", "admin")
    manager, _ = ks.create("上海店长（演示）", "store_manager", stores=["S-SH-001"])
    return (
        "console: `make up` (Kafka, worker, serve), then open "
        f"http://{settings.api_host}:{settings.api_port}/ and log in with\n"
        f"  admin:                   {admin}\n"
        f"  store manager S-SH-001:  {manager}"
    )


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Kafka, worker and serve until Ctrl-C: the console at SALESPULSE_API_PORT."""
    started = kafka_local.start(settings)
    kafka_admin.ensure_topics(settings)
    logs = settings.var_dir / "logs"
    worker = _spawn(settings, "worker", logs / "worker.log")
    sink = _spawn(settings, "serve", logs / "serve.log")
    print(f"worker pid {worker.pid}, serve pid {sink.pid} (logs in {logs})")
    print(f"console: http://{settings.api_host}:{settings.api_port}/  (Ctrl-C stops everything)")
    stop_now = {"flag": False}

    def _handler(_sig: int, _frame: Any) -> None:
        stop_now["flag"] = True

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    try:
        while not stop_now["flag"] and worker.poll() is None and sink.poll() is None:
            time.sleep(0.5)
    finally:
        _stop(sink)
        _stop(worker)
        if started and not args.keep_kafka:
            kafka_local.stop(settings)
    return 0


def demo_notes(client: Any) -> str:
    """Tags and recommendations as a store manager would see them."""
    top = client.query(
        "SELECT tag, count() AS n FROM note_tags FINAL ARRAY JOIN tags AS tag GROUP BY tag ORDER BY n DESC, tag LIMIT 8"
    ).result_rows
    note = client.query(
        "SELECT text, tags FROM note_tags FINAL WHERE has(tag_types, 'recommended') ORDER BY occurred_at DESC LIMIT 1"
    ).result_rows
    recs = client.query(
        "SELECT customer_id, store_id, message, groupArray(reasons[1]) FROM "
        "(SELECT * FROM recommendations FINAL WHERE personalised AND kind = 'noted' ORDER BY occurred_at DESC, rank) "
        "GROUP BY customer_id, store_id, message, request_id ORDER BY any(occurred_at) DESC LIMIT 2"
    ).result_rows
    kinds = client.query("SELECT kind, count() FROM recommendations FINAL GROUP BY kind ORDER BY kind").result_rows
    out = ["most frequent note tags: " + ", ".join(f"{t} {n}" for t, n in top)]
    for text, tags in note:
        out.append(f"  a note: {text}")
        out.append(f"    -> {' '.join(tags)}")
    out.append("recommendations by kind: " + ", ".join(f"{k} {n}" for k, n in kinds))
    for cid, store_id, message, reasons in recs:
        out.append(f"  {store_id} screen for {cid}: {message}")
        out.extend(f"      {r}" for r in reasons[:2])
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
    rc = 0
    feed = _Feed(_events(settings, args))
    print(f"[demo] simulating {args.days:g} days of history, then {args.rate:g} events/s for {args.duration:g}s")
    from pipeline.produce import SendReport

    rep = SendReport()
    # One worker throughout; serve stops once, between the phases, so the nightly mining job
    # can open the embedded store (chDB: one process), and the worker picks up its rules.
    worker = _spawn(settings, "worker", logs / "worker.log")
    try:
        for phase in ("history", "live"):
            sink = _spawn(settings, "serve", logs / "serve.log")
            try:
                print(f"[demo] {phase}: worker pid {worker.pid}, serve pid {sink.pid} (logs in {logs})")
                sent = _send_phase(settings, feed, args, phase)
                rep = rep.merge(sent)
                print(
                    f"[demo] {phase}: produced {sent.sent} events: "
                    + ", ".join(f"{t}={n}" for t, n in sorted(sent.per_topic.items()))
                )
                print(f"[demo] {phase}: waiting for worker and sink to catch up ...")
                if not kafka_admin.wait_drained(settings, timeout=args.drain_timeout):
                    print("[demo] WARNING: not fully drained; see `salespulse lag`", file=sys.stderr)
                    rc = 1
                for name, proc in (("worker", worker), ("serve", sink)):
                    if proc.poll() is not None:
                        print(f"[demo] ERROR: {name} exited early with {proc.returncode}; see {logs}", file=sys.stderr)
                        rc = 1
            finally:
                _stop(sink)
            if phase == "history":
                from nlp.tagger import load_lexicon
                from pipeline.recommend import mine_from_store

                client = store.connect(settings)
                try:  # the nightly job: co-purchase rules from the baskets so far
                    doc = mine_from_store(client, load_lexicon(), settings.model_dir)
                finally:
                    client.close()
                top = ", ".join(f"{r['if']}->{r['then']} (lift {r['lift']})" for r in doc["rules"][:3])
                print(f"[demo] mined {len(doc['rules'])} co-purchase rules from {doc['baskets']} baskets: {top}")
                print("[demo] the running worker picks them up within 30 s (no restart)")
    finally:
        _stop(worker)
        if started_kafka and not args.keep_kafka:
            kafka_local.stop(settings)
    client = store.connect(settings)
    try:
        s = summary(client)
        health_view = demo_health(client) + "\n" + demo_notes(client)
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
    print(_demo_keys(settings))
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
    lg.add_argument(
        "--status", action="store_true", help="Burrow-style OK/WARN/STALLED/STOPPED per group (exit 1 if not OK)"
    )
    lg.add_argument("--samples", type=int, default=3, help="with --status: snapshots to compare")
    lg.add_argument("--interval", type=float, default=5.0, help="with --status: seconds between snapshots")
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

    ky = sub.add_parser("keys", help="API keys for the console and API (stored hashed)")
    ky.add_argument("action", choices=["create", "list", "revoke"])
    ky.add_argument("key_id", nargs="?", help="for revoke")
    ky.add_argument("--name", default="", help="who holds the key (shown in audit fields)")
    ky.add_argument("--role", choices=["admin", "ops", "store_manager", "sales_rep", "cs"])
    ky.add_argument("--store", action="append", help="store_manager: a store id (repeatable)")
    ky.add_argument("--rep", help="sales_rep: the rep id used as sender_id in messages")
    ky.add_argument("--specialist", help="cs: the specialist id alerts are assigned to")
    ky.set_defaults(fn=cmd_keys)

    nt = sub.add_parser("notes", help="tagger upkeep (stop serve first when embedded)")
    nt.add_argument("action", choices=["fit-idf"])
    nt.add_argument("--simulated", action="store_true", help="the shipped recipe instead of the stored notes")
    nt.add_argument("--out", help="where to write (default: SALESPULSE_MODEL_DIR/tag_idf.json)")
    nt.set_defaults(fn=cmd_notes)

    rc = sub.add_parser("reco", help="co-purchase rules for recommendations (stop serve first when embedded)")
    rc.add_argument("action", choices=["mine"])
    rc.add_argument("--top", type=int, default=10)
    rc.set_defaults(fn=cmd_reco)

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
