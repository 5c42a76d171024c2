"""`make bench`: throughput and latency, measured side by side in one run -> BENCHMARKS.md.

1. raw consumer: aiokafka + orjson over one topic holding N events (the ceiling);
2. Faust pass-through: a counting agent over the same topic (the framework's floor);
3. the pipeline: worker + sink over the same N events on the five source topics, from the
   worker's first event to the last row stored in ClickHouse;
4. event-to-row latency: paced live traffic, `stored_at - occurred_at` per row, for the
   events table and for the health agent's score history;
5. notes: the tagger alone against jieba's own segmentation on the same notes (in process),
   and notes end to end (store.notes -> worker -> note_tags rows), with the tagger's
   precision/recall on the labelled notes.
Each throughput is repeated; medians and ratios are reported.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipeline import kafka_admin, kafka_local, store
from pipeline.produce import send_generated
from pipeline.settings import DEMO_PII_KEY, Settings, load, to_env
from pipeline.simulate import generate

ROOT = Path(__file__).resolve().parents[1]
N = int(os.environ.get("BENCH_EVENTS", "60000"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
LAT_RATE = float(os.environ.get("BENCH_LATENCY_RATE", "500"))
LAT_SECONDS = float(os.environ.get("BENCH_LATENCY_SECONDS", "20"))


def env_for(s: Settings) -> dict[str, str]:
    return {**os.environ, **to_env(s.with_(log_level="warning"))}


def events(n: int, seed: int) -> list[tuple[str, bytes, bytes, datetime]]:
    out = []
    for item in generate(seed, days=60, customers=2000, per_customer_day=1.0, bad_rate=0.0):
        out.append(item)
        if len(out) >= n:
            break
    return out


async def raw_consume(s: Settings, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=s.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    count, first = 0, 0.0
    try:
        while count < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for msgs in batch.values():
                if count == 0 and msgs:
                    first = time.perf_counter()
                for m in msgs:
                    orjson.loads(m.value)
                count += len(msgs)
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - first)


def faust_passthrough(s: Settings, topic: str, n: int) -> float:
    res = subprocess.run(
        [sys.executable, "-m", "bench.faust_passthrough", topic, str(n)],
        env={**env_for(s), "SALESPULSE_APP_ID": f"pt-{uuid.uuid4().hex[:6]}"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError(f"faust pass-through failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    _, count, secs = line.split()
    return int(count) / float(secs)


def spawn(s: Settings, verb: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", verb], env=env_for(s), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drained(s: Settings, timeout: float) -> None:
    if not kafka_admin.wait_drained(s, timeout):
        raise RuntimeError("pipeline did not drain in time")


def drain_through(s: Settings, msgs: list[tuple[str, bytes, bytes, datetime]], logdir: Path, tag: str) -> None:
    """Send ``msgs``, then run worker and serve until both groups have no backlog."""
    asyncio.run(send_generated(s, iter(msgs)))
    worker = spawn(s, "worker", logdir / f"worker{tag}.log")
    sink = spawn(s, "serve", logdir / f"serve{tag}.log")
    try:
        drained(s, timeout=900)
    finally:
        stop(sink)
        stop(worker)


def pipeline_run(s: Settings, msgs: list[tuple[str, bytes, bytes, datetime]], logdir: Path) -> float:
    drain_through(s, msgs, logdir, "")
    client = store.connect(s)
    try:
        first, last_event, rows = client.query(
            "SELECT min(ingested_at), max(stored_at), count() FROM events FINAL"
        ).result_rows[0]
        last_health = client.query("SELECT max(stored_at) FROM customer_health_history").result_rows[0][0]
        last = max(last_event, last_health)
    finally:
        client.close()
    assert rows == len(msgs), (rows, len(msgs))
    return rows / (last - first).total_seconds()


def latency_run(s: Settings, logdir: Path) -> dict[str, float]:
    worker = spawn(s, "worker", logdir / "worker-lat.log")
    sink = spawn(s, "serve", logdir / "serve-lat.log")
    try:
        time.sleep(8)  # both joined their groups; latency should not include start-up
        gen = generate(99, days=0, live=True, customers=2000, bad_rate=0.0)
        rep = asyncio.run(send_generated(s, gen, rate=LAT_RATE, duration=LAT_SECONDS))
        drained(s, timeout=300)
        time.sleep(2)
    finally:
        stop(sink)
        stop(worker)
    client = store.connect(s)
    try:
        q = client.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', occurred_at, stored_at)), count() "
            "FROM events FINAL WHERE occurred_at > now() - INTERVAL 1 HOUR"
        ).result_rows[0]
        h = client.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', as_of, stored_at)) "
            "FROM customer_health_history WHERE as_of > now() - INTERVAL 1 HOUR"
        ).result_rows[0]
    finally:
        client.close()
    return {
        "p50_ms": float(q[0][0]),
        "p99_ms": float(q[0][1]),
        "h_p50_ms": float(h[0][0]),
        "h_p99_ms": float(h[0][1]),
        "rows": float(q[1]),
        "sent": float(rep.sent),
    }


NOTES_N = int(os.environ.get("BENCH_NOTES", "10000"))


def note_texts(n: int) -> list[str]:
    """Simulated associate notes (about 40 characters) plus the labelled ones, cycled to ``n``."""
    from nlp.evaluate import load_labelled

    sim = [
        orjson.loads(v)["payload"]["text"]
        for t, _k, v, _ts in generate(3, days=60, customers=2000, per_customer_day=1.0, bad_rate=0.0)
        if t == "store.notes"
    ]
    labelled = [t for t, _ in load_labelled(ROOT / "tests/data/notes_dev.tsv")]
    pool = sim + labelled
    return [pool[i % len(pool)] for i in range(n)]


def nlp_bench(notes: list[str]) -> dict[str, list[float]]:
    """In-process notes/s on one core: jieba segmentation alone, then the whole tagger."""
    import jieba

    from nlp.tagger import NoteTagger

    tok = jieba.Tokenizer()
    tok.initialize()
    tagger = NoteTagger()
    rates: dict[str, list[float]] = {"jieba": [], "tagger": [], "chars": [sum(map(len, notes)) / len(notes)]}
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for text in notes:
            tok.lcut(text)
        rates["jieba"].append(len(notes) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for text in notes:
            tagger.tag(text)
        rates["tagger"].append(len(notes) / (time.perf_counter() - t0))
        print(f"[bench] jieba lcut {rates['jieba'][-1]:,.0f}/s, tagger {rates['tagger'][-1]:,.0f}/s", flush=True)
    return rates


def notes_run(s: Settings, notes: list[str], logdir: Path) -> float:
    """Only store.notes traffic: from the worker's first note to the last note_tags row stored."""
    now = datetime.now(UTC)
    msgs = []
    for i, text in enumerate(notes):
        cid = f"C-R{i % 2000:05d}"
        doc = {
            "event_id": f"bn-{i}",
            "event_type": "store.note",
            "schema_version": 1,
            "occurred_at": now.isoformat(),
            "source": "bench",
            "store_id": "S-SH-001",
            "customer_id": cid,
            "payload": {"note_id": f"BN-{i}", "associate_id": "A-1", "text": text},
        }
        msgs.append(("store.notes", cid.encode(), orjson.dumps(doc), now))
    drain_through(s, msgs, logdir, "-notes")
    client = store.connect(s)
    try:
        first = client.query("SELECT min(ingested_at) FROM events").result_rows[0][0]
        last, rows = client.query("SELECT max(stored_at), count() FROM note_tags FINAL").result_rows[0]
    finally:
        client.close()
    assert rows == len(notes), (rows, len(notes))
    return float(rows / (last - first).total_seconds())


