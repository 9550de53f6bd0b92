"""The store contract, on SQLite and on PostgreSQL alike: every operation, the ledger's
locking, migrations and the proxy's id map."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from dialects import listing
from dialects.errors import Conflict, LedgerRefused, NotFound
from dialects.model import Invoice, Method, Payment
from gateway.ledger.rules import check_settles
from gateway.store import (
    BackendRef,
    Change,
    NewInvoice,
    Rule,
    SchemaTooNew,
    Store,
    StoreError,
    open_store,
)
from gateway.store.migrations import MIGRATIONS, VERSIONS_TABLE, latest

pytestmark = pytest.mark.stores
PAID_AT = datetime(2026, 11, 20, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))


def _new(number: str = "INV-1", tenant: str = "acme", total: str = "1000.00") -> NewInvoice:
    return NewInvoice(tenant, number, "EUR", Decimal(total), date(2026, 1, 1), date(2999, 1, 1))


def _payment(invoice: Invoice, amount: str, **extra: Any) -> Payment:
    return Payment(
        tenant=invoice.tenant,
        invoice_id=invoice.id,
        amount=Decimal(amount),
        paid_at=PAID_AT,
        **extra,
    )


def _pay(amount: str, *, refuse: bool = False, mark: bool = False, **extra: Any) -> Rule:
    """A rule recording a payment, refused when asked or when it does not fit."""

    def rule(invoice: Invoice, current: Payment | None) -> Change:
        if refuse:
            raise LedgerRefused("refused on purpose")
        payment = _payment(invoice, amount, **extra)
        check_settles(invoice, payment)
        return Change(marked_paid=mark or invoice.marked_paid, upsert=payment)

    return rule


def _delete(invoice: Invoice, current: Payment | None) -> Change:
    assert current is not None
    return Change(marked_paid=False, delete=current.id)


async def _sql(database: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a query run straight on the test's database, past the store."""
    if database.startswith("sqlite://"):
        with sqlite3.connect(database.removeprefix("sqlite:///")) as db:
            return db.execute(query.replace("$1", "?"), args).fetchall()
    conn = await asyncpg.connect(database)
    try:
        return [tuple(row) for row in await conn.fetch(query, *args)]
    finally:
        await conn.close()


# --- invoices ----------------------------------------------------------------------------


async def test_a_created_invoice_reads_back_whole_and_open(store: Store) -> None:
    created = await store.create_invoice(_new(total="1234.56"))
    found = await store.invoice("acme", created.id)
    assert found == created
    assert (found.number, found.currency, found.total) == ("INV-1", "EUR", Decimal("1234.56"))
    assert (found.issued_on, found.due_on) == (date(2026, 1, 1), date(2999, 1, 1))
    assert found.due_amount == Decimal("1234.56") and found.payment_count == 0
    assert found.created_at.tzinfo is not None


async def test_an_invoice_number_is_unique_per_tenant_only(store: Store) -> None:
    first = await store.create_invoice(_new())
    with pytest.raises(Conflict, match="INV-1 already exists"):
        await store.create_invoice(_new())
    other = await store.create_invoice(_new(tenant="globex"))
    assert other.id != first.id


async def test_an_invoice_is_invisible_to_other_tenants(store: Store) -> None:
    created = await store.create_invoice(_new())
    assert await store.invoice("globex", created.id) is None
    assert await store.invoice("acme", created.id + 1000) is None
    assert await store.owner("invoice", created.id) == "acme"
    assert await store.owner("invoice", created.id + 1000) is None


# --- payments ----------------------------------------------------------------------------


