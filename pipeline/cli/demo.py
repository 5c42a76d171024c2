"""`salespulse demo`: start everything, simulate history and live traffic, summarise."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pipeline.cli.keys import demo_keys
from pipeline.cli.processes import spawn, stop
from pipeline.cli.traffic import _events, _Feed, _send_phase
from pipeline.health.reports import alert_truth, truth_table
from pipeline.infra import kafka_admin, kafka_local, store
from pipeline.infra.settings import Settings


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


def demo_money(client: Any) -> str:
    """The money side as finance and a sales manager would read it."""
    from pipeline.cli.money import board_text
    from pipeline.money import reports

    b = reports.match_board(client, reports.ALL, limit=1)
    if not b["total"]:
        return "money: no orders"
    out = [board_text(b, reports.match_board(client, reports.ALL, status="red", limit=3))]
    listed = reports.statements(client)
    if listed:  # the latest month's largest statement, and its largest line
        month = listed[0]["month"]
        top = max((s for s in listed if s["month"] == month), key=lambda s: Decimal(s["total"]))
        st = reports.statement(client, top["distributor_id"], month)
        if st is not None:
            line = max(st["lines"], key=lambda ln: Decimal(ln["amount"]))
            inputs = ", ".join(f"{k} {v}" for k, v in line["inputs"].items())
            out.append(
                f"rebate statement {st['distributor_id']} {month} ({st['quarter']} to date): "
                f"total ¥{Decimal(st['total']):,.2f}; line {line['line_no']} {line['title']} "
                f"¥{Decimal(line['amount']):,.2f} [rules {line['rule_version']}; {inputs}]"
            )
    d = reports.deliverable(client, reports.ALL)
    out.append(
        f"new contract value: raw ¥{Decimal(d['raw']):,.2f}, deliverable ¥{Decimal(d['deliverable']):,.2f} "
        f"({d['gap_pct']}% was repeat, unscheduled or non-cash orders)"
    )
    f = reports.forecast_accuracy(client, reports.ALL, by="region")
    if f["overall"] is not None:
        sums: dict[str, list[Decimal]] = {}
        for i in f["items"]:
            acc = sums.setdefault(i["key"], [Decimal(0), Decimal(0)])
            acc[0] += Decimal(i["collected"])
            acc[1] += Decimal(i["forecast"])
        per = ", ".join(f"{k} {c / fc:.0%}" for k, (c, fc) in sorted(sums.items()) if fc)
        out.append(f"forecast accuracy (collected within 30 days / forecast): {f['overall']:.0%} overall; {per}")
    return "\n".join(out)


def demo_deals(client: Any) -> str:
    """The B2B book as a sales manager would see it: the funnel, refused moves, intent, coaching."""
    from schemas.crm import STAGE_ZH

    stages = dict(client.query("SELECT stage, count() FROM opportunities FINAL GROUP BY stage").result_rows)
    if not stages:
        return "B2B book: no deals"
    order = [*STAGE_ZH]
    out = ["B2B deals per stage: " + ", ".join(f"{STAGE_ZH[s]} {stages[s]}" for s in order if s in stages)]
    moved, refused = client.query(
        "SELECT countIf(decision = 'accepted'), countIf(decision = 'refused') FROM opportunity_audit FINAL"
    ).result_rows[0]
    kinds = client.query(
        "SELECT code, count() FROM opportunity_audit FINAL ARRAY JOIN missing_codes AS code "
        "WHERE decision = 'refused' GROUP BY code ORDER BY 2 DESC, code LIMIT 6"
    ).result_rows
    out.append(
        f"stage moves: {moved} accepted, {refused} refused by the gates: " + ", ".join(f"{k} {n}" for k, n in kinds)
    )
    for opp, rep, frm, to, reason in client.query(
        "SELECT opportunity_id, rep_id, from_stage, to_stage, reason FROM opportunity_audit FINAL "
        "WHERE decision = 'refused' ORDER BY requested_at DESC LIMIT 3"
    ).result_rows:
        out.append(f"  {opp} ({rep}) {STAGE_ZH.get(frm, frm)} -> {STAGE_ZH[to]}: {reason}")
    pushes = client.query("SELECT count(), any(title) FROM deal_pushes FINAL").result_rows[0]
    out.append(f"high-intent pushes to reps: {pushes[0]}" + (f", e.g. {pushes[1]}" if pushes[0] else ""))
    coaching = client.query(
        "SELECT rep_id, countIf(late = 1) AS late, count() AS n, round(quantile(0.5)(delay_hours), 1) "
        "FROM deal_activities FINAL GROUP BY rep_id HAVING late > 0 ORDER BY late / n DESC, rep_id LIMIT 5"
    ).result_rows
    out.append("coaching list (activities logged more than 24 h after they happened):")
    out.extend(f"  {rep}: {late} of {n} late, median delay {d} h" for rep, late, n, d in coaching)
    return "\n".join(out)


def _train_deals(client: Any, settings: Settings, book: Any) -> str:
    """The nightly job's other half: the close-probability model from the CRM history so far."""
    from pipeline.deals import model

    snaps, outcomes = model.replay(model.from_store(client))
    try:
        m = model.train(snaps, outcomes, {t["opportunity_id"]: t["outcome"] for t in book.truth()})
    except ValueError as exc:
        return f"[demo] deal model not trained: {exc}"
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    (settings.model_dir / model.MODEL_FILE).write_text(m.to_json(), encoding="utf-8")
    e = m.evaluation
    g = e.get("ground_truth", {})
    return (
        f"[demo] deal close-probability model trained on {e['train_deals']} deals closed before {e['cutoff'][:10]}; "
        f"on later weeks against the simulator's truth: AUC {g.get('auc')} (stage alone {g.get('auc_stage_only')}), "
        f"Brier {g.get('brier')} (stage alone {g.get('brier_stage_only')})"
    )