def notes_report(nlp_rates: dict[str, list[float]], notes_rates: list[float]) -> str:
    from nlp.evaluate import evaluate, load_labelled, table
    from nlp.tagger import NoteTagger

    med = statistics.median
    j, t, e = med(nlp_rates["jieba"]), med(nlp_rates["tagger"]), med(notes_rates)
    tagger = NoteTagger()
    dev = load_labelled(ROOT / "tests/data/notes_dev.tsv")
    hold = load_labelled(ROOT / "tests/data/notes_holdout.tsv")

    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x:,.0f}" for x in xs)

    jr, tr, er = runs(nlp_rates["jieba"]), runs(nlp_rates["tagger"]), runs(notes_rates)
    e2e = "notes end to end, one worker (store.notes -> intake -> notes agent -> `note_tags` rows)"
    return f"""## Notes -> tags

{NOTES_N:,} notes (simulated associate notes plus the labelled ones, {nlp_rates["chars"][0]:.0f} characters on average).

| stage | median notes/s | runs | vs. jieba alone |
|---|---:|---|---:|
| jieba `lcut` alone (own `Tokenizer`, one core, in process) | {j:,.0f} | {jr} | 1.00 |
| `NoteTagger.tag` alone (normalise, OpenCC, segment, rules, TF-IDF) | {t:,.0f} | {tr} | {t / j:.2f} |
| {e2e} | {e:,.0f} | {er} | {e / j:.2f} |

### Tagger quality on the labelled notes (`tests/data`, {len(dev) + len(hold)} notes)

All {len(dev) + len(hold)} notes (dev {len(dev)} + held-out {len(hold)}):

{table(evaluate(tagger, dev + hold))}

Held-out only ({len(hold)} notes written after the rules were frozen, never used to tune them):

{table(evaluate(tagger, hold))}
"""


