"""The outbox: which events a ledger change makes, written in the change's own transaction.

Every store calls `Outbox.made` where it applies a `Change`, and appends what it returns
to `events` before its transaction commits, numbering them from the tenant's counter
row (`event_sequences`), which it updates in the same transaction. That row stays
locked until the commit, so a tenant's events become visible in sequence order: no
reader can pass a sequence that a transaction still running would fill later.

Tables (migration 8):

    event_sequences  tenant (key), last_sequence, purged_through
    events           tenant + sequence (key), id (unique, `evt_` + a ULID), type,
                     created_at, payment_id, invoice_id, data (JSON text)

Deliveries of an event to a subscription can sit beside them, keyed by the event's
`(tenant, sequence)` (or its `id`) and the subscription's name.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dialects.model import Invoice, Payment
from gateway.observability.metrics import EVENTS_WRITTEN, child
from gateway.store.base import Change

Clock = Callable[[], datetime]

PAYMENT_CREATED = "payment.created"
PAYMENT_UPDATED = "payment.updated"
PAYMENT_DELETED = "payment.deleted"
INVOICE_UPDATED = "invoice.updated"
TYPES = (PAYMENT_CREATED, PAYMENT_UPDATED, PAYMENT_DELETED, INVOICE_UPDATED)

# Crockford's base 32, as ULIDs are written.
_ULID_DIGITS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Two digits at a time (10 bits): a ULID's 26 digits are 13 lookups, not 26 shifts.
_ULID_PAIRS = tuple(a + b for a in _ULID_DIGITS for b in _ULID_DIGITS)


def ulid(at: datetime) -> str:
    """A ULID: 48 bits of milliseconds since 1970, then 80 random bits, 26 characters."""
    millis = int(at.timestamp() * 1000) & (2**48 - 1)
    number = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join([_ULID_PAIRS[(number >> shift) & 1023] for shift in range(120, -1, -10)])


@dataclass(frozen=True)
class NewEvent:
    """An event a change makes, before its store numbers it."""

    id: str
    type: str
    at: datetime
    invoice_id: int
    payment_id: int | None
    data: str  # JSON: {"payment": <the payment as stored>, "invoice": {number, due, status}}


@dataclass(frozen=True)
class StoredEvent:
    """An event as the feed reads it back."""

    id: str
    tenant: str
    sequence: int
    type: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class EventPage:
    """A tenant's events after a cursor, and the cursors the store can still answer:
    events up to `purged_through` are gone; none is newer than `last_sequence`."""

    events: list[StoredEvent]
    purged_through: int
    last_sequence: int


class Outbox:
    """Decides the events of a change; `clock` times them and dates an invoice's status."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        self.clock = clock

    def stamp(self) -> tuple[datetime, tuple[str, str]]:
        """A change's time by this clock, and ids for the (at most two) events it makes."""
        at = self.clock()
        return at, (f"evt_{ulid(at)}", f"evt_{ulid(at)}")

    def made(
        self,
        invoice: Invoice,
        current: Payment | None,
        change: Change,
        stored: Payment | None,
        now: datetime,
    ) -> list[NewEvent]:
        """The events of `change` to `invoice` (acting on `current`), which left `stored`;
        `now` is the store's time of the change (a deleted payment's `updated_at`)."""
        at, ids = self.stamp()
        today = at.astimezone(UTC).date()
        if change.delete is not None:
            assert current is not None
            kind = PAYMENT_DELETED
            payment = current.model_copy(update={"deleted_at": now, "updated_at": now})
        elif stored is not None:
            kind = PAYMENT_CREATED if current is None else PAYMENT_UPDATED
            payment = stored
        else:
            return []
        after = change.after(invoice, current)
        shown = {
            "id": invoice.id,
            "number": after.number,
            "due_amount": str(after.due_amount),
            "status": after.status(today).value,
        }
        # pydantic writes the payment's JSON itself (its fast path; the feed parses it back)
        data = f'{{"payment":{payment.model_dump_json()},"invoice":{json.dumps(shown)}}}'
        kinds = [kind]
        if (after.due_amount, after.status(today)) != (invoice.due_amount, invoice.status(today)):
            kinds.append(INVOICE_UPDATED)
        return [
            NewEvent(made, name, at, invoice.id, payment.id, data)
            for made, name in zip(ids, kinds, strict=False)
        ]


def stored_event(tenant: str, sequence: int, row: tuple[str, str, datetime, str]) -> StoredEvent:
    """An event from its stored columns (id, type, created_at, data)."""
    event_id, kind, at, data = row
    return StoredEvent(event_id, tenant, sequence, kind, at, json.loads(data))


def committed(events: Sequence[NewEvent]) -> None:
    """Count events whose transaction committed."""
    for event in events:
        child(EVENTS_WRITTEN, event.type).inc()


class Notices:
    """Wake-ups for this process's delivery loops when a commit of its own gives a tenant's
    subscriptions something to do (new events, a replay, an enable), so no loop polls the
    store to find out; commits made by other processes are found by each loop's slower
    poll. Each watcher is an `asyncio.Event` that `tell` sets and its loop clears."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}
        # The tenants with a webhook or a relay in the config: only their commits are
        # announced to other processes (processes on one database share their config).
        self.subscribed: frozenset[str] = frozenset()

    def watch(self, tenant: str) -> asyncio.Event:
        woken = asyncio.Event()
        self._watchers.setdefault(tenant, set()).add(woken)
        return woken

    def unwatch(self, tenant: str, woken: asyncio.Event) -> None:
        self._watchers.get(tenant, set()).discard(woken)

    def tell(self, tenant: str) -> None:
        for woken in self._watchers.get(tenant, ()):
            woken.set()

    def tell_all(self) -> None:
        """Wake every loop (what was written while no notice could arrive)."""
        for tenant in list(self._watchers):
            self.tell(tenant)

    def committed(self, tenant: str, events: Sequence[NewEvent]) -> None:
        """Count a write's committed events and wake the loops of their tenant."""
        committed(events)
        if events:
            self.tell(tenant)


def payment_of(event: StoredEvent) -> Payment:
    """The payment an event carries, as it was stored by the change."""
    return Payment.model_validate(event.data["payment"])
