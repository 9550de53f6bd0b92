"""The change feed over the outbox, and its retention.

A tenant's events are read after a cursor (the last sequence a consumer has seen), in
sequence order; a consumer that keeps the cursor misses none and sees none twice. Events
older than `events.retention_seconds` are deleted in the background in small batches;
a cursor from before them is refused (410) with the oldest cursor still answerable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dialects
from dialects.errors import GatewayError, ValidationFailed
from dialects.model import Payment
from gateway.config import Events
from gateway.ledger.idempotency import Clock, utc_now
from gateway.store import Store
from gateway.store.outbox import EventPage, StoredEvent, payment_of

log = logging.getLogger("gateway.events")

# Events one purge transaction deletes, and the pause between purges, in seconds.
PURGE_BATCH = 500
PURGE_INTERVAL_SECONDS = 60.0


def dialect_ids(number: int) -> dict[str, object]:
    return {name: d.wire_id(number) for name, d in dialects.DIALECTS.items()}


def payment_json(payment: Payment, allocations: Sequence[Payment] = ()) -> dict[str, Any]:
    """A payment as the admin API and the events show it. `allocations`: the live
    allocations of the whole payment it belongs to, where they were read (the admin API's
    payment); else (an event, which concerns one allocation) the payment's own."""
    data = payment.model_dump(mode="json", exclude={"method_label", "deleted_at"})
    for money in ("amount", "tax_withheld", "fee"):
        data[money] = str(getattr(payment, money))
    data["dialect_ids"] = dialect_ids(payment.id) if payment.id is not None else None
    data["allocations"] = [
        {"id": part.id, "invoice_id": part.invoice_id, "amount": str(part.amount)}
        for part in allocations or (payment,)
    ]
    return data


def moment(at: datetime) -> str:
    """A time as the admin API writes one: UTC, to the microsecond, with a Z."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_json(event: StoredEvent) -> dict[str, Any]:
    """An event as the feed shows it: its payment as the admin API shows payments."""
    data = {"payment": payment_json(payment_of(event)), "invoice": event.data["invoice"]}
    return {
        "id": event.id,
        "sequence": event.sequence,
        "type": event.type,
        "timestamp": moment(event.at),
        "tenant": event.tenant,
        "data": data,
    }


class CursorPurged(GatewayError):
    """A feed cursor older than the events kept: some after it are gone."""

    kind, status, default_message = "gone", 410, "Events after this cursor have been purged"

    def __init__(self, oldest: int) -> None:
        super().__init__(
            f"Events after this cursor have been purged; the oldest cursor kept is {oldest}",
            fields={"after": f"must be at least {oldest}"},
        )
        self.oldest = oldest

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Oldest-Cursor": str(self.oldest)}


class Feed:
    """Reads and purges the outbox for one process."""

    def __init__(self, store: Store, settings: Events, clock: Clock = utc_now) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def page(self, tenant: str, after: int | None, limit: int) -> EventPage:
        """At most `limit` events after `after` (none given: from the oldest kept)."""
        found = await self.store.events(tenant, after or 0, limit)
        if after is None and found.purged_through:
            found = await self.store.events(tenant, found.purged_through, limit)
        elif after is not None and after < found.purged_through:
            raise CursorPurged(found.purged_through)
        elif after is not None and after > found.last_sequence:
            # No answer of this feed gave it (another database's cursor, say).
            raise ValidationFailed(
                f"No event has sequence {after} yet; the newest is {found.last_sequence}",
                fields={"after": f"must be at most {found.last_sequence}"},
            )
        return found

    async def purge(self) -> int:
        """Delete events past retention, one small batch (one short transaction) at a time."""
        before = self.clock() - timedelta(seconds=self.settings.retention_seconds)
        total = 0
        while True:
            deleted = await self.store.purge_events(before, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total
            await asyncio.sleep(0)  # requests queued meanwhile go first

    async def purge_forever(self, interval: float = PURGE_INTERVAL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.purge()
            except Exception:
                log.warning("purging old events failed; trying again later")
