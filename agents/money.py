"""Money agent (issue 14): orders, invoices, payments, deliveries and service tickets keyed by
the distributor, folded into its ledger on the same Batcher as the other agents; reps'
forecasts are stored as they come. Like the customer and deals agents, it reads its topics in
event-time step (``put_off``), so a payment is not folded before the order before it. After each
batch the contracts of every distributor this worker holds are judged at the event-time
high-water mark (a partition with events put off, at its own), so a document missing after its
grace period turns a contract yellow even when that distributor sends nothing more."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agents.batching import Batcher, Item, Stepper, result_topics, tick_interval
from agents.customer import in_event_time
from agents.deadletters import make_dead
from nlp.pii import Pii
from pipeline import customer, rulefile
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings
from pipeline.money import ledger, matching, rebates
from schemas.events import MONEY_PAYLOADS_TYPES
from schemas.money import MONEY_TOPICS

log = logging.getLogger(__name__)
RULES_CHECK_SECONDS = 10.0


def forecast_row(row: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    return {
        "forecast_id": p["forecast_id"],
        "rep_id": p["rep_id"],
        "region": p["region"],
        "amount": str(p["amount"]),
        "horizon_days": p.get("horizon_days", 30),
        "made_at": row["occurred_at"],
    }


def register(app: Any, settings: Settings, stats: Counter[str], pii: Pii) -> None:
    sources = {settings.topic(t): t for t in MONEY_TOPICS}
    stream_topic = faust_topic(app, *sources, partitions=settings.partitions)
    outputs = result_topics(app, settings)
    dead = make_dead(app, settings, pii, stats)
    table = app.Table("distributors", default=None, partitions=settings.partitions)
    batcher = Batcher(app, table, settings, stats, "money", dead)
    rebate_file = rulefile.Watched(rebates.FILE, settings.model_dir)
    match_file = rulefile.Watched(matching.FILE, settings.model_dir)
    log.info("money: rebates %s, matching %s", rebate_file.rules.version, match_file.rules.version)
    high: dict[int, datetime] = {}  # partition number -> the latest event time folded there
    # Orders, invoices and payments travel on their own topics: a payment read ahead of the
    # order before it put the payment into that order's rebate estimate (a suite test).
    stepper = Stepper(app, sources, settings, pii)

    def held_partitions() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic in sources}

    async def process(batch: Sequence[Any]) -> list[Any]:
        out = customer.Results()
        groups: dict[str, list[Item]] = defaultdict(list)
        good = [item for i, event in enumerate(batch) if (item := stepper.decode(i, event, out)) is not None]
        now, later = stepper.step(batch, good, out)
        for i, ev, msg, row, payload in now:
            at = ev.envelope.occurred_at
            if msg.partition not in high or at > high[msg.partition]:
                high[msg.partition] = at
            if ev.envelope.event_type in MONEY_PAYLOADS_TYPES:
                groups[str(ev.envelope.account_id)].append((i, ev, msg, row, payload))
                continue
            out.add("events", row)
            if ev.envelope.event_type == "money.forecast":
                out.add("money_forecasts", forecast_row(row, payload))
        for distributor, items in groups.items():
            state = batcher.get(distributor) or ledger.new_distributor(distributor)
            changed = False
            for i, _ev, msg, row, payload in in_event_time(items):
                source = f"{msg.topic}:{msg.partition}"
                replayed = state["applied"].get(source, -1) >= msg.offset  # its row may never have left
                keep = replayed or not ledger.is_repeat(state, row["event_type"], payload)  # sent twice: once
                try:
                    produced = ledger.fold(
                        state,
                        row,
                        payload,
                        source=source,
                        offset=msg.offset,
                        rebate_rules=rebate_file.rules,
                        match_rules=match_file.rules,
                    )
                except Exception as exc:  # one bad event must not cost the others theirs
                    log.exception("money fold failed on %s:%s@%s", msg.topic, msg.partition, msg.offset)
                    out.dead.append(customer.Dead(i, "fold", type(exc).__name__, str(exc)))
                    continue
                changed = True
                if keep:
                    out.add("events", row)  # an event is stored, or dead-lettered, never both
                for table_name, r in produced:
                    out.add(table_name, r)
            if changed:
                state["partition"] = items[0][2].partition
                batcher.put(distributor, state["partition"], state)
        if high:
            # a partition with events put off is judged at its own time (its documents may be
            # among them); the others at the latest time read anywhere
            top = max(high.values())
            waits = stepper.waiting_partitions()
            sweep(out, {p: high.get(p, top) if p in waits else top for p in held_partitions()})
        await batcher.emit(outputs, batch, out)
        return later

    def sweep(out: customer.Results, until: dict[int, datetime]) -> None:
        """Grace periods that ended by ``until`` (per partition) for every distributor held here."""
        for distributor, state in list(table.data.items()):
            if not isinstance(state, dict) or state.get("partition") not in until:
                continue
            rows = ledger.advance(state, until[state["partition"]], match_file.rules)
            if rows:
                for table_name, r in rows:
                    out.add(table_name, r)
                batcher.put(distributor, state["partition"], state)

    async def agent(stream: Any) -> None:
        await batcher.run(stream, process)

    app.agent(stream_topic, name="money", concurrency=1)(agent)
    app.timer(interval=tick_interval(settings))(batcher.tick)

    async def reload_rules() -> None:
        """A finance lead's edited rebates.yaml or matching.yaml in the model directory is
        used from the next event on; every line and colour names the version that made it."""
        for name, watched in (("rebates", rebate_file), ("matching", match_file)):
            changed, refused = watched.check()
            if refused:
                log.error("%s %s refused, the rules in force stay: %s", name, watched.path, refused)
                stats[f"money.{name}_refused"] += 1
            elif changed:
                log.info("%s %s loaded: version %s", name, watched.path, watched.rules.version)
                stats[f"money.{name}_reloads"] += 1

    app.timer(interval=RULES_CHECK_SECONDS)(reload_rules)
