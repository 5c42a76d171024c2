"""Deterministic synthetic traffic: a retail chain and a B2B medical-device book.

Customers behave the way the field report describes, so rules and models have something
real to find and something real to be fooled by:
- churners drift away over three weeks: they log in less, stop reading material about ten
  days before they leave, and answer reps later and later, or not at all;
- others dip for a week or two (busy, travelling) and come back: reading pauses and replies
  slow, but not for long;
- reps and associates message customers on their own schedule, whatever the customer does,
  so a silent customer leaves messages unanswered;
- a third of the members only ever shop in store (no app, no messaging);
- weekends and promotion days fill the stores and empty the hospitals; nights are quiet.
Churn dates are spread over the whole run and a month beyond it. ``ground_truth`` rebuilds the
same world from the seed: who churns and when, who dipped and when. Same seed, same events.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

RETAIL_STORES = [
    ("S-SH-001", "上海静安店"),
    ("S-SH-002", "上海徐汇店"),
    ("S-BJ-001", "北京朝阳店"),
    ("S-GZ-001", "广州天河店"),
    ("S-HZ-001", "杭州西湖店"),
    ("S-CD-001", "成都春熙店"),
]
HOSPITALS = [f"H-{i:04d}" for i in range(1, 41)]
SIZES = ["S", "M", "L", "XL"]
COLOURS = ["黑色", "白色", "藏青", "米色", "卡其", "灰色", "酒红", "燕麦色"]
CATALOGUE = [
    ("阔腿裤", "裤装", Decimal("299.00")),
    ("直筒牛仔裤", "裤装", Decimal("359.00")),
    ("针织开衫", "针织", Decimal("399.00")),
    ("羊毛衫", "针织", Decimal("599.00")),
    ("衬衫", "上装", Decimal("259.00")),
    ("T恤", "上装", Decimal("129.00")),
    ("连衣裙", "裙装", Decimal("459.00")),
    ("半身裙", "裙装", Decimal("289.00")),
    ("风衣", "外套", Decimal("899.00")),
    ("羽绒服", "外套", Decimal("1299.00")),
    ("西装外套", "外套", Decimal("799.00")),
    ("卫衣", "上装", Decimal("229.00")),
]
SKUS = [(f"SKU-{i:03d}", name, cat, price) for i, (name, cat, price) in enumerate(CATALOGUE, 1)]
# Items bought together more often than chance: what co-purchase mining should find.
PAIRED = {"阔腿裤": "针织开衫", "风衣": "衬衫", "连衣裙": "西装外套", "直筒牛仔裤": "T恤", "羽绒服": "羊毛衫"}
FIT = ["腰偏紧", "有点紧", "偏大", "偏小", "袖长", "肩宽合适", "裤长刚好", "领口偏大"]
RETURN_REASONS = ["起球", "掉色", "尺码不合适", "面料起皱", "开线", "颜色和图片不一样"]
FAMILY = ["带着小孩", "和老公一起来", "给妈妈买", "有两个孩子", "和闺蜜一起"]
OCCASIONS = ["上班通勤穿", "周末约会", "参加婚礼", "出差", "过年走亲戚"]
PAIRINGS = ["同色系", "撞色", "叠穿", "基础款打底"]
B2B_MATERIALS = [
    ("MAT-BIO-01", "全自动生化分析仪参数对比表", 12),
    ("MAT-BIO-02", "生化分析仪临床案例集", 30),
    ("MAT-IMM-01", "化学发光免疫分析仪白皮书", 24),
    ("MAT-HEM-01", "血球分析仪维护手册", 18),
    ("MAT-POC-01", "POCT 快检方案介绍", 8),
]
RETAIL_MATERIALS = [("LB-AW-01", "秋冬新品画册", 20), ("LB-SS-01", "通勤穿搭指南", 10)]
OUTBOUND = [
    "您好，新到的{item}有您的尺码了，欢迎来店试穿",
    "张主任您好，参数对比表已发您，方便时请查看",
    "您上次关注的{item}今天到货",
    "您好，下周三可以安排设备演示吗？",
]
REPLIES = ["好的谢谢", "收到", "这周比较忙，下周再说", "可以，周三下午", "价格能再优惠点吗"]


DRIFT = timedelta(days=21)  # churners fade over three weeks before they are gone
CHURN_AFTER = timedelta(days=30)  # churn dates run this far past the end of the data
PROMO_DAYS = {(11, 10), (11, 11), (11, 12), (12, 11), (12, 12)}  # 双11, 双12 (local dates)
SHANGHAI = ZoneInfo("Asia/Shanghai")


SURNAMES = [*"王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高", "欧阳"]
GIVEN = "芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英"


def member_name(customer_id: str) -> tuple[str, str]:
    """A member's name and gender as the till's registration gives them; derived from the id
    (not the random stream), so adding names changed no other simulated event."""
    h = hashlib.sha256(customer_id.encode()).digest()
    given = GIVEN[h[1] % len(GIVEN)] + GIVEN[h[2] % len(GIVEN)] * (h[3] % 2)
    return SURNAMES[h[0] % len(SURNAMES)] + given, "F" if h[4] % 3 else "M"


@dataclass
class Customer:
    customer_id: str
    segment: str
    home: str
    size: str
    colours: list[str]
    engagement: float
    churn_at: datetime | None
    phone: str
    member_no: str
    key_contact: bool
    in_store_only: bool = False
    dip: tuple[datetime, datetime] | None = None  # a slump they recover from
    registered: bool = False
    purchases: list[tuple[str, str, str, str, Decimal]] = field(default_factory=list)

    def drift(self, ts: datetime) -> float | None:
        """How far into the pre-churn drift (0..1), 1.0 once churned, None when not drifting."""
        if self.churn_at is None or ts < self.churn_at - DRIFT:
            return None
        return min(1.0, (ts - (self.churn_at - DRIFT)) / DRIFT)

    def dipping(self, ts: datetime) -> bool:
        return self.dip is not None and self.dip[0] <= ts < self.dip[1]

    def active(self, ts: datetime) -> float:
        """How likely the customer is to do anything at ``ts``."""
        p = self.drift(ts)
        if p is not None:
            return 0.03 if p >= 1.0 else self.engagement * (1.0 - 0.8 * p)
        return self.engagement * (0.35 if self.dipping(ts) else 1.0)

    def reads(self, ts: datetime) -> float:
        """How likely an app session includes opening material: reading stops before churn."""
        p = self.drift(ts)
        if p is not None:
            return max(0.0, 1.0 - 1.6 * p)
        return 0.25 if self.dipping(ts) else 1.0

    def reply_delay(self, rng: random.Random, ts: datetime) -> float | None:
        """Hours until the customer answers a message sent at ``ts``; None: never."""
        p = self.drift(ts)
        if p is not None and p >= 1.0:
            return None if rng.random() < 0.85 else rng.uniform(60, 150)
        if p is not None and p > 0.3:
            if rng.random() < 0.1 + 0.5 * p:
                return None
            return rng.uniform(30 + 60 * p, 60 + 100 * p)
        if self.dipping(ts):
            return None if rng.random() < 0.15 else rng.uniform(10, 60)
        if rng.random() < 0.05:
            return None
        return rng.expovariate(1 / (2 + 20 * (1 - self.engagement)))


def season(c: Customer, ts: datetime) -> float:
    """Weekly and daily rhythm: stores fill at weekends and on promotion days, hospitals
    work on weekdays, and hardly anyone does anything at night."""
    local = ts.astimezone(SHANGHAI)
    f = 1.0 if 9 <= local.hour < 22 else 0.15
    weekend = local.weekday() >= 5
    if c.segment == "b2b_contact":
        return f * (0.25 if weekend else 1.25)
    f *= 1.5 if weekend else 0.85
    return f * (2.0 if (local.month, local.day) in PROMO_DAYS else 1.0)


@dataclass(order=True)
class _Due:
    ts: datetime
    seq: int
    kind: str = field(compare=False)
    customer: Customer | None = field(compare=False, default=None)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


def outreach_days(c: Customer) -> float:
    """Mean days between messages a rep or associate sends the customer."""
    if c.segment == "b2b_contact":
        return 2.5 if c.key_contact else 5.0
    return 7.0


class World:
    def __init__(self, seed: int, customers: int = 300, start: datetime | None = None, *, days: float = 30.0) -> None:
        """``start`` is the end of the history (its ``now``); churn dates fall over the ``days``
        before it and a month after."""
        self.rng = random.Random(seed)
        self.seed = seed
        self.seq = 0
        self.start = start or datetime.now(UTC)
        self.days = days
        self.customers = [self._customer(i) for i in range(customers)]
        self.by_id = {c.customer_id: c for c in self.customers}
        self.due: list[_Due] = []
        self.stock: dict[tuple[str, str, str, str], int] = {}
        first = self.start - timedelta(days=days)
        for c in self.customers:
            if not c.in_store_only:
                self._schedule(c, "outbound", first + timedelta(days=self.rng.uniform(0, outreach_days(c))), {})

    def _customer(self, i: int) -> Customer:
        r = self.rng
        b2b = r.random() < 0.25
        engagement = r.betavariate(2.2, 2.0)
        churn_at = None
        # Low engagement raises the hazard of churning; the moment is hidden from the data.
        if r.random() < 0.08 + 0.35 * (1 - engagement):
            span = (self.days * 86400 + CHURN_AFTER.total_seconds()) * r.random()
            churn_at = self.start - timedelta(days=self.days) + timedelta(seconds=span)
        dip = None
        if churn_at is None and r.random() < 0.25:
            dip_from = self.start - timedelta(days=r.uniform(0, self.days))
            dip = (dip_from, dip_from + timedelta(days=r.uniform(5, 14)))
        phone = f"1{r.choice('3456789')}{r.randrange(10**9):09d}"
        if b2b:
            return Customer(
                f"C-B{i:05d}",
                "b2b_contact",
                r.choice(HOSPITALS),
                "-",
                [],
                engagement,
                churn_at,
                phone,
                "",
                r.random() < 0.4,
                dip=dip,
            )
        return Customer(
            f"C-R{i:05d}",
            "retail_member",
            r.choice(RETAIL_STORES)[0],
            r.choice(SIZES),
            r.sample(COLOURS, 2),
            engagement,
            churn_at,
            phone,
            f"M{r.randrange(10**8):08d}",
            False,
            in_store_only=r.random() < 0.35,
            dip=dip,
        )

    def _schedule(self, c: Customer, kind: str, ts: datetime, data: dict[str, Any]) -> None:
        self.seq += 1
        heapq.heappush(self.due, _Due(ts, self.seq, kind, c, data))

    # -- envelopes ------------------------------------------------------------------

    def _event_id(self) -> str:
        self.seq += 1
        return f"sim-{self.seed}-{self.seq:09d}"

    def _env(
        self,
        etype: str,
        ts: datetime,
        source: str,
        payload: dict[str, Any],
        *,
        customer: Customer | None = None,
        store: str | None = None,
    ) -> dict[str, Any]:
        env: dict[str, Any] = {
            "event_id": self._event_id(),
            "event_type": etype,
            "schema_version": 1,
            "occurred_at": ts.isoformat(timespec="milliseconds"),
            "source": source,
            "payload": payload,
        }
        if customer is not None:
            env["customer_id"] = customer.customer_id
        if store is not None:
            env["store_id"] = store
        return env

    def stock_snapshot(self, ts: datetime) -> Iterator[tuple[str, bytes, dict[str, Any]]]:
        for store, _ in RETAIL_STORES:
            for sku, _name, _cat, _price in SKUS:
                for size in SIZES:
                    for colour in COLOURS[:4]:
                        yield self._stock(ts, store, sku, size, colour, self.rng.choice([0, 0, 1, 2, 3, 5, 8]))

    def _stock(
        self, ts: datetime, store: str, sku: str, size: str, colour: str, on_hand: int
    ) -> tuple[str, bytes, dict[str, Any]]:
        self.stock[(store, sku, size, colour)] = on_hand
        _sku, name, cat, _price = next(x for x in SKUS if x[0] == sku)
        payload = {"sku": sku, "name": name, "category": cat, "size": size, "colour": colour, "on_hand": on_hand}
        return "pos.inventory", store.encode(), self._env("pos.stock_level", ts, "pos", payload, store=store)

    # -- behaviour --------------------------------------------------------------------

    def step(self, ts: datetime) -> list[tuple[str, bytes, dict[str, Any]]]:
        """One customer action at ``ts`` (plus whatever was scheduled before ``ts``)."""
        r = self.rng
        out: list[tuple[str, bytes, dict[str, Any]]] = []
        while self.due and self.due[0].ts <= ts:
            d = heapq.heappop(self.due)
            out.extend(self._scheduled(d))
        c = r.choice(self.customers)
        if c.registered and r.random() > min(1.0, c.active(ts) * season(c, ts)):
            return out
        key = c.customer_id.encode()
        if not c.registered:
            c.registered = True
            out.append(("pos.transactions", key, self._register(c, ts)))
            return out
        out.extend((t, key, e) for t, e in (self._b2b(c, ts) if c.segment == "b2b_contact" else self._retail(c, ts)))
        if r.random() < 0.03:
            store = r.choice(RETAIL_STORES)[0]
            sku, size, colour = r.choice(SKUS)[0], r.choice(SIZES), r.choice(COLOURS[:4])
            on_hand = max(0, self.stock.get((store, sku, size, colour), 0) + r.choice([-1, 2, 5]))
            out.append(self._stock(ts, store, sku, size, colour, on_hand))
        return out

    def _register(self, c: Customer, ts: datetime) -> dict[str, Any]:
        r = self.rng
        payload: dict[str, Any] = {
            "segment": c.segment,
            "is_key_contact": c.key_contact,
            "consent_marketing": r.random() < 0.8,
            "opted_out": r.random() < 0.05,
        }
        if c.member_no:
            payload["member_no"] = c.member_no
        if c.segment == "retail_member":
            payload["name"], payload["gender"] = member_name(c.customer_id)
        payload["phone"] = c.phone
        if c.segment == "retail_member" and r.random() < 0.5:
            payload["coupon_code"] = f"CP{r.randrange(10**6):06d}"
            return self._env("pos.coupon_scan", ts, "pos", payload, customer=c, store=c.home)
        return self._env(
            "pos.checkin", ts, "pos" if c.segment == "retail_member" else "crm-booth", payload, customer=c, store=c.home
        )

    def _scheduled(self, d: _Due) -> list[tuple[str, bytes, dict[str, Any]]]:
        c = d.customer
        assert c is not None  # noqa: S101  # every scheduled action names its customer
        key = c.customer_id.encode()
        if d.kind == "reply":
            text = self.rng.choice(REPLIES)
            env = self._env("messaging.reply", d.ts, d.data["channel"], {**d.data, "text": text}, customer=c)
            return [("messaging.events", key, env)]
        local = d.ts.astimezone(SHANGHAI)
        if not 9 <= local.hour < 21:  # nobody messages customers at night: next morning instead
            morning = (local + timedelta(days=1 if local.hour >= 21 else 0)).replace(hour=9, minute=30)
            self._schedule(c, "outbound", morning + timedelta(hours=self.rng.uniform(0, 3)), {})
            return []
        # outreach: the next message is due whatever the customer does with this one
        self._schedule(c, "outbound", d.ts + timedelta(days=self.rng.expovariate(1 / outreach_days(c))), {})
        if not c.registered or (c.drift(d.ts) == 1.0 and self.rng.random() < 0.5):
            return []  # not a customer yet; reps give up on some who are gone
        if c.segment == "b2b_contact":
            msg = self._outbound(
                c, d.ts, self.rng.choice(["wecom", "dingtalk"]), f"REP-{int(c.home[2:]) % 9:02d}", "生化分析仪"
            )
        else:
            msg = self._outbound(c, d.ts, "wecom", f"A-{c.home[-3:]}-0", None)
        return [(msg[0], key, msg[1])]

    def _b2b(self, c: Customer, ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        r = self.rng
        roll = r.random()
        if roll >= 0.4 and r.random() > c.reads(ts):
            roll = 0.0  # opened the app, read nothing
        if roll < 0.4:
            return [
                (
                    "app.telemetry",
                    self._env("app.login", ts, "app", {"device": r.choice(["ios", "android", "pc"])}, customer=c),
                )
            ]
        if roll < 0.85:
            return [self._material_view(c, ts, B2B_MATERIALS, 4, (20, 90))]
        mid, title, _ = r.choice(B2B_MATERIALS)
        return [
            (
                "app.telemetry",
                self._env("app.document_click", ts, "app", {"document_id": mid, "title": title}, customer=c),
            )
        ]

    def _retail(self, c: Customer, ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        r = self.rng
        roll = r.random()
        store = c.home if r.random() < 0.85 else r.choice(RETAIL_STORES)[0]
        if roll >= 0.62 and c.in_store_only:
            roll = r.uniform(0, 0.62)  # no app, no messaging: the till and the associate's notes
        elif 0.8 <= roll and r.random() > c.reads(ts):
            roll = 0.7  # opened the app, read nothing
        if roll < 0.18:
            return [
                (
                    "pos.transactions",
                    self._env(
                        "pos.checkin",
                        ts,
                        "pos",
                        {"segment": c.segment, "member_no": c.member_no},
                        customer=c,
                        store=store,
                    ),
                )
            ]
        if roll < 0.38:
            lines: list[dict[str, Any]] = []
            for n in range(r.choice([1, 1, 2, 3])):
                sku, name, cat, price = r.choice(SKUS)
                if n > 0 and lines[0]["name"] in PAIRED and r.random() < 0.6:
                    sku, name, cat, price = next(x for x in SKUS if x[1] == PAIRED[lines[0]["name"]])
                colour = r.choice(c.colours)
                lines.append(
                    {
                        "sku": sku,
                        "name": name,
                        "category": cat,
                        "size": c.size,
                        "colour": colour,
                        "qty": 1,
                        "unit_price": str(price),
                    }
                )
                c.purchases.append((f"O-{self.seq + 1}", sku, name, colour, price))
            total = sum((Decimal(str(ln["unit_price"])) for ln in lines), Decimal("0"))
            return [
                (
                    "pos.transactions",
                    self._env(
                        "pos.purchase",
                        ts,
                        "pos",
                        {
                            "order_id": f"O-{self.seq + 1}",
                            "lines": lines,
                            "total": str(total),
                            "associate_id": f"A-{store[-3:]}-{r.randrange(5)}",
                        },
                        customer=c,
                        store=store,
                    ),
                )
            ]
        if roll < 0.44 and c.purchases:
            order, sku, name, colour, price = r.choice(c.purchases)
            reason = r.choice(RETURN_REASONS)
            cat = next(cat for s, _n, cat, _p in SKUS if s == sku)
            return [
                (
                    "pos.transactions",
                    self._env(
                        "pos.return",
                        ts,
                        "pos",
                        {
                            "order_id": f"R-{self.seq + 1}",
                            "original_order_id": order,
                            "refund": str(price),
                            "reason": reason,
                            "lines": [
                                {
                                    "sku": sku,
                                    "name": name,
                                    "category": cat,
                                    "size": c.size,
                                    "colour": colour,
                                    "qty": 1,
                                    "unit_price": str(price),
                                }
                            ],
                        },
                        customer=c,
                        store=store,
                    ),
                )
            ]
        if roll < 0.62:
            return [
                (
                    "store.notes",
                    self._env(
                        "store.note",
                        ts,
                        "tablet",
                        {
                            "note_id": f"N-{self.seq + 1}",
                            "associate_id": f"A-{store[-3:]}-{r.randrange(5)}",
                            "text": self.note(c),
                        },
                        customer=c,
                        store=store,
                    ),
                )
            ]
        if roll < 0.8:
            return [
                (
                    "app.telemetry",
                    self._env("app.login", ts, "app", {"device": r.choice(["ios", "android"])}, customer=c),
                )
            ]
        return [self._material_view(c, ts, RETAIL_MATERIALS, 3, (5, 30))]

    def _material_view(
        self,
        c: Customer,
        ts: datetime,
        materials: list[tuple[str, str, int]],
        boost: float,
        dwell: tuple[float, float],
    ) -> tuple[str, dict[str, Any]]:
        """Reading depth grows with engagement: engaged contacts read further and longer."""
        r = self.rng
        mid, title, pages = r.choice(materials)
        read = max(1, round(pages * min(1.0, r.betavariate(1 + boost * c.engagement, 2))))
        payload = {
            "material_id": mid,
            "title": title,
            "dwell_seconds": round(read * r.uniform(*dwell), 1),
            "pages_read": read,
            "pages_total": pages,
            "scroll_pct": round(100 * read / pages, 1),
        }
        return "app.telemetry", self._env("app.material_view", ts, "app", payload, customer=c)

    def _outbound(
        self, c: Customer, ts: datetime, channel: str, sender: str, item: str | None
    ) -> tuple[str, dict[str, Any]]:
        conv = f"CV-{c.customer_id}-{ts:%Y%m%d%H%M}"
        hours = c.reply_delay(self.rng, ts)
        if hours is not None:
            self._schedule(c, "reply", ts + timedelta(hours=hours), {"conversation_id": conv, "channel": channel})
        text = self.rng.choice(OUTBOUND).format(item=item or self.rng.choice(SKUS)[1])
        payload = {"conversation_id": conv, "channel": channel, "sender_id": sender, "text": text}
        return "messaging.events", self._env("messaging.outbound", ts, channel, payload, customer=c)

    def note(self, c: Customer) -> str:
        """An associate's note in the styles seen on store tablets: terse to rambling."""
        r = self.rng
        item = r.choice(SKUS)[1]
        rec = r.choice(SKUS)[1]
        colour = r.choice(c.colours)
        parts = [f"顾客试穿{c.size}码{colour}{item}", r.choice(FIT)]
        if c.purchases and r.random() < 0.4:
            parts.append(f"退了上次买的{c.purchases[-1][2]}（{r.choice(RETURN_REASONS)}）")
        if r.random() < 0.5:
            parts.append(f"推荐了{r.choice(PAIRINGS)}{rec}")
        if r.random() < 0.3:
            parts.append(r.choice(FAMILY))
        if r.random() < 0.3:
            parts.append(r.choice(OCCASIONS))
        if r.random() < 0.15:
            parts.append(f"不喜欢{r.choice([x for x in COLOURS if x not in c.colours])}")
        if r.random() < 0.05:
            parts.append(f"留了电话{c.phone}")
        return "，".join(parts)


