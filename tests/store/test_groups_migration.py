"""Migration 13 on each store: payments stored before it become groups of their own at
version 0, and are read, changed and grouped as payments made after it."""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal

import asyncpg
import pytest

from dialects import Decoded
from dialects.model import Payment
from gateway.ledger.contract import Principal
from gateway.ledger.rules import Ledger
from gateway.store import NewInvoice, open_store
from gateway.store.migrations import MIGRATIONS, VERSIONS_TABLE

pytestmark = pytest.mark.stores
BEFORE = [m for m in MIGRATIONS if m.version < 13]
WHO = Principal("acme", "canonical", "test")
PAYMENT = (
    "INSERT INTO payments (tenant, invoice_id, amount, paid_at, {extra} created_at,"
    " updated_at, deleted_at) VALUES ('acme', 1, {values})"
)


async def _at_migration_12(database: str, engine: str) -> None:
    """The database as a gateway before migration 13 left it: an invoice of 100.00 with a
    live payment of 10.00 and a deleted one of 5.00 (its totals kept as then)."""
    invoice = (
        "INSERT INTO invoices (tenant, number, currency, total, issued_on, due_on, created_at)"
        " VALUES ('acme', 'OLD-1', 'EUR', {total}, '2026-01-01', '2999-01-01', {at})"
    )
    if engine == "sqlite":
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            db.execute(VERSIONS_TABLE)
            for migration in BEFORE:
                for statement in migration.statements("sqlite"):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (migration.version,))
            db.execute(invoice.format(total="'100.00'", at="'2026-01-01T00:00:00+00:00'"))
            for amount, deleted in (("10.00", "NULL"), ("5.00", "'2026-01-02T00:00:00+00:00'")):
                cents = int(Decimal(amount) * 100)
                at = "'2026-01-01T00:00:00+00:00'"
                db.execute(
                    PAYMENT.format(
                        extra="settled_cents,", values=f"'{amount}', {at}, {cents}, {at}, {at}, "
                        f"{deleted}",
                    )
                )  # fmt: skip
            db.execute("UPDATE invoices SET settled_cents = 1000, payment_count = 1")
        return
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(VERSIONS_TABLE)
        for migration in BEFORE:
            for statement in migration.statements("postgresql"):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, 'then')", migration.version
            )
        await conn.execute(invoice.format(total="100.00", at="now()"))
        for amount, deleted in (("10.00", "NULL"), ("5.00", "now()")):
            await conn.execute(
                PAYMENT.format(extra="", values=f"{amount}, now(), now(), now(), {deleted}")
            )
        await conn.execute("UPDATE invoices SET settled = 10.00, payment_count = 1")
    finally:
        await conn.close()


async def test_payments_made_before_are_groups_of_their_own(database: str, engine: str) -> None:
    await _at_migration_12(database, engine)
    store = open_store(database)
    await store.open()
    try:
        found = await store.payments("acme", deleted=True)
        assert [(p.id, p.group_id, p.version, p.customer, p.voided) for p in found] == [
            (1, 1, 0, None, False),
            (2, 2, 0, None, False),
        ]
        invoice = await store.invoice("acme", 1)
        assert invoice is not None and invoice.customer is None
        ledger = Ledger(store)
        assert [p.id for p in await ledger.get_group(WHO, 1)] == [1]
        change = Decoded(Payment(amount=Decimal("12.00")), frozenset({"amount"}))
        changed = await ledger.update_payment(WHO, 1, change, replace=False, version=0)
        assert (changed.payment.group_id, changed.payment.version) == (1, 1)
        new = await store.create_invoice(
            NewInvoice("acme", "NEW-1", "EUR", Decimal(5), date(2026, 1, 1), date(2999, 1, 1))
        )
        made = await ledger.create_payment(WHO, new.id, Decoded(Payment(), frozenset()))
        assert made.payment.group_id == made.payment.id == 3
        invoice = await store.invoice("acme", 1)
        assert invoice is not None and invoice.due_amount == Decimal("88.00")
    finally:
        await store.close()
