"""Deals agent: the B2B book keyed by account (gates, intent, activities), and the catalogue.

Reads the CRM topics (co-partitioned: key = account id; the catalogue's key is the product
line, and its events need no state, so they are handled on whatever partition they land).
A batch is validated and masked, grouped by account, folded in event time per account and
settled once per account, on the same Batcher as the customer and store agents. Answers to
stage requests leave one message each, keyed by opportunity.
"""

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
from pipeline.deals import book, gates, grading
from pipeline.infra.faust_app import faust_topic
from pipeline.infra.settings import Settings
from schemas.crm import CRM_TOPICS, STATELESS

log = logging.getLogger(__name__)
GATES_CHECK_SECONDS = 10.0


def register(app: Any, settings: Settings, stats: Counter[str], pii: Pii) -> book.Rules:
    sources = {settings.topic(t): t for t in CRM_TOPICS}
    stream_topic = faust_topic(app, *sources, partitions=settings.partitions)
    outputs = result_topics(app, settings)
    dead = make_dead(app, settings, pii, stats)
    table = app.Table("accounts", default=None, partitions=settings.partitions)
    batcher = Batcher(app, table, settings, stats, "deals", dead)
    gates_file = rulefile.Watched(gates.FILE, settings.model_dir)
    grading_file = rulefile.Watched(grading.FILE, settings.model_dir)
    rules = book.Rules(gates_file.loaded, grading_file.loaded)
    log.info("deals: stage gates %s, account grading %s", rules.current.version, rules.graded.rules.version)

    # A stage request is judged only once the documents and approvals before it are in.
    stepper = Stepper(app, sources, settings, pii)

    async def process(batch: Sequence[Any]) -> list[Any]:
        out = customer.Results()
        groups: dict[str, list[Item]] = defaultdict(list)
        good = [item for i, event in enumerate(batch) if (item := stepper.decode(i, event, out)) is not None]
        now, later = stepper.step(batch, good, out)
        for i, ev, msg, row, payload in now:
            if ev.envelope.event_type in STATELESS:  # reference data: no account, no state
                out.add("events", row)
                if ev.envelope.event_type == "crm.product":
                    out.add("crm_products", product_row(payload, row))
                else:
                    out.add("crm_reps", {**payload, "updated_at": row["occurred_at"], "version": _ms(row)})
                continue
            groups[str(ev.envelope.account_id)].append((i, ev, msg, row, payload))
        for account_id, items in groups.items():
            state = batcher.get(account_id) or book.new_account(account_id)
            touched = book.Touched()
            changed = False
            for i, _event, msg, row, payload in in_event_time(items):
                source = f"{msg.topic}:{msg.partition}"
                replayed = state["applied"].get(source, -1) >= msg.offset  # its row may never have left
                try:
                    folded = book.fold(
                        state,
                        row,
                        payload,
                        source=source,
                        offset=msg.offset,
                        rules=rules,
                        out=out,
                        touched=touched,
                    )
                    changed |= folded
                    if folded or replayed:  # a retried event id (new offset) is not stored again
                        out.add("events", row)  # an event is stored, or dead-lettered, never both
                except book.UnknownOpportunity as exc:
                    out.dead.append(customer.Dead(i, "fold", "unknown_opportunity", str(exc)))
                    changed = True  # its offset is applied: a replay does not dead-letter it twice
                except Exception as exc:  # one bad event must not cost the others theirs
                    log.exception("deals fold failed on %s:%s@%s", msg.topic, msg.partition, msg.offset)
                    out.dead.append(customer.Dead(i, "fold", type(exc).__name__, str(exc)))
            book.settle(state, touched, rules, out)
            if changed:
                state["partition"] = items[0][2].partition
                batcher.put(account_id, state["partition"], state)
        stats["deals.decisions"] += len(out.keyed.get("opportunity_audit", ()))
        await batcher.emit(outputs, batch, out)
        return later

    async def agent(stream: Any) -> None:
        await batcher.run(stream, process)

    app.agent(stream_topic, name="deals", concurrency=1)(agent)
    app.timer(interval=tick_interval(settings))(batcher.tick)

    async def reload_gates() -> None:
        """A sales manager's edited gates file, or a marketing director's grading file, is
        picked up by a running worker: validated first; a broken file, or a changed one with
        the same version, is refused and the rules in force stay."""
        watched: tuple[tuple[str, rulefile.Watched[Any]], ...] = (("gates", gates_file), ("grading", grading_file))
        for name, w in watched:
            changed, refused = w.check()
            if refused:
                log.error("%s %s refused, the rules in force stay: %s", name, w.path, refused)
                stats[f"deals.{name}_refused"] += 1
            elif changed:
                rules.loaded, rules.graded = gates_file.loaded, grading_file.loaded
                log.info("%s %s loaded: version %s", name, w.path, w.rules.version)
                stats[f"deals.{name}_reloads"] += 1

    app.timer(interval=GATES_CHECK_SECONDS)(reload_gates)
    return rules


def product_row(p: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The latest catalogue entry wins (version: its event time in milliseconds)."""
    return {
        "product_line_id": p["product_line_id"],
        "name": p["name"],
        "category": p["category"],
        "registration_no": p["registration_no"],
        "list_price": str(p["list_price"]),
        "launched_on": p.get("launched_on"),
        "updated_at": row["occurred_at"],
        "version": _ms(row),
    }


def _ms(row: dict[str, Any]) -> int:
    """Reference data: the latest entry wins (its event time in milliseconds)."""
    return int(datetime.fromisoformat(row["occurred_at"]).timestamp() * 1000)