BAD_KINDS = ("malformed_json", "missing_field", "wrong_type", "unknown_version", "oversize", "not_utf8")


def bad_event(rng: random.Random, good: dict[str, Any], max_bytes: int) -> bytes:
    """A realistically broken event, of one of several kinds."""
    kind = rng.choice(BAD_KINDS)
    if kind == "malformed_json":
        return orjson.dumps(good)[:-7]
    if kind == "missing_field":
        return orjson.dumps({k: v for k, v in good.items() if k != "occurred_at"})
    if kind == "wrong_type":
        return orjson.dumps({**good, "schema_version": "one"})
    if kind == "unknown_version":
        return orjson.dumps({**good, "schema_version": 99})
    if kind == "oversize":
        return orjson.dumps({**good, "payload": {**good["payload"], "pad": "x" * (max_bytes + 10)}})
    return b"\xff\xfe" + orjson.dumps(good)[2:]


def generate(
    seed: int,
    *,
    days: float = 0.0,
    live: bool = False,
    now: datetime | None = None,
    customers: int = 300,
    per_customer_day: float = 3.0,
    bad_rate: float = 0.005,
    max_bytes: int = 65_536,
) -> Iterator[tuple[str, bytes, bytes, datetime]]:
    """(topic, key, value, occurred_at): a stock snapshot and ``days`` of history ending at
    ``now``; then, if ``live``, endless events stamped with the wall clock (caller paces)."""
    now = now or datetime.now(UTC)
    start = now - timedelta(days=days)
    world = World(seed, customers, start=now, days=days)
    bad_rng = random.Random(seed ^ 0x5A5A)
    for topic, key, env in world.stock_snapshot(start):
        yield topic, key, orjson.dumps(env), start
    n_hist = int(days * customers * per_customer_day)
    if n_hist:
        offsets = sorted(world.rng.uniform(0, days * 86400) for _ in range(n_hist))
        for off in offsets:
            ts = start + timedelta(seconds=off)
            for topic, key, env in world.step(ts):
                yield topic, key, _maybe_bad(bad_rng, env, bad_rate, max_bytes), ts
    while live:
        ts = datetime.now(UTC)
        for topic, key, env in world.step(ts):
            yield topic, key, _maybe_bad(bad_rng, env, bad_rate, max_bytes), ts


def ground_truth(seed: int, customers: int, now: datetime, days: float = 30.0) -> list[dict[str, Any]]:
    """What the simulator knows and the data hides: for every customer of ``generate(seed,
    days=..., customers=..., now=now)`` whether and when they churn, and when they dipped and
    recovered (the same world, rebuilt from the seed), so alert rules and models are judged
    against it, not against each other."""
    world = World(seed, customers, start=now, days=days)
    return [
        {
            "customer_id": c.customer_id,
            "segment": c.segment,
            "key_contact": int(c.key_contact),
            "churn_at": c.churn_at,
            "engagement": round(c.engagement, 4),
            "in_store_only": int(c.in_store_only),
            "dip_from": None if c.dip is None else c.dip[0],
            "dip_to": None if c.dip is None else c.dip[1],
        }
        for c in world.customers
    ]


def _maybe_bad(rng: random.Random, env: dict[str, Any], rate: float, max_bytes: int) -> bytes:
    if rate and rng.random() < rate:
        return bad_event(rng, env, max_bytes)
    return orjson.dumps(env)