async def test_a_recorded_payment_keeps_every_field_exactly(store: Store) -> None:
    invoice = await store.create_invoice(_new())
    extra: dict[str, Any] = {
        "method": Method.BANK_TRANSFER, "method_label": "Wire", "origin": "harvest",
        "notes": "n", "reference": "r", "tax_withheld": Decimal("1.50"), "fee": Decimal("0.25"),
        "recorded_by": "Owner", "recorded_by_email": "o@example.com", "client_app": "app",
        "notify_customer": True,
    }  # fmt: skip
    stored = await store.apply("acme", invoice.id, _pay("100.10", **extra))
    assert stored is not None and stored.id is not None
    assert stored.amount == Decimal("100.10") and str(stored.amount) == "100.10"
    assert stored.paid_at == PAID_AT and stored.paid_at.utcoffset() == PAID_AT.utcoffset()
    for name, value in extra.items():
        assert getattr(stored, name) == value, name
    assert stored.created_at is not None and stored.created_at == stored.updated_at
    assert await store.payment("acme", stored.id) == stored
    assert await store.payment("globex", stored.id) is None
    assert await store.owner("payment", stored.id) == "acme"
    after = await store.invoice("acme", invoice.id, with_payments=True)
    assert after is not None and after.payments == (stored,)
    assert after.due_amount == Decimal("898.15") and after.payment_count == 1


async def test_invoices_are_read_many_at_once_however_many_are_named(store: Store) -> None:
    """A list's invoices in one read: the tenant's own, by id, their totals as they stand."""
    mine = [await store.create_invoice(_new(f"INV-{n}")) for n in range(3)]
    theirs = await store.create_invoice(_new("INV-9", tenant="globex"))
    await store.apply("acme", mine[1].id, _pay("100.10"))
    # More ids than one SQLite statement may take as parameters.
    limit = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    named = [*range(10_000, 10_001 + limit), mine[2].id, theirs.id, mine[1].id, mine[0].id]

    found = await store.invoices("acme", named)

    assert [invoice.id for invoice in found] == [invoice.id for invoice in mine]
    assert [invoice.due_amount for invoice in found] == [
        Decimal("1000.00"), Decimal("899.90"), Decimal("1000.00")
    ]  # fmt: skip
    assert found[1].payment_count == 1 and found[1].number == "INV-1"
    assert await store.invoices("acme", []) == []


async def _listed_payments(store: Store, count: int) -> tuple[Invoice, list[Payment]]:
    invoice = await store.create_invoice(_new(total="100000.00"))
    made = [await store.apply("acme", invoice.id, _pay(f"{n}.50")) for n in range(1, count + 1)]
    return invoice, [payment for payment in made if payment is not None]


@pytest.mark.parametrize(
    ("limit", "offset", "window"),
    [
        (None, 0, slice(None)),
        (2, 0, slice(0, 2)),
        (None, 3, slice(3, None)),
        (2, 1, slice(1, 3)),
        (99, 1, slice(1, None)),
        (None, 5, slice(5, None)),
        (2, 50, slice(50, 52)),
    ],
)
async def test_a_listing_pages_in_the_store_by_id(
    store: Store, limit: int | None, offset: int, window: slice
) -> None:
    invoice, made = await _listed_payments(store, 5)
    columns = ("id", "amount", "paid_at", "method", "notify_customer")

    rows = await store.listing("acme", invoice.id, columns, limit=limit, offset=offset)

    assert rows is not None
    assert [row[0] for row in rows] == [payment.id for payment in made][window]
    for row, payment in zip(rows, made[window], strict=True):
        shown = listing.payment_of(columns, row)
        assert (shown.amount, shown.paid_at) == (payment.amount, payment.paid_at)
        assert shown.paid_at is not None and shown.paid_at.utcoffset() == PAID_AT.utcoffset()
        assert (shown.method, shown.notify_customer) == (None, False)


async def test_a_listing_shows_live_payments_of_the_tenants_own_invoice(store: Store) -> None:
    invoice, made = await _listed_payments(store, 3)
    await store.apply("acme", invoice.id, _delete, payment_id=made[1].id)

    rows = await store.listing("acme", invoice.id, ("id",))

    assert rows == [(made[0].id,), (made[2].id,)]
    assert await store.listing("globex", invoice.id, ("id",)) is None
    assert await store.listing("acme", invoice.id + 1000, ("id",)) is None
    with pytest.raises(ValueError, match="not payment columns"):
        await store.listing("acme", invoice.id, ("id", "1; DROP TABLE payments"))


