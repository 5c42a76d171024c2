"""The simulated money book against the pure ledger: every contract whose story is over ends in
the colour its scenario gives it (the simulator's truth restates the rules, it does not call
them), and the book has the shapes finance meets."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from pipeline.deals.simulate import Book
from pipeline.money import ledger, matching, rebates
from pipeline.money.simulate import MoneyBook

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def test_every_settled_contract_ends_in_the_colour_of_its_story() -> None:
    book = Book(5, now=NOW, days=180, deals=400)
    money = MoneyBook(book, 5)
    rules, match = rebates.shipped().rules, matching.shipped().rules
    states: dict[str, dict] = {}
    final: dict[str, str] = {}
    for n, (_at, _topic, key, env) in enumerate(money.stream()):
        if env["event_type"] == "money.forecast":
            continue
        st = states.setdefault(key, ledger.new_distributor(key))
        row = {"event_type": env["event_type"], "occurred_at": env["occurred_at"]}
        for table, r in ledger.fold(
            st, row, env["payload"], source="s", offset=n, rebate_rules=rules, match_rules=match
        ):
            if table == "three_way_match":
                final[r["contract_id"]] = r["status"]
    for st in states.values():
        for _table, r in ledger.advance(st, NOW, match):
            final[r["contract_id"]] = r["status"]
    truth = money.truth()
    assert len(truth) >= 80 and set(truth.values()) == {"green", "yellow", "red"}
    assert {c: final.get(c) for c in truth} == truth


def test_the_book_has_repeat_unscheduled_and_non_cash_orders_late_deliveries_and_partial_payments() -> None:
    money = MoneyBook(Book(5, now=NOW, days=180, deals=400), 5)
    orders = [e[4] for e in money.events if e[1] == "money.order"]
    assert sum(o["repeat_customer"] for o in orders) >= 10
    assert sum(not o["scheduled_for_production"] for o in orders) >= 5
    assert sum(not o["cash"] for o in orders) >= 5
    late = [e[4] for e in money.events if e[1] == "money.delivery" and e[4]["delivered_on"] > e[4]["promised_on"]]
    assert len(late) >= 10
    parts = Counter(e[4]["contract_id"] for e in money.events if e[1] == "money.payment")
    assert any(n == 2 for n in parts.values())
    steps = Counter(e[4]["step"] for e in money.events if e[1] == "service.ticket")
    assert steps["fault_reported"] >= 20 and steps["first_remote_response"] >= 20
    assert len({e[4]["rep_id"] for e in money.events if e[1] == "money.forecast"}) >= 20


def test_the_seed_decides_everything() -> None:
    a = MoneyBook(Book(3, now=NOW, days=120, deals=200), 3).stream()
    b = MoneyBook(Book(3, now=NOW, days=120, deals=200), 3).stream()
    assert a == b


def test_the_statements_do_not_depend_on_the_order_topics_are_read_in() -> None:
    """A backlog reads one topic days ahead of another: payments before their invoices, orders
    last. Each month's sums (and so every statement line) must come out the same."""
    money = MoneyBook(Book(5, now=NOW, days=180, deals=400), 5)
    rules, match = rebates.shipped().rules, matching.shipped().rules
    events = [(key, env) for _at, _topic, key, env in money.stream() if env["event_type"] != "money.forecast"]

    def fold_all(order: list[tuple[str, dict]]) -> tuple[dict[str, dict], dict[str, str]]:
        states: dict[str, dict] = {}
        board: dict[str, tuple[str, int, str]] = {}  # contract -> (changed_at, emitted, status): the board's argMax
        rows: list[dict] = []
        for n, (key, env) in enumerate(order):
            st = states.setdefault(key, ledger.new_distributor(key))
            row = {"event_type": env["event_type"], "occurred_at": env["occurred_at"]}
            out = ledger.fold(st, row, env["payload"], source="s", offset=n, rebate_rules=rules, match_rules=match)
            rows.extend(r for t, r in out if t == "three_way_match")
        for st in states.values():
            rows.extend(r for _t, r in ledger.advance(st, NOW, match))
        for i, r in enumerate(rows):
            mark = (datetime.fromisoformat(r["changed_at"]).isoformat(), i, r["status"])
            if r["contract_id"] not in board or mark > board[r["contract_id"]]:
                board[r["contract_id"]] = mark
        return {k: st["months"] for k, st in states.items()}, {c: m[2] for c, m in board.items()}

    rank = {"money.payment": 0, "money.invoice": 1, "service.ticket": 2, "money.delivery": 3, "money.order": 4}
    backlog = sorted(events, key=lambda e: rank[e[1]["event_type"]])  # stable: each topic in its own order
    (late_months, late_board), (months, in_order) = fold_all(backlog), fold_all(events)
    assert late_months == months
    truth = money.truth()
    assert {c: late_board.get(c) for c in truth} == truth == {c: in_order.get(c) for c in truth}
