"""What finance and sales managers read about money, from ClickHouse (parameterised SQL only).

Every function takes a scope: a condition on the rows' ``rep_id`` and ``region`` columns and
its parameters (``"1", {}`` for finance), built from the caller's key by the API.

- the three-way match board: each contract's latest colour, with counts by colour;
- a distributor's monthly rebate statement (``rebate_lines``), as CSV or XLSX, and the same
  statement recomputed from the stored events (``replay_statement``): they must agree;
- deliverable new contract value (可交付新签额) beside the raw contract value, drilled down
  region -> product line -> rep, with what each exclusion took away;
- forecast accuracy: collections actually received within a forecast's horizon / the forecast,
  per rep and region and month, for forecasts whose horizon is over;
- tender evidence per hospital: on-time delivery over the last 12 months and the median and
  p90 hours from a fault report to the first remote response.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from pipeline.bizday import business_tz
from pipeline.infra import store
from pipeline.money import ledger, matching, rebates

Scope = tuple[str, dict[str, Any]]
ALL: Scope = ("1", {})


_rows, _iso = store.rows, store.iso_utc


def _money(v: Any) -> str | None:
    return None if v is None else f"{Decimal(v):.2f}"


def match_board(
    client: Any,
    scope: Scope,
    status: str | None = None,
    distributor: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Each contract's latest colour (the last change in event time), newest change first."""
    cond, params = scope
    latest = (
        "SELECT contract_id, argMax(distributor_id, changed_at) AS distributor_id, "
        "argMax(rep_id, changed_at) AS rep_id, "
        "argMax(region, changed_at) AS region, argMax(hospital_account_id, changed_at) AS hospital_account_id, "
        "argMax(status, changed_at) AS status, argMax(status_zh, changed_at) AS status_zh, "
        "argMax(codes, changed_at) AS codes, argMax(reasons, changed_at) AS reasons, "
        "argMax(order_amount, changed_at) AS order_amount, argMax(invoiced, changed_at) AS invoiced, "
        "argMax(paid, changed_at) AS paid, max(changed_at) AS last_change, "
        "argMax(rules_version, changed_at) AS rules_version "
        "FROM three_way_match FINAL GROUP BY contract_id"
    )
    where = [cond]
    if distributor:
        where.append("distributor_id = {dist:String}")
        params = {**params, "dist": distributor}
    base = f"SELECT * FROM ({latest}) WHERE {' AND '.join(where)}"  # noqa: S608  # fixed fragments; values are parameters
    counts = dict(client.query(f"SELECT status, count() FROM ({base}) GROUP BY status", parameters=params).result_rows)  # noqa: S608  # as above
    sql = base + (" AND status = {status:String}" if status else "")
    items = _rows(
        client,
        sql + " ORDER BY last_change DESC, contract_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {**params, "status": status or "", "limit": limit, "offset": offset},
    )
    estimates = _estimates(client, [r["contract_id"] for r in items])
    for r in items:
        for k in ("order_amount", "invoiced", "paid"):
            r[k] = _money(r[k])
        r["changed_at"] = _iso(r.pop("last_change"))
        r["rebate_estimate"] = estimates.get(r["contract_id"])
    total = int(counts.get(status, 0)) if status else int(sum(counts.values()))
    return {
        "counts": {k: int(counts.get(k, 0)) for k in ("green", "yellow", "red", "pending")},
        "total": total,
        "items": items,
    }


def _estimates(client: Any, contracts: list[str]) -> dict[str, dict[str, Any]]:
    """The live rebate estimate each contract's latest order left: the distributor's quarter
    to date, as finance sees it on the order."""
    if not contracts:
        return {}
    rows = _rows(
        client,
        "SELECT o.contract_id AS contract_id, argMax(e.order_id, e.as_of) AS order_id, "
        "argMax(e.estimate, e.as_of) AS estimate, argMax(e.quarter, e.as_of) AS quarter, "
        "argMax(e.rule_version, e.as_of) AS rule_version "
        "FROM (SELECT DISTINCT contract_id, order_id FROM money_orders FINAL "
        "WHERE contract_id IN {c:Array(String)}) AS o "
        "INNER JOIN (SELECT order_id, estimate, quarter, rule_version, as_of FROM rebate_estimates FINAL) AS e "
        "ON e.order_id = o.order_id GROUP BY o.contract_id",
        {"c": contracts},
    )
    return {
        r["contract_id"]: {
            "order_id": r["order_id"],
            "estimate": _money(r["estimate"]),
            "quarter": r["quarter"],
            "rule_version": r["rule_version"],
        }
        for r in rows
    }


