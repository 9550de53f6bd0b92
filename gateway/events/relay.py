"""Relay: a ledger-mode tenant's payments forwarded to a backend, from the outbox.

A tenant with `relay:` is served from the ledger; every `payment.created` and
`payment.deleted` of it is also owed to one more subscription (`RELAY`), delivered by the
same loops, claims and leases as webhooks, but by calling the backend in its own dialect
(`ProxyService`, so within its breaker) instead of POSTing the event. The caller's answer
never waits for it: a payment is `pending` at the backend until forwarded.

Exactly once at the backend:
- a create goes with an idempotency key derived from its event where the backend's
  dialect takes one (`DialectUnit.idempotency_header`): a retry of an attempt whose
  outcome is unknown (no answer, a crash) is answered from the backend's key;
- for a backend without keys, an attempt is marked as going out before it is sent
  (by the claim that leases it, in the same write: `Relay.sending`); a retry of a marked one first looks for the payment at the backend (its invoice's
  list, matched by what was sent, and not already the backend id of another relayed
  payment) and sends again only if it is not there.

A delete uses the backend id its create recorded, and follows its create: while the
create is pending the delete waits (no attempt spent); a create that failed fails its
delete too. A payment deleted before its create went out is still sent, create then
delete, so the backend's history is the ledger's. A refusal no retry will change (a 4xx:
an unknown invoice, an overpayment there) is `failed` at once and blocks nothing behind
it; an operator replays it once the cause is fixed (`relay_replay`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialects.errors import (
    BadRequest,
    GatewayError,
    LedgerRefused,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    ValidationFailed,
)
from dialects.model import Payment
from gateway.config import Relay as RelayConfig
from gateway.events.attempts import Outcome, outcome_name, settled
from gateway.observability import trace
from gateway.observability.logs import event as logged
from gateway.observability.metrics import RELAY_ATTEMPTS, RELAY_ITEMS, child
from gateway.proxy.service import ProxyService
from gateway.proxy.upstream import UpstreamClient
from gateway.store import Store
from gateway.store.deliveries import FAILED, PENDING, RELAY, Due, Settle, Track
from gateway.store.outbox import PAYMENT_CREATED, PAYMENT_DELETED, payment_of

# Answers no retry changes: the backend refused what was sent (or cannot take it at all).
REFUSED = (BadRequest, ValidationFailed, NotFound, LedgerRefused, NotSupported, PayloadTooLarge)
# Backend invoice ids a relay keeps, for the next payments of the same invoices.
INVOICES_KEPT = 4096
# How long a delete waits, at least, before it looks at its create again.
WAIT_SECONDS = 1.0
NOT_RELAYED = "its create was never relayed (the payment predates the relay)"
CREATE_FAILED = "its create failed: replay the payment once the cause is fixed"


@dataclass(frozen=True)
class Wait:
    """A delete whose create is still pending: tried again at `until`, no attempt spent."""

    until: datetime


class Relay:
    """One tenant's forwarding to its backend: a subscription the delivery loops run."""

    name = RELAY
    events = (PAYMENT_CREATED, PAYMENT_DELETED)

    def __init__(self, tenant: str, config: RelayConfig, store: Store) -> None:
        self.tenant = tenant
        self.config = config
        self.store = store
        self.service = ProxyService(tenant, UpstreamClient(config), store)
        self._invoices: dict[int, str] = {}  # backend invoice ids, fixed at the invoice's create

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return self.config.retry_schedule

    @property
    def keyed(self) -> bool:
        """Whether the backend's dialect takes an idempotency key."""
        return self.service.keys.header is not None

    @property
    def sending(self) -> bool:
        """Whether a claim notes its creates as going out before they are sent (a backend
        without keys: a retry of one whose outcome is unknown looks before sending)."""
        return not self.keyed

    async def deliver(self, due: Due, clock: Callable[[], datetime]) -> Settle:
        """Forward one claimed event; what came of it, for the pass to settle."""
        trace.begin(None)  # this attempt's request id: sent to the backend, logged
        event = due.event
        found = await self.attempt(due)
        now = clock()
        if isinstance(found, Wait):
            settle = Settle(
                PENDING, due.attempts, max(found.until, now + timedelta(seconds=WAIT_SECONDS)),
                None, "waits for its create to be delivered", success=True, unknown=due.unknown,
            )  # fmt: skip
            child(RELAY_ITEMS, self.tenant, "waiting").inc()
        else:
            settle = settled(self, due, found, now)
            child(RELAY_ATTEMPTS, self.tenant).inc()
            child(RELAY_ITEMS, self.tenant, outcome_name(settle)).inc()
            if not found.delivered:
                logged(
                    "relay_failed", logging.WARNING, tenant=self.tenant, event_id=event.id,
                    payment_id=payment_of(event).id, type=event.type, attempt=settle.attempts,
                    state=settle.state, reason=found.error,
                )  # fmt: skip
        return settle

    async def attempt(self, due: Due) -> Outcome | Wait:
        payment = payment_of(due.event)
        assert payment.id is not None and payment.invoice_id is not None
        invoice = await self.backend_invoice(payment.invoice_id)
        if due.event.type == PAYMENT_DELETED:
            tracks = await self.store.relay_tracks(self.tenant, payment.id)
            return await self._delete(due, invoice, tracks)
        return await self._create(due, invoice, payment)

    async def backend_invoice(self, invoice_id: int) -> str:
        """The invoice's id at the backend: as created, else its own in the backend's form.
        An invoice's is set when it is created and never changes: read once per process
        (the last INVOICES_KEPT kept), not once per forward."""
        found = self._invoices.get(invoice_id)
        if found is None:
            stored = await self.store.invoice_backend_id(self.tenant, invoice_id)
            found = stored if stored is not None else str(self.service.dialect.wire_id(invoice_id))
            self._invoices[invoice_id] = found
            if len(self._invoices) > INVOICES_KEPT:
                del self._invoices[next(iter(self._invoices))]  # the oldest
        return found

    async def _create(self, due: Due, invoice: str, payment: Payment) -> Outcome:
        if self.keyed:
            try:
                made = await self.service.relay_create(invoice, payment, key=due.event.id)
            except GatewayError as exc:
                return _failure(exc, unknown=False)
            return Outcome(201, None, backend_id=made)
        if due.unknown:  # an earlier attempt may have stored it: look before sending again
            try:
                found = await self.service.relay_matches(invoice, payment)
            except GatewayError as exc:
                return _failure(exc, unknown=True)
            taken = await self.store.relay_taken(self.tenant, found) if found else set()
            free = [backend_id for backend_id in found if backend_id not in taken]
            if free:
                return Outcome(200, None, backend_id=free[0])
        # Otherwise its claim noted that it is going out (`sending`): sent at once.
        try:
            made = await self.service.relay_create(invoice, payment, key=None)
        except GatewayError as exc:
            return _failure(exc, unknown=True)
        return Outcome(201, None, backend_id=made)

    async def _delete(self, due: Due, invoice: str, tracks: list[Track]) -> Outcome | Wait:
        create = tracks[0] if tracks and tracks[0].sequence < due.event.sequence else None
        if create is not None and create.state == PENDING:
            return Wait(create.next_at)
        if create is None or create.backend_id is None:
            failed = create is not None and create.state == FAILED
            return Outcome(None, CREATE_FAILED if failed else NOT_RELAYED, refused=True)
        try:
            await self.service.relay_delete(create.backend_id, invoice)
        except NotFound:
            return Outcome(204, None)  # gone already (an earlier attempt's answer was lost)
        except GatewayError as exc:
            return _failure(exc, unknown=False)
        return Outcome(204, None)


def _failure(exc: GatewayError, *, unknown: bool) -> Outcome:
    """A failed attempt: refused (failed at once) or retried on the schedule."""
    if isinstance(exc, REFUSED):
        return Outcome(exc.status, f"refused: {exc.message}"[:300], refused=True)
    reason = f"{type(exc).__name__}: {exc.message}"[:300]
    return Outcome(None, reason, exc.retry_after, unknown=unknown)
