"""Webhook deliveries as the stores keep them (tables of migration 9).

A subscription (`webhook_subscriptions`) is `active`, `disabled` (its receiver answered
410 Gone, until an operator enables it) or `retired` (no longer in the config); its
`through` is the last event sequence its deliveries were made for. Each event of a type it
takes gets one `webhook_deliveries` row: `pending` until `delivered` or `failed` (the
retry schedule spent). A process sending a delivery holds it with a lease (`owner`,
`lease_until`); past the lease any process may take it again (a crash is retried).

A relay tenant's forwarding to its backend is one more subscription, named `RELAY` (no
webhook name can be), whose rows also keep their event's payment, the backend's id for a
relayed create, and whether an attempt went out and was never answered (migration 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.store.outbox import StoredEvent

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)
ACTIVE, DISABLED, RETIRED = "active", "disabled", "retired"
# The relay's subscription: a name the webhook name pattern excludes.
RELAY = "@relay"

# Retention's condition on an event `e`: no active subscription is still owed it, or an
# earlier event of its tenant (so a tenant's kept events stay one unbroken run).
NOT_OWED = (
    "NOT EXISTS (SELECT 1 FROM webhook_deliveries d JOIN webhook_subscriptions s"
    " ON s.tenant = d.tenant AND s.name = d.subscription AND s.state = 'active'"
    " WHERE d.tenant = e.tenant AND d.state = 'pending' AND d.sequence <= e.sequence)"
    " AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.tenant = e.tenant"
    " AND s.state = 'active' AND s.through < e.sequence)"
)

# A claimed delivery whose event retention deleted (while its subscription was disabled
# or retired): it can never be sent, so it is failed, and no longer listed (its event gone).
PURGED_BEFORE_DELIVERY = (
    "state = 'failed', owner = NULL, lease_until = NULL,"
    " last_error = 'the event was purged before it could be delivered'"
)


@dataclass(frozen=True)
class Owed:
    """What an active subscription has to do, as one read finds it: events not yet fanned
    out to it (`behind`), and when its earliest pending delivery may next be claimed (its
    `next_at`, or a lease's end if later; None: nothing pending)."""

    behind: bool
    next_due: datetime | None


@dataclass(frozen=True)
class Due:
    """A pending delivery claimed by one process: its event and the attempts made so far."""

    event: StoredEvent
    attempts: int
    unknown: bool = False  # an attempt went out and was never answered


@dataclass(frozen=True)
class Settle:
    """What one attempt left: the delivery's new state, when to try next, and why."""

    state: str
    attempts: int
    next_at: datetime
    status: int | None
    error: str | None
    success: bool
    disable: bool = False
    backend_id: str | None = None  # kept once set: the id a relayed create was given
    unknown: bool = False


# A delivery's sequence and what its attempt left: a pass settles its batch in one write.
Settled = tuple[int, Settle]


def outcomes(settles: Sequence[Settled]) -> tuple[bool, bool, bool]:
    """Whether a batch of attempts had a success, a failure, and a 410 (disable): what
    the subscription's row records of them."""
    success = any(settle.success for _, settle in settles)
    failure = any(not settle.success for _, settle in settles)
    return success, failure, any(settle.disable for _, settle in settles)


@dataclass(frozen=True)
class Subscription:
    """A subscription as stored: its state, last outcomes, and what it is still owed."""

    name: str
    state: str
    last_success: datetime | None
    last_failure: datetime | None
    backlog: int
    oldest_pending: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One event's delivery to one subscription."""

    event_id: str
    sequence: int
    type: str
    state: str
    attempts: int
    next_at: datetime
    last_status: int | None
    last_error: str | None
    updated_at: datetime
    payment_id: int | None = None
    backend_id: str | None = None


@dataclass(frozen=True)
class Track:
    """A relayed payment's delivery row, as the relay and the admin API read it."""

    sequence: int
    state: str
    attempts: int
    next_at: datetime
    backend_id: str | None
    last_error: str | None
