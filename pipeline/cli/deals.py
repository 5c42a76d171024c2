"""`salespulse deals`: the B2B pipeline's rules files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.infra.settings import Settings


def cmd_deals(settings: Settings, args: argparse.Namespace) -> int:
    """`deals check-gates FILE`: validate a stage-gates file before it goes to
    SALESPULSE_MODEL_DIR/gates.yaml, where running workers pick it up within 10 seconds;
    `deals train`: the close-probability model from the stored CRM history;
    `deals check-grading FILE`: the same for the account grading weights;
    `deals top3`: each rep's TOP-3 as the morning job ranks it (stop serve first when embedded)."""
    if args.action == "train":
        return _train(settings)
    if args.action == "top3":
        return _top3(settings, args.rep)
    if not args.file:
        print(f"{args.action} needs a FILE", file=sys.stderr)
        return 2
    if args.action == "check-grading":
        return _check_grading(settings, Path(args.file))
    from pipeline.deals import gates
    from schemas.crm import STAGE_ZH

    try:
        new = gates.parse(Path(args.file).read_text(encoding="utf-8"))
        current = gates.load(settings.model_dir)
        gates.successor(current, Path(args.file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{args.file}: refused: {exc}", file=sys.stderr)
        return 1
    r = new.rules
    print(f"{args.file}: valid, version {r.version} (in force now: {current.rules.version})")
    skip, back = ("allowed" if on else "refused" for on in (r.allow_skip, r.allow_back))
    print(f"  skipping stages: {skip}; moving back: {back}")
    for g in r.gates:
        what = (
            f"document {g.doc_type} with {', '.join(g.required_fields) or 'no required fields'}"
            if g.kind == "document"
            else f"{g.approver_role} approval of a quote over {g.quote_over}"
        )
        print(f"  before {STAGE_ZH[g.to_stage]} ({g.to_stage}): {what}  [{g.id}]")
    print(f"copy it to {settings.model_dir / 'gates.yaml'}: running workers use it within 10 seconds")
    return 0


def _check_grading(settings: Settings, path: Path) -> int:
    from pipeline.deals import grading

    try:
        text = path.read_text(encoding="utf-8")
        current = grading.load(settings.model_dir)
        new = grading.successor(current, text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 1
    r = new.rules
    print(f"{path}: valid, version {r.version} (in force now: {current.rules.version})")
    total = sum(r.weights.values())
    for k, w in r.weights.items():
        cap = f", full at {r.caps[k]:g}" if k in r.caps else ""
        print(f"  {grading.SIGNAL_ZH[k]} ({k}): {w / total:.0%} of the score{cap}")
    print(f"  A from {r.thresholds['A']:g}, B from {r.thresholds['B']:g}, else C")
    print(f"copy it to {settings.model_dir / 'grading.yaml'}: running workers use it within 10 seconds")
    return 0


def _train(settings: Settings) -> int:
    from pipeline.deals import model
    from pipeline.infra import store

    client = store.connect(settings)
    try:
        snaps, outcomes = model.replay(model.from_store(client))
        truth = {
            str(o): str(w)
            for o, w in client.query("SELECT opportunity_id, outcome FROM sim_deal_truth FINAL").result_rows
        }
    finally:
        client.close()
    try:
        m = model.train(snaps, outcomes, truth or None)
    except ValueError as exc:
        print(f"not trained: {exc}", file=sys.stderr)
        return 1
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    (settings.model_dir / model.MODEL_FILE).write_text(m.to_json(), encoding="utf-8")
    print(f"deal close-probability model {m.version} -> {settings.model_dir / model.MODEL_FILE}")
    print(json.dumps(m.evaluation, ensure_ascii=False, indent=1))
    return 0


def _top3(settings: Settings, rep: str | None) -> int:
    from datetime import UTC, datetime

    from pipeline.deals import model
    from pipeline.deals.morning import ranking
    from pipeline.infra import store

    m = model.load(settings.model_dir)
    if m is None:
        print("no deal model yet: `salespulse deals train`", file=sys.stderr)
        return 1
    client = store.connect(settings)
    try:
        rows = ranking(client, m, datetime.now(UTC))
    finally:
        client.close()
    print(top3_text([r for r in rows if rep is None or r["rep_id"] == rep]))
    return 0


def top3_text(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        out.append(
            f"  {r['rep_id']} #{r['rank']} {r['name']} ({r['stage']}): close probability {r['probability']:.0%}, "
            f"urgency x{r['urgency']:.2f}"
        )
        out.extend(f"      {f}" for f in r["factors"] + r["urgent_because"])
    return "\n".join(out) or "  (no open deals)"
