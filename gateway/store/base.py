"""The store interface: what the ledger needs from a database, nothing more."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from dialects.model import Invoice, Payment


@dataclass(frozen=True)
class NewInvoice:
    tenant: str
    number: str
    currency: str
    total: Decimal
    issued_on: date
    due_on: date
    draft: bool = False


@dataclass(frozen=True)
class Change:
    """What a ledger rule decided: a payment to insert (no id) or replace, or delete."""

    marked_paid: bool
    upsert: Payment | None = None
    delete: int | None = None


# A ledger rule: given the invoice (and the payment it acts on), decide a Change.
@dataclass(frozen=True)
class BackendRef:
    backend_id: str
    parent: str | None = None


Rule = Callable[[Invoice, Payment | None], Change]


class Store(Protocol):
    """A transactional home for invoices and payments, scoped by tenant on every call.

    `apply` loads an invoice's totals (and the live payment `payment_id`, if named)
    under a write lock, lets `rule` decide, and stores the decision atomically: no
    two rules on one invoice interleave.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_invoice(self, new: NewInvoice) -> Invoice: ...

    async def invoice(
        self, tenant: str, invoice_id: int, *, with_payments: bool = False
    ) -> Invoice | None: ...

    async def payment(self, tenant: str, payment_id: int) -> Payment | None: ...

    async def apply(
        self, tenant: str, invoice_id: int, rule: Rule, *, payment_id: int | None = None
    ) -> Payment | None:
        """The payment as stored after the change (None when it was deleted)."""
        ...

    async def owner(self, kind: str, object_id: int) -> str | None:
        """The tenant an invoice or payment belongs to (for the admin API)."""
        ...

    async def map_ids(self, tenant: str, kind: str, refs: Sequence[BackendRef]) -> list[int]:
        """The local ids of a backend's objects, minted on first sight, stable for ever."""
        ...

    async def backend_ref(self, tenant: str, kind: str, local_id: int) -> BackendRef | None:
        """The backend id (and parent invoice's backend id) behind a local id."""
        ...
