"""Every business morning (Asia/Shanghai) each rep gets their TOP-3 deals: ranked in ``serve``
(which owns the store) from the current deal rows and the trained model, stored through the
sink (``deal.top3`` -> ``rep_top3``) and pushed to the rep through the notifier."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson

from pipeline.bizday import business_tz
from pipeline.deals import model as deal_model
from pipeline.infra import topics
from pipeline.infra.settings import Settings
from pipeline.intake import iso
from schemas.crm import STAGE_ZH

log = logging.getLogger(__name__)

OPEN_DEALS = (
    "SELECT opportunity_id, account_name, region, name, rep_id, stage, stage_since, created_at, last_activity_at, "
    "expected_amount, quote_amount, competitor_amount, budget_deadline, activities, demo_minutes, quality_demo, "
    "survey_complete, decision_roles, refusals, intent_at, intent_title, closed_at "
    "FROM opportunities FINAL WHERE closed_at IS NULL"
)


def open_deals(client: Any, where: str = "1", params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    res = client.query(f"{OPEN_DEALS} AND {where}", parameters=params or {})  # fixed fragments
    return [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]


def stored_for(client: Any, day: date) -> int:
    return int(
        client.query("SELECT count() FROM rep_top3 WHERE day = {d:Date}", parameters={"d": day}).result_rows[0][0]
    )


def ranking(client: Any, m: deal_model.DealModel, now: datetime) -> list[dict[str, Any]]:
    """Today's TOP-3 rows for every rep with open deals."""
    day = now.astimezone(business_tz()).date()
    return [
        {
            "day": day.isoformat(),
            **{k: r[k] for k in ("rep_id", "rank", "opportunity_id", "name", "account_name", "stage")},
            **{k: r[k] for k in ("probability", "urgency", "priority", "factors", "urgent_because")},
            "model_version": m.version,
            "computed_at": iso(now),
        }
        for r in deal_model.top3(open_deals(client), m, now)
    ]


def push_rows(rows: list[dict[str, Any]], day: date) -> list[dict[str, Any]]:
    """One push per rep: the three deals, why each, and why today."""
    by_rep: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_rep.setdefault(r["rep_id"], []).append(r)
    out = []
    for rep, best in sorted(by_rep.items()):
        lines = [
            f"{r['rank']}. {r['name']}（{STAGE_ZH.get(r['stage'], r['stage'])}，成交概率 {r['probability']:.0%}）"
            + (f"：{'；'.join(r['factors'])}" if r["factors"] else "")
            + (f"｜{'；'.join(r['urgent_because'])}" if r["urgent_because"] else "")
            for r in best
        ]
        out.append(
            {
                "push_id": f"{rep}:top3:{day:%Y%m%d}",
                "kind": "deal_top3",
                "opportunity_id": best[0]["opportunity_id"],
                "account_id": "",
                "rep_id": rep,
                "title": f"今日TOP3待推进商机（{day:%m月%d日}）",
                "conversation": lines,
                "competitor_quote": "",
                "raised_at": best[0]["computed_at"],
                "severity": "medium",
            }
        )
    return out


async def morning_loop(
    settings: Settings, db: Callable[..., Awaitable[Any]], stopping: asyncio.Event, interval: float = 15.0
) -> None:
    """Once a business day from ``settings.top3_hour`` (business time; 8: ready before the
    08:30 stand-up): rank, store, push. A restart the same day finds
    today's rows stored and does not push again."""
    from aiokafka import AIOKafkaProducer

    from pipeline.infra.kafka_auth import client_kwargs

    done: date | None = None
    warned = False
    producer: Any = None
    try:
        while not stopping.is_set():
            now = datetime.now(UTC)
            local = now.astimezone(business_tz())
            if local.hour >= settings.top3_hour and done != local.date():
                try:
                    m = deal_model.load(settings.model_dir)
                except (ValueError, OSError, KeyError) as exc:  # a stale or broken file must not stop serve
                    if not warned:
                        log.error("deal model refused, no morning TOP-3: %s", exc)
                        warned = True
                    m = None
                if m is None:
                    if not warned:
                        log.info("no deal model (`salespulse deals train`): no morning TOP-3")
                        warned = True
                else:
                    stored = await db(stored_for, local.date())
                    rows: list[dict[str, Any]] = []
                    if not stored:
                        rows = await db(ranking, m, now)
                        if producer is None:
                            producer = AIOKafkaProducer(
                                bootstrap_servers=settings.kafka_bootstrap, acks="all", **client_kwargs(settings)
                            )
                            await producer.start()
                        if rows:
                            await producer.send(settings.topic("deal.top3"), value=orjson.dumps(rows))
                        for push in push_rows(rows, local.date()):
                            await producer.send(
                                settings.topic(topics.DEAL_PUSHES),
                                key=push["rep_id"].encode(),
                                value=orjson.dumps(push),
                            )
                        await producer.flush()
                        log.info("morning TOP-3 for %s: %d reps", local.date(), len({r["rep_id"] for r in rows}))
                    if stored or rows:  # no open deals yet: look again at the next check
                        done = local.date()
            try:
                await asyncio.wait_for(stopping.wait(), interval)
            except TimeoutError:
                pass
    finally:
        if producer is not None:
            await producer.stop()
