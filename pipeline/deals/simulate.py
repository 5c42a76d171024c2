"""A simulated B2B book: a medical-device distributor's reps, hospitals and deals.

Shaped on the field report (37 reps, 217 hospitals, purchase cycles of 47 days on average):
reps work regions and differ in skill and in how late they log their work; hospitals have
decision chains; every deal has a hidden chance to close that shows only through what
happens (long demos with the hospital's own parameter pages, contacts reading the
parameter sheets, a complete needs survey, a competitor undercutting), so a model has
something real to find. Deals stall, are lost at any stage, and some reps try to push a
deal past a gate (quote before the needs survey, contract before the director signs off,
paid before the PO acceptance scan) and fix it after the refusal. ``truth`` holds what the
events hide: how and when each deal ends, even after the end of the data.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

REGIONS = {
    "华东": ["绍兴", "杭州", "宁波", "苏州", "上海", "南京"],
    "华北": ["北京", "天津", "石家庄", "济南"],
    "华南": ["广州", "深圳", "东莞", "南宁"],
    "西南": ["成都", "重庆", "昆明", "贵阳"],
}
REGION_CODE = {"华东": "EC", "华北": "NC", "华南": "SC", "西南": "SW"}
HOSPITAL_KINDS = ["市立医院", "人民医院", "中医院", "妇幼保健院", "第一人民医院", "中心医院", "第二医院"]
TIERS = ["三级甲等", "三级乙等", "二级甲等"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
TITLES = {
    "department_head": "主任",
    "lab_user": "老师",
    "equipment": "科长",
    "procurement": "主任",
    "vice_president": "院长",
    "finance": "处长",
    "it": "工程师",
}
DEPARTMENTS = {
    "department_head": "检验科",
    "lab_user": "检验科",
    "equipment": "设备科",
    "procurement": "采购办",
    "vice_president": "院办",
    "finance": "财务处",
    "it": "信息科",
}
PRODUCT_LINES = [
    # id, name, category, registration no., unit price, launched (days before the end)
    ("PL-BIO", "全自动生化分析仪", "生化", "国械注准20213220456", Decimal("38000.00"), 900),
    ("PL-IMM", "化学发光免疫分析仪", "免疫", "国械注准20203400781", Decimal("52000.00"), 700),
    ("PL-HEM", "全自动血液细胞分析仪", "血球", "国械注准20193220112", Decimal("26000.00"), 1500),
    ("PL-POC", "POCT 快速检测仪", "POCT", "国械注准20253400097", Decimal("8600.00"), 200),
    ("PL-MOL", "核酸扩增检测系统", "分子", "国械注进20243400552", Decimal("69000.00"), 300),
]
DOCS = {
    "PL-BIO": ("MAT-BIO-01", "全自动生化分析仪参数对比表", 12),
    "PL-IMM": ("MAT-IMM-01", "化学发光免疫分析仪白皮书", 24),
    "PL-HEM": ("MAT-HEM-01", "血球分析仪维护手册", 18),
    "PL-POC": ("MAT-POC-01", "POCT 快检方案介绍", 8),
    "PL-MOL": ("MAT-MOL-01", "核酸检测系统参数对比表", 14),
}
COMPETITORS = ["迈瑞", "罗氏", "贝克曼", "西门子", "安图", "新产业"]
SUMMARIES = [
    "{who}关注检测速度和试剂成本",
    "{who}希望看本院样本量下的参数",
    "{who}表示预算要等下个季度",
    "{who}提到{rival}也在接触",
    "{who}要求提供装机案例",
    "{who}对售后响应时间有顾虑",
    "约{who}下周演示",
]
STEPS = ("solution", "quote", "contract", "collection", "won")


@dataclass
class Rep:
    rep_id: str
    region: str
    skill: float  # pushes a deal's chance up or down
    log_lag_hours: float  # typical delay between doing and logging; > 24: a late updater
    started: datetime


@dataclass
class Hospital:
    account_id: str
    name: str
    region: str
    tier: str
    rep: Rep
    contacts: list[tuple[str, str, str]]  # (contact id, name, role)


@dataclass
class Deal:
    opportunity_id: str
    hospital: Hospital
    product: tuple[str, str, str, str, Decimal, int]
    created: datetime
    units: int
    win: bool
    ends_at: datetime  # won, or lost
    lost_after: str  # the last stage reached when lost
    skips: bool
    engaged: float  # how much the hospital engages (drives demos, reads, survey completeness)
    budget_deadline: datetime
    events: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)


class Book:
    """The whole simulated book, rebuilt identically from the seed."""

    def __init__(
        self, seed: int, *, now: datetime, days: float = 120.0, reps: int = 37, hospitals: int = 217, deals: int = 400
    ) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - timedelta(days=days)
        rng = self.rng
        regions = list(REGIONS)
        self.reps = [
            Rep(
                f"R-{i:03d}",
                regions[i % len(regions)],
                rng.gauss(0, 0.6),
                rng.choice([2, 4, 6, 10, 16]) if rng.random() > 0.25 else rng.uniform(30, 72),
                self.start - timedelta(days=rng.uniform(30, 900))
                if rng.random() > 0.2
                else self.start + timedelta(days=rng.uniform(0, days * 0.4)),
            )
            for i in range(1, reps + 1)
        ]
        self.hospitals: list[Hospital] = []
        for i in range(1, hospitals + 1):
            region = regions[i % len(regions)]
            city = rng.choice(REGIONS[region])
            rep = rng.choice([r for r in self.reps if r.region == region])
            extra = rng.sample(["lab_user", "vice_president", "finance", "it"], rng.randint(0, 3))
            roles = ["department_head", "equipment", "procurement", *extra]
            contacts = [
                (f"CT-{i:04d}-{n}", f"{rng.choice(SURNAMES)}{TITLES[role]}", role) for n, role in enumerate(roles, 1)
            ]
            self.hospitals.append(
                Hospital(f"H-{i:04d}", f"{city}{rng.choice(HOSPITAL_KINDS)}", region, rng.choice(TIERS), rep, contacts)
            )
        self.deals = [self._deal(n) for n in range(1, deals + 1)]

    def _deal(self, n: int) -> Deal:
        rng = self.rng
        h = rng.choice(self.hospitals)
        product = rng.choice(PRODUCT_LINES)
        span = (self.now - self.start).total_seconds()
        created = self.start + timedelta(seconds=rng.uniform(0, span * 0.92))
        created = max(created, h.rep.started)
        engaged = rng.random()
        logit = -0.9 + 2.4 * (engaged - 0.5) + h.rep.skill + (0.4 if h.tier == "三级甲等" else 0.0)
        win = rng.random() < 1 / (1 + math.exp(-logit))
        cycle = timedelta(days=min(150.0, max(12.0, rng.lognormvariate(math.log(42), 0.45))))
        budget = created + cycle + timedelta(days=rng.uniform(-10, 40))  # the hospital's, whatever happens
        lost_after = "" if win else rng.choice(["lead", "solution", "solution", "quote", "quote", "contract"])
        if not win:
            reach = (STEPS.index(lost_after) + 1) / len(STEPS) if lost_after in STEPS else 0.1
            cycle = cycle * max(0.3, reach)
        deal = Deal(
            f"OP-{n:05d}",
            h,
            product,
            created,
            rng.choice([1, 1, 1, 2, 2, 3, 4]),
            win,
            created + cycle,
            lost_after,
            rng.random() < 0.12,
            engaged,
            budget,
        )
        self._script(deal)
        return deal

    def _script(self, d: Deal) -> None:
        """Every event of the deal, in its own time (some after ``now``: not sent)."""
        rng = self.rng
        h, rep = d.hospital, d.hospital.rep
        pid, pname, _cat, _reg, price, _launched = d.product
        ev = d.events
        t = d.created
        span = d.ends_at - d.created
        ev.append(
            (
                t,
                "crm.opportunity_created",
                {
                    "opportunity_id": d.opportunity_id,
                    "name": f"{h.name}{pname}采购",
                    "product_line_id": pid,
                    "rep_id": rep.rep_id,
                    "expected_amount": str(price * d.units),
                    "budget_deadline": d.budget_deadline.date().isoformat(),
                },
            )
        )
        last = STEPS.index(d.lost_after) if d.lost_after in STEPS else (len(STEPS) - 1 if d.win else -1)
        milestones = sorted(rng.uniform(0.1, 0.95) for _ in range(last + 1)) if last >= 0 else []
        # activities over the life of the deal: busier when the hospital engages
        n_acts = max(1, int(span.days / (7 - 4 * d.engaged) + rng.random()))
        for _ in range(n_acts):
            at = d.created + span * rng.uniform(0.02, 0.98)
            kind = rng.choices(["visit", "call", "demo"], [4, 5, 1 + 2 * d.engaged])[0]
            contact = rng.choice(h.contacts)
            minutes = rng.uniform(10, 40) if kind != "demo" else rng.uniform(25, 50 + 50 * d.engaged)
            custom = kind == "demo" and rng.random() < 0.2 + 0.7 * d.engaged * (1.0 if d.win else 0.5)
            lag = timedelta(hours=max(0.1, rng.gauss(rep.log_lag_hours, rep.log_lag_hours / 3)))
            summary = rng.choice(SUMMARIES).format(who=contact[1], rival=rng.choice(COMPETITORS))
            ev.append(
                (
                    at,
                    "crm.activity",
                    {
                        "activity_id": f"{d.opportunity_id}-A{len(ev):03d}",
                        "opportunity_id": d.opportunity_id,
                        "rep_id": rep.rep_id,
                        "kind": kind,
                        "contact_id": contact[0],
                        "duration_minutes": round(minutes, 1),
                        "custom_pages_shown": custom,
                        "summary": summary,
                        "logged_at": (at + lag).isoformat(timespec="seconds"),
                    },
                )
            )
        mat_id, mat_title, pages = DOCS[pid]
        # contacts of a hospital that buys read more (the field report's high-intent signal)
        views = [1, 2, 2, 1 + d.engaged] if d.win else [4 - 2 * d.engaged, 1.5, 0.5, 0.1]
        for _ in range(rng.choices([0, 1, 2, 3], views)[0]):
            at = d.created + span * rng.uniform(0.05, 0.95)
            contact = rng.choice(h.contacts)
            read = rng.randint(1, pages) if rng.random() < 0.5 + 0.4 * d.engaged else 1
            ev.append(
                (
                    at,
                    "crm.doc_view",
                    {
                        "view_id": f"{d.opportunity_id}-V{len(ev):03d}",
                        "contact_id": contact[0],
                        "material_id": mat_id,
                        "title": mat_title,
                        "product_line_id": pid,
                        "dwell_seconds": round(rng.uniform(10, 60 + 400 * d.engaged), 1),
                        "pages_read": read,
                        "pages_total": pages,
                    },
                )
            )
        amount = price * d.units
        quote_id = f"{d.opportunity_id}-Q1"
        prev = d.created
        for i, step in enumerate(STEPS[: last + 1]):
            at = max(d.created + span * milestones[i], prev + timedelta(days=rng.uniform(1, 3)))
            if step == "quote":
                complete = rng.random() < 0.55 + 0.4 * d.engaged
                roles = [c[2] for c in h.contacts][: (3 if complete else 1)]
                survey = {
                    "document_id": f"{d.opportunity_id}-D1",
                    "opportunity_id": d.opportunity_id,
                    "doc_type": "needs_survey",
                    "title": f"{h.name}需求调研表",
                    "uploaded_by": rep.rep_id,
                    "fields": {
                        "budget_min": str(amount * Decimal("0.8")),
                        "budget_max": str(amount * Decimal("1.2")),
                        "decision_roles": roles,
                    }
                    if complete
                    else {"decision_roles": roles},
                }
                if d.skips:  # asks first, is refused, then uploads
                    ev.append((at - timedelta(hours=30), "stage", {"to": "quote"}))
                ev.append((at - timedelta(hours=rng.uniform(2, 20)), "crm.document", survey))
                if not complete:  # refused for the missing fields, then a complete survey
                    ev.append((at - timedelta(hours=1), "stage", {"to": "quote"}))
                    fixed = {
                        **survey,
                        "document_id": f"{d.opportunity_id}-D2",
                        "fields": {
                            "budget_min": str(amount * Decimal("0.8")),
                            "budget_max": str(amount * Decimal("1.2")),
                            "decision_roles": [c[2] for c in h.contacts][:3],
                        },
                    }
                    at = at + timedelta(days=rng.uniform(1, 5))
                    ev.append((at - timedelta(hours=2), "crm.document", fixed))
                ev.append((at, "stage", {"to": "quote"}))
                prev = at
                cut = rng.uniform(0.85, 1.0)
                quoted = (amount * Decimal(str(round(cut, 3)))).quantize(Decimal("0.01"))
                unit = (quoted / d.units).quantize(Decimal("0.01"))
                rival = rng.choice(COMPETITORS) if rng.random() < 0.5 else None
                ev.append(
                    (
                        at + timedelta(hours=3),
                        "crm.quote",
                        {
                            "quote_id": quote_id,
                            "opportunity_id": d.opportunity_id,
                            "amount": str(unit * d.units),
                            "lines": [{"product_line_id": pid, "qty": d.units, "unit_price": str(unit)}],
                            "competitor": rival,
                            "competitor_amount": None
                            if rival is None
                            else str(
                                (unit * d.units * Decimal(str(round(rng.uniform(0.85, 1.1), 3)))).quantize(
                                    Decimal("0.01")
                                )
                            ),
                        },
                    )
                )
                amount = unit * d.units
                continue
            if step == "contract" and amount > 50000:
                if d.skips:
                    ev.append((at - timedelta(hours=20), "stage", {"to": "contract"}))
                ev.append(
                    (
                        at - timedelta(hours=rng.uniform(2, 18)),
                        "crm.approval",
                        {
                            "approval_id": f"{d.opportunity_id}-AP1",
                            "opportunity_id": d.opportunity_id,
                            "quote_id": quote_id,
                            "approver_id": f"DIR-{REGION_CODE[h.region]}",
                            "approver_role": "director",
                            "decision": "approved",
                        },
                    )
                )
            if step == "won":
                at = max(d.ends_at, at)
                if d.skips:
                    ev.append((at - timedelta(hours=26), "stage", {"to": "won"}))
                ev.append(
                    (
                        at - timedelta(hours=rng.uniform(2, 20)),
                        "crm.document",
                        {
                            "document_id": f"{d.opportunity_id}-PO",
                            "opportunity_id": d.opportunity_id,
                            "doc_type": "po_acceptance",
                            "title": f"{h.name}PO验收单",
                            "uploaded_by": rep.rep_id,
                            "fields": {"po_number": f"PO{d.opportunity_id[3:]}", "accepted_on": at.date().isoformat()},
                        },
                    )
                )
            if step == "solution" and d.skips and rng.random() < 0.5:
                ev.append((at - timedelta(hours=10), "stage", {"to": "contract"}))  # a leap over two stages
            ev.append((at, "stage", {"to": step}))
            prev = at
        if d.win:
            d.ends_at = max(d.ends_at, prev)
        else:
            d.ends_at = max(d.ends_at, prev + timedelta(days=rng.uniform(2, 10)))
            ev.append((d.ends_at, "stage", {"to": "lost"}))
        ev.sort(key=lambda e: e[0])

    def stream(self) -> Iterator[tuple[datetime, str, str, dict[str, Any]]]:
        """(occurred_at, topic, key, envelope) in event time, up to ``now``."""
        heap: list[tuple[datetime, int, str, str, dict[str, Any]]] = []
        seq = 0
        for pid, name, cat, reg, price, launched in PRODUCT_LINES:
            body = {
                "product_line_id": pid,
                "name": name,
                "category": cat,
                "registration_no": reg,
                "list_price": str(price),
                "launched_on": (self.now - timedelta(days=launched)).date().isoformat(),
            }
            heap.append((self.start, seq, "crm.catalogue", pid, self._env("crm.product", self.start, None, body, seq)))
            seq += 1
        for rep in self.reps:
            at = self.start - timedelta(minutes=10)  # the roster as the CRM holds it; started_on says when
            body = {
                "rep_id": rep.rep_id,
                "name": f"{rep.rep_id[-2:]}号销售",
                "region": rep.region,
                "started_on": rep.started.date().isoformat(),
            }
            heap.append((at, seq, "crm.catalogue", rep.rep_id, self._env("crm.rep", at, None, body, seq)))
            seq += 1
        for h in self.hospitals:
            at = self.start - timedelta(minutes=5)
            body = {"name": h.name, "region": h.region, "tier": h.tier, "owner_rep_id": h.rep.rep_id}
            heap.append((at, seq, "crm.accounts", h.account_id, self._env("crm.account", at, h.account_id, body, seq)))
            seq += 1
            for cid, cname, role in h.contacts:
                body = {"contact_id": cid, "name": cname, "department": DEPARTMENTS[role], "role": role}
                heap.append(
                    (at, seq, "crm.accounts", h.account_id, self._env("crm.contact", at, h.account_id, body, seq))
                )
                seq += 1
        for d in self.deals:
            for at, kind, body in d.events:
                if at > self.now:
                    continue
                if kind == "stage":
                    etype = "crm.stage_request"
                    body = {
                        "opportunity_id": d.opportunity_id,
                        "to_stage": body["to"],
                        "requested_by": d.hospital.rep.rep_id,
                    }
                else:
                    etype = kind
                if (
                    etype == "crm.activity"
                    and body.get("logged_at")
                    and datetime.fromisoformat(body["logged_at"]) > self.now
                ):
                    continue  # not logged yet
                topic = TOPIC_OF[etype]
                heap.append(
                    (at, seq, topic, d.hospital.account_id, self._env(etype, at, d.hospital.account_id, body, seq))
                )
                seq += 1
        heapq.heapify(heap)
        while heap:
            at, _s, topic, key, env = heapq.heappop(heap)
            yield at, topic, key, env

    def _env(self, etype: str, at: datetime, account_id: str | None, body: dict[str, Any], seq: int) -> dict[str, Any]:
        env: dict[str, Any] = {
            "event_id": f"crm-{seq:07d}",
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
            "source": "crm",
            "payload": {k: v for k, v in body.items() if v is not None},
        }
        if account_id:
            env["account_id"] = account_id
        return env

    def truth(self) -> list[dict[str, Any]]:
        return [
            {
                "opportunity_id": d.opportunity_id,
                "rep_id": d.hospital.rep.rep_id,
                "outcome": "won" if d.win else "lost",
                "closes_at": d.ends_at,
                "skips_gates": int(d.skips),
            }
            for d in self.deals
        ]


TOPIC_OF = {
    "crm.opportunity_created": "crm.opportunities",
    "crm.stage_request": "crm.opportunities",
    "crm.opportunity_updated": "crm.opportunities",
    "crm.quote": "crm.opportunities",
    "crm.approval": "crm.opportunities",
    "crm.document": "crm.documents",
    "crm.activity": "crm.activities",
    "crm.doc_view": "crm.activities",
}


def generate_crm(
    seed: int,
    *,
    now: datetime | None = None,
    days: float = 120.0,
    deals: int = 400,
    hospitals: int = 217,
    reps: int = 37,
    bad_rate: float = 0.0,
    max_bytes: int = 65_536,
    money: bool = True,
) -> Iterator[tuple[str, bytes, bytes, datetime]]:
    """(topic, key, value, occurred_at), as ``pipeline.simulate.generate`` yields them, with
    the same share of deliberately broken events; with ``money``, the book's orders, invoices,
    payments, deliveries, service tickets and forecasts too (``pipeline.money.simulate``)."""
    from pipeline.simulate import bad_event

    book = Book(seed, now=now or datetime.now(UTC), days=days, deals=deals, hospitals=hospitals, reps=reps)
    bad_rng = random.Random(seed ^ 0xC0DE)
    stream: Iterator[tuple[datetime, str, str, dict[str, Any]]] = book.stream()
    if money:
        from pipeline.money.simulate import MoneyBook

        stream = heapq.merge(stream, MoneyBook(book, seed).stream(), key=lambda e: e[0])
    for at, topic, key, env in stream:
        value = bad_event(bad_rng, env, max_bytes) if bad_rate and bad_rng.random() < bad_rate else orjson.dumps(env)
        yield topic, key.encode(), value, at