def machine() -> str:
    cpu = "unknown"
    try:
        cpu = next(
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem = "unknown"
    try:
        kb = int(
            next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        )
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    import chdb
    import faust

    jar = next(iter(sorted((ROOT / "var/kafka/libs").glob("kafka_2.13-*.jar"))), None)
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, faust-streaming {faust.__version__}, chDB {chdb.__version__}, "
        f"Kafka {jar.stem.split('-')[-1] if jar else '?'} (local KRaft, 1 node)"
    )


def main() -> None:
    base = load({**os.environ, "SALESPULSE_PII_HMAC_KEY": os.environ.get("SALESPULSE_PII_HMAC_KEY", DEMO_PII_KEY)})
    bench_dir = (ROOT / "var" / "bench").resolve()
    shutil.rmtree(bench_dir, ignore_errors=True)
    bench_dir.mkdir(parents=True)
    base = base.with_(clickhouse_dsn=f"chdb://{bench_dir / 'clickhouse'}", model_dir=bench_dir / "models")
    started = kafka_local.start(base)
    raw_rates: list[float] = []
    faust_rates: list[float] = []
    pipe_rates: list[float] = []
    try:
        msgs = events(N, seed=1)
        print(f"[bench] {len(msgs)} events, {sum(len(v) for _t, _k, v, _ts in msgs) / len(msgs):.0f} B on average")
        for i in range(REPEATS):
            tag = uuid.uuid4().hex[:6]
            s = base.with_(topic_prefix=f"b{tag}-", clickhouse_database=f"bench_{tag}", app_id="bench")
            kafka_admin.ensure_topics(s)
            one = s.topic("bench.one")
            kafka_admin.ensure_topics(s, ("bench.one",))
            asyncio.run(send_generated(s, iter((("bench.one", k, v, ts) for _t, k, v, ts in msgs))))
            raw_rates.append(asyncio.run(raw_consume(s, one, len(msgs))))
            faust_rates.append(faust_passthrough(s, one, len(msgs)))
            pipe_rates.append(pipeline_run(s, msgs, bench_dir))
            print(
                f"[bench] run {i + 1}: raw {raw_rates[-1]:,.0f}/s, faust pass-through {faust_rates[-1]:,.0f}/s, "
                f"pipeline {pipe_rates[-1]:,.0f}/s",
                flush=True,
            )
        tag = uuid.uuid4().hex[:6]
        lat_settings = base.with_(topic_prefix=f"l{tag}-", clickhouse_database=f"lat_{tag}", app_id="lat")
        kafka_admin.ensure_topics(lat_settings)
        lat = latency_run(lat_settings, bench_dir)
        print(f"[bench] latency: {lat}", flush=True)
        notes = note_texts(NOTES_N)
        nlp_rates = nlp_bench(notes)
        notes_rates = []
        for _ in range(REPEATS):
            tag = uuid.uuid4().hex[:6]
            ns = base.with_(topic_prefix=f"n{tag}-", clickhouse_database=f"notes_{tag}", app_id="notes")
            kafka_admin.ensure_topics(ns)
            notes_rates.append(notes_run(ns, notes, bench_dir))
            print(f"[bench] notes end to end: {notes_rates[-1]:,.0f}/s", flush=True)
    finally:
        if started:
            kafka_local.stop(base)
    write_report(len(msgs), raw_rates, faust_rates, pipe_rates, lat, nlp_rates, notes_rates)


