"""ClickHouse access through clickhouse-connect, embedded (chDB) or server alike."""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect

from pipeline.infra.settings import Settings

log = logging.getLogger(__name__)

# Settings that make an acknowledged insert a stored insert (chDB defaults async_insert=1).
INSERT_SETTINGS: dict[str, Any] = {"async_insert": 0, "wait_for_async_insert": 1}

_chdb_lock = threading.Lock()


class StoreError(RuntimeError):
    pass


def rows(client: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A parameterised query's rows as dicts keyed by column name."""
    res = client.query(sql, parameters=params)
    return [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]


def iso_utc(v: Any) -> Any:
    """A datetime as ISO 8601 with its zone (a naive ClickHouse value is UTC: a browser would
    read it as local time); anything else as it is."""
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    return v


def normalise_dsn(dsn: str) -> str:
    """``chdb://./var/clickhouse`` -> ``chdb:///abs/var/clickhouse``.

    clickhouse-connect reads a chdb netloc as the location and the path as a database,
    so a relative path must be made absolute first.
    """
    if not dsn.startswith("chdb://"):
        return dsn
    rest = dsn[len("chdb://") :]
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    if rest in ("", "memory", ":memory:"):
        return dsn
    path = Path(rest).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"chdb://{path}" + (f"?{query}" if query else "")


def is_embedded(dsn: str) -> bool:
    return dsn.startswith("chdb://")


def connect(settings: Settings, *, migrate: bool = True) -> Any:
    """A client bound to our database, with migrations applied.

    The embedded engine locks its folder to one process; open it only in the process that
    owns it (``salespulse serve``), or after that process has stopped.
    """
    dsn = normalise_dsn(settings.clickhouse_dsn)
    try:
        client = clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:
        where = urlparse(dsn)
        raise StoreError(
            f"cannot open ClickHouse at {where.scheme}://{where.hostname or where.path}: {exc}. "
            "If embedded, is another salespulse process (serve/demo) holding the folder?"
        ) from exc
    db = settings.clickhouse_database
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")  # identifier validated in settings
    client.database = db
    if migrate:
        apply_migrations(client)
    return client


def migrations() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("schemas").joinpath("clickhouse").iterdir():
        m = re.fullmatch(r"(\d{3})_(\w+)\.sql", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(out)


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def apply_migrations(client: Any, upto: int | None = None) -> list[int]:
    """Apply pending DDL files in order (up to ``upto``, to test a migration against the
    schema before it); safe to run from every process at every start."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {r[0] for r in client.query("SELECT version FROM schema_migrations FINAL").result_rows}
    applied = []
    for version, name, sql in migrations():
        if version in done or (upto is not None and version > upto):
            continue
        for stmt in _statements(sql):
            client.command(stmt)
        client.insert(
            "schema_migrations",
            [[version, name, datetime.now(UTC)]],
            column_names=["version", "name", "applied_at"],
            settings=INSERT_SETTINGS,
        )
        log.info("applied ClickHouse migration %03d_%s", version, name)
        applied.append(version)
    return applied


def table_counts(client: Any) -> dict[str, int]:
    """Rows per table as analysts see them (FINAL where rows are replaced: duplicates
    collapsed; a plain MergeTree such as the phone-lookup audit has nothing to collapse)."""
    tables = client.query(
        "SELECT name, engine FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree' "
        "AND name != 'schema_migrations' ORDER BY name",
        parameters={"db": client.database},
    ).result_rows
    final = "SELECT count() FROM {t:Identifier} FINAL"
    plain = "SELECT count() FROM {t:Identifier}"
    return {
        n: int(client.command(final if "Replacing" in engine else plain, parameters={"t": n})) for n, engine in tables
    }


TRUTH_COLUMNS = [
    "customer_id",
    "segment",
    "key_contact",
    "churn_at",
    "engagement",
    "in_store_only",
    "dip_from",
    "dip_to",
]


def insert_truth(client: Any, rows: list[dict[str, Any]]) -> None:
    """The simulator's ground truth (``pipeline.simulate.ground_truth``) into ``sim_truth``."""
    defaults = {"in_store_only": 0, "dip_from": None, "dip_to": None}  # recorded since migration 011
    data = [[r[c] if c in r or c not in defaults else defaults[c] for c in TRUTH_COLUMNS] for r in rows]
    client.insert("sim_truth", data, column_names=TRUTH_COLUMNS)


DEAL_TRUTH_COLUMNS = ["opportunity_id", "rep_id", "outcome", "closes_at", "skips_gates"]


def insert_deal_truth(client: Any, rows: list[dict[str, Any]]) -> None:
    """The simulated B2B book's ground truth (``pipeline.deals.simulate.Book.truth``)."""
    client.insert("sim_deal_truth", [[r[c] for c in DEAL_TRUTH_COLUMNS] for r in rows], column_names=DEAL_TRUTH_COLUMNS)
