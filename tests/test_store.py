"""The SQLite store: group commit keeps each write's fate its own; migrations are versioned."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dialects.errors import LedgerRefused
from dialects.model import Invoice, Payment
from gateway.store import Change, NewInvoice, Rule, SQLiteStore
from gateway.store.migrations import MIGRATIONS


def _new(number: str = "INV-1") -> NewInvoice:
    return NewInvoice("acme", number, "EUR", Decimal("1000.00"), date(2026, 1, 1), date(2999, 1, 1))


def _pay(amount: str, *, refuse: bool) -> Rule:
    def rule(invoice: Invoice, current: Payment | None) -> Change:
        if refuse:
            raise LedgerRefused("refused on purpose")
        payment = Payment(
            tenant=invoice.tenant,
            invoice_id=invoice.id,
            amount=Decimal(amount),
            paid_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
        return Change(marked_paid=False, upsert=payment)

    return rule


async def test_refused_writes_in_a_group_commit_roll_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "ledger.db"))
    await store.open()
    try:
        invoice = await store.create_invoice(_new())
        calls = [
            store.apply("acme", invoice.id, _pay("10.00", refuse=index % 2 == 1))
            for index in range(20)
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, LedgerRefused)]
        stored = [o for o in outcomes if isinstance(o, Payment)]
        assert len(refused) == 10 and len(stored) == 10
        after = await store.invoice("acme", invoice.id, with_payments=True)
        assert after is not None
        assert after.payment_count == 10
        assert after.due_amount == Decimal("900.00")
        assert sorted(p.id or 0 for p in after.payments) == sorted(p.id or 0 for p in stored)
    finally:
        await store.close()


async def test_each_migration_applies_once_and_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    for _ in range(2):
        store = SQLiteStore(str(path))
        await store.open()
        await store.close()
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert versions == [version for version, _ in MIGRATIONS]


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "ledger.db"))
    with pytest.raises(RuntimeError, match="not open"):
        await store.invoice("acme", 1)