async def test_a_payment_is_replaced_and_deleted_in_place(store: Store) -> None:
    invoice = await store.create_invoice(_new())
    first = await store.apply("acme", invoice.id, _pay("100.00"))
    assert first is not None and first.id is not None

    def revise(invoice: Invoice, current: Payment | None) -> Change:
        assert current == first
        return Change(marked_paid=False, upsert=current.model_copy(update={"amount": Decimal(7)}))

    revised = await store.apply("acme", invoice.id, revise, payment_id=first.id)
    assert revised is not None and revised.id == first.id and revised.amount == Decimal(7)
    assert revised.created_at == first.created_at
    assert await store.apply("acme", invoice.id, _delete, payment_id=first.id) is None
    assert await store.payment("acme", first.id) is None
    assert await store.owner("payment", first.id) is None
    after = await store.invoice("acme", invoice.id, with_payments=True)
    assert after is not None and after.payments == () and after.due_amount == Decimal("1000.00")


async def test_apply_names_what_it_cannot_find(store: Store) -> None:
    invoice = await store.create_invoice(_new())
    other = await store.create_invoice(_new("INV-2"))
    paid = await store.apply("acme", other.id, _pay("1.00"))
    assert paid is not None
    with pytest.raises(NotFound, match="Invoice"):
        await store.apply("acme", invoice.id + 1000, _pay("1.00"))
    with pytest.raises(NotFound, match="Invoice"):
        await store.apply("globex", invoice.id, _pay("1.00"))
    with pytest.raises(NotFound, match="Payment"):
        await store.apply("acme", invoice.id, _delete, payment_id=paid.id)


async def test_marking_paid_is_stored_with_the_payment(store: Store) -> None:
    invoice = await store.create_invoice(_new())
    paid = await store.apply("acme", invoice.id, _pay("10.00", mark=True))
    assert paid is not None
    after = await store.invoice("acme", invoice.id)
    assert after is not None and after.marked_paid and after.status().value == "paid"
    await store.apply("acme", invoice.id, _delete, payment_id=paid.id)
    reopened = await store.invoice("acme", invoice.id)
    assert reopened is not None and not reopened.marked_paid


