"""What a handler talks to: the embedded ledger or a proxied upstream, in canonical terms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dialects import Decoded
from dialects.errors import GatewayError
from dialects.listing import Row
from dialects.model import InvoiceFacts, Page, Payment, PaymentQuery
from gateway.store import Seal


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant the credential opens, and how to record them."""

    tenant: str
    dialect: str
    name: str
    email: str | None = None
    app: str | None = None
    credential: str = ""
    scopes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Outcome:
    """A payment as the backend answered it, with any translation warnings."""

    payment: Payment
    warnings: tuple[str, ...] = ()


class PaymentService(Protocol):
    """Payment operations in canonical terms; every call is scoped to one tenant.

    Unknown or foreign ids raise NotFound; rule violations raise LedgerRefused. A change
    given the `version` it expects (None: any) raises StaleVersion when the payment (or
    its group) is at another one. A write given a `seal` (an Idempotency-Key the request holds) closes it with its answer and
    stores it with its effect: in the same transaction where the effect is local.
    """

    async def list_rows(
        self,
        who: Principal,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        """An invoice's payments as rows of `columns` (see `dialects.listing`), by id,
        `offset` skipped and at most `limit` of them."""
        ...

    async def get_payment(
        self, who: Principal, payment_id: int, *, deleted: bool = False
    ) -> Payment:
        """A payment; with `deleted`, a deleted one too (its `deleted_at` set), where the
        system of record keeps them."""
        ...

    async def create_payment(
        self, who: Principal, invoice_id: int, request: Decoded, *, seal: Seal | None = None
    ) -> Outcome: ...

    async def create_payments(
        self,
        who: Principal,
        items: Sequence[tuple[int, Decoded]],
        *,
        each: bool,
        seal: Seal | None = None,
    ) -> list[Outcome | GatewayError]:
        """A batch of creates, each on the invoice it names: all stored or none (the
        first refusal raised), or with `each`, every item stored or refused on its own
        (a refusal standing in its place). A `seal` covers the whole batch."""
        ...

    async def update_payment(
        self,
        who: Principal,
        payment_id: int,
        request: Decoded,
        *,
        replace: bool,
        seal: Seal | None = None,
        version: int | None = None,
    ) -> Outcome:
        """Change one payment (one allocation of a group: the group's version moves on)."""
        ...

    async def delete_payment(
        self,
        who: Principal,
        payment_id: int,
        *,
        seal: Seal | None = None,
        version: int | None = None,
    ) -> None:
        """Delete one payment (one allocation of a group: the group shrinks, and the
        version of what is left of it moves on)."""
        ...

    # --- whole payments, split across invoices (allocations) ------------------------------

    async def get_group(
        self, who: Principal, group_id: int, *, deleted: bool = False
    ) -> list[Payment]:
        """The allocations of a whole payment by its group id, in id order; with
        `deleted`, the deleted and voided ones too. NotFound if there is none (none live,
        without `deleted`)."""
        ...

    async def create_group(
        self, who: Principal, request: Decoded, *, seal: Seal | None = None
    ) -> list[Outcome]:
        """A payment on `request.allocations` (at least one: the invoices and amounts),
        every allocation stored or none; `request.payment` holds the shared fields, its
        `amount` the total, which must equal the allocations' sum (more: Unapplied)."""
        ...

    async def update_group(
        self,
        who: Principal,
        group_id: int,
        request: Decoded,
        *,
        replace: bool,
        version: int | None,
        seal: Seal | None = None,
    ) -> list[Outcome]:
        """Change a whole payment in one transaction: the shared fields from
        `request.payment` (those provided; `replace` resets the rest); non-empty
        `request.allocations` are the complete new lines (allocations on invoices not
        named are deleted, new ones made, changed amounts updated), else the lines stay.
        The live allocations after it, in id order."""
        ...

    async def delete_group(
        self,
        who: Principal,
        group_id: int,
        *,
        version: int | None,
        void: bool,
        seal: Seal | None = None,
    ) -> list[Payment]:
        """Delete every live allocation of a whole payment in one transaction (with
        `void`, remembered as voided); the allocations as they were deleted."""
        ...

    async def search_payments(
        self, who: Principal, query: PaymentQuery
    ) -> tuple[list[Payment], Page | None]:
        """The tenant's payments a search selects, and where a paged answer stands."""
        ...

    async def invoice_by_number(self, who: Principal, number: str) -> int | None:
        """The id of the tenant's invoice with that number, if there is one."""
        ...

    async def invoice_facts(
        self, who: Principal, invoice_ids: Sequence[int]
    ) -> dict[int, InvoiceFacts]:
        """What an answer may tell of those invoices now, by id (those known here)."""
        ...
