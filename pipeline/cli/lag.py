"""`salespulse lag`: consumer lag and its Burrow-style status."""

from __future__ import annotations

import argparse
import json
import time

from pipeline.infra import kafka_admin
from pipeline.infra.settings import Settings


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
    from pipeline.infra.lagstatus import GroupTracker

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