async def test_refused_writes_roll_back_alone_among_concurrent_ones(store: Store) -> None:
    invoice = await store.create_invoice(_new())
    calls = [
        store.apply("acme", invoice.id, _pay("10.00", refuse=index % 2 == 1)) for index in range(20)
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


async def test_writers_on_separate_connections_never_overpay_an_invoice(
    store: Store, database: str
) -> None:
    """Two stores on one database stand for two processes: the invoice row is the lock."""
    invoice = await store.create_invoice(_new(total="100.00"))
    other = open_store(database)
    await other.open()
    try:
        calls = [
            (store if index % 2 else other).apply("acme", invoice.id, _pay("15.00"))
            for index in range(20)
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await other.close()
    assert sum(isinstance(o, Payment) for o in outcomes) == 6
    assert sum(isinstance(o, LedgerRefused) for o in outcomes) == 14
    after = await store.invoice("acme", invoice.id)
    assert after is not None and after.due_amount == Decimal("10.00")


async def test_a_closed_store_refuses_work(database: str) -> None:
    store = open_store(database)
    with pytest.raises(RuntimeError, match="not open"):
        await store.invoice("acme", 1)


# --- the proxy's id map ------------------------------------------------------------------


async def test_ids_are_minted_once_per_tenant_and_kind_and_stay(store: Store) -> None:
    refs = [BackendRef("b-1"), BackendRef("b-2")]
    first = await store.map_ids("acme", "invoice", refs)
    assert len(set(first)) == 2
    assert await store.map_ids("acme", "invoice", refs[::-1]) == first[::-1]
    assert set(await store.map_ids("globex", "invoice", refs)).isdisjoint(first)
    payment = await store.map_ids("acme", "payment", [BackendRef("b-1")])
    assert payment[0] not in first
    assert await store.backend_ref("acme", "invoice", first[0]) == refs[0]
    assert await store.backend_ref("globex", "invoice", first[0]) is None
    assert await store.backend_ref("acme", "payment", first[0]) is None


async def test_a_payment_first_seen_without_its_invoice_learns_it(store: Store) -> None:
    [local] = await store.map_ids("acme", "payment", [BackendRef("p-9")])
    assert await store.backend_ref("acme", "payment", local) == BackendRef("p-9")
    again = await store.map_ids("acme", "payment", [BackendRef("p-9", parent="i-1")])
    assert again == [local]
    assert await store.backend_ref("acme", "payment", local) == BackendRef("p-9", "i-1")
    assert await store.map_ids("acme", "payment", [BackendRef("p-9")]) == [local]
    assert await store.backend_ref("acme", "payment", local) == BackendRef("p-9", "i-1")


async def test_concurrent_mints_of_one_backend_id_agree(store: Store, database: str) -> None:
    other = open_store(database)
    await other.open()
    try:
        minted = await asyncio.gather(
            *(
                (store if index % 2 else other).map_ids("acme", "invoice", [BackendRef("same")])
                for index in range(10)
            )
        )
    finally:
        await other.close()
    assert len({ids[0] for ids in minted}) == 1


# --- migrations --------------------------------------------------------------------------


async def test_each_migration_applies_once_and_is_recorded(database: str) -> None:
    for _ in range(2):
        store = open_store(database)
        await store.open()
        await store.close()
    rows = await _sql(database, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [m.version for m in MIGRATIONS]


async def test_stores_opening_together_migrate_exactly_once(database: str) -> None:
    stores = [open_store(database) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    invoice = await stores[0].create_invoice(_new())
    assert await stores[-1].invoice("acme", invoice.id) == invoice
    await asyncio.gather(*(s.close() for s in stores))
    rows = await _sql(database, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [m.version for m in MIGRATIONS]


async def test_an_older_sqlite_database_gets_its_invoice_totals_on_upgrade(tmp_path: Any) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(VERSIONS_TABLE)
        for migration in MIGRATIONS[:4]:
            for statement in migration.statements("sqlite"):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (migration.version,))
        db.execute(
            "INSERT INTO invoices (tenant, number, currency, total, issued_on, due_on,"
            " created_at) VALUES ('acme', 'INV-1', 'EUR', '100.00', '2026-01-01',"
            " '2999-01-01', '2026-01-01T00:00:00+00:00')"
        )
        for cents, deleted in ((1000, None), (250, None), (4000, "2026-01-02")):
            db.execute(
                "INSERT INTO payments (tenant, invoice_id, amount, paid_at, settled_cents,"
                " created_at, updated_at, deleted_at) VALUES ('acme', 1, ?, ?, ?, ?, ?, ?)",
                (str(Decimal(cents).scaleb(-2)), PAID_AT.isoformat(), cents, "x", "x", deleted),
            )
    await totals_kept_after_upgrade(f"sqlite:///{path}")


async def totals_kept_after_upgrade(database: str) -> None:
    """An upgraded database whose invoice 1 has live payments of 12.50 in all, two of
    them: its totals as summed on upgrade, then kept by a write."""
    store = open_store(database)
    await store.open()
    try:
        invoice = await store.invoice("acme", 1)
        assert invoice is not None
        assert (invoice.settled, invoice.payment_count) == (Decimal("12.50"), 2)
        await store.apply("acme", 1, _pay("7.50"))
        invoice = await store.invoice("acme", 1)
        assert invoice is not None
        assert (invoice.settled, invoice.payment_count) == (Decimal("20.00"), 3)
    finally:
        await store.close()


async def test_a_database_newer_than_the_code_is_refused(database: str) -> None:
    store = open_store(database)
    await store.open()
    await store.close()
    newer = latest() + 1
    await _sql(database, "INSERT INTO schema_migrations VALUES ($1, 'later')", newer)
    with pytest.raises(SchemaTooNew, match=f"version {newer}, newer than this gateway"):
        await open_store(database).open()


async def test_a_database_that_cannot_be_reached_is_one_masked_line(
    engine: str, make_unreachable: Callable[[], str]
) -> None:
    url = make_unreachable()
    with pytest.raises(StoreError) as raised:
        await open_store(url).open()
    message = str(raised.value)
    assert "\n" not in message and "s3cret" not in message
    if engine == "postgresql":
        assert message.startswith("cannot reach the database postgresql://ghost:***@")


@pytest.fixture
def make_unreachable(engine: str, tmp_path: Any) -> Callable[[], str]:
    def make() -> str:
        if engine == "sqlite":
            blocker = tmp_path / "file"
            blocker.write_text("not a directory")
            return f"sqlite:///{blocker}/ledger.db"
        return "postgresql://ghost:s3cret@127.0.0.1:1/nowhere"

    return make
