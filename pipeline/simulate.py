"""Deterministic synthetic traffic: a retail chain and a B2B medical-device book.

Customers have a latent engagement that drives how often they log in, read, reply and
buy; some of them churn at a hidden moment, after which they go quiet and reply slowly.
That makes "no material opened for 7 days" and "replies > 48h" happen for real, and gives
a churn model something behavioural to learn. Same seed, same events.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

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


DRIFT = timedelta(days=14)


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
    registered: bool = False
    purchases: list[tuple[str, str, str, str, Decimal]] = field(default_factory=list)

    def active(self, ts: datetime) -> float:
        """Activity multiplier: customers drift away over the two weeks before they churn."""
        if self.churn_at is not None and ts >= self.churn_at:
            return 0.08
        if self.churn_at is not None and ts >= self.churn_at - DRIFT:
            return self.engagement * (1.0 - 0.7 * (ts - (self.churn_at - DRIFT)) / DRIFT)
        return self.engagement


@dataclass(order=True)
class _Due:
    ts: datetime
    seq: int
    kind: str = field(compare=False)
    customer: Customer | None = field(compare=False, default=None)
    data: dict[str, Any] = field(compare=False, default_factory=dict)


class World:
    def __init__(self, seed: int, customers: int = 300, start: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.seq = 0
        self.start = start or datetime.now(UTC)
        self.customers = [self._customer(i) for i in range(customers)]
        self.by_id = {c.customer_id: c for c in self.customers}
        self.due: list[_Due] = []
        self.stock: dict[tuple[str, str, str, str], int] = {}

    def _customer(self, i: int) -> Customer:
        r = self.rng
        b2b = r.random() < 0.25
        engagement = r.betavariate(2.2, 2.0)
        churn_at = None
        # Low engagement raises the hazard of churning; the moment is hidden from the data.
        if r.random() < 0.15 + 0.5 * (1 - engagement):
            churn_at = self.start + timedelta(days=r.uniform(-40, 5))
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
        )

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
        if r.random() > c.active(ts) and c.registered:
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
        payload["phone"] = c.phone
        if c.segment == "retail_member" and r.random() < 0.5:
            payload["coupon_code"] = f"CP{r.randrange(10**6):06d}"
            return self._env("pos.coupon_scan", ts, "pos", payload, customer=c, store=c.home)
        return self._env(
            "pos.checkin", ts, "pos" if c.segment == "retail_member" else "crm-booth", payload, customer=c, store=c.home
        )

    def _reply_later(self, c: Customer, ts: datetime, conv: str, channel: str) -> None:
        r = self.rng
        churned = c.churn_at is not None and ts >= c.churn_at
        hours = r.uniform(50, 120) if churned else r.expovariate(1 / (2 + 40 * (1 - c.engagement)))
        if r.random() < (0.5 if churned else 0.9):
            self.seq += 1
            heapq.heappush(
                self.due,
                _Due(ts + timedelta(hours=hours), self.seq, "reply", c, {"conversation_id": conv, "channel": channel}),
            )

    def _scheduled(self, d: _Due) -> list[tuple[str, bytes, dict[str, Any]]]:
        assert d.customer is not None  # noqa: S101  # every scheduled action names its customer
        text = self.rng.choice(REPLIES)
        return [
            (
                "messaging.events",
                d.customer.customer_id.encode(),
                self._env("messaging.reply", d.ts, d.data["channel"], {**d.data, "text": text}, customer=d.customer),
            )
        ]

    def _b2b(self, c: Customer, ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        r = self.rng
        roll = r.random()
        if roll < 0.3:
            return [
                (
                    "app.telemetry",
                    self._env("app.login", ts, "app", {"device": r.choice(["ios", "android", "pc"])}, customer=c),
                )
            ]
        if roll < 0.65:
            return [self._material_view(c, ts, B2B_MATERIALS, 4, (20, 90))]
        if roll < 0.72:
            mid, title, _ = r.choice(B2B_MATERIALS)
            return [
                (
                    "app.telemetry",
                    self._env("app.document_click", ts, "app", {"document_id": mid, "title": title}, customer=c),
                )
            ]
        channel = r.choice(["wecom", "dingtalk"])
        return [self._outbound(c, ts, channel, f"REP-{int(c.home[2:]) % 9:02d}", "生化分析仪")]

    def _retail(self, c: Customer, ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        r = self.rng
        roll = r.random()
        store = c.home if r.random() < 0.85 else r.choice(RETAIL_STORES)[0]
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
        if roll < 0.9:
            return [self._material_view(c, ts, RETAIL_MATERIALS, 3, (5, 30))]
        return [self._outbound(c, ts, "wecom", f"A-{store[-3:]}-0", None)]

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
        conv = f"CV-{c.customer_id}-{ts:%Y%m%d}"
        self._reply_later(c, ts, conv, channel)
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
    world = World(seed, customers, start=now)
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


def ground_truth(seed: int, customers: int, now: datetime) -> list[dict[str, Any]]:
    """What the simulator knows and the data hides: for every customer of ``generate(seed,
    customers=..., now=now)`` whether and when they churn (the same world, rebuilt from the
    seed), so alert rules and models are judged against it, not against each other."""
    world = World(seed, customers, start=now)
    return [
        {
            "customer_id": c.customer_id,
            "segment": c.segment,
            "key_contact": int(c.key_contact),
            "churn_at": c.churn_at,
            "engagement": round(c.engagement, 4),
        }
        for c in world.customers
    ]


def _maybe_bad(rng: random.Random, env: dict[str, Any], rate: float, max_bytes: int) -> bytes:
    if rate and rng.random() < rate:
        return bad_event(rng, env, max_bytes)
    return orjson.dumps(env)