def write_report(
    n: int,
    raw: list[float],
    fst: list[float],
    pipe: list[float],
    lat: dict[str, float],
    nlp_rates: dict[str, list[float]],
    notes_rates: list[float],
) -> None:
    med = statistics.median
    r, f, p = med(raw), med(fst), med(pipe)

    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x:,.0f}" for x in xs)

    notes_md = notes_report(nlp_rates, notes_rates)
    hp50, hp99 = f"{lat['h_p50_ms']:,.0f} ms", f"{lat['h_p99_ms']:,.0f} ms"

    text = f"""# Benchmarks

Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}.
Machines here are noisy: medians of {len(raw)} runs, every run measured side by side in one process tree.

## Throughput ({n:,} simulated events, mixed types)

| stage | median events/s | runs | vs. raw consumer | vs. Faust pass-through |
|---|---:|---|---:|---:|
| raw consumer (aiokafka + orjson, one topic) | {r:,.0f} | {runs(raw)} | 1.00 | {r / f:.2f} |
| Faust pass-through agent (same topic) | {f:,.0f} | {runs(fst)} | {f / r:.3f} | 1.00 |
| salespulse end to end (worker + sink, 5 topics -> rows) | {p:,.0f} | {runs(pipe)} | {p / r:.3f} | {p / f:.2f} |

The end-to-end figure runs from the worker's first processed event (`min(ingested_at)`) to
the last row stored (`max(stored_at)` over `events` and `customer_health_history`); it
includes validation, PII masking, the profile table, the health agent (a second hop through
`events.accepted`, a state table with its changelog, three result topics), the notes agent
(tagging, tag profile table, recommendation requests re-keyed by store), the reco agent
(stock table) and the ClickHouse inserts. Before the notes and reco agents existed the same
harness measured 1,936 events/s (0.12 of the floor; 2026-11-26 22:27 UTC).

## Event-to-row latency

Live traffic at {LAT_RATE:g} events/s for {LAT_SECONDS:g} s ({lat["sent"]:.0f} sent, {lat["rows"]:.0f} rows),
`stored_at - occurred_at` per row (sink flushes every `SALESPULSE_SINK_BATCH_SECONDS`, default 1 s):

| rows | p50 | p99 |
|---|---:|---:|
| `events` (intake) | {lat["p50_ms"]:,.0f} ms | {lat["p99_ms"]:,.0f} ms |
| `customer_health_history` (health agent, one hop more; `stored_at - as_of`) | {hp50} | {hp99} |

{notes_md}
"""
    (ROOT / "BENCHMARKS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
