"""The floor of this design: an aiohttp app doing only what a ledger in it cannot skip.

    python -m benchmarks.floor --port 8082 --database /tmp/floor.db

`benchmarks.bare` does nothing per request. This app does, per request, the least that
a ledger gateway built like this one (aiohttp on uvloop, the SQLite store, one access
line a request) has to do, and nothing more:

- `POST /invoices/1/payments`: check an api key against a table of known keys, parse
  the JSON body, take the amount as a decimal, and commit one payment, with the
  invoice's kept totals, through the store's writer thread (group commit,
  `synchronous=FULL`); answer 201 with the stored row as JSON.
- `GET /payments/1`: check the key, read the payment's row on the event loop (the
  store's read connection), answer it as JSON.
- `GET /relay/{path}` (with `--backend URL`): check the key, ask the backend for
  `/{path}` with the backend's key through the proxy's own HTTP client
  (`gateway.proxy.httpclient`), and hand its answer back unchanged: a proxy's hop without the
  translation, which only adds to it.

Each request logs one access line through the gateway's own logging. No dialects, no
canonical model, no rules beyond the amount, no limits, metrics, request ids or
idempotency keys. Its rate divided by the bare app's is the most any gateway of this
design could reach; the suite prints it beside the targets.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from aiohttp import web

from benchmarks.bare import serve
from gateway.observability import logs
from gateway.proxy.httpclient import Pool
from gateway.store.sqlite import SQLiteStore

_KEYS = {"bench-key": "bench"}  # api key -> tenant
_COLUMNS = ("id", "invoice_id", "amount", "paid_at", "method", "notes", "created_at")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM payments WHERE id = ? AND tenant = ?"
_INSERT = (
    "INSERT INTO payments (tenant, invoice_id, amount, paid_at, method, notes, settled_cents,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    f" RETURNING {', '.join(_COLUMNS)}"
)
_TOTALS = (
    "UPDATE invoices SET settled_cents = settled_cents + ?, payment_count = payment_count + 1"
    " WHERE id = ? AND tenant = ?"
)
STORE: web.AppKey[SQLiteStore] = web.AppKey("store", SQLiteStore)
BACKEND: web.AppKey[tuple[str, Pool]] = web.AppKey("backend", tuple)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(row: tuple[Any, ...], status: int) -> web.Response:
    body = orjson.dumps(dict(zip(_COLUMNS, row, strict=True)))
    return web.Response(body=body, status=status, content_type="application/json")


def _tenant(request: web.Request) -> str:
    tenant = _KEYS.get(request.headers.get("api-key", ""))
    if tenant is None:
        raise web.HTTPUnauthorized()
    return tenant


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        logs.event(
            "request", method=request.method, path=request.path, status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )  # fmt: skip


async def create(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    try:
        amount = Decimal(str(orjson.loads(await request.read())["amount"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, InvalidOperation) as exc:
        raise web.HTTPBadRequest() from exc
    if not amount.is_finite() or amount <= 0:
        raise web.HTTPUnprocessableEntity()
    now = datetime.now(UTC).isoformat()
    cents = int(amount * 100)

    def write(db: sqlite3.Connection) -> tuple[Any, ...]:
        values = (tenant, 1, str(amount), now, "card", "bench", cents, now, now)
        row: tuple[Any, ...] = db.execute(_INSERT, values).fetchone()
        db.execute(_TOTALS, (cents, 1, tenant))
        return row

    return _answer(await request.app[STORE]._write(write), 201)


async def show(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    store = request.app[STORE]
    row = await store._read(lambda db: db.execute(_SELECT, (1, tenant)).fetchone())
    if row is None:
        raise web.HTTPNotFound()
    return _answer(row, 200)


async def relay(request: web.Request) -> web.Response:
    _tenant(request)
    base, pool = request.app[BACKEND]
    path = "/" + request.match_info["path"]
    answer = await pool.request("GET", base, path, {"api-key": "bench-key"})
    kind = {"Content-Type": answer.headers.get("Content-Type", "application/octet-stream")}
    return web.Response(body=answer.body, status=answer.status, headers=kind)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _seed(db: sqlite3.Connection) -> None:
    """Invoice 1 and payment 1 of tenant `bench`, once."""
    if db.execute("SELECT 1 FROM invoices WHERE id = 1").fetchone():
        return
    now = datetime.now(UTC).isoformat()
    db.execute(
        "INSERT INTO invoices (id, tenant, number, currency, total, issued_on, due_on, draft,"
        " void, marked_paid, created_at, settled_cents, payment_count)"
        " VALUES (1, 'bench', 'F-1', 'EUR', '99000000000', '2026-01-01', '2026-02-01',"
        " 0, 0, 0, ?, 0, 0)",
        (now,),
    )
    db.execute(
        "INSERT INTO payments (id, tenant, invoice_id, amount, paid_at, method, notes,"
        " settled_cents, created_at, updated_at) VALUES (1, 'bench', 1, '1.25', ?, 'card',"
        " 'bench', 125, ?, ?)",
        (now, now, now),
    )


def app(database: str, backend: str | None = None) -> web.Application:
    application = web.Application(middlewares=[access])
    store = SQLiteStore(database, synchronous="FULL")
    application[STORE] = store
    pool = Pool(size=100, connect_timeout=5, timeout=10, max_body=1024 * 1024)
    if backend is not None:
        application[BACKEND] = (backend, pool)
        application.router.add_get("/relay/{path:.+}", relay)

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        await store.open()
        await store._write(_seed)
        yield
        await pool.close()
        await store.close()

    application.cleanup_ctx.append(lifetime)
    application.router.add_post("/invoices/1/payments", create)
    application.router.add_get("/payments/1", show)
    application.router.add_get("/healthz", healthz)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--backend", help="a gateway's base URL, for GET /relay/...")
    args = parser.parse_args()
    logs.setup("text", "info")
    serve(app(args.database, args.backend), args.port)


if __name__ == "__main__":
    main()
