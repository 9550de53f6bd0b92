"""The PostgreSQL store: a connection pool, and every ledger write locking its invoice row."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from dialects import Reply
from dialects.errors import Conflict, ServiceUnavailable
from dialects.listing import Row
from dialects.model import Invoice, Method, Payment, currency_exponents
from gateway.store import budgets
from gateway.store import deliveries as hooks
from gateway.store.base import (
    PAYMENT_COLUMNS,
    BackendRef,
    KeyClaim,
    KeyRecord,
    KeyState,
    NewInvoice,
    Plan,
    Planned,
    Seal,
    SingleStep,
    Step,
    Written,
    apply_steps,
    listed_columns,
)
from gateway.store.migrations import VERSIONS_TABLE, StoreError, pending
from gateway.store.outbox import EventPage, NewEvent, Notices, Outbox, stored_event

T = TypeVar("T")
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[Any] | asyncpg.Connection[Any]
log = logging.getLogger("gateway.store")

# Every gateway process migrating one database takes this advisory lock first.
_MIGRATION_LOCK = 0x6761_7465_7761_79  # "gateway"
_CONNECT_TIMEOUT = 5.0
_ATTEMPTS = 5  # for serialisation failures, deadlocks and connections lost before COMMIT
# Every gateway on one database announces the tenants whose events it committed here,
# and listens, so that each wakes its delivery loops at once (see `_listen_forever`).
CHANNEL = "gateway_events"
LISTENER = "gateway-listener"  # the listening connection's application_name
# How often the listening connection is checked, and how long to wait before reconnecting.
_LISTEN_CHECK_SECONDS = 15.0
_LISTEN_RETRY_SECONDS = 1.0

_RETURNED = f"{', '.join(PAYMENT_COLUMNS)}, paid_at_offset"
_SELECT_PAYMENTS = f"SELECT {_RETURNED} FROM payments"
_LIVE = " AND deleted_at IS NULL"
# An invoice's live payments summed are kept on its row (see migration 7).
_INVOICE_COLUMNS = (
    "id", "tenant", "number", "currency", "total", "issued_on", "due_on", "draft", "void",
    "marked_paid", "created_at", "settled", "payment_count", "customer",
)  # fmt: skip
_SELECT_INVOICE = f"SELECT {', '.join(_INVOICE_COLUMNS)} FROM invoices"
# An invoice and its live payments in one statement (one snapshot): a row per payment,
# or one with the payment's columns NULL when it has none.
_SELECT_INVOICE_PAYMENTS = (
    f"SELECT {', '.join(f'i.{name}' for name in _INVOICE_COLUMNS)},"
    f" {', '.join(f'p.{name} AS p_{name}' for name in (*PAYMENT_COLUMNS, 'paid_at_offset'))}"
    " FROM invoices i LEFT JOIN payments p ON p.invoice_id = i.id AND p.deleted_at IS NULL"
    " WHERE i.id = $1 AND i.tenant = $2 ORDER BY p.id"
)
_SELECT_KEY = (
    "SELECT tenant, key, fingerprint, state, owner, lease_until, created_at, expires_at,"
    " status, headers, body FROM idempotency_keys WHERE tenant = $1 AND key = $2"
)
_HELD = "state IN ('pending', 'sent')"
# One ledger write in one call (migration 13's `ledger_write`): the payment's columns in
# this order.
_WRITTEN = (
    "amount", "paid_at", "paid_at_offset", "method", "method_label", "origin", "notes",
    "reference", "tax_withheld", "fee", "recorded_by", "recorded_by_email", "client_app",
    "notify_customer", "account_code", "account_id", "customer",
)  # fmt: skip
_LEDGER_WRITE = (
    "SELECT o_code, o_payment, o_kinds FROM ledger_write("
    + ", ".join(f"${i}" for i in range(1, len(_WRITTEN) + 14))
    + ")"
)
_PLACES = json.dumps(currency_exponents())

# Worth another attempt in a new transaction: the server rolled the first one back.
_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
# The database is out of reach (down, restarting, refusing connections).
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def masked(url: str) -> str:
    """The URL with its password (in the authority or the query) replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        who, where = netloc.rsplit("@", 1)
        if ":" in who:
            netloc = f"{who.split(':', 1)[0]}:***@{where}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="/*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class _PoolBusy(Exception):
    """No connection of the pool came free within the acquire timeout."""


class _CommitUnknown(Exception):
    """The connection broke during COMMIT: the write may or may not have been stored."""


class PostgresStore(SingleStep):
    """Store on a PostgreSQL database, shared by any number of gateway processes.

    Each ledger write runs in one transaction that first locks the invoice's row
    (`SELECT ... FOR UPDATE`), so two writes on one invoice from any two processes
    run one after the other and the second sees the first's payment. A single write
    with a plan is that transaction in one statement, `ledger_write` (migration 11;
    gateway/store/base.py says when the template runs instead). A transaction
    the server aborts as a serialisation failure or deadlock, or one whose connection
    was lost before it committed, is run again; a database out of reach is answered
    503 with Retry-After, and the pool reconnects once it is back.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        acquire_timeout: float = 5.0,
        statement_cache_size: int = 100,
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._acquire_timeout = acquire_timeout
        self._statement_cache_size = statement_cache_size
        self._pool: asyncpg.Pool[Any] | None = None
        self.outbox = Outbox()
        self.notices = Notices()
        self._listening: asyncio.Task[None] | None = None
        self._announced: set[str] = set()
        self._announcing: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Connect and migrate; a StoreError (one line, password masked) if it cannot."""
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                timeout=_CONNECT_TIMEOUT,
                init=_exact_instants,
                reset=_kept,
                statement_cache_size=self._statement_cache_size,
            )
        except (*_UNREACHABLE, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(
                f"cannot reach the database {masked(self._url)}: {_reason(exc)}"
            ) from exc
        try:
            async with pool.acquire() as conn:
                await self._migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool
        self._listening = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        for task in (self._listening, self._announcing):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception as exc:  # closing: what the task met ends with it
                    log.debug("a notice task ended with %s", _reason(exc))
        self._listening = self._announcing = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # --- notices across gateways: LISTEN/NOTIFY ----------------------------------------

    def _committed(self, tenant: str, events: Sequence[NewEvent]) -> None:
        """Count a write's committed events, wake this process's loops of the tenant,
        and announce them to the other processes."""
        self.notices.committed(tenant, events)
        if events and tenant in self.notices.subscribed:
            self._announce(tenant)

    def _woken(self, tenant: str) -> None:
        """Deliveries made due again (an enable, a replay): wake the tenant's loops here
        and in the other processes (a delivery process among them)."""
        self.notices.tell(tenant)
        self._announce(tenant)

    def _announce(self, tenant: str) -> None:
        """NOTIFY the other processes on this database of a tenant's committed events.

        Sent after the commit, not from the writing transaction: PostgreSQL serialises
        the commits of notifying transactions (a database-wide lock held through the
        commit's flush), which would cost concurrent writers their group commit. Tenants
        committed while one NOTIFY is on its way go together in the next; a NOTIFY lost
        with its process leaves the others' polls (`events.poll_seconds`) to find the work.
        Only a tenant with subscriptions in the config is announced: a tenant with no
        webhook and no relay costs its writes no NOTIFY, and a write stays one statement.
        """
        self._announced.add(tenant)
        if self._announcing is None or self._announcing.done():
            self._announcing = asyncio.create_task(self._send_announcements())

    async def _send_announcements(self) -> None:
        while self._announced and self._pool is not None:
            tenants, self._announced = sorted(self._announced), set()
            try:
                async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                    await conn.execute(
                        "SELECT pg_notify($1, tenant) FROM unnest($2::text[]) AS tenant",
                        CHANNEL,
                        tenants,
                    )
            except (*_UNREACHABLE, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.debug("announcing committed events failed: %s", _reason(exc))

    async def _listen_forever(self) -> None:
        """LISTEN on a connection of its own; on a notice, wake that tenant's loops.

        A lost connection is opened again (after a pause); each time it is (re)opened
        every loop is woken once, for the events written while no notice could arrive.
        """
        while True:
            try:
                conn = await asyncpg.connect(
                    self._url,
                    timeout=_CONNECT_TIMEOUT,
                    server_settings={"application_name": LISTENER},
                )
            except (*_UNREACHABLE, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(_LISTEN_RETRY_SECONDS)
                continue
            try:
                await self._listen(conn)
            except (
                *_UNREACHABLE, asyncpg.PostgresError, asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # the connection's protocol left mid-operation
            ) as exc:  # fmt: skip
                log.debug("listening for other gateways' events: %s", _reason(exc))
            finally:
                conn.terminate()
            await asyncio.sleep(_LISTEN_RETRY_SECONDS)

    async def _listen(self, conn: asyncpg.Connection[Any]) -> None:
        """Until `conn` is lost: a connection closed by the server ends at once, a silent
        one at the next check's `SELECT 1`."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        await conn.add_listener(CHANNEL, self._heard)
        self.notices.tell_all()
        while not (conn.is_closed() or lost.is_set()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _LISTEN_CHECK_SECONDS)
            if not lost.is_set():
                await conn.execute("SELECT 1", timeout=_CONNECT_TIMEOUT)

    def _heard(self, conn: object, pid: int, channel: str, tenant: object) -> None:
        self.notices.tell(str(tenant))

    @staticmethod
    async def _migrate(conn: Connection) -> None:
        """Apply the pending migrations under an advisory lock: one process migrates.

        The lock is the transaction's, not the session's: behind a pooler in transaction
        mode a session's statements may run on different server connections."""
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(VERSIONS_TABLE)
            applied = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")]
            for migration in pending(applied):
                for statement in migration.statements("postgresql"):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2)",
                    migration.version,
                    _now().isoformat(),
                )

    # --- transactions, retried -----------------------------------------------------

    async def _run(
        self,
        work: Callable[[Connection], Awaitable[T]],
        *,
        read: Literal["one", "snapshot"] | None = None,
    ) -> T:
        """`work` in one transaction; retried while the server says it may be.

        `read="one"`: one reading statement, needing no transaction of its own;
        `read="snapshot"`: several, seeing one snapshot (repeatable read, read only).
        """
        if self._pool is None:
            raise RuntimeError("store is not open")
        for attempt in range(_ATTEMPTS):
            try:
                async with self._acquired() as conn:
                    if read == "one":
                        return await work(conn)
                    return await _transaction(conn, work, snapshot=read == "snapshot")
            except _PoolBusy as exc:
                log.warning("no free database connection in %s s", self._acquire_timeout)
                raise _unavailable("The database is busy; retry shortly") from exc
            except _RETRYABLE:
                await asyncio.sleep(0.005 * 2**attempt)
            except _CommitUnknown as exc:
                log.warning("database connection lost during COMMIT: %s", exc)
                raise _unavailable("The database connection was lost; retry shortly") from exc
            except _UNREACHABLE as exc:
                await self._pool.expire_connections()
                if attempt >= 1:  # one fresh connection tried already: it is down
                    log.warning("database unavailable: %s", _reason(exc))
                    raise _unavailable("The database is unavailable") from exc
        raise _unavailable("The database is busy; retry shortly")

    @asynccontextmanager
    async def _acquired(self) -> AsyncIterator[Connection]:
        """A connection of the pool, or _PoolBusy once none was free for the acquire timeout
        (every connection busy: waiting longer would only queue more requests behind them)."""
        assert self._pool is not None
        try:
            conn = await self._pool.acquire(timeout=self._acquire_timeout)
        except TimeoutError as exc:
            raise _PoolBusy from exc
        try:
            yield conn
        finally:
            await self._pool.release(conn)

    # --- invoices and payments -----------------------------------------------------

    async def create_invoice(self, new: NewInvoice) -> Invoice:
        async def insert(conn: Connection) -> Invoice:
            invoice_id = await conn.fetchval(
                "INSERT INTO invoices (tenant, number, currency, total, issued_on, due_on, draft,"
                " created_at, backend_id, customer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                " $10) ON CONFLICT (tenant, number) DO NOTHING RETURNING id",
                new.tenant, new.number, new.currency, new.total, new.issued_on, new.due_on,
                new.draft, _now(), new.backend_id, new.customer,
            )  # fmt: skip
            if invoice_id is None:
                raise Conflict(f"Invoice number {new.number} already exists")
            invoice = await _load_invoice(conn, new.tenant, invoice_id)
            assert invoice is not None
            return invoice

        return await self._run(insert)

    async def invoice(
        self, tenant: str, invoice_id: int, *, with_payments: bool = False
    ) -> Invoice | None:
        async def load(conn: Connection) -> Invoice | None:
            return await _load_invoice(conn, tenant, invoice_id, with_payments)

        return await self._run(load, read="one")

    async def invoices(self, tenant: str, invoice_ids: Sequence[int]) -> list[Invoice]:
        async def load(conn: Connection) -> list[Invoice]:
            query = f"{_SELECT_INVOICE} WHERE id = ANY($1::bigint[]) AND tenant = $2 ORDER BY id"
            rows = await conn.fetch(query, list(invoice_ids), tenant)
            return [Invoice.model_construct(payments=(), **dict(row)) for row in rows]

        return await self._run(load, read="one")

    async def payment(
        self, tenant: str, payment_id: int, *, deleted: bool = False
    ) -> Payment | None:
        async def load(conn: Connection) -> Payment | None:
            return await _load_payment(conn, tenant, payment_id, deleted=deleted)

        return await self._run(load, read="one")

    async def payments(
        self,
        tenant: str,
        invoice_ids: Sequence[int] | None = None,
        *,
        deleted: bool = False,
        group_ids: Sequence[int] | None = None,
    ) -> list[Payment]:
        query = f"{_SELECT_PAYMENTS} WHERE tenant = $1{'' if deleted else _LIVE}"
        params: tuple[object, ...] = (tenant,)
        for column, ids in (("invoice_id", invoice_ids), ("group_id", group_ids)):
            if ids is not None:
                params += (list(ids),)
                query += f" AND {column} = ANY(${len(params)}::bigint[])"

        async def load(conn: Connection) -> list[Payment]:
            return [_payment(row) for row in await conn.fetch(f"{query} ORDER BY id", *params)]

        return await self._run(load, read="one")

    async def listing(
        self,
        tenant: str,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row] | None:
        zoned = "paid_at" in columns  # the offset it was given in goes with it
        listed = [*columns, "paid_at_offset"] if zoned else list(columns)
        # One statement: the invoice found (a row, its payment's columns NULL if it has
        # none) and its payments, in one snapshot.
        query = (
            f"SELECT p.listed, {', '.join(f'p.{name}' for name in listed)} FROM invoices i"
            f" LEFT JOIN LATERAL (SELECT TRUE AS listed, id AS listed_order,"
            f" {listed_columns(columns)}{', paid_at_offset' if zoned else ''} FROM payments"
            " WHERE invoice_id = i.id AND deleted_at IS NULL ORDER BY id LIMIT $3 OFFSET $4)"
            " p ON TRUE WHERE i.id = $1 AND i.tenant = $2 ORDER BY p.listed_order"
        )
        paid_at = columns.index("paid_at") if zoned else -1

        async def load(conn: Connection) -> list[Row] | None:
            found = await conn.fetch(query, invoice_id, tenant, limit, offset)
            if not found:
                return None
            rows = [row[1:] for row in found if row[0]]
            return [_zoned(row, paid_at) for row in rows] if zoned else [tuple(r) for r in rows]

        return await self._run(load, read="one")

    async def invoice_id(self, tenant: str, number: str) -> int | None:
        async def find(conn: Connection) -> int | None:
            found = await conn.fetchval(
                "SELECT id FROM invoices WHERE tenant = $1 AND number = $2", tenant, number
            )
            return None if found is None else int(found)

        return await self._run(find, read="one")

    async def apply_many(
        self,
        tenant: str,
        steps: Sequence[Step],
        *,
        each: bool = False,
        seal: Seal | None = None,
    ) -> list[Written]:
        if len(steps) == 1 and not each and seal is None and isinstance(steps[0].rule, Planned):
            planned = await self._planned(tenant, steps[0], steps[0].rule.plan)
            if planned is not None:
                return planned
        appended: list[NewEvent] = []  # the outbox's events, counted once committed

        async def write(conn: Connection) -> list[Written]:
            appended.clear()  # a transaction run again appends them again
            return await apply_steps(_Writes(conn), tenant, steps, each=each, seal=seal,
                                     outbox=self.outbox, appended=appended)  # fmt: skip

        done = await self._run(write)
        self._committed(tenant, appended)
        return done

    async def _planned(self, tenant: str, step: Step, plan: Plan) -> list[Written] | None:
        """The write in one call of `ledger_write` (see gateway/store/base.py): what it
        left, or None when the function wrote nothing and the template is to run it.

        A call whose connection was lost is sent again: the function finds its own
        event if it committed, so it is written once either way.
        """
        now = _now()
        at, event_ids = self.outbox.stamp()
        payment = plan.payment
        if plan.kind == "record":
            document = payment.model_copy(update={"created_at": now, "updated_at": now})
        elif plan.kind == "revise":
            document = payment.model_copy(update={"updated_at": now})
        else:
            document = payment.model_copy(update={"deleted_at": now, "updated_at": now})
        row = _payment_row(payment)
        arguments = (
            tenant, step.invoice_id, plan.kind, step.payment_id, plan.version,
            payment.version, now,
            *(row[name] for name in _WRITTEN), plan.mark_paid, plan.payable_on, _PLACES,
            document.model_dump_json(), at, list(event_ids),
        )  # fmt: skip

        async def write(conn: Connection) -> asyncpg.Record | None:
            return await conn.fetchrow(_LEDGER_WRITE, *arguments)

        done = await self._run(write, read="one")  # one statement: its own transaction
        assert done is not None
        code, stored, kinds = done
        if code != "ok":
            return None
        written = [
            NewEvent(i, kind, at, step.invoice_id, None, "")
            for i, kind in zip(event_ids, kinds, strict=False)
        ]
        self._committed(tenant, written)
        return [None if stored is None else Payment.model_validate_json(stored)]

    async def owner(self, kind: str, object_id: int) -> str | None:
        query = {
            "invoice": "SELECT tenant FROM invoices WHERE id = $1",
            "payment": "SELECT tenant FROM payments WHERE id = $1 AND deleted_at IS NULL",
        }[kind]

        async def load(conn: Connection) -> str | None:
            found = await conn.fetchval(query, object_id)
            return None if found is None else str(found)

        return await self._run(load, read="one")

    # --- backend id map (proxy mode) ----------------------------------------------

    async def map_ids(self, tenant: str, kind: str, refs: Sequence[BackendRef]) -> list[int]:
        async def mint(conn: Connection) -> list[int]:
            return await _map_ids(conn, tenant, kind, refs)

        return await self._run(mint)

    async def backend_ref(self, tenant: str, kind: str, local_id: int) -> BackendRef | None:
        async def load(conn: Connection) -> BackendRef | None:
            row = await conn.fetchrow(
                "SELECT backend_id, parent FROM id_map WHERE id = $1 AND tenant = $2 AND kind = $3",
                local_id,
                tenant,
                kind,
            )
            return BackendRef(row["backend_id"], row["parent"]) if row else None

        return await self._run(load, read="one")

    # --- idempotency keys ----------------------------------------------------------

    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        async def write(conn: Connection) -> KeyRecord | None:
            return await _claim_key(conn, claim)

        return await self._run(write)

    async def set_key_state(self, tenant: str, key: str, owner: str, state: KeyState) -> bool:
        async def write(conn: Connection) -> bool:
            done = await conn.execute(
                "UPDATE idempotency_keys SET state = $1 WHERE tenant = $2 AND key = $3"
                f" AND owner = $4 AND {_HELD}",
                state.value, tenant, key, owner,
            )  # fmt: skip
            return _count(done) > 0

        return await self._run(write)

    async def complete_key(self, seal: Seal) -> None:
        async def write(conn: Connection) -> None:
            await _complete_key(conn, seal)

        await self._run(write)

    async def release_key(self, tenant: str, key: str, owner: str) -> None:
        async def write(conn: Connection) -> None:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2 AND owner = $3"
                f" AND {_HELD}",
                tenant, key, owner,
            )  # fmt: skip

        await self._run(write)

    async def key_record(self, tenant: str, key: str) -> KeyRecord | None:
        async def load(conn: Connection) -> KeyRecord | None:
            row = await conn.fetchrow(_SELECT_KEY, tenant, key)
            return _key_record(row) if row else None

        return await self._run(load, read="one")

    async def forget_key(self, tenant: str, key: str) -> bool:
        async def write(conn: Connection) -> bool:
            done = await conn.execute(
                "DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2", tenant, key
            )
            return _count(done) > 0

        return await self._run(write)

    async def events(self, tenant: str, after: int, limit: int) -> EventPage:
        async def read(conn: Connection) -> EventPage:
            found = await conn.fetchrow(
                "SELECT last_sequence, purged_through FROM event_sequences WHERE tenant = $1",
                tenant,
            )
            last, purged = (found[0], found[1]) if found else (0, 0)
            rows = await conn.fetch(
                "SELECT sequence, id, type, created_at, data FROM events"
                " WHERE tenant = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
                tenant,
                after,
                limit,
            )
            events = [stored_event(tenant, r[0], (r[1], r[2], r[3], r[4])) for r in rows]
            return EventPage(events, purged, last)

        return await self._run(read, read="snapshot")

    async def purge_events(self, before: datetime, limit: int) -> int:
        async def write(conn: Connection) -> int:
            rows = await conn.fetch(
                "WITH gone AS (DELETE FROM events WHERE (tenant, sequence) IN (SELECT tenant,"
                f" sequence FROM events e WHERE created_at < $1 AND {hooks.NOT_OWED}"
                " ORDER BY created_at, tenant, sequence LIMIT $2)"
                " RETURNING tenant, sequence),"
                " marks AS (SELECT tenant, MAX(sequence) AS upto, COUNT(*) AS n FROM gone"
                " GROUP BY tenant)"
                " UPDATE event_sequences s SET purged_through = GREATEST(s.purged_through,"
                " marks.upto) FROM marks WHERE s.tenant = marks.tenant RETURNING marks.n",
                before,
                limit,
            )
            return sum(int(row[0]) for row in rows)

        return await self._run(write)

    # --- webhook deliveries (gateway/store/deliveries.py) ---------------------------------

    async def webhook_sync(self, tenant: str, names: Sequence[str]) -> None:
        async def write(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO webhook_subscriptions (tenant, name, state, through)"
                " SELECT $1, name, 'active', COALESCE((SELECT last_sequence FROM"
                " event_sequences WHERE tenant = $1), 0) FROM unnest($2::text[]) AS name"
                " ON CONFLICT (tenant, name) DO UPDATE SET state = 'active'"
                " WHERE webhook_subscriptions.state = 'retired'",
                tenant,
                list(names),
            )
            await conn.execute(
                "UPDATE webhook_subscriptions SET state = 'retired'"
                " WHERE tenant = $1 AND NOT name = ANY($2::text[]) AND state != 'retired'",
                tenant,
                list(names),
            )

        await self._run(write)

    async def webhook_fanout(
        self, tenant: str, name: str, types: Sequence[str], now: datetime, limit: int
    ) -> int:
        async def write(conn: Connection) -> int:
            through = await conn.fetchval(  # locked: one process fans a subscription out
                "SELECT through FROM webhook_subscriptions"
                " WHERE tenant = $1 AND name = $2 AND state = 'active' FOR UPDATE",
                tenant,
                name,
            )
            if through is None:
                return 0
            rows = await conn.fetch(
                "SELECT sequence, type, payment_id FROM events WHERE tenant = $1"
                " AND sequence > $2 ORDER BY sequence LIMIT $3",
                tenant,
                through,
                limit,
            )
            if not rows:
                return 0
            chosen = [row for row in rows if row[1] in types]
            await conn.execute(
                "INSERT INTO webhook_deliveries (tenant, subscription, sequence, state, next_at,"
                " updated_at, payment_id) SELECT $1, $2, item.sequence, 'pending', $3, $3,"
                " item.payment_id FROM unnest($4::bigint[], $5::bigint[])"
                " AS item (sequence, payment_id) ON CONFLICT DO NOTHING",
                tenant,
                name,
                now,
                [row[0] for row in chosen],
                [row[2] for row in chosen],
            )
            await conn.execute(
                "UPDATE webhook_subscriptions SET through = $3 WHERE tenant = $1 AND name = $2",
                tenant,
                name,
                rows[-1][0],
            )
            return len(rows)

        return await self._run(write)

    async def webhook_owed(self, tenant: str, name: str) -> hooks.Owed | None:
        async def read(conn: Connection) -> hooks.Owed | None:
            found = await conn.fetchrow(
                "SELECT s.through < COALESCE((SELECT last_sequence FROM event_sequences q"
                " WHERE q.tenant = s.tenant), 0), LEAST((SELECT d.next_at"
                " FROM webhook_deliveries d WHERE d.tenant = s.tenant"
                " AND d.subscription = s.name AND d.state = 'pending'"
                " AND d.lease_until IS NULL ORDER BY d.next_at LIMIT 1),"
                " (SELECT MIN(GREATEST(d.next_at, d.lease_until)) FROM webhook_deliveries d"
                " WHERE d.tenant = s.tenant AND d.subscription = s.name AND d.state = 'pending'"
                " AND d.lease_until IS NOT NULL))"
                " FROM webhook_subscriptions s"
                " WHERE s.tenant = $1 AND s.name = $2 AND s.state = 'active'",
                tenant,
                name,
            )
            return None if found is None else hooks.Owed(found[0], found[1])

        return await self._run(read, read="one")

    async def webhook_claim(
        self, tenant: str, name: str, owner: str, now: datetime, lease_until: datetime,
        limit: int, *, sending: bool = False,
    ) -> list[hooks.Due]:  # fmt: skip
        async def write(conn: Connection) -> list[hooks.Due]:
            rows = await conn.fetch(  # `due` reads each row's mark as it was before
                "WITH due AS (SELECT d.tenant, d.subscription, d.sequence, d.outcome_unknown"
                " FROM webhook_deliveries d JOIN webhook_subscriptions s"
                " ON s.tenant = d.tenant AND s.name = d.subscription AND s.state = 'active'"
                " WHERE d.tenant = $1 AND d.subscription = $2 AND d.state = 'pending'"
                " AND d.next_at <= $3 AND (d.lease_until IS NULL OR d.lease_until <= $3)"
                " ORDER BY d.sequence LIMIT $4 FOR UPDATE OF d SKIP LOCKED),"
                " claimed AS (UPDATE webhook_deliveries w SET owner = $5, lease_until = $6,"
                " outcome_unknown = w.outcome_unknown OR $7"
                " FROM due WHERE w.tenant = due.tenant AND w.subscription = due.subscription"
                " AND w.sequence = due.sequence"
                " RETURNING w.sequence, w.attempts, due.outcome_unknown)"
                " SELECT c.sequence, c.attempts, e.id, e.type, e.created_at, e.data,"
                " c.outcome_unknown"
                " FROM claimed c LEFT JOIN events e ON e.tenant = $1 AND e.sequence = c.sequence"
                " ORDER BY c.sequence",
                tenant,
                name,
                now,
                limit,
                owner,
                lease_until,
                sending,
            )
            gone = [r[0] for r in rows if r[2] is None]
            if gone:  # purged while no active subscription was owed them
                await conn.execute(
                    f"UPDATE webhook_deliveries SET {hooks.PURGED_BEFORE_DELIVERY}"
                    " WHERE tenant = $1 AND subscription = $2 AND sequence = ANY($3::bigint[])",
                    tenant,
                    name,
                    gone,
                )
            return [
                hooks.Due(stored_event(tenant, r[0], (r[2], r[3], r[4], r[5])), r[1], r[6])
                for r in rows
                if r[2] is not None
            ]

        return await self._run(write)

    async def webhook_settle(
        self,
        tenant: str,
        name: str,
        owner: str,
        now: datetime,
        settles: Sequence[hooks.Settled],
    ) -> int:
        async def write(conn: Connection) -> int:
            done = await conn.execute(
                "UPDATE webhook_deliveries w SET state = item.state, attempts = item.attempts,"
                " next_at = item.next_at, owner = NULL, lease_until = NULL,"
                " last_status = item.status, last_error = item.error, updated_at = $4,"
                " backend_id = COALESCE(item.backend_id, w.backend_id),"
                " outcome_unknown = item.unknown"
                " FROM unnest($5::bigint[], $6::text[], $7::int[], $8::timestamptz[],"
                " $9::int[], $10::text[], $11::text[], $12::boolean[])"
                " AS item (sequence, state, attempts, next_at, status, error, backend_id, unknown)"
                " WHERE w.tenant = $1 AND w.subscription = $2 AND w.sequence = item.sequence"
                " AND w.owner = $3",
                tenant,
                name,
                owner,
                now,
                [sequence for sequence, _ in settles],
                [settle.state for _, settle in settles],
                [settle.attempts for _, settle in settles],
                [settle.next_at for _, settle in settles],
                [settle.status for _, settle in settles],
                [settle.error for _, settle in settles],
                [settle.backend_id for _, settle in settles],
                [settle.unknown for _, settle in settles],
            )
            success, failure, disable = hooks.outcomes(settles)
            await conn.execute(
                "UPDATE webhook_subscriptions SET last_success = COALESCE($3, last_success),"
                " last_failure = COALESCE($4, last_failure),"
                " state = CASE WHEN $5 THEN 'disabled' ELSE state END"
                " WHERE tenant = $1 AND name = $2",
                tenant,
                name,
                now if success else None,
                now if failure else None,
                disable,
            )
            return _count(done)

        return await self._run(write)

    async def webhook_enable(self, tenant: str, name: str) -> bool:
        async def write(conn: Connection) -> bool:
            done = await conn.execute(
                "UPDATE webhook_subscriptions SET state = 'active'"
                " WHERE tenant = $1 AND name = $2 AND state != 'retired'",
                tenant,
                name,
            )
            return _count(done) > 0

        enabled = await self._run(write)
        self._woken(tenant)
        return enabled

    async def webhooks(self, tenant: str) -> list[hooks.Subscription]:
        async def read(conn: Connection) -> list[hooks.Subscription]:
            rows = await conn.fetch(
                "SELECT s.name, s.state, s.last_success, s.last_failure, COUNT(d.sequence),"
                " MIN(e.created_at) FROM webhook_subscriptions s"
                " LEFT JOIN webhook_deliveries d ON d.tenant = s.tenant"
                " AND d.subscription = s.name AND d.state = 'pending'"
                " LEFT JOIN events e ON e.tenant = d.tenant AND e.sequence = d.sequence"
                " WHERE s.tenant = $1 GROUP BY s.name, s.state, s.last_success, s.last_failure"
                " ORDER BY s.name",
                tenant,
            )
            return [hooks.Subscription(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

        return await self._run(read, read="one")

    async def webhook_deliveries(
        self, tenant: str, name: str, state: str, limit: int
    ) -> list[hooks.Delivery]:
        async def read(conn: Connection) -> list[hooks.Delivery]:
            rows = await conn.fetch(
                "SELECT e.id, d.sequence, e.type, d.state, d.attempts, d.next_at,"
                " d.last_status, d.last_error, d.updated_at, d.payment_id, d.backend_id"
                " FROM webhook_deliveries d"
                " JOIN events e ON e.tenant = d.tenant AND e.sequence = d.sequence"
                " WHERE d.tenant = $1 AND d.subscription = $2 AND d.state = $3"
                " ORDER BY d.sequence DESC LIMIT $4",
                tenant,
                name,
                state,
                limit,
            )
            return [hooks.Delivery(*r) for r in rows]

        return await self._run(read, read="one")

    async def webhook_replay(
        self,
        tenant: str,
        name: str,
        types: Sequence[str],
        now: datetime,
        *,
        after: int | None = None,
        event_id: str | None = None,
    ) -> int:
        async def write(conn: Connection) -> int:
            chosen = "e.sequence > $5" if after is not None else "e.id = $5"
            rows = await conn.fetch(
                "INSERT INTO webhook_deliveries (tenant, subscription, sequence, state, next_at,"
                " updated_at) SELECT e.tenant, s.name, e.sequence, 'pending', $3, $3"
                " FROM events e JOIN webhook_subscriptions s ON s.tenant = e.tenant"
                " WHERE s.tenant = $1 AND s.name = $2 AND e.type = ANY($4::text[])"
                f" AND e.sequence <= s.through AND {chosen}"
                " ON CONFLICT (tenant, subscription, sequence) DO UPDATE SET state = 'pending',"
                " attempts = 0, next_at = excluded.next_at, owner = NULL, lease_until = NULL,"
                " updated_at = excluded.updated_at RETURNING sequence",
                tenant,
                name,
                now,
                list(types),
                after if after is not None else event_id,
            )
            return len(rows)

        replayed = await self._run(write)
        self._woken(tenant)
        return replayed

    async def _changed(self, statement: str, *args: Any) -> int:
        """Rows one writing statement changed, in a transaction of its own."""

        async def write(conn: Connection) -> int:
            return _count(await conn.execute(statement, *args))

        return await self._run(write)

    # --- relay (gateway/events/relay.py) --------------------------------------------------

    async def invoice_backend_id(self, tenant: str, invoice_id: int) -> str | None:
        async def read(conn: Connection) -> str | None:
            found: str | None = await conn.fetchval(
                "SELECT backend_id FROM invoices WHERE tenant = $1 AND id = $2",
                tenant,
                invoice_id,
            )
            return found

        return await self._run(read, read="one")

    async def relay_tracks(self, tenant: str, payment_id: int) -> list[hooks.Track]:
        async def read(conn: Connection) -> list[hooks.Track]:
            rows = await conn.fetch(
                "SELECT sequence, state, attempts, next_at, backend_id, last_error"
                " FROM webhook_deliveries WHERE tenant = $1 AND subscription = $2"
                " AND payment_id = $3 ORDER BY sequence",
                tenant,
                hooks.RELAY,
                payment_id,
            )
            return [hooks.Track(*row) for row in rows]

        return await self._run(read, read="one")

    async def relay_taken(self, tenant: str, backend_ids: Sequence[str]) -> set[str]:
        async def read(conn: Connection) -> set[str]:
            rows = await conn.fetch(
                "SELECT backend_id FROM webhook_deliveries WHERE tenant = $1"
                " AND subscription = $2 AND backend_id = ANY($3::text[])",
                tenant,
                hooks.RELAY,
                list(backend_ids),
            )
            return {row[0] for row in rows}

        return await self._run(read, read="one")

    async def relay_replay(self, tenant: str, now: datetime, payment_id: int | None) -> int:
        replayed = await self._changed(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = $3,"
            " owner = NULL, lease_until = NULL, updated_at = $3 WHERE tenant = $1"
            " AND subscription = $2 AND state = 'failed'"
            " AND ($4::bigint IS NULL OR payment_id = $4)",
            *(tenant, hooks.RELAY, now, payment_id),
        )
        self._woken(tenant)
        return replayed

    async def take_budget(self, take: budgets.Take) -> budgets.Grant:
        return await self._run(lambda conn: budgets.postgres_take(conn, take), read="one")

    async def purge_budgets(self, now: float) -> int:
        return await self._run(lambda conn: budgets.postgres_purge(conn, now), read="one")

    async def purge_keys(self, now: datetime, limit: int) -> int:
        async def write(conn: Connection) -> int:
            done = await conn.execute(
                "DELETE FROM idempotency_keys WHERE (tenant, key) IN (SELECT tenant, key"
                " FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)",
                now,
                limit,
            )
            return _count(done)

        return await self._run(write)


async def _claim_key(conn: Connection, claim: KeyClaim) -> KeyRecord | None:
    """Take the key (free, expired, or a dead owner's reservation) or name its holder.

    The row is locked while it is judged; a key two claims insert at once goes to the
    first, and the second, finding the row on its next look, is answered its holder.
    """
    while True:
        row = await conn.fetchrow(f"{_SELECT_KEY} FOR UPDATE", claim.tenant, claim.key)
        if row is None:
            inserted = await conn.fetchval(
                "INSERT INTO idempotency_keys (tenant, key, fingerprint, state, owner,"
                " lease_until, created_at, expires_at) VALUES ($1, $2, $3, 'pending', $4, $5,"
                " $6, $7) ON CONFLICT (tenant, key) DO NOTHING RETURNING 1",
                claim.tenant, claim.key, claim.fingerprint, claim.owner, claim.lease_until,
                claim.now, claim.expires_at,
            )  # fmt: skip
            if inserted:
                return None
            continue  # another claim inserted it first: judge that one
        held = _key_record(row)
        if not claim.takes(held):
            return held
        await conn.execute(
            "UPDATE idempotency_keys SET fingerprint = $3, state = 'pending', owner = $4,"
            " lease_until = $5, created_at = $6, expires_at = $7, status = NULL,"
            " headers = NULL, body = NULL WHERE tenant = $1 AND key = $2",
            claim.tenant, claim.key, claim.fingerprint, claim.owner, claim.lease_until,
            claim.now, claim.expires_at,
        )  # fmt: skip
        return None


async def _complete_key(conn: Connection, seal: Seal) -> None:
    assert seal.sealed is not None
    answer = seal.sealed
    done = await conn.execute(
        "UPDATE idempotency_keys SET state = 'done', status = $1, headers = $2, body = $3"
        f" WHERE tenant = $4 AND key = $5 AND owner = $6 AND {_HELD}",
        answer.status, json.dumps(dict(answer.headers)), answer.body, seal.tenant, seal.key,
        seal.owner,
    )  # fmt: skip
    if _count(done) == 0:
        raise Conflict("The request's Idempotency-Key was taken over by a retry")


def _count(status: str) -> int:
    """The row count of a command status such as `UPDATE 1` or `DELETE 0`."""
    return int(status.rsplit(" ", 1)[-1])


def _key_record(row: asyncpg.Record) -> KeyRecord:
    data = dict(row)
    status, headers, body = data.pop("status"), data.pop("headers"), data.pop("body")
    answer = None if status is None else Reply(status, bytes(body), dict(json.loads(headers)))
    data["state"] = KeyState(data["state"])
    return KeyRecord(answer=answer, **data)


async def _transaction(
    conn: Connection, work: Callable[[Connection], Awaitable[T]], *, snapshot: bool
) -> T:
    if snapshot:
        transaction = conn.transaction(isolation="repeatable_read", readonly=True)
    else:
        transaction = conn.transaction()
    await transaction.start()
    try:
        result = await work(conn)
    except BaseException:
        with contextlib.suppress(*_UNREACHABLE, asyncpg.InterfaceError):
            await transaction.rollback()  # a lost connection rolled back by itself
        raise
    try:
        await transaction.commit()
    except _UNREACHABLE as exc:
        raise _CommitUnknown(_reason(exc)) from exc
    return result


class _Writes:
    """A ledger write's database operations on one connection, in its transaction:
    every invoice written is locked first (`FOR UPDATE`), so writes on one invoice from
    any two processes run one after the other and the second sees the first's."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock(self, tenant: str, invoice_ids: Sequence[int]) -> None:
        if len(invoice_ids) > 1:
            # Locked in one order by every writer, so no two batches deadlock.
            await self.conn.execute(
                "SELECT id FROM invoices WHERE tenant = $1 AND id = ANY($2::bigint[])"
                " ORDER BY id FOR UPDATE",
                tenant,
                list(invoice_ids),
            )

    async def invoice(self, tenant: str, invoice_id: int) -> Invoice | None:
        # Locked and read in one statement: a row another write held while this one
        # waited is read again as that write committed it, totals included.
        row = await self.conn.fetchrow(
            f"{_SELECT_INVOICE} WHERE id = $1 AND tenant = $2 FOR UPDATE", invoice_id, tenant
        )
        return None if row is None else Invoice.model_construct(payments=(), **dict(row))

    async def payment(self, tenant: str, payment_id: int, invoice_id: int) -> Payment | None:
        return await _load_payment(self.conn, tenant, payment_id, invoice_id)

    async def upsert(self, payment: Payment, now: datetime) -> Payment:
        return await _upsert(self.conn, payment, now)

    async def delete(self, payment_id: int, now: datetime, *, voided: bool = False) -> None:
        await self.conn.execute(
            "UPDATE payments SET deleted_at = $1, updated_at = $1, voided = $3 WHERE id = $2",
            now,
            payment_id,
            voided,
        )

    async def group_version(self, tenant: str, group_id: int) -> int:
        # Locked in id order by every writer of a group (and by `ledger_write`), after
        # the invoices: no two writers of one group deadlock.
        held = await self.conn.fetch(
            "SELECT version FROM payments WHERE tenant = $1 AND group_id = $2"
            " AND deleted_at IS NULL ORDER BY id FOR UPDATE",
            tenant,
            group_id,
        )
        return max((int(row[0]) for row in held), default=-1)

    async def set_version(
        self, tenant: str, group_id: int, version: int, *, skip: int | None = None
    ) -> None:
        await self.conn.execute(
            "UPDATE payments SET version = $3 WHERE tenant = $1 AND group_id = $2"
            " AND deleted_at IS NULL AND id IS DISTINCT FROM $4",
            tenant,
            group_id,
            version,
            skip,
        )

    async def invoice_totals(
        self, invoice_id: int, settled: Decimal, count: int, marked_paid: bool
    ) -> None:
        await self.conn.execute(
            "UPDATE invoices SET settled = $1, payment_count = $2, marked_paid = $3 WHERE id = $4",
            settled,
            count,
            marked_paid,
            invoice_id,
        )

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.conn.transaction():
            yield

    async def complete_key(self, seal: Seal) -> None:
        await _complete_key(self.conn, seal)

    async def append_events(self, tenant: str, events: Sequence[NewEvent]) -> None:
        await _append_events(self.conn, tenant, events)


async def _append_events(conn: Connection, tenant: str, events: Sequence[NewEvent]) -> None:
    """The outbox: `events` numbered on from the tenant's counter row, which stays locked
    until this transaction ends, so no later sequence commits before these."""
    if not events:
        return
    await conn.execute(
        "WITH counter AS (INSERT INTO event_sequences (tenant, last_sequence) VALUES ($1, $2)"
        " ON CONFLICT (tenant) DO UPDATE SET last_sequence = event_sequences.last_sequence"
        " + EXCLUDED.last_sequence RETURNING last_sequence)"
        " INSERT INTO events (tenant, sequence, id, type, created_at, invoice_id, payment_id,"
        " data) SELECT $1, counter.last_sequence - $2 + e.n, e.id, e.type, e.at::timestamptz,"
        " e.invoice_id, e.payment_id, e.data FROM counter, unnest($3::text[], $4::text[],"
        " $5::text[], $6::bigint[], $7::bigint[], $8::text[]) WITH ORDINALITY"
        " AS e(id, type, at, invoice_id, payment_id, data, n)",
        tenant,
        len(events),
        [e.id for e in events],
        [e.type for e in events],
        [e.at.isoformat() for e in events],
        [e.invoice_id for e in events],
        [e.payment_id for e in events],
        [e.data for e in events],
    )


async def _upsert(conn: Connection, payment: Payment, now: datetime) -> Payment:
    """Insert or replace the payment; it comes back as stored, in the same round trip."""
    values = _payment_row(payment)
    if payment.id is None:
        values["created_at"] = values["updated_at"] = now
        del values["id"]
        names = ", ".join(values)
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        query = f"INSERT INTO payments ({names}) VALUES ({marks}) RETURNING {_RETURNED}"
        row = await conn.fetchrow(query, *values.values())
    else:
        values["updated_at"] = now
        for fixed in ("id", "tenant", "invoice_id", "group_id"):
            del values[fixed]
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, 1))
        query = f"UPDATE payments SET {assignments} WHERE id = ${len(values) + 1}"
        row = await conn.fetchrow(f"{query} RETURNING {_RETURNED}", *values.values(), payment.id)
    assert row is not None
    return _payment(row)


async def _load_invoice(
    conn: Connection, tenant: str, invoice_id: int, with_payments: bool = False
) -> Invoice | None:
    if with_payments:
        rows = await conn.fetch(_SELECT_INVOICE_PAYMENTS, invoice_id, tenant)
        if not rows:
            return None
        width = len(_INVOICE_COLUMNS)
        data = dict(zip(_INVOICE_COLUMNS, rows[0][:width], strict=True))
        names = (*PAYMENT_COLUMNS, "paid_at_offset")
        payments = tuple(
            _payment(dict(zip(names, row[width:], strict=True)))
            for row in rows
            if row["p_id"] is not None
        )
        return Invoice.model_construct(payments=payments, **data)
    row = await conn.fetchrow(
        f"{_SELECT_INVOICE} WHERE id = $1 AND tenant = $2", invoice_id, tenant
    )
    return None if row is None else Invoice.model_construct(payments=(), **dict(row))


async def _load_payment(
    conn: Connection,
    tenant: str,
    payment_id: int,
    invoice_id: int | None = None,
    *,
    deleted: bool = False,
) -> Payment | None:
    query = f"{_SELECT_PAYMENTS} WHERE id = $1 AND tenant = $2{'' if deleted else _LIVE}"
    params: tuple[object, ...] = (payment_id, tenant)
    if invoice_id is not None:
        query, params = f"{query} AND invoice_id = $3", (*params, invoice_id)
    row = await conn.fetchrow(query, *params)
    return _payment(row) if row else None


async def _map_ids(
    conn: Connection, tenant: str, kind: str, refs: Sequence[BackendRef]
) -> list[int]:
    """Known ids as they are; the rest minted (or their parent learnt) in one statement each.

    Only refs not yet mapped reach the INSERT, so identity values are not spent on
    conflicts and ids stay dense.
    """
    ids = []
    for ref in refs:
        row = await conn.fetchrow(
            "SELECT id, parent FROM id_map WHERE tenant = $1 AND kind = $2 AND backend_id = $3",
            tenant,
            kind,
            ref.backend_id,
        )
        if row is not None and (ref.parent is None or row["parent"] == ref.parent):
            ids.append(int(row["id"]))
            continue
        minted = await conn.fetchval(
            "INSERT INTO id_map (tenant, kind, backend_id, parent) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (tenant, kind, backend_id)"
            " DO UPDATE SET parent = COALESCE(EXCLUDED.parent, id_map.parent) RETURNING id",
            tenant,
            kind,
            ref.backend_id,
            ref.parent,
        )
        ids.append(int(minted))
    return ids


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# timestamptz on the wire: microseconds from 2000-01-01T00:00Z; the ends are the infinities.
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INFINITIES = {
    -(2**63): datetime.min.replace(tzinfo=UTC),
    2**63 - 1: datetime.max.replace(tzinfo=UTC),
}


async def _exact_instants(conn: Connection) -> None:
    """timestamptz as the instant it is, up to the calendar's edges, on each new connection.

    asyncpg's own codec writes 0001-01-01T00:00Z and 9999-12-31T23:59:59.999999Z as
    -infinity and infinity and reads those back as naive datetimes, so a payment made
    on either edge failed on its way back out. This one keeps every instant's count
    of microseconds; an infinity stored before reads as the edge it stood for.
    """
    await conn.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=_instant_out,
        decoder=_instant_in,
        format="tuple",
    )


async def _kept(conn: Connection) -> None:
    """A connection back in the pool as it is: the store keeps no session state (the
    migration's advisory lock is released by its own statement, and asyncpg rolls back a
    transaction left open), so the reset asyncpg would send costs a round trip for nothing."""


def _instant_out(moment: datetime) -> tuple[int]:
    return ((moment - _PG_EPOCH) // _MICROSECOND,)


def _instant_in(value: tuple[int]) -> datetime:
    count = value[0]
    if count in _INFINITIES:
        return _INFINITIES[count]
    return _PG_EPOCH + timedelta(0, 0, count)


def _unavailable(message: str) -> ServiceUnavailable:
    return ServiceUnavailable(message, retry_after=1)


def _payment_row(payment: Payment) -> dict[str, Any]:
    offset = payment.paid_at.utcoffset() if payment.paid_at else None
    return {
        "id": payment.id,
        "tenant": payment.tenant,
        "invoice_id": payment.invoice_id,
        "amount": payment.amount,
        "paid_at": payment.paid_at,
        "paid_at_offset": int(offset.total_seconds()) if offset else 0,
        "method": payment.method.value if payment.method else None,
        "method_label": payment.method_label,
        "origin": payment.origin,
        "notes": payment.notes,
        "reference": payment.reference,
        "tax_withheld": payment.tax_withheld,
        "fee": payment.fee,
        "recorded_by": payment.recorded_by,
        "recorded_by_email": payment.recorded_by_email,
        "client_app": payment.client_app,
        "notify_customer": payment.notify_customer,
        "account_code": payment.account_code,
        "account_id": payment.account_id,
        "group_id": payment.group_id,
        "version": payment.version,
        "customer": payment.customer,
        "voided": payment.voided,
    }


def _zoned(record: asyncpg.Record, paid_at: int) -> Row:
    """A listing row, its payment date in the offset it was given in (the last column)."""
    *row, offset = record
    if offset and row[paid_at] is not None:
        row[paid_at] = row[paid_at].astimezone(timezone(timedelta(seconds=offset)))
    return tuple(row)


def _payment(row: asyncpg.Record | dict[str, Any]) -> Payment:
    data = dict(row)
    offset = timedelta(seconds=data.pop("paid_at_offset"))
    zone = UTC if not offset else timezone(offset)
    data["paid_at"] = data["paid_at"].astimezone(zone)
    data["method"] = Method(data["method"]) if data["method"] else None
    for money in ("amount", "tax_withheld", "fee"):
        data[money] = Decimal(data[money])
    return Payment.model_construct(**data)
