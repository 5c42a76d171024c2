"""Issue 14 end to end: a simulated B2B book with its money side, through the real Kafka,
worker, sink and chDB, read through the API with finance, a sales manager and a rep's keys.
The simulator's truth (the colour each contract's story ends in) is written from its scenario,
not from the matching code."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pipeline.api.keys import KeyStore
from pipeline.deals.simulate import Book, generate_crm
from pipeline.infra import kafka_admin, store
from pipeline.infra.settings import Settings
from pipeline.money import rebates, reports
from pipeline.money.simulate import MoneyBook
from tests.integration.conftest import ServeRunner, WorkerProcess, free_port
from tests.integration.helpers import send

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SHAPE = {"days": 150, "deals": 260, "hospitals": 60, "reps": 10}


@dataclass
class Finance:
    url: str
    db: Any
    keys: dict[str, str]
    truth: dict[str, str]
    rep: str

    def get(self, who: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {self.keys[who]}"}, timeout=30, **kw)


@pytest.fixture(scope="module")
def finance(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finance]:
    tmp = tmp_path_factory.mktemp("finance")
    tag = uuid.uuid4().hex[:8]
    s = base_settings.with_(
        topic_prefix=f"t{tag}-",
        clickhouse_database=f"t_{tag}",
        api_port=free_port(),
        keys_file=tmp / "keys.json",
        model_dir=tmp / "models",
    )
    kafka_admin.ensure_topics(s)
    send(s, list(generate_crm(8, now=NOW, **SHAPE)))
    book = Book(8, now=NOW, **SHAPE)
    truth = MoneyBook(book, 8).truth()
    worker = WorkerProcess(s, tmp / "worker.log").start()
    server = ServeRunner(s).start()
    db = store.connect(s)
    try:
        assert kafka_admin.wait_drained(s, timeout=240), "pipeline did not drain"
        rep = str(
            db.query("SELECT rep_id FROM money_orders FINAL GROUP BY rep_id ORDER BY count() DESC LIMIT 1").result_rows[
                0
            ][0]
        )
        ks = KeyStore(s.keys_file)
        keys = {
            "finance": ks.create("财务", "finance")[0],
            "east": ks.create("华东销售经理", "sales_manager", region="华东")[0],
            "rep": ks.create("销售", "sales_rep", rep_id=rep)[0],
            "shop": ks.create("店长", "store_manager", stores=["S-SH-001"])[0],
        }
        yield Finance(server.url, db, keys, truth, rep)
    finally:
        server.stop()
        worker.stop()
        db.close()


def board(f: Finance, who: str) -> dict[str, str]:
    out: dict[str, str] = {}
    offset = 0
    while True:
        resp = f.get(who, "/api/money/match", params={"limit": 100, "offset": offset})
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out.update({r["contract_id"]: r["status"] for r in page["items"]})
        offset += 100
        if offset >= page["total"]:
            return out


def test_the_match_board_gives_every_settled_contract_the_colour_of_its_story(finance: Finance) -> None:
    seen = board(finance, "finance")
    assert len(finance.truth) >= 30 and set(finance.truth.values()) == {"green", "yellow", "red"}
    assert {c: seen.get(c) for c in finance.truth} == finance.truth
    counts = finance.get("finance", "/api/money/match").json()["counts"]
    assert sum(counts.values()) == len(seen) and counts["red"] >= 1 and counts["yellow"] >= 1
    reds = finance.get("finance", "/api/money/match", params={"status": "red"}).json()["items"]
    assert all(r["status"] == "red" and r["reasons"] for r in reds)
    # the live rebate estimate is visible on each contract's order: the quarter to date it left
    shown = [
        r
        for r in finance.get("finance", "/api/money/match", params={"limit": 100}).json()["items"]
        if r["order_amount"]
    ]
    assert shown and all(r["rebate_estimate"] for r in shown)
    one = shown[0]["rebate_estimate"]
    stored = finance.db.query(
        "SELECT toString(estimate) FROM rebate_estimates FINAL WHERE order_id = {o:String}",
        parameters={"o": one["order_id"]},
    ).result_rows
    assert Decimal(stored[0][0]) == Decimal(one["estimate"]) and one["rule_version"] == rebates.shipped().rules.version


def test_sales_people_see_their_own_contracts_and_shops_none(finance: Finance) -> None:
    mine = finance.get("rep", "/api/money/match", params={"limit": 100}).json()["items"]
    assert mine and {r["rep_id"] for r in mine} == {finance.rep}
    east = finance.get("east", "/api/money/match", params={"limit": 100}).json()["items"]
    assert east and {r["region"] for r in east} == {"华东"}
    assert finance.get("shop", "/api/money/match").status_code == 403
    assert finance.get("rep", "/api/money/statements").status_code == 403  # statements are finance's


def test_a_statement_downloads_as_csv_and_xlsx_and_equals_its_replay_from_the_events(finance: Finance) -> None:
    listed = finance.get("finance", "/api/money/statements").json()
    assert listed
    latest = listed[0]
    d, m = latest["distributor_id"], latest["month"]
    st = finance.get("finance", f"/api/money/statements/{d}/{m}").json()
    assert [ln["rule"] for ln in st["lines"]][:3] == ["quarterly_tier", "new_product_bonus", "payment_timeliness_bonus"]
    assert st["rule_versions"] == [rebates.shipped().rules.version]
    replay = reports.replay_statement(finance.db, d, m, rebates.shipped().rules)
    assert [(ln["rule"], ln["amount"]) for ln in replay["lines"]] == [(ln["rule"], ln["amount"]) for ln in st["lines"]]
    assert replay["total"] == st["total"]
    text = finance.get("finance", f"/api/money/statements/{d}/{m}", params={"fmt": "csv"}).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["经销商", "月份", "季度"] and rows[-1][5] == "合计" and rows[-1][8] == st["total"]
    from openpyxl import load_workbook

    xlsx = finance.get("finance", f"/api/money/statements/{d}/{m}", params={"fmt": "xlsx"})
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    cells = [[c.value for c in row] for row in ws.iter_rows()]
    assert cells[1][4] == "quarterly_tier" and Decimal(str(cells[-1][8])) == Decimal(st["total"])
    assert finance.get("finance", f"/api/money/statements/{d}/1999-01").status_code == 422
    assert finance.get("finance", f"/api/money/statements/{d}/2020-01").status_code == 404


def test_deliverable_value_drills_down_and_shows_what_each_exclusion_took(finance: Finance) -> None:
    top = finance.get("finance", "/api/money/deliverable").json()
    raw, deliverable = Decimal(top["raw"]), Decimal(top["deliverable"])
    assert raw > deliverable > 0 and top["gap_pct"] > 0
    for item in top["items"]:
        parts = sum(Decimal(item[k]) for k in ("deliverable", "repeat_orders", "unscheduled", "non_cash"))
        assert parts == Decimal(item["raw"])  # every yuan is deliverable or excluded for one reason
    region = top["items"][0]["key"]
    lines = finance.get("finance", "/api/money/deliverable", params={"by": "product_line", "region": region}).json()
    assert sum(Decimal(i["raw"]) for i in lines["items"]) == Decimal(top["items"][0]["raw"])
    pl = lines["items"][0]["key"]
    reps = finance.get(
        "finance", "/api/money/deliverable", params={"by": "rep", "region": region, "product_line": pl}
    ).json()
    assert sum(Decimal(i["raw"]) for i in reps["items"]) == Decimal(lines["items"][0]["raw"])
    mine = finance.get("rep", "/api/money/deliverable", params={"by": "rep"}).json()
    assert [i["key"] for i in mine["items"]] == [finance.rep]


def test_forecast_accuracy_is_collections_within_the_horizon_over_the_forecast(finance: Finance) -> None:
    acc = finance.get("finance", "/api/money/forecast").json()
    assert acc["items"] and acc["overall"] is not None
    one = acc["items"][0]
    assert one["accuracy"] == round(float(Decimal(one["collected"]) / Decimal(one["forecast"])), 3)
    # reps forecast with their own optimism (0.95-1.6x what falls due): collections fall short
    assert 0.2 < acc["overall"] < 1.05
    by_region = finance.get("finance", "/api/money/forecast", params={"by": "region"}).json()
    assert Decimal(by_region["forecast"]) == Decimal(acc["forecast"])


def test_tender_evidence_per_hospital_exports_as_csv(finance: Finance) -> None:
    rows = finance.get("finance", "/api/money/tender").json()
    assert rows and all(0 <= r["on_time_rate"] <= 1 for r in rows)
    with_faults = [r for r in rows if r["faults"]]
    assert with_faults and all(r["p90_response_hours"] >= r["median_response_hours"] > 0 for r in with_faults)
    h = with_faults[0]["hospital_account_id"]
    one = finance.get("finance", "/api/money/tender", params={"hospital": h}).json()
    assert [r["hospital_account_id"] for r in one] == [h]
    text = finance.get("finance", "/api/money/tender", params={"hospital": h, "fmt": "csv"}).content.decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][0] == "医院" and table[1][0] == h


def test_the_money_console_in_a_real_browser_at_tablet_widths(finance: Finance) -> None:
    """Finance logs in, filters the match board to red, opens a statement and downloads it as
    XLSX, drills the deliverable value down a level; at 1180 and 768 px, no sideways scroll.
    Screenshots go to artifacts/."""
    from playwright.sync_api import expect, sync_playwright

    from tests.integration.test_api import ARTIFACTS, CHROMIUM

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for width in (1180, 768):
            page = browser.new_page(viewport={"width": width, "height": 900}, locale="zh-CN", accept_downloads=True)
            page.goto(finance.url + "/")
            page.fill("#key", finance.keys["finance"])
            page.click("#login-button")
            expect(page.locator("nav #nav-money")).to_have_class("active")
            expect(page.locator("#match h2")).to_have_text("三单匹配（销售-回款-开票）")
            page.locator("#match-chips button", has_text="红").click()
            expect(page.locator("#match-chips button.on")).to_contain_text("红")
            assert all(
                "红" in t for t in page.locator("#match-table tr[data-contract] td:nth-child(2)").all_inner_texts()
            )
            options = page.locator("#statement-pick option").all()
            page.select_option("#statement-pick", options[1].get_attribute("value") or "")
            expect(page.locator("#statement-table tr")).to_have_count(5)  # header, three rules, one condition
            with page.expect_download() as dl:
                page.get_by_text("下载 XLSX").click()
            assert dl.value.suggested_filename.endswith(".xlsx")
            page.locator("#deliverable-table a").first.click()
            expect(page.locator("#deliverable-table th").first).to_have_text("产品线")
            wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"the page scrolls sideways by {wide}px at {width}px"
            page.screenshot(path=str(ARTIFACTS / f"console-money-{width}.png"), full_page=True)
            page.close()
        browser.close()