def demo_top3(client: Any, settings: Settings) -> str:
    """One rep's TOP-3 this morning, as the rep's phone shows it, with the factors."""
    from pipeline.cli.deals import top3_text
    from pipeline.deals import model
    from pipeline.deals.morning import ranking

    m = model.load(settings.model_dir)
    if m is None:
        return "TOP-3: no deal model"
    rows = ranking(client, m, datetime.now(UTC))
    if not rows:
        return "TOP-3: no open deals"
    rep = max({r["rep_id"] for r in rows}, key=lambda r: (sum(x["priority"] for x in rows if x["rep_id"] == r), r))
    return f"{rep}'s TOP-3 deals this morning (close probability x urgency):\n" + top3_text(
        [r for r in rows if r["rep_id"] == rep]
    )


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
    now = datetime.now(UTC)  # the simulated world's "now": its ground truth is rebuilt from it
    feed = _Feed(_events(settings, args, now))
    print(f"[demo] simulating {args.days:g} days of history, then {args.rate:g} events/s for {args.duration:g}s")
    from pipeline.infra.produce import SendReport

    rep = SendReport()
    # One worker throughout; serve stops once, between the phases, so the nightly mining job
    # can open the embedded store (chDB: one process), and the worker picks up its rules.
    worker = spawn(settings, "worker", logs / "worker.log")
    try:
        for phase in ("history", "live"):
            sink = spawn(settings, "serve", logs / "serve.log")
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
                stop(sink)
            if phase == "history":
                from nlp.tagger import load_lexicon
                from pipeline.notes.recommend import mine_from_store
                from pipeline.simulate import ground_truth

                client = store.connect(settings)
                try:  # the nightly job: co-purchase rules from the baskets so far
                    doc = mine_from_store(client, load_lexicon(), settings.model_dir)
                    store.insert_truth(client, ground_truth(args.seed, args.customers, now, args.days))
                    if args.deals:
                        from pipeline.deals.simulate import Book

                        book = Book(args.seed, now=now, days=args.crm_days, deals=args.deals)
                        store.insert_deal_truth(client, book.truth())
                        trained = _train_deals(client, settings, book)
                finally:
                    client.close()
                top = ", ".join(f"{r['if']}->{r['then']} (lift {r['lift']})" for r in doc["rules"][:3])
                print(f"[demo] mined {len(doc['rules'])} co-purchase rules from {doc['baskets']} baskets: {top}")
                print("[demo] the running worker picks them up within 30 s (no restart)")
                if args.deals:
                    print(trained)
    finally:
        stop(worker)
        if started_kafka and not args.keep_kafka:
            kafka_local.stop(settings)
    client = store.connect(settings)
    try:
        s = summary(client)
        truth = alert_truth(client)
        health_view = demo_health(client) + "\n" + (truth_table(truth) + "\n" if truth else "") + demo_notes(client)
        health_view += "\n" + demo_deals(client) + "\n" + demo_top3(client, settings) + "\n" + demo_money(client)
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
    print(demo_keys(settings))
    print(f"data left in {settings.var_dir.resolve()} (ClickHouse: {store.normalise_dsn(settings.clickhouse_dsn)})")
    print(f"took {time.monotonic() - t0:.0f}s")
    if processed != rep.sent:
        print(f"[demo] ERROR: produced {rep.sent} but stored {processed}", file=sys.stderr)
        rc = 1
    return rc
