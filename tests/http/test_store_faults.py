"""The SQLite store's worker thread outlives a failing ROLLBACK: 503, then writes work again."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import dialects
from dialects import Format
from dialects.errors import ServiceUnavailable
from gateway.app import create_app
from gateway.store import SQLiteStore

from ..conftest import AiohttpClient, Client
from ..support import make_config
from .wire import make_invoice, pay, payment_id, state

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


@pytest.mark.parametrize("dialect", sorted(dialects.units()))
async def test_a_failed_rollback_is_answered_503_and_later_writes_work(
    faulty: Client, dialect: str
) -> None:
    async with asyncio.timeout(30):  # a dead worker thread would leave this hanging
        invoice = await make_invoice(faulty)
        FAILING.update({"COMMIT", "ROLLBACK"})

        refused = await pay(faulty, dialect, invoice, "100.00")

        assert refused.status == 503, refused.body
        assert refused.headers["Retry-After"] == "1"
        assert b"Traceback" not in refused.body
        assert refused.body == error_body(dialect, refused.headers["Content-Type"])
        assert not FAILING, "both faults were met"
        assert await state(faulty, invoice) == ("1000.00", "open", 0)

        served = await pay(faulty, dialect, invoice, "100.00")
        assert served.status == 201, served.body
        assert payment_id(dialect, served) > 0
        assert await state(faulty, invoice) == ("900.00", "partial", 1)


def error_body(dialect: str, content_type: str) -> bytes:
    """The 503 in the dialect's own error shape, in the format it answered in."""
    fmt: Format = "xml" if "xml" in content_type else "json"
    error = ServiceUnavailable("The database failed; retry shortly", retry_after=1)
    return dialects.get(dialect).encode_error(error, fmt).body