STATEMENT_COLUMNS = (
    ("distributor_id", "经销商"),
    ("month", "月份"),
    ("quarter", "季度"),
    ("line_no", "序号"),
    ("rule", "规则"),
    ("title", "说明"),
    ("base", "基数（元）"),
    ("rate", "比例"),
    ("amount", "金额（元）"),
    ("met", "是否计入"),
    ("rule_version", "规则版本"),
    ("inputs", "计算输入"),
)


def statement(client: Any, distributor: str, month: str) -> dict[str, Any] | None:
    """A distributor's statement for a month: the quarter to the month's end, line by line."""
    rows = _rows(
        client,
        "SELECT distributor_id, month, quarter, line_no, rule, title, base, rate, amount, met, rule_version, inputs, "
        "as_of FROM rebate_lines FINAL WHERE distributor_id = {d:String} AND month = {m:String} ORDER BY line_no",
        {"d": distributor, "m": month},
    )
    if not rows:
        return None
    versions = {r["rule_version"] for r in rows}
    lines = [
        {
            **r,
            "base": _money(r["base"]),
            "rate": None if r["rate"] is None else f"{Decimal(r['rate']).normalize():f}",
            "amount": _money(r["amount"]),
            "inputs": orjson.loads(r["inputs"]),
            "as_of": _iso(r["as_of"]),
        }
        for r in rows
    ]
    return {
        "distributor_id": distributor,
        "month": month,
        "quarter": rows[0]["quarter"],
        "rule_versions": sorted(versions),
        "total": _money(sum((Decimal(r["amount"]) for r in rows), Decimal(0))),
        "lines": lines,
    }


def statements(client: Any) -> list[dict[str, Any]]:
    """Every statement on record, newest month first: distributor, month, total, versions."""
    rows = _rows(
        client,
        "SELECT distributor_id, month, any(quarter) AS quarter, sum(amount) AS total, "
        "groupUniqArray(rule_version) AS rule_versions, max(as_of) AS as_of "
        "FROM rebate_lines FINAL GROUP BY distributor_id, month ORDER BY month DESC, distributor_id",
        {},
    )
    return [
        {**r, "total": _money(r["total"]), "rule_versions": sorted(r["rule_versions"]), "as_of": _iso(r["as_of"])}
        for r in rows
    ]


