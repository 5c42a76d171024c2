"""`salespulse money`: the finance lead's rules files and the distributors' statements."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.infra.settings import Settings


def cmd_money(settings: Settings, args: argparse.Namespace) -> int:
    """`money check-rebates FILE` / `money check-matching FILE`: validate an edited rules file
    before it goes to SALESPULSE_MODEL_DIR, where running workers take it within 10 seconds;
    `money statement DISTRIBUTOR MONTH [--csv F] [--xlsx F]`: a distributor's statement, checked
    against its replay from the stored events; `money board`: the three-way match by colour
    (stop serve first when embedded: chDB holds its folder for one process)."""
    if args.action in ("check-rebates", "check-matching"):
        return _check(settings, args.action, args.args)
    if args.action == "statement":
        return _statement(settings, args)
    return _board(settings)


def _check(settings: Settings, action: str, rest: list[str]) -> int:
    from pipeline.money import matching, rebates

    if len(rest) != 1:
        print(f"{action} needs one FILE", file=sys.stderr)
        return 2
    path = Path(rest[0])
    kind: Any = rebates.FILE if action == "check-rebates" else matching.FILE
    try:
        text = path.read_text(encoding="utf-8")
        current = kind.load(settings.model_dir)
        new = kind.successor(current, text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"{path}: refused: {exc}", file=sys.stderr)
        return 1
    r = new.rules
    print(f"{path}: valid, version {r.version} (in force now: {current.rules.version})")
    if action == "check-rebates":
        tiers = ", ".join(f"from ¥{t.from_:,.0f}: {rebates.pct(t.rate)}" for t in r.quarterly_tiers)
        print(f"  quarterly tiers ({r.tier_mode}): {tiers}")
        if r.new_product_bonus:
            b = r.new_product_bonus
            print(f"  new-product bonus {rebates.pct(b.rate)} on {', '.join(b.product_lines)}")
        if r.payment_timeliness_bonus:
            t = r.payment_timeliness_bonus
            print(f"  payment-timeliness bonus {rebates.pct(t.rate)} within {t.due_days} days of the invoice")
        for c in r.conditions:
            print(
                f"  x{c.coefficient} when collections >= {c.collections_ratio_at_least} of receivables and "
                f"new products >= ¥{c.new_product_purchases_at_least or 0:,}  [{c.id}]"
            )
    else:
        print(
            f"  red beyond ¥{r.tolerance:,}; yellow after {r.invoice_grace_days:g} days without an invoice, "
            f"{r.payment_grace_days:g} days without payment; orphans red after {r.orphan_grace_hours:g} hours"
        )
    print(f"copy it to {settings.model_dir / kind.name}: running workers use it within 10 seconds")
    return 0


def _statement(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.infra import store
    from pipeline.money import rebates, reports

    if len(args.args) != 2:
        print("statement needs DISTRIBUTOR MONTH (e.g. D-EC1 2026-11)", file=sys.stderr)
        return 2
    distributor, month = args.args
    client = store.connect(settings)
    try:
        st = reports.statement(client, distributor, month)
        replay = reports.replay_statement(client, distributor, month, rebates.load(settings.model_dir).rules)
    finally:
        client.close()
    if st is None:
        print(f"no statement for {distributor} {month}", file=sys.stderr)
        return 1
    print(statement_text(st))
    same = [(ln["rule"], ln["amount"]) for ln in replay["lines"]] == [(ln["rule"], ln["amount"]) for ln in st["lines"]]
    verdict = "the same" if same else "DIFFERENT"
    print(f"replayed from the stored events: total ¥{Decimal(replay['total']):,.2f} ({verdict})")
    if args.csv:
        Path(args.csv).write_text(reports.statement_csv(st), encoding="utf-8")
        print(f"wrote {args.csv}")
    if args.xlsx:
        Path(args.xlsx).write_bytes(reports.statement_xlsx(st))
        print(f"wrote {args.xlsx}")
    return 0 if same else 1


def statement_text(st: dict[str, Any]) -> str:
    versions = ", ".join(st["rule_versions"])
    out = [f"{st['distributor_id']} {st['month']} ({st['quarter']} to the month's end), rules {versions}"]
    for ln in st["lines"]:
        inputs = ", ".join(f"{k} {v}" for k, v in ln["inputs"].items())
        amount = Decimal(ln["amount"])
        out.append(f"  {ln['line_no']}. {ln['title']}: ¥{amount:,.2f}  [{ln['rule']} {ln['rule_version']}; {inputs}]")
    out.append(f"  total ¥{Decimal(st['total']):,.2f}")
    return "\n".join(out)


def _board(settings: Settings) -> int:
    from pipeline.infra import store
    from pipeline.money import reports

    client = store.connect(settings)
    try:
        b = reports.match_board(client, reports.ALL, limit=5)
        red = reports.match_board(client, reports.ALL, status="red", limit=5)
    finally:
        client.close()
    print(board_text(b, red))
    return 0


def board_text(b: dict[str, Any], red: dict[str, Any]) -> str:
    c = b["counts"]
    out = [
        f"three-way match: {b['total']} contracts: green {c['green']}, yellow {c['yellow']}, red {c['red']}, "
        f"pending {c['pending']}"
    ]
    for r in red["items"][:3]:
        out.append(f"  red {r['contract_id']} ({r['distributor_id']}): {'; '.join(r['reasons'])}")
    return "\n".join(out)
