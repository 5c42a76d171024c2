"""The read API (FastAPI, OpenAPI at /openapi.json) and the zh-CN console at /.

Runs inside `serve`, sharing the store's single thread (chDB allows one process per
folder), so it works the same on the embedded default and on a ClickHouse server.
Every /api and /metrics request needs ``Authorization: Bearer <key>``; what a key may see
comes from its record, never from the path or query.
"""

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal
from urllib.parse import quote

import segno
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from nlp.pii import Pii
from pipeline.api import deals as deal_queries
from pipeline.api import queries
from pipeline.api.guard import Guard, LoginThrottle
from pipeline.api.keys import ROLE_ZH, KeyStore, Pairings, Principal
from pipeline.health.alerts import ALLOWED_FROM
from pipeline.money import reports as money_reports

AFTER = {"acknowledge": "acknowledged", "resolve": "resolved"}

Db = Callable[..., Awaitable[Any]]  # run fn(client, *args) on the store's thread
MAX_PAGE = 100
CustomerId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
AlertId = Annotated[str, Path(min_length=12, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class RateLimiter:
    """Token bucket per key: ``rate`` requests/s, bursts up to ``burst``."""

    def __init__(self, rate: float = 20.0, burst: float = 40.0) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            return False
        self.buckets[key] = (tokens - 1.0, now)
        return True


class ActionBody(BaseModel):
    note: str = Field(default="", max_length=500)


Code = Annotated[str, Field(min_length=8, max_length=20, pattern=r"^[A-Za-z0-9 -]+$")]
Text = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f<>]+$")]
Ident = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")]


class PairingOffer(BaseModel):
    """What an admin fills in to pair a tablet: who will use it and what they may read."""

    name: Text
    role: Literal["store_manager", "sales_rep", "sales_manager", "cs", "finance", "ops"]
    stores: list[Ident] = Field(default_factory=list, max_length=20)
    rep_id: Ident = ""
    specialist_id: Ident = ""
    region: Annotated[str, Field(max_length=10)] = ""


class PairingClaim(BaseModel):
    code: Code
    device: Text


class Accepted(BaseModel):
    status: Literal["accepted"]
    alert_id: str
    action: str
    by: str


def attachment(name: str, ext: str) -> dict[str, str]:
    """A download's Content-Disposition: an ASCII name for old clients and the real one
    (a hospital's Chinese name) percent-encoded (RFC 6266); a header takes latin-1 only."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "download"
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}.{ext}\"; filename*=UTF-8''{quote(name)}.{ext}"}


def create_api(
    *,
    db: Db,
    keys: KeyStore,
    pii: Pii,
    send_action: Callable[[str, str, str, str], Awaitable[Any]],
    lag_report: Callable[[], dict[str, Any]],
    metrics_registry: Any,
    freshness: dict[str, float],
    limiter: RateLimiter | None = None,
    model_dir: FsPath | None = None,
) -> FastAPI:
    app = FastAPI(
        title="salespulse",
        version="1",
        description="Customer health, note tags, recommendations and alerts, scoped by the caller's key.",
        docs_url=None,  # Swagger UI and ReDoc load their assets from a CDN: nothing external here
        redoc_url=None,
    )
    app.add_middleware(Guard)
    bearer = HTTPBearer(auto_error=False)
    rl = limiter or RateLimiter()
    throttle = LoginThrottle()

    async def principal(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        client = request.client.host if request.client else "?"
        if throttle.blocked(client):
            raise HTTPException(429, "too many failed logins: wait a minute", headers={"Retry-After": "60"})
        if creds is None or not creds.credentials:
            raise HTTPException(401, "missing bearer key", headers={"WWW-Authenticate": "Bearer"})
        p = keys.authenticate(creds.credentials)
        if p is None:
            throttle.failed(client)
            raise HTTPException(401, "unknown or revoked key", headers={"WWW-Authenticate": "Bearer"})
        if not rl.allow(p.key_id):
            raise HTTPException(429, "too many requests", headers={"Retry-After": "1"})
        return p

    Who = Annotated[Principal, Depends(principal)]

    def need(p: Principal, *roles: str) -> None:
        if p.role not in roles:
            raise HTTPException(403, f"role {p.role} may not use this endpoint")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """What was wrong and where, never the input itself (it may be 30 MB, or personal)."""
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:  # no stack traces to callers
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)

    @app.get("/api/me")
    async def me(p: Who) -> dict[str, Any]:
        return {
            "name": p.name,
            "role": p.role,
            "role_zh": ROLE_ZH[p.role],
            "stores": list(p.stores),
            "rep_id": p.rep_id,
            "specialist_id": p.specialist_id,
            "region": p.region,
        }

    pairings = Pairings(keys)
    pair_throttle = LoginThrottle()  # its own: mistyped codes do not lock a store's keys out

    @app.post("/api/pairing", status_code=201)
    async def offer_pairing(body: PairingOffer, request: Request, p: Who) -> dict[str, Any]:
        """An admin's pairing code for a tablet (10 minutes, once), with a QR code of the
        console's address carrying it: the tablet scans or types it, no key to type."""
        need(p, "admin")
        try:
            code, expires = await asyncio.to_thread(
                pairings.offer,
                body.name,
                body.role,
                stores=list(body.stores),
                rep_id=body.rep_id,
                specialist_id=body.specialist_id,
                region=body.region,
                by=p.name,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        url = f"{str(request.base_url).rstrip('/')}/#pair={code}"
        qr = segno.make(url, error="m").svg_data_uri(scale=5, border=2)
        return {"code": code, "expires_at": expires.isoformat(timespec="seconds"), "url": url, "qr": qr}

    @app.post("/api/pairing/claim", status_code=201)
    async def claim_pairing(body: PairingClaim, request: Request) -> dict[str, Any]:
        """A tablet exchanges a live code for its own key (named after the device, revocable)."""
        client = request.client.host if request.client else "?"
        if pair_throttle.blocked(client):
            raise HTTPException(429, "too many failed attempts: wait a minute", headers={"Retry-After": "60"})
        got = await asyncio.to_thread(pairings.claim, body.code, body.device)
        if got is None:
            pair_throttle.failed(client)
            raise HTTPException(400, "配对码无效、已使用或已过期")
        token, rec = got
        return {"key": token, "key_id": rec.key_id, "name": rec.name, "role": rec.role}

    @app.get("/api/keys")
    async def list_keys(p: Who) -> list[dict[str, Any]]:
        """Every key (never its hash): who, role, scope, device, revoked."""
        need(p, "admin")
        out = []
        for r in await asyncio.to_thread(keys.list):
            d = asdict(r)
            del d["sha256"]
            out.append(d)
        return out

    @app.post("/api/keys/{key_id}/revoke", status_code=202)
    async def revoke_key(key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{8}$")], p: Who) -> dict[str, Any]:
        need(p, "admin")
        if not await asyncio.to_thread(keys.revoke, key_id):
            raise HTTPException(404, "no such key")
        return {"key_id": key_id, "revoked": True}

    @app.get("/api/customers/{customer_id}")
    async def customer(customer_id: CustomerId, p: Who) -> dict[str, Any]:
        need(p, "admin", "store_manager", "sales_rep", "cs")
        out = await db(queries.customer, p, customer_id, datetime.now(UTC))
        if out is None:
            raise HTTPException(404, "no such customer")
        return dict(out)

    @app.get("/api/customers")
    async def list_customers(
        p: Who,
        band: Literal["healthy", "watch", "at_risk"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        """The customers in scope, lowest score first, with the total and the count per band."""
        need(p, "admin", "store_manager", "sales_rep", "cs")
        return dict(await db(queries.customers, p, band, limit, offset))

    @app.get("/api/stores/{store_id}/dashboard")
    async def dashboard(
        store_id: CustomerId, p: Who, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
    ) -> dict[str, Any]:
        need(p, "admin", "store_manager")
        out = await db(queries.dashboard, p, store_id, datetime.now(UTC), limit)
        if out is None:
            raise HTTPException(404, "no such store")
        return dict(out)

    @app.get("/api/alerts")
    async def list_alerts(
        p: Who,
        status: Literal["open", "acknowledged", "resolved", "suppressed"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        rule: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
        store: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
        assignee: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
        sort: Literal["newest", "oldest", "severity", "score"] = "newest",
    ) -> dict[str, Any]:
        """A page of alerts in scope with filters (status, rule, store, assignee), a sort, the
        total and the count per status."""
        need(p, "admin", "store_manager", "sales_rep", "cs")
        page = functools.partial(queries.alerts, rule=rule, store_id=store, assignee=assignee, sort=sort)
        return dict(await db(page, p, status, limit, offset))

    # Transitions accepted but not stored yet: alert id -> (stored version then, status it leads
    # to). The worker applies an action a moment later, so without this four concurrent
    # resolves all read "open" and all got 202; now the first wins and the rest get 409.
    accepted: dict[str, tuple[int, str]] = {}
    act_lock = asyncio.Lock()

    async def act(alert_id: str, verb: str, body: ActionBody, p: Principal) -> Accepted:
        need(p, "admin", "store_manager", "cs")
        async with act_lock:
            a = await db(queries.alert, p, alert_id)
            if a is None:
                raise HTTPException(404, "no such alert")
            status = a["status"]
            ahead = accepted.get(alert_id)
            if ahead is not None and ahead[0] == a["version"]:
                status = ahead[1]  # an accepted action the worker has not stored yet
            if status not in ALLOWED_FROM[verb]:  # the same rule the health agent applies
                raise HTTPException(409, f"alert is {status}: cannot {verb}")
            by = p.specialist_id or p.name
            await send_action(alert_id, verb, by, body.note)
            accepted[alert_id] = (int(a["version"]), AFTER[verb])
            if len(accepted) > 10_000:
                del accepted[next(iter(accepted))]  # the oldest: stored long ago
        return Accepted(status="accepted", alert_id=alert_id, action=verb, by=by)

    @app.post("/api/alerts/{alert_id}/acknowledge", status_code=202)
    async def acknowledge(alert_id: AlertId, p: Who, body: ActionBody | None = None) -> Accepted:
        return await act(alert_id, "acknowledge", body or ActionBody(), p)

    @app.post("/api/alerts/{alert_id}/resolve", status_code=202)
    async def resolve(alert_id: AlertId, p: Who, body: ActionBody | None = None) -> Accepted:
        return await act(alert_id, "resolve", body or ActionBody(), p)

    @app.get("/api/search")
    async def search(
        p: Who,
        q: Annotated[str, Query(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    ) -> list[dict[str, Any]]:
        need(p, "admin", "store_manager", "sales_rep", "cs")
        try:
            return list(await db(queries.search, p, q, pii, limit))
        except queries.QuotaExceeded as exc:
            raise HTTPException(429, f"今日手机号查询次数已用完（{exc}）", headers={"Retry-After": "3600"}) from None

    cached: dict[str, Any] = {"mtime": None, "model": None}

    def deal_model() -> Any:
        """The trained close-probability model, if any (a broken file reads as none); read
        again only when `deals train` rewrote it."""
        from pipeline.deals import model

        if model_dir is None:
            return None
        try:
            mtime = (model_dir / model.MODEL_FILE).stat().st_mtime
        except OSError:
            return None
        if mtime != cached["mtime"]:
            try:
                cached["model"] = model.load(model_dir)
            except (ValueError, OSError, KeyError):
                cached["model"] = None
            cached["mtime"] = mtime
        return cached["model"]

    # The B2B book: a rep sees their own deals, a sales manager their region's, an admin all.
    SALES = ("admin", "sales_manager", "sales_rep")
    Stage = Literal["lead", "solution", "quote", "contract", "collection", "won", "lost"]

    @app.get("/api/deals")
    async def deals(
        p: Who,
        stage: Stage | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        need(p, *SALES)
        return dict(await db(deal_queries.deals, p, stage, limit, offset, deal_model()))

    @app.get("/api/deals/funnel")
    async def funnel(p: Who) -> dict[str, Any]:
        need(p, "admin", "sales_manager")
        return dict(await db(deal_queries.funnel, p, model_dir))

    @app.get("/api/deals/coaching")
    async def coaching(p: Who, days: Annotated[int, Query(ge=1, le=365)] = 30) -> list[dict[str, Any]]:
        need(p, "admin", "sales_manager")
        return list(await db(deal_queries.coaching, p, datetime.now(UTC), days))

    @app.get("/api/deals/pushes")
    async def pushes(p: Who, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20) -> list[dict[str, Any]]:
        need(p, *SALES)
        return list(await db(deal_queries.pushes, p, limit))

    @app.get("/api/deals/top3")
    async def top3(p: Who) -> dict[str, Any]:
        need(p, *SALES)
        return dict(await db(deal_queries.top3, p, datetime.now(UTC), deal_model()))

    @app.get("/api/deals/accounts")
    async def graded_accounts(
        p: Who,
        grade: Literal["A", "B", "C"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        need(p, *SALES)
        return dict(await db(deal_queries.accounts, p, grade, limit, offset))

    @app.get("/api/deals/quality")
    async def contact_quality(p: Who) -> dict[str, Any]:
        need(p, "admin", "sales_manager")
        return dict(await db(deal_queries.quality, p))

    @app.get("/api/deals/new-reps")
    async def new_reps(p: Who, days: Annotated[int, Query(ge=1, le=3650)] = 365) -> list[dict[str, Any]]:
        need(p, "admin", "sales_manager")
        return list(await db(deal_queries.new_reps, p, datetime.now(UTC), days))

    @app.get("/api/deals/{opportunity_id}/audit")
    async def deal_audit(opportunity_id: CustomerId, p: Who) -> list[dict[str, Any]]:
        need(p, *SALES)
        out = await db(deal_queries.audit, p, opportunity_id)
        if out is None:
            raise HTTPException(404, "no such deal")
        return list(out)

    # The money side: finance sees every distributor and contract; a sales manager their
    # region's contracts, a rep their own (rebate statements are finance's alone).
    MONEY = ("admin", "finance", "sales_manager", "sales_rep")
    Month = Annotated[str, Path(pattern=r"^20\d\d-(0[1-9]|1[0-2])$")]

    def money_scope(p: Principal) -> tuple[str, dict[str, Any]]:
        if p.role in ("admin", "finance"):
            return "1", {}
        return deal_queries.deal_scope(p)

    @app.get("/api/money/match")
    async def match_board(
        p: Who,
        status: Literal["green", "yellow", "red", "pending"] | None = None,
        distributor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        need(p, *MONEY)
        return dict(await db(money_reports.match_board, money_scope(p), status, distributor, limit, offset))

    @app.get("/api/money/statements")
    async def statements(p: Who) -> list[dict[str, Any]]:
        """The statements on record: distributor, month, total, rule versions."""
        need(p, "admin", "finance")
        return list(await db(money_reports.statements))

    @app.get("/api/money/statements/{distributor}/{month}", response_model=None)
    async def statement(
        distributor: CustomerId, month: Month, p: Who, fmt: Literal["json", "csv", "xlsx"] = "json"
    ) -> dict[str, Any] | Response:
        need(p, "admin", "finance")
        st = await db(money_reports.statement, distributor, month)
        if st is None:
            raise HTTPException(404, "no statement for that distributor and month")
        name = f"rebate-{distributor}-{month}"
        if fmt == "csv":
            return Response(
                money_reports.statement_csv(st).encode("utf-8"),
                media_type="text/csv; charset=utf-8",
                headers=attachment(name, "csv"),
            )
        if fmt == "xlsx":
            return Response(
                money_reports.statement_xlsx(st),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers=attachment(name, "xlsx"),
            )
        return dict(st)

    @app.get("/api/money/deliverable")
    async def deliverable(
        p: Who,
        by: Literal["region", "product_line", "rep"] = "region",
        region: Annotated[str | None, Query(max_length=16)] = None,
        product_line: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        need(p, *MONEY)
        return dict(await db(money_reports.deliverable, money_scope(p), by, region, product_line))

    @app.get("/api/money/forecast")
    async def forecast(p: Who, by: Literal["rep", "region"] = "rep") -> dict[str, Any]:
        need(p, *MONEY)
        return dict(await db(money_reports.forecast_accuracy, money_scope(p), by))

    @app.get("/api/money/tender", response_model=None)
    async def tender(
        p: Who,
        hospital: Annotated[str | None, Query(max_length=64)] = None,
        fmt: Literal["json", "csv"] = "json",
    ) -> list[dict[str, Any]] | Response:
        need(p, *MONEY)
        rows = list(await db(money_reports.tender, money_scope(p), datetime.now(UTC), hospital))
        if fmt == "csv":
            name = f"tender-evidence-{hospital or 'all'}"
            return Response(
                money_reports.tender_csv(rows).encode("utf-8"),
                media_type="text/csv; charset=utf-8",
                headers=attachment(name, "csv"),
            )
        return rows

    @app.get("/api/ops/lag")
    async def lag(p: Who) -> dict[str, Any]:
        need(p, "admin", "ops")
        return await asyncio.to_thread(lag_report)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(p: Who) -> Response:
        need(p, "admin", "ops")
        freshness.update(await db(queries.freshness))
        body = await asyncio.to_thread(generate_latest, metrics_registry)  # may poll Kafka: off the loop
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    static = resources.files("pipeline.api").joinpath("static")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


async def serve_api(app: FastAPI, host: str, port: int, stopping: asyncio.Event) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    await stopping.wait()
    server.should_exit = True
    await task