def month_end(month: str) -> datetime:
    """The first instant after ``month`` in business time (Asia/Shanghai)."""
    year, m = (int(x) for x in month.split("-"))
    first = date(year + m // 12, m % 12 + 1, 1)
    return datetime(first.year, first.month, 1, tzinfo=business_tz())


def replay_statement(client: Any, distributor: str, month: str, rules: rebates.RebateRules) -> dict[str, Any]:
    """The same statement recomputed from the distributor's stored events up to the month's
    end, through the same pure fold: what an auditor runs to check ``rebate_lines``."""
    events = client.query(
        "SELECT event_type, occurred_at, payload FROM events FINAL WHERE account_id = {d:String} "
        "AND event_type IN ('money.order', 'money.invoice', 'money.payment') AND occurred_at < {end:DateTime64(3)} "
        "ORDER BY occurred_at, kafka_topic, kafka_partition, kafka_offset",
        parameters={"d": distributor, "end": month_end(month)},
    ).result_rows
    state = ledger.new_distributor(distributor)
    match = matching.MatchRules(version="replay")
    for n, (etype, at, payload) in enumerate(events):
        row = {"event_type": etype, "occurred_at": at.isoformat()}
        ledger.fold(state, row, orjson.loads(payload), source="replay", offset=n, rebate_rules=rules, match_rules=match)
    lines = rebates.quarter_lines(ledger.quarter_to(state, month=month), rules)
    return {
        "distributor_id": distributor,
        "month": month,
        "total": _money(rebates.total(lines)),
        "lines": [{**ln, "base": _money(ln["base"]), "amount": _money(ln["amount"])} for ln in lines],
    }


def statement_table(st: dict[str, Any]) -> list[list[Any]]:
    """Header and lines (money as Decimal), then the total."""
    out: list[list[Any]] = [[zh for _k, zh in STATEMENT_COLUMNS]]
    for ln in st["lines"]:
        row = []
        for key, _zh in STATEMENT_COLUMNS:
            v = ln[key]
            if key in ("base", "amount"):
                v = Decimal(v)
            elif key == "rate":
                v = "" if v is None else Decimal(v)
            elif key == "met":
                v = "是" if v else "否"
            elif key == "inputs":
                v = "; ".join(f"{k}={val}" for k, val in v.items())
            row.append(v)
        out.append(row)
    out.append(["", "", "", "", "total", "合计", "", "", Decimal(st["total"]), "", ", ".join(st["rule_versions"]), ""])
    return out


def statement_csv(st: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    money_cols = {i for i, (k, _zh) in enumerate(STATEMENT_COLUMNS) if k in ("base", "amount")}
    for row in statement_table(st):
        w.writerow(
            [
                (f"{v:.2f}" if i in money_cols else f"{v.normalize():f}") if isinstance(v, Decimal) else v
                for i, v in enumerate(row)
            ]
        )
    return "\ufeff" + buf.getvalue()  # a BOM so Excel and WPS read the Chinese as UTF-8


def statement_xlsx(st: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.create_sheet(index=0)
    wb.remove(wb.worksheets[1])  # the default empty sheet
    ws.title = f"{st['distributor_id']} {st['month']}"[:31]
    for r, row in enumerate(statement_table(st), 1):
        ws.append(row)
        for c, v in enumerate(row, 1):
            if isinstance(v, Decimal):
                ws.cell(r, c).number_format = "#,##0.00" if STATEMENT_COLUMNS[c - 1][0] != "rate" else "0.####%"
        if r == 1 or r == len(st["lines"]) + 2:
            for c in range(1, len(row) + 1):
                ws.cell(r, c).font = Font(bold=True)
    for col, width in zip("ABCDEFGHIJKL", (10, 9, 9, 6, 36, 30, 16, 9, 14, 9, 14, 60), strict=True):
        ws.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


LEVELS = {"region": "region", "product_line": "product_line_id", "rep": "rep_id"}


def deliverable(
    client: Any, scope: Scope, by: str = "region", region: str | None = None, product_line: str | None = None
) -> dict[str, Any]:
    """Raw and deliverable new contract value grouped at one level of region -> product line
    -> rep (filtered by the levels above), with what each exclusion took away."""
    cond, params = scope
    where = [cond]
    if region:
        where.append("region = {region:String}")
        params = {**params, "region": region}
    if product_line:
        where.append("product_line_id = {pl:String}")
        params = {**params, "pl": product_line}
    col = LEVELS[by]
    rows = _rows(
        client,
        f"SELECT {col} AS key, sum(amount) AS raw, sumIf(amount, deliverable = 1) AS deliverable, "  # noqa: S608  # fixed fragments; values are parameters
        "sumIf(amount, repeat_customer = 1) AS repeat_orders, "
        "sumIf(amount, repeat_customer = 0 AND scheduled_for_production = 0) AS unscheduled, "
        "sumIf(amount, repeat_customer = 0 AND scheduled_for_production = 1 AND cash = 0) AS non_cash, "
        "uniqExact(order_id) AS orders "
        f"FROM money_orders FINAL WHERE {' AND '.join(where)} GROUP BY key ORDER BY raw DESC, key",
        params,
    )
    total_raw = sum((Decimal(r["raw"]) for r in rows), Decimal(0))
    total_del = sum((Decimal(r["deliverable"]) for r in rows), Decimal(0))
    for r in rows:
        for k in ("raw", "deliverable", "repeat_orders", "unscheduled", "non_cash"):
            r[k] = _money(r[k])
        r["orders"] = int(r["orders"])
    return {
        "by": by,
        "region": region,
        "product_line": product_line,
        "raw": _money(total_raw),
        "deliverable": _money(total_del),
        "gap_pct": round(float((total_raw - total_del) / total_raw * 100), 1) if total_raw else 0.0,
        "items": rows,
    }


def forecast_accuracy(client: Any, scope: Scope, by: str = "rep") -> dict[str, Any]:
    """Per rep (or region) and month: forecasts whose horizon is over against the collections
    the rep actually received within each forecast's horizon."""
    cond, params = scope
    col = "rep_id" if by == "rep" else "region"
    high = client.query("SELECT max(paid_at) FROM money_payments FINAL").result_rows[0][0]
    if high is None:
        return {"by": by, "as_of": None, "items": [], "overall": None}
    rows = _rows(
        client,
        f"SELECT {col} AS key, toStartOfMonth(toTimeZone(made_at, 'Asia/Shanghai')) AS month, "  # noqa: S608  # fixed fragments; values are parameters
        "count() AS forecasts, sum(amount) AS forecast, sum(collected) AS collected FROM ("
        "  SELECT f.forecast_id AS forecast_id, any(f.rep_id) AS rep_id, any(f.region) AS region, "
        "  any(f.amount) AS amount, "
        "  any(f.made_at) AS made_at, sumIf(p.amount, p.paid_at > f.made_at "
        "    AND p.paid_at <= f.made_at + toIntervalDay(f.horizon_days)) AS collected "
        "  FROM money_forecasts AS f FINAL LEFT JOIN (SELECT rep_id, amount, paid_at FROM money_payments FINAL) AS p "
        "  ON p.rep_id = f.rep_id "
        "  WHERE f.made_at + toIntervalDay(f.horizon_days) <= {high:DateTime64(3)} "
        "  GROUP BY f.forecast_id"
        f") WHERE {cond} GROUP BY key, month ORDER BY key, month",
        {**params, "high": high},
    )
    total_f = sum((Decimal(r["forecast"]) for r in rows), Decimal(0))
    total_c = sum((Decimal(r["collected"]) for r in rows), Decimal(0))
    for r in rows:
        f, c = Decimal(r["forecast"]), Decimal(r["collected"])
        r["accuracy"] = round(float(c / f), 3) if f else None
        r["forecast"], r["collected"] = _money(f), _money(c)
        r["month"] = r["month"].isoformat()[:7]
        r["forecasts"] = int(r["forecasts"])
    return {
        "by": by,
        "as_of": _iso(high),
        "overall": round(float(total_c / total_f), 3) if total_f else None,
        "forecast": _money(total_f),
        "collected": _money(total_c),
        "items": rows,
    }


def tender(client: Any, scope: Scope, now: datetime, hospital: str | None = None) -> list[dict[str, Any]]:
    """Per hospital in scope, over the 12 months before ``now``: deliveries on time of all, and
    the median and p90 hours from a fault report to the first remote response."""
    cond, params = scope
    since = now - timedelta(days=365)
    where = [cond, "delivered_at >= {since:DateTime64(3)}", "hospital_account_id != ''"]
    if hospital:
        where.append("hospital_account_id = {h:String}")
    params = {**params, "since": since, "h": hospital or ""}
    deliveries = _rows(
        client,
        "SELECT hospital_account_id, count() AS deliveries, sum(on_time) AS on_time, "  # noqa: S608  # fixed fragments; values are parameters
        f"max(days_late) AS worst_days_late FROM deliveries FINAL WHERE {' AND '.join(where)} "
        "GROUP BY hospital_account_id ORDER BY hospital_account_id",
        params,
    )
    tickets = {
        r["hospital_account_id"]: r
        for r in _rows(
            client,
            "SELECT hospital_account_id, count() AS faults, quantileExact(0.5)(hours) AS median_hours, "
            "quantileExact(0.9)(hours) AS p90_hours FROM ("
            "  SELECT ticket_id, any(hospital_account_id) AS hospital_account_id, "
            "  dateDiff('second', minIf(at, step = 'fault_reported'), "
            "  minIf(at, step = 'first_remote_response')) / 3600 AS hours "
            "  FROM service_tickets FINAL GROUP BY ticket_id "
            "  HAVING countIf(step = 'fault_reported') > 0 AND countIf(step = 'first_remote_response') > 0 "
            "  AND minIf(at, step = 'fault_reported') >= {since:DateTime64(3)}"
            ") GROUP BY hospital_account_id",
            {"since": since},
        )
    }
    out = []
    for d in deliveries:
        t = tickets.get(d["hospital_account_id"], {})
        n = int(d["deliveries"])
        out.append(
            {
                "hospital_account_id": d["hospital_account_id"],
                "deliveries": n,
                "on_time": int(d["on_time"]),
                "on_time_rate": round(int(d["on_time"]) / n, 3) if n else None,
                "worst_days_late": int(d["worst_days_late"]),
                "faults": int(t.get("faults", 0)),
                "median_response_hours": round(float(t["median_hours"]), 1) if t else None,
                "p90_response_hours": round(float(t["p90_hours"]), 1) if t else None,
                "since": since.date().isoformat(),
            }
        )
    return out


TENDER_COLUMNS = (
    ("hospital_account_id", "医院"),
    ("since", "统计起始日"),
    ("deliveries", "交付次数"),
    ("on_time", "按期交付"),
    ("on_time_rate", "按期交付率"),
    ("worst_days_late", "最长延迟（天）"),
    ("faults", "故障报修"),
    ("median_response_hours", "首次远程响应中位数（小时）"),
    ("p90_response_hours", "首次远程响应 P90（小时）"),
)


def tender_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([zh for _k, zh in TENDER_COLUMNS])
    for r in rows:
        w.writerow(["" if r[k] is None else r[k] for k, _zh in TENDER_COLUMNS])
    return "\ufeff" + buf.getvalue()
