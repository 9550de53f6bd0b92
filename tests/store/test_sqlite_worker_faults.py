"""The SQLite store's worker thread outlives a failing ROLLBACK: 503, then writes work again."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import dialects
from dialects import Format, testing
from dialects.errors import ServiceUnavailable
from dialects.testing import Answer
from gateway.serving.app import create_app
from gateway.store import SQLiteStore

from ..conftest import AiohttpClient, Client
from ..http.wire import make_invoice, state
from ..registry import ALL
from ..support import make_config

# Statements the next connection fails on, once each, as a disk that gave out would.
FAILING: set[str] = set()


class FailingConnection(sqlite3.Connection):
    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql in FAILING:
            FAILING.discard(sql)
            raise sqlite3.OperationalError(f"disk I/O error (injected into {sql})")
        return super().execute(sql, *args)


class FaultyStore(SQLiteStore):
    connection_factory = FailingConnection


@pytest.fixture
async def faulty(aiohttp_client: AiohttpClient, tmp_path: Path) -> AsyncIterator[Client]:
    database = tmp_path / "ledger.db"
    store = FaultyStore(str(database))
    FAILING.clear()
    yield await aiohttp_client(create_app(make_config(f"sqlite:///{database}"), store=store))
    FAILING.clear()


@pytest.mark.parametrize("dialect", ALL)
async def test_a_failed_rollback_is_answered_503_and_later_writes_work(
    faulty: Client, dialect: str
) -> None:
    async with asyncio.timeout(30):  # a dead worker thread would leave this hanging
        invoice = await make_invoice(faulty)
        FAILING.update({"COMMIT", "ROLLBACK"})

        refused = await pay(faulty, dialect, invoice)

        assert refused.status == 503, refused.body
        assert refused.headers["Retry-After"] == "1"
        assert b"Traceback" not in refused.body
        assert refused.body == error_body(dialect, refused.headers["Content-Type"])
        assert not FAILING, "both faults were met"
        assert await state(faulty, invoice) == ("1000.00", "open", 0)

        served = await pay(faulty, dialect, invoice)
        assert served.status in (200, 201), served.body
        assert testing.support(dialect).created(served) > 0
        assert await state(faulty, invoice) == ("900.00", "partial", 1)


async def pay(client: Client, dialect: str, invoice: int) -> Any:
    """A 100.00 create in the dialect's own wire form, as its test support writes it."""
    support = testing.support(dialect)
    request = support.create("acme", invoice, "100.00")
    headers = {**support.credentials("acme"), **request.headers}
    async with client.request("POST", request.path, data=request.body, headers=headers) as r:
        return Answer(r.status, dict(r.headers), await r.read())


def error_body(dialect: str, content_type: str) -> bytes:
    """The 503 in the dialect's own error shape, in the format it answered in."""
    fmt: Format = "xml" if "xml" in content_type else "json"
    error = ServiceUnavailable("The database failed; retry shortly", retry_after=1)
    return dialects.get(dialect).codecs[fmt].encode_error(error).body
