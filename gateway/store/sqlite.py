"""The embedded SQLite store: one connection on one thread, every write one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from dialects import Reply
from dialects.errors import Conflict, ServiceUnavailable
from dialects.listing import Row
from dialects.model import Invoice, Method, Payment, stored_payment
from gateway.store import budgets
from gateway.store.base import (
    PAYMENT_COLUMNS,
    BackendRef,
    KeyClaim,
    KeyRecord,
    KeyState,
    NewInvoice,
    Seal,
    SingleStep,
    Step,
    Written,
    apply_steps,
    finished,
    listed_columns,
)
from gateway.store.deliveries import (
    NOT_OWED,
    PURGED_BEFORE_DELIVERY,
    RELAY,
    Delivery,
    Due,
    Owed,
    Settled,
    Subscription,
    Track,
    outcomes,
)
from gateway.store.migrations import VERSIONS_TABLE, StoreError, pending
from gateway.store.outbox import EventPage, NewEvent, Notices, Outbox, stored_event
from gateway.store.writer import MEMORY, GroupCommit

T = TypeVar("T")
# How long a write waits for another process's write lock before it is answered 503.
_BUSY_TIMEOUT_MS = 10_000

_SELECT_PAYMENTS = f"SELECT {', '.join(PAYMENT_COLUMNS)} FROM payments"
_LIVE = " AND deleted_at IS NULL"
# An invoice's live payments, a page of them, in id order (`payments_live` holds that order).
LISTING = (
    "SELECT {columns} FROM payments"
    " WHERE invoice_id = ? AND deleted_at IS NULL ORDER BY id LIMIT ? OFFSET ?"
)
# What a webhook subscription owes (gateway/store/deliveries.py, `Owed`): whether events
# wait to be fanned out, the first unleased pending delivery's due time (in `next_at`
# order, from `webhook_due`) and the leased ones' (few: `webhook_leased`), read from
# indexes, never from the backlog.
OWED = (
    "SELECT s.through < COALESCE((SELECT last_sequence FROM event_sequences q"
    " WHERE q.tenant = s.tenant), 0), (SELECT d.next_at FROM webhook_deliveries d"
    " WHERE d.tenant = s.tenant AND d.subscription = s.name AND d.state = 'pending'"
    " AND d.lease_until IS NULL ORDER BY d.next_at LIMIT 1),"
    " (SELECT MIN(MAX(d.next_at, d.lease_until)) FROM webhook_deliveries d"
    " WHERE d.tenant = s.tenant AND d.subscription = s.name AND d.state = 'pending'"
    " AND d.lease_until IS NOT NULL)"
    " FROM webhook_subscriptions s WHERE s.tenant = ? AND s.name = ? AND s.state = 'active'"
)
# A batch of due deliveries leased to one process, oldest first: a walk of the pending
# rows in sequence order (`webhook_pending`) that stops at the batch.
CLAIM = (
    "UPDATE webhook_deliveries SET owner = ?, lease_until = ?"
    " WHERE (tenant, subscription, sequence) IN (SELECT d.tenant, d.subscription,"
    " d.sequence FROM webhook_deliveries d INDEXED BY webhook_pending"
    " WHERE d.tenant = ? AND d.subscription = ? AND d.state = 'pending'"
    " AND d.next_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)"
    " AND EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.tenant = d.tenant"
    " AND s.name = d.subscription AND s.state = 'active')"
    " ORDER BY d.sequence LIMIT ?) RETURNING sequence, attempts, outcome_unknown"
)
_RETURNING = f"RETURNING {', '.join(PAYMENT_COLUMNS)}"
_INVOICE_COLUMNS = (
    "id", "tenant", "number", "currency", "total", "issued_on", "due_on", "draft", "void",
    "marked_paid", "created_at", "customer",
)  # fmt: skip
# The live payments' sum and count are kept on the invoice row (see migration 5).
_SELECT_INVOICE = (
    f"SELECT {', '.join(_INVOICE_COLUMNS)}, settled_cents, payment_count FROM invoices"
)
_KEY_COLUMNS = (
    "tenant", "key", "fingerprint", "state", "owner", "lease_until", "created_at",
    "expires_at", "status", "headers", "body",
)  # fmt: skip
_IDS_PER_STATEMENT = 500
_SELECT_KEY = f"SELECT {', '.join(_KEY_COLUMNS)} FROM idempotency_keys"
_HELD = "state IN ('pending', 'sent')"


class SQLiteStore(SingleStep):
    """Store on one SQLite file: its queries, over a writer that commits in groups.

    Every write runs on the one writer thread of `GroupCommit` (writer.py), so the
    event loop never waits on a commit and transactions never interleave; writes
    that queue up are committed together, each in its own savepoint, and none is
    answered before the shared COMMIT.

    Reads run on the event loop, on a read-only connection of their own, each in
    one snapshot: in WAL mode a reader never waits for the writer, and a read of a
    few cached pages costs less than the hand-off to the worker thread and back
    (which was a quarter of a get-one request's CPU). An in-memory database has no
    second connection; its reads go through the worker.
    """

    # What opens the connection; tests put in one that fails where they want.
    connection_factory: type[sqlite3.Connection] = sqlite3.Connection
    # How long a write waits for a writer that does not take the writer lock.
    busy_timeout_ms = _BUSY_TIMEOUT_MS

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        self._path = path
        self._synchronous = synchronous
        self._writer: GroupCommit | None = None
        self._reader: sqlite3.Connection | None = None
        self.outbox = Outbox()
        self.notices = Notices()

    # --- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        writer = GroupCommit(
            self._path,
            prepare=_migrate,
            synchronous=self._synchronous,
            busy_timeout_ms=self.busy_timeout_ms,
            factory=self.connection_factory,
        )
        try:
            await writer.start()
        except BaseException as exc:
            if isinstance(exc, OSError | sqlite3.Error | ServiceUnavailable):
                reason = " ".join(str(exc).split())
                raise StoreError(f"cannot open the database {self._path}: {reason}") from exc
            raise
        self._writer = writer
        if self._path != MEMORY:  # a second connection to :memory: is another database
            reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA query_only=ON")
            reader.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            self._reader = reader

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None

    async def data_version(self) -> int:
        """A number that moves whenever another process commits to the database (SQLite's
        `data_version` on the writer's connection: this process's own commits leave it)."""
        found = await self._started().read(lambda db: db.execute("PRAGMA data_version").fetchone())
        return int(found[0])

    def _started(self) -> GroupCommit:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        reader = self._reader
        if reader is None:
            return await self._started().read(fn)
        reader.execute("BEGIN")  # one snapshot for all of fn's statements
        try:
            return fn(reader)
        finally:
            reader.execute("COMMIT")

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._started().write(fn)

    # --- invoices and payments -----------------------------------------------------

    async def create_invoice(self, new: NewInvoice) -> Invoice:
        return await self._write(lambda db: self._insert_invoice(db, new))

    def _insert_invoice(self, db: sqlite3.Connection, new: NewInvoice) -> Invoice:
        taken = db.execute(
            "SELECT 1 FROM invoices WHERE tenant = ? AND number = ?", (new.tenant, new.number)
        ).fetchone()
        if taken:
            raise Conflict(f"Invoice number {new.number} already exists")
        cursor = db.execute(
            "INSERT INTO invoices (tenant, number, currency, total, issued_on, due_on, draft,"
            " created_at, backend_id, customer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.tenant, new.number, new.currency, str(new.total), new.issued_on.isoformat(),
                new.due_on.isoformat(), int(new.draft), _now().isoformat(), new.backend_id,
                new.customer,
            ),
        )  # fmt: skip
        invoice = self._load_invoice(db, new.tenant, _rowid(cursor))
        assert invoice is not None
        return invoice

    async def invoice(
        self, tenant: str, invoice_id: int, *, with_payments: bool = False
    ) -> Invoice | None:
        return await self._read(
            lambda db: self._load_invoice(db, tenant, invoice_id, with_payments)
        )

    async def invoices(self, tenant: str, invoice_ids: Sequence[int]) -> list[Invoice]:
        def load(db: sqlite3.Connection) -> list[Invoice]:
            rows = []
            # A statement takes a bounded number of parameters: a long list goes in parts.
            for start in range(0, len(invoice_ids), _IDS_PER_STATEMENT):
                part = invoice_ids[start : start + _IDS_PER_STATEMENT]
                marks = ", ".join("?" * len(part))
                query = f"{_SELECT_INVOICE} WHERE tenant = ? AND id IN ({marks})"
                rows += db.execute(query, (tenant, *part)).fetchall()
            return [
                _invoice(row, Decimal(cents).scaleb(-2), count, ())
                for *row, cents, count in sorted(rows)
            ]

        return await self._read(load)

    async def payment(
        self, tenant: str, payment_id: int, *, deleted: bool = False
    ) -> Payment | None:
        return await self._read(
            lambda db: self._load_payment(db, tenant, payment_id, deleted=deleted)
        )

    async def payments(
        self,
        tenant: str,
        invoice_ids: Sequence[int] | None = None,
        *,
        deleted: bool = False,
        group_ids: Sequence[int] | None = None,
    ) -> list[Payment]:
        return await self._read(
            lambda db: self._load_payments(db, tenant, invoice_ids, deleted, group_ids)
        )

    @staticmethod
    def _load_payments(
        db: sqlite3.Connection,
        tenant: str,
        invoice_ids: Sequence[int] | None,
        deleted: bool,
        group_ids: Sequence[int] | None = None,
    ) -> list[Payment]:
        query = f"{_SELECT_PAYMENTS} WHERE tenant = ?{'' if deleted else _LIVE}"
        params: list[object] = [tenant]
        for column, ids in (("invoice_id", invoice_ids), ("group_id", group_ids)):
            if ids is not None:
                query += f" AND {column} IN ({', '.join('?' * len(ids))})"
                params += ids
        return [_payment(row) for row in db.execute(query + " ORDER BY id", params)]

    async def listing(
        self,
        tenant: str,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row] | None:
        query = LISTING.format(columns=listed_columns(columns))
        window = (invoice_id, -1 if limit is None else limit, offset)

        def load(db: sqlite3.Connection) -> list[Row] | None:
            found = db.execute(
                "SELECT 1 FROM invoices WHERE id = ? AND tenant = ?", (invoice_id, tenant)
            ).fetchone()
            return None if found is None else db.execute(query, window).fetchall()

        return await self._read(load)

    async def invoice_id(self, tenant: str, number: str) -> int | None:
        def find(db: sqlite3.Connection) -> int | None:
            row = db.execute(
                "SELECT id FROM invoices WHERE tenant = ? AND number = ?", (tenant, number)
            ).fetchone()
            return int(row[0]) if row else None

        return await self._read(find)

    @staticmethod
    def _load_payment(
        db: sqlite3.Connection,
        tenant: str,
        payment_id: int,
        invoice_id: int | None = None,
        *,
        deleted: bool = False,
    ) -> Payment | None:
        query = f"{_SELECT_PAYMENTS} WHERE id = ? AND tenant = ?{'' if deleted else _LIVE}"
        params: tuple[object, ...] = (payment_id, tenant)
        if invoice_id is not None:
            query, params = f"{query} AND invoice_id = ?", (*params, invoice_id)
        row = db.execute(query, params).fetchone()
        return _payment(row) if row else None

    @staticmethod
    def _load_invoice(
        db: sqlite3.Connection, tenant: str, invoice_id: int, with_payments: bool = False
    ) -> Invoice | None:
        found = db.execute(
            f"{_SELECT_INVOICE} WHERE id = ? AND tenant = ?", (invoice_id, tenant)
        ).fetchone()
        if found is None:
            return None
        *row, cents, count = found
        payments: tuple[Payment, ...] = ()
        if with_payments:
            rows = db.execute(
                f"{_SELECT_PAYMENTS} WHERE invoice_id = ? AND deleted_at IS NULL ORDER BY id",
                (invoice_id,),
            ).fetchall()
            payments = tuple(_payment(row) for row in rows)
        return _invoice(row, Decimal(cents).scaleb(-2), count, payments)

    async def apply_many(
        self,
        tenant: str,
        steps: Sequence[Step],
        *,
        each: bool = False,
        seal: Seal | None = None,
    ) -> list[Written]:
        # One writer at a time holds the database: no lock order to keep. A step that
        # raises undoes the whole job (the group commit's savepoint around it).
        appended: list[NewEvent] = []  # the outbox's events, counted once committed

        def write(db: sqlite3.Connection) -> list[Written]:
            appended.clear()  # a retried job appends again
            writes = _Writes(db)
            return finished(
                apply_steps(
                    writes,
                    tenant,
                    steps,
                    each=each,
                    seal=seal,
                    outbox=self.outbox,
                    appended=appended,
                )  # fmt: skip
            )

        done = await self._write(write)
        self.notices.committed(tenant, appended)
        return done

    @staticmethod
    def _append_events(db: sqlite3.Connection, tenant: str, events: Sequence[NewEvent]) -> None:
        """The outbox: `events` numbered on from the tenant's counter, in this transaction."""
        if not events:
            return
        (last,) = db.execute(
            "INSERT INTO event_sequences (tenant, last_sequence) VALUES (?, ?)"
            " ON CONFLICT (tenant) DO UPDATE"
            " SET last_sequence = last_sequence + excluded.last_sequence RETURNING last_sequence",
            (tenant, len(events)),
        ).fetchone()
        first = int(last) - len(events) + 1
        db.executemany(
            "INSERT INTO events (tenant, sequence, id, type, created_at, invoice_id, payment_id,"
            " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (tenant, first + n, e.id, e.type, _moment(e.at), e.invoice_id, e.payment_id, e.data)
                for n, e in enumerate(events)
            ],
        )

    async def events(self, tenant: str, after: int, limit: int) -> EventPage:
        def read(db: sqlite3.Connection) -> EventPage:
            found = db.execute(
                "SELECT last_sequence, purged_through FROM event_sequences WHERE tenant = ?",
                (tenant,),
            ).fetchone()
            last, purged = (int(found[0]), int(found[1])) if found else (0, 0)
            rows = db.execute(
                "SELECT sequence, id, type, created_at, data FROM events"
                " WHERE tenant = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                (tenant, after, limit),
            ).fetchall()
            events = [
                stored_event(tenant, int(r[0]), (r[1], r[2], datetime.fromisoformat(r[3]), r[4]))
                for r in rows
            ]
            return EventPage(events, purged, last)

        return await self._read(read)

    async def purge_events(self, before: datetime, limit: int) -> int:
        def write(db: sqlite3.Connection) -> int:
            gone = db.execute(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events e"
                f" WHERE created_at < ? AND {NOT_OWED}"
                " ORDER BY created_at, tenant, sequence LIMIT ?) RETURNING tenant, sequence",
                (_moment(before), limit),
            ).fetchall()
            through: dict[str, int] = {}
            for tenant, sequence in gone:
                through[tenant] = max(through.get(tenant, 0), int(sequence))
            db.executemany(
                "UPDATE event_sequences SET purged_through = MAX(purged_through, ?)"
                " WHERE tenant = ?",
                [(sequence, tenant) for tenant, sequence in through.items()],
            )
            return len(gone)

        return await self._write(write)

    # --- webhook deliveries (gateway/store/deliveries.py) ---------------------------------

    async def webhook_sync(self, tenant: str, names: Sequence[str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO webhook_subscriptions (tenant, name, state, through)"
                " VALUES (?, ?, 'active', COALESCE((SELECT last_sequence FROM event_sequences"
                " WHERE tenant = ?), 0))"
                " ON CONFLICT (tenant, name) DO UPDATE SET state = 'active'"
                " WHERE webhook_subscriptions.state = 'retired'",
                [(tenant, name, tenant) for name in names],
            )
            listed = ", ".join("?" for _ in names) or "NULL"
            db.execute(
                "UPDATE webhook_subscriptions SET state = 'retired'"
                f" WHERE tenant = ? AND name NOT IN ({listed})",
                (tenant, *names),
            )

        await self._write(write)

    async def webhook_fanout(
        self, tenant: str, name: str, types: Sequence[str], now: datetime, limit: int
    ) -> int:
        def write(db: sqlite3.Connection) -> int:
            found = db.execute(
                "SELECT through FROM webhook_subscriptions"
                " WHERE tenant = ? AND name = ? AND state = 'active'",
                (tenant, name),
            ).fetchone()
            if found is None:
                return 0
            rows = db.execute(
                "SELECT sequence, type, payment_id FROM events WHERE tenant = ? AND sequence > ?"
                " ORDER BY sequence LIMIT ?",
                (tenant, found[0], limit),
            ).fetchall()
            if not rows:
                return 0
            at = _moment(now)
            db.executemany(
                "INSERT INTO webhook_deliveries (tenant, subscription, sequence, state, next_at,"
                " updated_at, payment_id) VALUES (?, ?, ?, 'pending', ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(tenant, name, row[0], at, at, row[2]) for row in rows if row[1] in types],
            )
            db.execute(
                "UPDATE webhook_subscriptions SET through = ? WHERE tenant = ? AND name = ?",
                (rows[-1][0], tenant, name),
            )
            return len(rows)

        return await self._write(write)

    async def webhook_owed(self, tenant: str, name: str) -> Owed | None:
        def read(db: sqlite3.Connection) -> Owed | None:
            found = db.execute(OWED, (tenant, name)).fetchone()
            if found is None:
                return None
            due = [_time(found[1]), _time(found[2])]
            return Owed(bool(found[0]), min((at for at in due if at is not None), default=None))

        return await self._read(read)

    async def webhook_claim(
        self, tenant: str, name: str, owner: str, now: datetime, lease_until: datetime,
        limit: int, *, sending: bool = False,
    ) -> list[Due]:  # fmt: skip
        def write(db: sqlite3.Connection) -> list[Due]:
            at = _moment(now)
            rows = db.execute(
                CLAIM, (owner, _moment(lease_until), tenant, name, at, at, limit)
            ).fetchall()
            if not rows:
                return []
            listed = ", ".join("?" for _ in rows)
            if sending:  # RETURNING gave each row's mark as it was before
                db.execute(
                    "UPDATE webhook_deliveries SET outcome_unknown = 1 WHERE tenant = ?"
                    f" AND subscription = ? AND sequence IN ({listed})",
                    (tenant, name, *(row[0] for row in rows)),
                )
            events = {
                found[0]: found[1:]
                for found in db.execute(
                    "SELECT sequence, id, type, created_at, data FROM events"
                    f" WHERE tenant = ? AND sequence IN ({listed})",
                    (tenant, *(row[0] for row in rows)),
                )
            }
            due: list[Due] = []
            gone: list[tuple[str, str, int]] = []
            for sequence, attempts, unknown in sorted(rows):
                event = events.get(sequence)
                if event is None:  # purged while no active subscription was owed it
                    gone.append((tenant, name, sequence))
                    continue
                row = (event[0], event[1], datetime.fromisoformat(event[2]), event[3])
                event_at = stored_event(tenant, int(sequence), row)
                due.append(Due(event_at, int(attempts), bool(unknown)))
            db.executemany(
                f"UPDATE webhook_deliveries SET {PURGED_BEFORE_DELIVERY}"
                " WHERE tenant = ? AND subscription = ? AND sequence = ?",
                gone,
            )
            return due

        return await self._write(write)

    async def webhook_settle(
        self, tenant: str, name: str, owner: str, now: datetime, settles: Sequence[Settled]
    ) -> int:
        def write(db: sqlite3.Connection) -> int:
            at = _moment(now)
            done = 0
            for sequence, settle in settles:
                done += db.execute(
                    "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_at = ?,"
                    " owner = NULL, lease_until = NULL, last_status = ?, last_error = ?,"
                    " updated_at = ?, backend_id = COALESCE(?, backend_id), outcome_unknown = ?"
                    " WHERE tenant = ? AND subscription = ? AND sequence = ? AND owner = ?",
                    (
                        settle.state,
                        settle.attempts,
                        _moment(settle.next_at),
                        settle.status,
                        settle.error,
                        at,
                        settle.backend_id,
                        int(settle.unknown),
                        tenant,
                        name,
                        sequence,
                        owner,
                    ),
                ).rowcount
            success, failure, disable = outcomes(settles)
            db.execute(
                "UPDATE webhook_subscriptions SET last_success = COALESCE(?, last_success),"
                " last_failure = COALESCE(?, last_failure),"
                " state = CASE WHEN ? THEN 'disabled' ELSE state END"
                " WHERE tenant = ? AND name = ?",
                (at if success else None, at if failure else None, disable, tenant, name),
            )
            return done

        return await self._write(write)

    async def webhook_enable(self, tenant: str, name: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            return bool(
                db.execute(
                    "UPDATE webhook_subscriptions SET state = 'active'"
                    " WHERE tenant = ? AND name = ? AND state != 'retired'",
                    (tenant, name),
                ).rowcount
            )

        enabled = await self._write(write)
        self.notices.tell(tenant)
        return enabled

    async def webhooks(self, tenant: str) -> list[Subscription]:
        def read(db: sqlite3.Connection) -> list[Subscription]:
            rows = db.execute(
                "SELECT s.name, s.state, s.last_success, s.last_failure, COUNT(d.sequence),"
                " MIN(e.created_at) FROM webhook_subscriptions s"
                " LEFT JOIN webhook_deliveries d ON d.tenant = s.tenant"
                " AND d.subscription = s.name AND d.state = 'pending'"
                " LEFT JOIN events e ON e.tenant = d.tenant AND e.sequence = d.sequence"
                " WHERE s.tenant = ? GROUP BY s.name, s.state, s.last_success, s.last_failure"
                " ORDER BY s.name",
                (tenant,),
            ).fetchall()
            return [
                Subscription(r[0], r[1], _time(r[2]), _time(r[3]), int(r[4]), _time(r[5]))
                for r in rows
            ]

        return await self._read(read)

    async def webhook_deliveries(
        self, tenant: str, name: str, state: str, limit: int
    ) -> list[Delivery]:
        def read(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(
                "SELECT e.id, d.sequence, e.type, d.state, d.attempts, d.next_at,"
                " d.last_status, d.last_error, d.updated_at, d.payment_id, d.backend_id"
                " FROM webhook_deliveries d"
                " JOIN events e ON e.tenant = d.tenant AND e.sequence = d.sequence"
                " WHERE d.tenant = ? AND d.subscription = ? AND d.state = ?"
                " ORDER BY d.sequence DESC LIMIT ?",
                (tenant, name, state, limit),
            ).fetchall()
            return [
                Delivery(
                    r[0],
                    int(r[1]),
                    r[2],
                    r[3],
                    int(r[4]),
                    datetime.fromisoformat(r[5]),
                    r[6],
                    r[7],
                    datetime.fromisoformat(r[8]),
                    r[9],
                    r[10],
                )  # fmt: skip
                for r in rows
            ]

        return await self._read(read)

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
        def write(db: sqlite3.Connection) -> int:
            kinds = ", ".join("?" for _ in types) or "NULL"
            chosen, which = (
                ("e.sequence > ?", after) if after is not None else ("e.id = ?", event_id)
            )
            at = _moment(now)
            rows = db.execute(
                "INSERT INTO webhook_deliveries (tenant, subscription, sequence, state, next_at,"
                " updated_at) SELECT e.tenant, s.name, e.sequence, 'pending', ?, ?"
                " FROM events e JOIN webhook_subscriptions s ON s.tenant = e.tenant"
                f" WHERE s.tenant = ? AND s.name = ? AND e.type IN ({kinds})"
                f" AND e.sequence <= s.through AND {chosen}"
                " ON CONFLICT (tenant, subscription, sequence) DO UPDATE SET state = 'pending',"
                " attempts = 0, next_at = excluded.next_at, owner = NULL, lease_until = NULL,"
                " updated_at = excluded.updated_at RETURNING sequence",
                (at, at, tenant, name, *types, which),
            ).fetchall()
            return len(rows)

        replayed = await self._write(write)
        self.notices.tell(tenant)
        return replayed

    # --- relay (gateway/events/relay.py) --------------------------------------------------

    async def invoice_backend_id(self, tenant: str, invoice_id: int) -> str | None:
        def read(db: sqlite3.Connection) -> str | None:
            found = db.execute(
                "SELECT backend_id FROM invoices WHERE tenant = ? AND id = ?", (tenant, invoice_id)
            ).fetchone()
            return None if found is None else found[0]

        return await self._read(read)

    async def relay_tracks(self, tenant: str, payment_id: int) -> list[Track]:
        def read(db: sqlite3.Connection) -> list[Track]:
            rows = db.execute(
                "SELECT sequence, state, attempts, next_at, backend_id, last_error"
                " FROM webhook_deliveries WHERE tenant = ? AND subscription = ?"
                " AND payment_id = ? ORDER BY sequence",
                (tenant, RELAY, payment_id),
            ).fetchall()
            return [
                Track(int(r[0]), r[1], int(r[2]), datetime.fromisoformat(r[3]), r[4], r[5])
                for r in rows
            ]

        return await self._read(read)

    async def relay_taken(self, tenant: str, backend_ids: Sequence[str]) -> set[str]:
        def read(db: sqlite3.Connection) -> set[str]:
            listed = ", ".join("?" for _ in backend_ids) or "NULL"
            rows = db.execute(
                "SELECT backend_id FROM webhook_deliveries WHERE tenant = ? AND subscription = ?"
                f" AND backend_id IN ({listed})",
                (tenant, RELAY, *backend_ids),
            ).fetchall()
            return {row[0] for row in rows}

        return await self._read(read)

    async def relay_replay(self, tenant: str, now: datetime, payment_id: int | None) -> int:
        def write(db: sqlite3.Connection) -> int:
            at = _moment(now)
            chosen = "" if payment_id is None else " AND payment_id = ?"
            return db.execute(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = ?,"
                " owner = NULL, lease_until = NULL, updated_at = ? WHERE tenant = ?"
                f" AND subscription = ? AND state = 'failed'{chosen}",
                (at, at, tenant, RELAY, *(() if payment_id is None else (payment_id,))),
            ).rowcount

        replayed = await self._write(write)
        self.notices.tell(tenant)
        return replayed

    @staticmethod
    def _upsert(db: sqlite3.Connection, payment: Payment, now: str) -> Payment:
        """Insert or replace the payment; it comes back as stored, from the same statement."""
        values = _payment_row(payment)
        if payment.id is None:
            values["created_at"] = values["updated_at"] = now
            del values["id"]
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            query = f"INSERT INTO payments ({names}) VALUES ({marks})"
            rows = db.execute(f"{query} {_RETURNING}", tuple(values.values())).fetchall()
            if payment.group_id is None:  # a payment of its own: its group is its id
                query = f"UPDATE payments SET group_id = id WHERE id = ? {_RETURNING}"
                rows = db.execute(query, (rows[0][0],)).fetchall()
            return _payment(rows[0])
        values["updated_at"] = now
        for fixed in ("id", "tenant", "invoice_id", "group_id"):
            del values[fixed]
        assignments = ", ".join(f"{name} = ?" for name in values)
        query = f"UPDATE payments SET {assignments} WHERE id = ?"
        rows = db.execute(f"{query} {_RETURNING}", (*values.values(), payment.id)).fetchall()
        return _payment(rows[0])

    async def owner(self, kind: str, object_id: int) -> str | None:
        table = {"invoice": "invoices", "payment": "payments"}[kind]
        return await self._read(lambda db: self._owner(db, table, object_id))

    @staticmethod
    def _owner(db: sqlite3.Connection, table: str, object_id: int) -> str | None:
        extra = " AND deleted_at IS NULL" if table == "payments" else ""
        query = f"SELECT tenant FROM {table} WHERE id = ?{extra}"
        row = db.execute(query, (object_id,)).fetchone()
        return str(row[0]) if row else None

    # --- backend id map (proxy mode) ----------------------------------------------

    async def map_ids(self, tenant: str, kind: str, refs: Sequence[BackendRef]) -> list[int]:
        known = await self._read(lambda db: self._known_ids(db, tenant, kind, refs))
        if all(local is not None for local in known):
            return [local for local in known if local is not None]
        return await self._write(lambda db: self._mint_ids(db, tenant, kind, refs))

    @staticmethod
    def _known_ids(
        db: sqlite3.Connection, tenant: str, kind: str, refs: Sequence[BackendRef]
    ) -> list[int | None]:
        found = []
        for ref in refs:
            row = db.execute(
                "SELECT id, parent FROM id_map WHERE tenant = ? AND kind = ? AND backend_id = ?",
                (tenant, kind, ref.backend_id),
            ).fetchone()
            stale = row is not None and ref.parent is not None and row[1] != ref.parent
            found.append(None if row is None or stale else int(row[0]))
        return found

    @staticmethod
    def _mint_ids(
        db: sqlite3.Connection, tenant: str, kind: str, refs: Sequence[BackendRef]
    ) -> list[int]:
        ids = []
        for ref in refs:
            db.execute(
                "INSERT INTO id_map (tenant, kind, backend_id, parent) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant, kind, backend_id)"
                " DO UPDATE SET parent = COALESCE(excluded.parent, parent)",
                (tenant, kind, ref.backend_id, ref.parent),
            )
            row = db.execute(
                "SELECT id FROM id_map WHERE tenant = ? AND kind = ? AND backend_id = ?",
                (tenant, kind, ref.backend_id),
            ).fetchone()
            ids.append(int(row[0]))
        return ids

    async def backend_ref(self, tenant: str, kind: str, local_id: int) -> BackendRef | None:
        return await self._read(lambda db: self._backend_ref(db, tenant, kind, local_id))

    @staticmethod
    def _backend_ref(
        db: sqlite3.Connection, tenant: str, kind: str, local_id: int
    ) -> BackendRef | None:
        row = db.execute(
            "SELECT backend_id, parent FROM id_map WHERE id = ? AND tenant = ? AND kind = ?",
            (local_id, tenant, kind),
        ).fetchone()
        return BackendRef(str(row[0]), row[1]) if row else None

    # --- idempotency keys ----------------------------------------------------------

    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        return await self._write(lambda db: self._claim_key(db, claim))

    @staticmethod
    def _claim_key(db: sqlite3.Connection, claim: KeyClaim) -> KeyRecord | None:
        held = SQLiteStore._load_key(db, claim.tenant, claim.key)
        if held is not None and not claim.takes(held):
            return held
        db.execute(
            "INSERT INTO idempotency_keys (tenant, key, fingerprint, state, owner, lease_until,"
            " created_at, expires_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)"
            " ON CONFLICT (tenant, key) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " state = 'pending', owner = excluded.owner, lease_until = excluded.lease_until,"
            " created_at = excluded.created_at, expires_at = excluded.expires_at,"
            " status = NULL, headers = NULL, body = NULL",
            (
                claim.tenant, claim.key, claim.fingerprint, claim.owner,
                _moment(claim.lease_until), _moment(claim.now), _moment(claim.expires_at),
            ),
        )  # fmt: skip
        return None

    async def set_key_state(self, tenant: str, key: str, owner: str, state: KeyState) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                f"UPDATE idempotency_keys SET state = ? WHERE tenant = ? AND key = ?"
                f" AND owner = ? AND {_HELD}",
                (state.value, tenant, key, owner),
            )
            return cursor.rowcount > 0

        return await self._write(write)

    async def complete_key(self, seal: Seal) -> None:
        await self._write(lambda db: self._complete_key(db, seal))

    @staticmethod
    def _complete_key(db: sqlite3.Connection, seal: Seal) -> None:
        assert seal.sealed is not None
        answer = seal.sealed
        cursor = db.execute(
            f"UPDATE idempotency_keys SET state = 'done', status = ?, headers = ?, body = ?"
            f" WHERE tenant = ? AND key = ? AND owner = ? AND {_HELD}",
            (
                answer.status, json.dumps(dict(answer.headers)), answer.body,
                seal.tenant, seal.key, seal.owner,
            ),
        )  # fmt: skip
        if cursor.rowcount == 0:
            raise Conflict("The request's Idempotency-Key was taken over by a retry")

    async def release_key(self, tenant: str, key: str, owner: str) -> None:
        await self._write(
            lambda db: db.execute(
                f"DELETE FROM idempotency_keys WHERE tenant = ? AND key = ? AND owner = ?"
                f" AND {_HELD}",
                (tenant, key, owner),
            )
        )

    async def key_record(self, tenant: str, key: str) -> KeyRecord | None:
        return await self._read(lambda db: self._load_key(db, tenant, key))

    @staticmethod
    def _load_key(db: sqlite3.Connection, tenant: str, key: str) -> KeyRecord | None:
        row = db.execute(f"{_SELECT_KEY} WHERE tenant = ? AND key = ?", (tenant, key)).fetchone()
        return _key_record(row) if row else None

    async def forget_key(self, tenant: str, key: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "DELETE FROM idempotency_keys WHERE tenant = ? AND key = ?", (tenant, key)
            )
            return cursor.rowcount > 0

        return await self._write(write)

    async def take_budget(self, take: budgets.Take) -> budgets.Grant:
        return await self._write(lambda db: budgets.sqlite_take(db, take))

    async def purge_budgets(self, now: float) -> int:
        return await self._write(lambda db: budgets.sqlite_purge(db, now))

    async def purge_keys(self, now: datetime, limit: int) -> int:
        def write(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys"
                " WHERE expires_at <= ? LIMIT ?)",
                (_moment(now), limit),
            )
            return cursor.rowcount

        return await self._write(write)


class _Writes:
    """A ledger write's database operations on the writer's connection. None waits (the
    driver blocks on the writer thread), so `finished` runs the template through."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def lock(self, tenant: str, invoice_ids: Sequence[int]) -> None:
        """Nothing to lock: the one writer thread holds the database."""

    async def invoice(self, tenant: str, invoice_id: int) -> Invoice | None:
        return SQLiteStore._load_invoice(self.db, tenant, invoice_id)

    async def payment(self, tenant: str, payment_id: int, invoice_id: int) -> Payment | None:
        return SQLiteStore._load_payment(self.db, tenant, payment_id, invoice_id)

    async def upsert(self, payment: Payment, now: datetime) -> Payment:
        return SQLiteStore._upsert(self.db, payment, now.isoformat())

    async def delete(self, payment_id: int, now: datetime, *, voided: bool = False) -> None:
        moment = now.isoformat()
        self.db.execute(
            "UPDATE payments SET deleted_at = ?, updated_at = ?, voided = ? WHERE id = ?",
            (moment, moment, int(voided), payment_id),
        )

    async def group_version(self, tenant: str, group_id: int) -> int:
        (held,) = self.db.execute(
            "SELECT MAX(version) FROM payments WHERE tenant = ? AND group_id = ?"
            " AND deleted_at IS NULL",
            (tenant, group_id),
        ).fetchone()
        return -1 if held is None else int(held)

    async def set_version(
        self, tenant: str, group_id: int, version: int, *, skip: int | None = None
    ) -> None:
        self.db.execute(
            "UPDATE payments SET version = ? WHERE tenant = ? AND group_id = ?"
            " AND deleted_at IS NULL AND id IS NOT ?",
            (version, tenant, group_id, skip),
        )

    async def invoice_totals(
        self, invoice_id: int, settled: Decimal, count: int, marked_paid: bool
    ) -> None:
        self.db.execute(
            "UPDATE invoices SET settled_cents = ?, payment_count = ?, marked_paid = ?"
            " WHERE id = ?",
            (_cents(settled), count, int(marked_paid), invoice_id),
        )

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self.db.execute("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO item")
            self.db.execute("RELEASE item")
            raise
        self.db.execute("RELEASE item")

    async def complete_key(self, seal: Seal) -> None:
        SQLiteStore._complete_key(self.db, seal)

    async def append_events(self, tenant: str, events: Sequence[NewEvent]) -> None:
        SQLiteStore._append_events(self.db, tenant, events)


def _now() -> datetime:
    return datetime.now(UTC)


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the pending migrations (inside the writer's `BEGIN IMMEDIATE`)."""
    db.execute(VERSIONS_TABLE)
    applied = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    for migration in pending(applied):
        for statement in migration.statements("sqlite"):
            db.execute(statement)
        db.execute(
            "INSERT INTO schema_migrations VALUES (?, ?)",
            (migration.version, _now().isoformat()),
        )


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _cents(amount: Decimal) -> int:
    cents = amount.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def _payment_row(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "tenant": payment.tenant,
        "invoice_id": payment.invoice_id,
        "amount": str(payment.amount),
        "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
        "method": payment.method.value if payment.method else None,
        "method_label": payment.method_label,
        "origin": payment.origin,
        "notes": payment.notes,
        "reference": payment.reference,
        "tax_withheld": str(payment.tax_withheld),
        "fee": str(payment.fee),
        "recorded_by": payment.recorded_by,
        "recorded_by_email": payment.recorded_by_email,
        "client_app": payment.client_app,
        "notify_customer": int(payment.notify_customer),
        "account_code": payment.account_code,
        "account_id": payment.account_id,
        "settled_cents": _cents(payment.settled),
        "group_id": payment.group_id,
        "version": payment.version,
        "customer": payment.customer,
        "voided": int(payment.voided),
    }


_METHODS = {method.value: method for method in Method}


def _payment(row: tuple[Any, ...]) -> Payment:
    data = dict(zip(PAYMENT_COLUMNS, row, strict=True))
    for money in ("amount", "tax_withheld", "fee"):
        data[money] = Decimal(data[money])
    for moment in ("paid_at", "created_at", "updated_at"):
        data[moment] = datetime.fromisoformat(data[moment])
    if data["deleted_at"] is not None:
        data["deleted_at"] = datetime.fromisoformat(data["deleted_at"])
    data["method"] = _METHODS[data["method"]] if data["method"] else None
    data["notify_customer"] = bool(data["notify_customer"])
    data["voided"] = bool(data["voided"])
    return stored_payment(data)


def _invoice(
    row: tuple[Any, ...], settled: Decimal, count: int, payments: tuple[Payment, ...]
) -> Invoice:
    data = dict(zip(_INVOICE_COLUMNS, row, strict=True))
    data["total"] = Decimal(data["total"])
    data["issued_on"] = date.fromisoformat(data["issued_on"])
    data["due_on"] = date.fromisoformat(data["due_on"])
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    for flag in ("draft", "void", "marked_paid"):
        data[flag] = bool(data[flag])
    return Invoice.model_construct(settled=settled, payment_count=count, payments=payments, **data)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _moment(value: datetime) -> str:
    """A UTC time as fixed-width text, so that text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _key_record(row: tuple[Any, ...]) -> KeyRecord:
    data = dict(zip(_KEY_COLUMNS, row, strict=True))
    answer = None
    if data["status"] is not None:
        headers = json.loads(data["headers"])
        answer = Reply(int(data["status"]), bytes(data["body"]), dict(headers))
    return KeyRecord(
        tenant=data["tenant"],
        key=data["key"],
        fingerprint=data["fingerprint"],
        state=KeyState(data["state"]),
        owner=data["owner"],
        lease_until=datetime.fromisoformat(data["lease_until"]),
        created_at=datetime.fromisoformat(data["created_at"]),
        expires_at=datetime.fromisoformat(data["expires_at"]),
        answer=answer,
    )
