"""The money side of the simulated B2B book: distributors, orders, invoices, payments,
deliveries, service tickets and reps' forecasts, for the deals the book wins.

Shaped on the field report: hospitals buy through distributors in their region; a won deal
becomes a contract and an order; some orders are repeat orders of existing customers, some are
not scheduled for production, some are not cash, so the raw contract value runs ahead of the
deliverable one; invoices are now and then missing, short or above the order; payments come
whole, in parts, late or not at all; deliveries slip; equipment breaks and the distributor's
engineers answer remotely, some fast and some slow; reps forecast their collections with their
own optimism. ``truth`` records the colour each contract's story ends in (a finance clerk's
verdict once its last document is in or its grace period is over), written from the scenario
with the shipped grace periods restated, not from the matching code.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.deals.simulate import REGION_CODE, REGIONS, Book, Deal

FEN = Decimal("0.01")
DISTRIBUTORS_PER_REGION = 2
# the shipped matching rules' grace periods, restated: the truth must not read the code it checks
INVOICE_GRACE, PAYMENT_GRACE, ORPHAN_GRACE = timedelta(days=15), timedelta(days=45), timedelta(hours=48)


FINAL = {
    "matched": "green",
    "small_gap": "green",  # invoice up to ¥400 under the order, paid as invoiced
    "partial": "green",  # paid in two parts
    "invoice_missing": "yellow",
    "payment_missing": "yellow",
    "invoice_short": "red",  # invoiced ¥600-5,000 under the order, paid as invoiced
    "invoice_above": "red",
    "orphan": "red",  # a payment naming no contract on record
}


@dataclass
class Contract:
    contract_id: str
    distributor: str
    scenario: str  # a key of FINAL
    settles_at: datetime  # when its story is over: its last document, or the grace period that ends it


class MoneyBook:
    """Money events for a ``Book``'s won deals, rebuilt identically from the seed."""

    def __init__(self, book: Book, seed: int) -> None:
        self.book = book
        self.rng = random.Random(seed ^ 0x5EED)
        rng = self.rng
        self.distributors: dict[str, list[str]] = {
            region: [f"D-{REGION_CODE[region]}{k}" for k in range(1, DISTRIBUTORS_PER_REGION + 1)] for region in REGIONS
        }
        self.of_hospital = {h.account_id: rng.choice(self.distributors[h.region]) for h in book.hospitals}
        # how fast each distributor's engineers answer a fault remotely (median hours)
        self.response_hours = {d: rng.choice([1.5, 3.0, 5.0, 9.0]) for ds in self.distributors.values() for d in ds}
        self.optimism = {r.rep_id: rng.uniform(0.95, 1.6) for r in book.reps}
        self.events: list[tuple[datetime, str, str, str, dict[str, Any]]] = []  # (at, type, topic, key, payload)
        self.contracts: list[Contract] = []
        self._outstanding: list[tuple[datetime, datetime, str, Decimal]] = []  # (invoiced, paid or never, rep, amount)
        for d in book.deals:
            if d.win and d.ends_at <= book.now:
                self._won(d)
        self._orphans()
        self._forecasts()
        self.events.sort(key=lambda e: e[0])

    def _add(self, at: datetime, etype: str, topic: str, key: str, payload: dict[str, Any]) -> None:
        if at <= self.book.now:
            self.events.append((at, etype, topic, key, payload))

    def _won(self, d: Deal) -> None:
        rng = self.rng
        h = d.hospital
        dist = self.of_hospital[h.account_id]
        pid, _name, _cat, _reg, price, _launched = d.product
        unit = (price * Decimal(str(round(rng.uniform(0.86, 1.0), 3)))).quantize(FEN)
        at = d.ends_at + timedelta(days=rng.uniform(0.2, 3))
        self._order(d, dist, f"K-{d.opportunity_id}", f"SO-{d.opportunity_id}", at, pid, d.units, unit, repeat=False)
        for k in range(1, rng.choices([0, 1, 2], [65, 25, 10])[0] + 1):  # reagents and consumables later
            later = at + timedelta(days=rng.uniform(20, 80) * k)
            qty = rng.randint(1, 3)
            small = (unit * Decimal(str(round(rng.uniform(0.08, 0.3), 3)))).quantize(FEN)
            cid, oid = f"K-{d.opportunity_id}-R{k}", f"SO-{d.opportunity_id}-R{k}"
            self._order(d, dist, cid, oid, later, pid, qty, small, repeat=True)

    def _order(
        self, d: Deal, dist: str, cid: str, oid: str, at: datetime, pid: str, qty: int, unit: Decimal, *, repeat: bool
    ) -> None:
        rng = self.rng
        h, rep = d.hospital, d.hospital.rep
        amount = unit * qty
        promised = at + timedelta(days=rng.uniform(14, 40))
        self._add(
            at,
            "money.order",
            "money.orders",
            dist,
            {
                "order_id": oid,
                "contract_id": cid,
                "hospital_account_id": h.account_id,
                "opportunity_id": d.opportunity_id,
                "rep_id": rep.rep_id,
                "region": h.region,
                "lines": [{"product_line_id": pid, "qty": qty, "unit_price": str(unit)}],
                "amount": str(amount),
                "repeat_customer": repeat,
                "scheduled_for_production": rng.random() < 0.88,
                "cash": rng.random() < 0.9,
                "promised_delivery": promised.date().isoformat(),
            },
        )
        slip = rng.uniform(-6, 0) if rng.random() < 0.72 else rng.uniform(1, 21)
        delivered = promised + timedelta(days=slip)
        self._add(
            delivered,
            "money.delivery",
            "money.deliveries",
            dist,
            {
                "delivery_id": f"DL-{oid}",
                "contract_id": cid,
                "promised_on": promised.date().isoformat(),
                "delivered_on": delivered.date().isoformat(),
            },
        )
        if not repeat:
            self._tickets(d, dist, delivered, pid)
        scenario = rng.choices(
            ["matched", "small_gap", "invoice_missing", "invoice_short", "invoice_above", "partial", "payment_missing"],
            [58, 6, 7, 5, 3, 13, 8],
        )[0]
        if scenario == "invoice_missing":
            self.contracts.append(Contract(cid, dist, scenario, at + INVOICE_GRACE))
            return
        invoiced = amount
        if scenario == "invoice_short":
            invoiced = amount - Decimal(rng.randint(600, 5000))
        elif scenario == "invoice_above":
            invoiced = amount + Decimal(rng.randint(600, 3000))
        elif scenario == "small_gap":
            invoiced = amount - Decimal(rng.randint(1, 400))
        inv_at = at + timedelta(days=rng.uniform(1, 12))
        inv_id = f"INV-{oid}"
        self._add(
            inv_at,
            "money.invoice",
            "money.invoices",
            dist,
            {
                "invoice_id": inv_id,
                "contract_id": cid,
                "amount": str(invoiced),
                "due_on": (inv_at + timedelta(days=30)).date().isoformat(),
            },
        )
        if scenario == "payment_missing":
            self.contracts.append(Contract(cid, dist, scenario, inv_at + PAYMENT_GRACE))
            self._outstanding.append((inv_at, self.book.now + timedelta(days=365), rep.rep_id, invoiced))
            return
        late = rng.random() < 0.2
        paid_at = inv_at + timedelta(days=rng.uniform(35, 70) if late else rng.uniform(5, 29))
        owed = min(invoiced, amount)
        if scenario == "partial":
            first = (owed * Decimal(str(round(rng.uniform(0.3, 0.7), 2)))).quantize(FEN)
            self._pay(dist, cid, inv_id, f"PAY-{oid}-1", first, paid_at)
            paid_at = paid_at + timedelta(days=rng.uniform(20, 60))
            self._pay(dist, cid, inv_id, f"PAY-{oid}-2", owed - first, paid_at)
        else:
            self._pay(dist, cid, inv_id, f"PAY-{oid}", owed, paid_at)
        self._outstanding.append((inv_at, paid_at, rep.rep_id, owed))
        settles = paid_at
        if scenario == "invoice_short":  # red once both the invoice's and the payment's grace are over
            settles = max(paid_at, at + INVOICE_GRACE, inv_at + PAYMENT_GRACE)
        elif scenario == "invoice_above":
            settles = inv_at
        self.contracts.append(Contract(cid, dist, scenario, settles))

    def _pay(self, dist: str, cid: str, inv_id: str, pid: str, amount: Decimal, at: datetime) -> None:
        body = {"payment_id": pid, "contract_id": cid, "invoice_id": inv_id, "amount": str(amount)}
        self._add(at, "money.payment", "money.payments", dist, body)

    def _tickets(self, d: Deal, dist: str, since: datetime, pid: str) -> None:
        """Faults at about one per four months of use; a remote answer after a log-normal wait."""
        rng = self.rng
        t = since
        n = 0
        while True:
            t = t + timedelta(days=rng.expovariate(1 / 120))
            if t > self.book.now:
                return
            n += 1
            tid = f"TK-{d.opportunity_id}-{n}"
            body = {"ticket_id": tid, "hospital_account_id": d.hospital.account_id, "product_line_id": pid}
            self._add(t, "service.ticket", "service.tickets", dist, {**body, "step": "fault_reported"})
            wait = timedelta(hours=rng.lognormvariate(math.log(self.response_hours[dist]), 0.8))
            self._add(t + wait, "service.ticket", "service.tickets", dist, {**body, "step": "first_remote_response"})
            fixed = t + wait + timedelta(hours=rng.uniform(6, 72))
            self._add(fixed, "service.ticket", "service.tickets", dist, {**body, "step": "resolved"})

    def _orphans(self) -> None:
        """Payments on a bank slip naming no contract on record (about 1 in 60 contracts)."""
        rng = self.rng
        for n in range(max(1, len(self.contracts) // 60)):
            dist = rng.choice([d for ds in self.distributors.values() for d in ds])
            at = self.book.start + (self.book.now - self.book.start) * rng.uniform(0.2, 0.95)
            cid = f"K-UNKNOWN-{n + 1:03d}"
            amount = Decimal(rng.randint(5, 80) * 1000)
            self._pay(dist, cid, f"INV-UNKNOWN-{n + 1:03d}", f"PAY-ORPHAN-{n + 1:03d}", amount, at)
            self.contracts.append(Contract(cid, dist, "orphan", at + ORPHAN_GRACE))

    def _forecasts(self) -> None:
        """Every Monday each rep forecasts the next 30 days' collections: the invoices falling due
        in them (30 days after issue), times their own optimism, give or take; what comes in is
        short of it by the late, partial and missing payments, and by the optimism."""
        rng = self.rng
        day = self.book.start + timedelta(days=(7 - self.book.start.weekday()) % 7)
        n = 0
        while day <= self.book.now:
            horizon = day + timedelta(days=30)
            for rep in self.book.reps:
                due = sum(
                    (
                        amount
                        for invoiced, _paid, rid, amount in self._outstanding
                        if rid == rep.rep_id and day <= invoiced + timedelta(days=30) < horizon
                    ),
                    Decimal(0),
                )
                if due <= 0:
                    continue
                n += 1
                guess = (due * Decimal(str(round(self.optimism[rep.rep_id] * rng.uniform(0.85, 1.15), 3)))).quantize(
                    FEN
                )
                body = {"forecast_id": f"FC-{n:05d}", "rep_id": rep.rep_id, "region": rep.region, "amount": str(guess)}
                self._add(day + timedelta(hours=1), "money.forecast", "money.forecasts", rep.rep_id, body)
            day += timedelta(days=7)

    def stream(self) -> list[tuple[datetime, str, str, dict[str, Any]]]:
        """(occurred_at, topic, key, envelope) in event time."""
        out = []
        for seq, (at, etype, topic, key, body) in enumerate(self.events):
            env: dict[str, Any] = {
                "event_id": f"erp-{seq:07d}",
                "event_type": etype,
                "schema_version": 1,
                "occurred_at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
                "source": "erp",
                "payload": body,
            }
            if etype != "money.forecast":
                env["account_id"] = key
            out.append((at, topic, key, env))
        return out

    def truth(self) -> dict[str, str]:
        """contract -> the colour its story ends in, for the contracts whose story is over."""
        return {c.contract_id: FINAL[c.scenario] for c in self.contracts if c.settles_at <= self.book.now}
