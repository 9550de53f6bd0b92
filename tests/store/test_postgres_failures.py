"""PostgreSQL's own failures: a deadlock is retried, an outage is a 503 that heals itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from dialects.model import Invoice, Payment
from gateway.serving.app import create_app
from gateway.store import Change, Store
from gateway.store.migrations import MIGRATIONS, VERSIONS_TABLE

from ..clients import CLIENTS
from ..conftest import AiohttpClient
from ..postgres import Cluster
from ..proxy.test_faults import shaped
from ..support import make_config, new_invoice
from .test_contract import _new, _pay, totals_kept_after_upgrade

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])

UNAVAILABLE = {
    "harvest": (503, "The database is unavailable"),
    "fastbill": (503, "The database is unavailable"),
    "invoiless": (503, "unavailable: The database is unavailable"),
    "urlkey": (503, "Unavailable/unavailable: The database is unavailable"),
}


async def test_a_deadlocked_ledger_write_is_retried_and_stored(store: Store, database: str) -> None:
    """Another session holds the payment and then wants the invoice the write has locked:
    the server aborts the write (it waits the shorter deadlock_timeout), the store runs
    it again once the other session is done, and the caller sees a stored payment."""
    invoice = await store.create_invoice(_new())
    first = await store.apply("acme", invoice.id, _pay("10.00"))
    assert first is not None and first.id is not None
    other = await asyncpg.connect(database)
    await other.execute("SET deadlock_timeout = '10s'")
    await other.execute("BEGIN")
    await other.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", first.id)
    waiting: list[asyncio.Task[None]] = []
    runs = 0

    async def take_the_invoice() -> None:
        await other.execute("SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE", invoice.id)
        await other.execute("COMMIT")

    def revise(locked: Invoice, current: Payment | None) -> Change:
        nonlocal runs
        assert current is not None
        runs += 1
        if not waiting:  # the first run: the other session now queues for the invoice
            waiting.append(asyncio.ensure_future(take_the_invoice()))
        return Change(marked_paid=False, upsert=current.model_copy(update={"amount": Decimal(7)}))

    try:
        revised = await store.apply("acme", invoice.id, revise, payment_id=first.id)
        await waiting[0]
    finally:
        await other.close()
    assert runs == 2
    assert revised is not None and revised.amount == Decimal(7)
    stored = await store.payment("acme", first.id)
    assert stored is not None and stored.amount == Decimal(7)


async def test_the_database_going_away_answers_503_in_every_dialect_until_it_is_back(
    aiohttp_client: AiohttpClient, database: str, postgres: Cluster
) -> None:
    client = await aiohttp_client(create_app(make_config(database)))
    invoice = await new_invoice(client)
    with postgres.down():
        for name, expected in UNAVAILABLE.items():
            reply, _ = await CLIENTS[name](client).create(invoice["id"], "1.00")
            assert shaped(name, reply) == expected
            assert reply.headers["Retry-After"] == "1"
    for name in UNAVAILABLE:
        reply, payment = await CLIENTS[name](client).create(invoice["id"], "1.00")
        assert reply.status == 201, reply.body
        assert await CLIENTS[name](client).get(invoice["id"], payment or 0) is not None


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("'-infinity'", datetime.min.replace(tzinfo=UTC)),
        ("'infinity'", datetime.max.replace(tzinfo=UTC)),
        ("'0001-01-01T00:00:00Z'", datetime.min.replace(tzinfo=UTC)),
        ("'9999-12-31T23:59:59.999999Z'", datetime.max.replace(tzinfo=UTC)),
    ],
)
async def test_the_calendars_edges_are_kept_as_instants_and_infinities_read_as_them(
    store: Store, database: str, stored: str, read: datetime
) -> None:
    """Written at an edge, a payment reads back as that instant, with its zone; a row an
    earlier version stored as an infinity (asyncpg's codec wrote the edges so) too."""
    invoice = await store.create_invoice(_new())

    def on_the_edge(locked: Invoice, current: Payment | None) -> Change:
        edge = Payment(tenant="acme", invoice_id=locked.id, amount=Decimal("10.00"), paid_at=read)
        return Change(marked_paid=False, upsert=edge)

    written = await store.apply("acme", invoice.id, on_the_edge)
    assert written is not None and written.id is not None
    kept = await store.payment("acme", written.id)
    assert kept is not None and kept.paid_at == read and kept.paid_at.tzinfo is not None

    other = await asyncpg.connect(database)
    try:
        infinite = await other.fetchval(f"SELECT isfinite({stored}::timestamptz)")
        await other.execute(f"UPDATE payments SET paid_at = {stored} WHERE id = $1", written.id)
    finally:
        await other.close()

    again = await store.payment("acme", written.id)
    assert again is not None and again.paid_at == read, (infinite, again)
    [listed] = await store.payments("acme", [invoice.id])
    assert listed.paid_at == read


async def test_an_older_database_gets_its_invoice_totals_on_upgrade(database: str) -> None:
    """Migrated before the totals were kept on the invoice row: summed once, then kept."""
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(VERSIONS_TABLE)
        for migration in MIGRATIONS[:6]:
            for statement in migration.statements("postgresql"):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, 'then')", migration.version
            )
        await conn.execute(
            "INSERT INTO invoices (tenant, number, currency, total, issued_on, due_on, created_at)"
            " VALUES ('acme', 'INV-1', 'EUR', 100, '2026-01-01', '2999-01-01', now())"
        )
        for amount, fee, deleted in (("10.00", "0.50", None), ("2.00", "0", None), ("40", "0", 1)):
            await conn.execute(
                "INSERT INTO payments (tenant, invoice_id, amount, fee, paid_at, created_at,"
                " updated_at, deleted_at) VALUES ('acme', 1, $1::numeric, $2::numeric, now(),"
                " now(), now(), CASE WHEN $3::int IS NULL THEN NULL ELSE now() END)",
                amount, fee, deleted,
            )  # fmt: skip
    finally:
        await conn.close()
    await totals_kept_after_upgrade(database)


async def test_closing_outlives_a_listener_that_ended_mid_operation(store: Store) -> None:
    """asyncpg may leave a LISTEN connection's protocol mid-operation when the database
    goes away as the store closes (`InternalClientError`, no connection error): closing
    still ends cleanly, and the listener's error ends with it."""

    async def ended() -> None:
        raise asyncpg.InternalClientError("cannot switch to state 11")

    listening = store._listening  # type: ignore[attr-defined]
    assert listening is not None  # the store opened its LISTEN connection's task
    listening.cancel()
    store._listening = asyncio.create_task(ended())  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    await store.close()
