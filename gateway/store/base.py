"""The store interface: what the ledger needs from a database, nothing more.

Every ledger write runs one template (`apply_steps`, `apply_step`) over a database's
`LedgerWrites`: lock the invoices, load each, let the Python rule decide, store the
decision, the totals and the outbox's events. The rule is the one judge of a write.

PostgreSQL: a single write whose rule comes with a `Plan` (a `Planned` rule: what the
rule decided before seeing the invoice) is first sent whole to the database function
`ledger_write` (migration 11, redefined by 13), one round trip instead of one per step
of the template: it locks the invoice, checks what the rule would check of its state,
and writes the payment, its group's version, the totals and the events. It only ever accepts what the rule accepts; for
anything else (a refusal, a payment changed since it was read, an invoice not found)
it writes nothing and answers a code, and the store runs the template, whose rule
names the refusal in the caller's words. Batches, keyed writes (their answer is
encoded from what the write left) and SQLite run the template alone.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from dialects import Reply
from dialects.errors import (
    GatewayError,
    LedgerRefused,
    NotFound,
    StaleVersion,
    ValidationFailed,
)
from dialects.listing import Row
from dialects.model import Invoice, InvoiceFacts, Payment

if TYPE_CHECKING:
    from gateway.store.budgets import Grant, Take
    from gateway.store.deliveries import Delivery, Due, Owed, Settled, Subscription, Track
    from gateway.store.outbox import EventPage, NewEvent, Notices, Outbox

# Ids are signed 64-bit integers in every store; a larger one (a 24-hex-digit id form
# spells up to 2^96) names no stored object.
MAX_ID = 2**63 - 1


# The payment columns every store reads back, in the order a Payment is built from.
PAYMENT_COLUMNS = (
    "id", "tenant", "invoice_id", "amount", "paid_at", "method", "method_label", "origin",
    "notes", "reference", "tax_withheld", "fee", "recorded_by", "recorded_by_email",
    "client_app", "notify_customer", "created_at", "updated_at", "account_code", "account_id",
    "deleted_at", "group_id", "version", "customer", "voided",
)  # fmt: skip


def listed_columns(columns: Sequence[str]) -> str:
    """The SELECT list of a listing: payment columns only (they are written into SQL)."""
    unknown = set(columns) - set(PAYMENT_COLUMNS)
    if unknown or not columns:
        raise ValueError(f"not payment columns: {sorted(unknown) or 'none named'}")
    return ", ".join(columns)


@dataclass(frozen=True)
class NewInvoice:
    tenant: str
    number: str
    currency: str
    total: Decimal
    issued_on: date
    due_on: date
    draft: bool = False
    backend_id: str | None = None  # a relay tenant's: the invoice's id at its backend
    customer: str | None = None  # the customer it bills, where one is named


@dataclass(frozen=True)
class Change:
    """What a ledger rule decided: a payment to insert (no id) or replace, or delete.

    A change to a payment of a group (replacing or deleting one, or a new payment joining
    a group made earlier) moves the group's live payments to its next version, once per
    write; `expect`: the version the group must be at (None: any), else StaleVersion.
    `void`: a delete remembered as voided (it takes the new version; a plain delete
    keeps the one it had).
    """

    marked_paid: bool
    upsert: Payment | None = None
    delete: int | None = None
    expect: int | None = None
    void: bool = False

    def totals(self, invoice: Invoice, current: Payment | None) -> tuple[Decimal, int]:
        """The invoice's settled amount and live payment count once this change is made.

        `current` is the payment the rule acted on, the only one it may replace or delete.
        """
        mine = current.id if current is not None else None
        if self.delete not in (None, mine) or (self.upsert and self.upsert.id not in (None, mine)):
            raise ValueError("a change may only replace or delete the payment it acted on")
        settled, count = invoice.settled, invoice.payment_count
        if current is not None and (self.delete is not None or self.upsert is not None):
            settled, count = settled - current.settled, count - 1
        if self.upsert is not None:
            settled, count = settled + self.upsert.settled, count + 1
        return settled, count

    def after(self, invoice: Invoice, current: Payment | None) -> Invoice:
        """The invoice as it stands once this change is made (its totals and mark)."""
        settled, count = self.totals(invoice, current)
        update = {"settled": settled, "payment_count": count, "marked_paid": self.marked_paid}
        return invoice.model_copy(update=update)


@dataclass(frozen=True)
class BackendRef:
    backend_id: str
    parent: str | None = None


# A ledger rule: given the invoice (and the payment it acts on), decide a Change.
Rule = Callable[[Invoice, Payment | None], Change]


@dataclass(frozen=True)
class Plan:
    """What a rule decided before seeing the invoice, for a database to finish alone.

    `kind`: `record` (a new payment: `payment` has no id), `revise` (`payment` replaces
    the one read, as it stood at `version`, its `updated_at`, and at its group's version
    `payment.version`) or `remove` (`payment` is the one read). A `payment` without an amount pays the whole amount due. `mark_paid`:
    a new payment marks the invoice paid; `payable_on`: the day its status is judged on.
    """

    kind: Literal["record", "revise", "remove"]
    payment: Payment
    version: datetime | None = None
    mark_paid: bool = False
    payable_on: date | None = None


@dataclass(frozen=True)
class Planned:
    """A rule with its `Plan`: a store may run the plan, the rule deciding the rest."""

    rule: Rule
    plan: Plan

    def __call__(self, invoice: Invoice, current: Payment | None) -> Change:
        return self.rule(invoice, current)


@dataclass(frozen=True)
class Step:
    """One rule of a batch: the invoice it acts on (and the payment, if it names one).

    `joins`: the index of an earlier step of the same write whose new payment's group
    the new payment of this one joins (a payment made split across invoices).
    """

    invoice_id: int
    rule: Rule
    payment_id: int | None = None
    joins: int | None = None


# What one write left: the payment as stored (None once deleted), or, for an item of a
# batch answered item by item, why it was refused.
Written = Payment | GatewayError | None
# The refusals that concern one item of a batch, not the batch or the store.
REFUSALS = (ValidationFailed, LedgerRefused, NotFound)


def only(written: Sequence[Written]) -> Payment | None:
    """What the one step of a single write left (never a refusal: it raises)."""
    (stored,) = written
    assert not isinstance(stored, GatewayError)
    return stored


class KeyState(StrEnum):
    """Where a request holding an idempotency key stands."""

    PENDING = "pending"  # reserved: its request runs while the lease lasts
    SENT = "sent"  # proxy mode: sent to the backend, not yet answered
    DONE = "done"  # its effect and its answer are stored, together
    UNKNOWN = "unknown"  # proxy mode: sent, never answered; held until expiry or an operator


@dataclass(frozen=True)
class KeyClaim:
    """A request asking to hold an idempotency key: who, for what, until when."""

    tenant: str
    key: str
    fingerprint: str
    owner: str
    now: datetime
    lease_until: datetime
    expires_at: datetime

    def takes(self, held: KeyRecord) -> bool:
        """Whether this claim may take a stored key: expired, or a reservation for the
        same request whose owner's lease ran out (that owner stored no effect: effects
        and completions commit together)."""
        if held.expires_at <= self.now:
            return True
        return (
            held.state is KeyState.PENDING
            and held.lease_until <= self.now
            and held.fingerprint == self.fingerprint
        )


@dataclass(frozen=True)
class KeyRecord:
    """An idempotency key as stored, with the answer once its request is done."""

    tenant: str
    key: str
    fingerprint: str
    state: KeyState
    owner: str
    lease_until: datetime
    created_at: datetime
    expires_at: datetime
    answer: Reply | None = None


@dataclass
class Seal:
    """A held key to complete with the write it guards, in that write's transaction.

    `answer` encodes the reply from what the write left, one entry per item (a single
    write has one), the translation warnings and the facts of the invoices the write
    changed, as they stand after it (by id; none where the system of record is
    elsewhere); `close` keeps it, so what is stored is what is sent.
    """

    tenant: str
    key: str
    owner: str
    answer: Callable[[Sequence[Written], tuple[str, ...], Mapping[int, InvoiceFacts]], Reply]
    sealed: Reply | None = None

    def close(
        self,
        written: Sequence[Written],
        warnings: tuple[str, ...] = (),
        invoices: Mapping[int, InvoiceFacts] | None = None,
    ) -> Reply:
        self.sealed = self.answer(written, warnings, invoices or {})
        return self.sealed


class Store(Protocol):
    """A transactional home for invoices and payments, scoped by tenant on every call.

    `apply` loads an invoice's totals (and the live payment `payment_id`, if named)
    under a write lock, lets `rule` decide, and stores the decision atomically: no
    two rules on one invoice interleave. Every change appends its events (`outbox`)
    in its own transaction.
    """

    # Decides the events a change makes, and times them (by the gateway's clock).
    outbox: Outbox
    # Wakes this process's delivery loops when its own commits give them work.
    notices: Notices

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_invoice(self, new: NewInvoice) -> Invoice: ...

    async def invoice(
        self, tenant: str, invoice_id: int, *, with_payments: bool = False
    ) -> Invoice | None: ...

    async def invoices(self, tenant: str, invoice_ids: Sequence[int]) -> list[Invoice]:
        """The tenant's invoices among `invoice_ids` (their totals, not their payments),
        by id, in one read however many are named."""
        ...

    async def payment(
        self, tenant: str, payment_id: int, *, deleted: bool = False
    ) -> Payment | None:
        """A live payment (or a deleted one too, with `deleted`: its `deleted_at` set)."""
        ...

    async def payments(
        self,
        tenant: str,
        invoice_ids: Sequence[int] | None = None,
        *,
        deleted: bool = False,
        group_ids: Sequence[int] | None = None,
    ) -> list[Payment]:
        """The tenant's live payments (of those invoices, of those groups only, if named),
        by id; with `deleted`, the deleted ones too (a deletion sets `deleted_at` and
        `updated_at`)."""
        ...

    async def listing(
        self,
        tenant: str,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row] | None:
        """An invoice's live payments by id, `offset` skipped and at most `limit` of them,
        as rows of `columns` in the forms the store keeps (see `dialects.listing`);
        None when the tenant has no such invoice."""
        ...

    async def invoice_id(self, tenant: str, number: str) -> int | None:
        """The id of the tenant's invoice with that number."""
        ...

    async def apply(
        self,
        tenant: str,
        invoice_id: int,
        rule: Rule,
        *,
        payment_id: int | None = None,
        seal: Seal | None = None,
    ) -> Payment | None:
        """The payment as stored after the change (None when it was deleted).

        With a `seal`, its key is completed with its answer in the same transaction;
        if the key is no longer held by the seal's owner, nothing is stored (Conflict).
        """
        ...

    async def apply_many(
        self,
        tenant: str,
        steps: Sequence[Step],
        *,
        each: bool = False,
        seal: Seal | None = None,
    ) -> list[Written]:
        """Every step in one transaction, in order, each rule seeing the steps before it;
        what each left, in the same order.

        The invoices are locked in id order before any rule runs, so batches naming the
        same invoices in another order wait for each other instead of deadlocking. Unless
        `each`, the first step that raises undoes them all; with `each`, a step refused
        (one of `REFUSALS`) is undone alone and stands in the list as its refusal. With a
        `seal`, its key is completed with the answer to the whole list, in the same
        transaction.
        """
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

    # --- idempotency keys ------------------------------------------------------------

    async def claim_key(self, claim: KeyClaim) -> KeyRecord | None:
        """None when `claim.owner` now holds the key (it was free, expired, or reserved
        for the same request by an owner whose lease ran out); else the record holding it."""
        ...

    async def set_key_state(self, tenant: str, key: str, owner: str, state: KeyState) -> bool:
        """Move a key `owner` holds (pending or sent) to `state`; False if not held."""
        ...

    async def complete_key(self, seal: Seal) -> None:
        """Store `seal.sealed` as the key's answer (proxy mode: the effect is elsewhere)."""
        ...

    async def release_key(self, tenant: str, key: str, owner: str) -> None:
        """Free a key `owner` holds whose request failed before any effect."""
        ...

    async def key_record(self, tenant: str, key: str) -> KeyRecord | None: ...

    async def forget_key(self, tenant: str, key: str) -> bool:
        """Remove a key whatever its state (an operator resolving it); False if absent."""
        ...

    async def purge_keys(self, now: datetime, limit: int) -> int:
        """Delete at most `limit` keys expired by `now`; how many were deleted."""
        ...

    # --- the outbox (gateway/store/outbox.py) -----------------------------------------

    async def events(self, tenant: str, after: int, limit: int) -> EventPage:
        """At most `limit` of the tenant's events after sequence `after`, in order, read
        in one snapshot with the cursors still answerable."""
        ...

    async def purge_events(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` events created before `before`, oldest first, and
        record per tenant the last sequence deleted; how many were deleted. An event still
        owed to an active webhook subscription (pending, or not yet fanned out to it) is
        kept, and so is every later event of its tenant: retention stops there."""
        ...

    # --- webhook deliveries (gateway/store/deliveries.py) ---------------------------------

    async def webhook_sync(self, tenant: str, names: Sequence[str]) -> None:
        """Record the tenant's configured subscriptions (a new one starts after the newest
        event); one no longer listed is retired, one listed again is active again."""
        ...

    async def webhook_fanout(
        self, tenant: str, name: str, types: Sequence[str], now: datetime, limit: int
    ) -> int:
        """Make pending deliveries for up to `limit` events after the subscription's
        cursor (those of `types`) and move the cursor past them; how many events it read."""
        ...

    async def webhook_owed(self, tenant: str, name: str) -> Owed | None:
        """What an active subscription has to do (None while it is not active), read
        without writing: a loop with nothing to do leaves the database alone."""
        ...

    async def webhook_claim(
        self, tenant: str, name: str, owner: str, now: datetime, lease_until: datetime,
        limit: int, *, sending: bool = False,
    ) -> list[Due]:  # fmt: skip
        """Lease to `owner` up to `limit` pending deliveries due by `now` that no live lease
        holds, oldest first; none while the subscription is not active. `sending`: also
        note, in the same write, that each is going out (its outcome unknown until
        settled); each `Due` says whether it was so noted before this claim."""
        ...

    async def webhook_settle(
        self, tenant: str, name: str, owner: str, now: datetime, settles: Sequence[Settled]
    ) -> int:
        """Record the outcomes of a pass's attempts, in one transaction: each delivery
        `owner` still holds the lease of (the others are left to their new holder); how
        many were recorded."""
        ...

    async def webhook_enable(self, tenant: str, name: str) -> bool:
        """Make a disabled subscription active; False if it is not stored or is retired."""
        ...

    async def webhooks(self, tenant: str) -> list[Subscription]:
        """The tenant's stored subscriptions (retired ones too), by name."""
        ...

    async def webhook_deliveries(
        self, tenant: str, name: str, state: str, limit: int
    ) -> list[Delivery]:
        """Up to `limit` deliveries in `state`, newest event first."""
        ...

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
        """Make deliveries pending again, due now, with no attempts: every kept event of
        `types` after sequence `after` up to the subscription's cursor, or the one event
        `event_id`; how many."""
        ...

    # --- relay (gateway/events/relay.py) --------------------------------------------------

    async def invoice_backend_id(self, tenant: str, invoice_id: int) -> str | None:
        """The backend invoice id a relay tenant's invoice was created with, if one was."""
        ...

    async def relay_tracks(self, tenant: str, payment_id: int) -> list[Track]:
        """The relay's delivery rows of a payment (its create, then its delete), in order."""
        ...

    async def relay_taken(self, tenant: str, backend_ids: Sequence[str]) -> set[str]:
        """Those of `backend_ids` a relayed create of the tenant was recorded with."""
        ...

    async def relay_replay(self, tenant: str, now: datetime, payment_id: int | None) -> int:
        """Make the relay's failed deliveries (of one payment, or all) pending again, due
        now, with no attempts; how many."""
        ...

    async def take_budget(self, take: Take) -> Grant:
        """Tokens of a shared rate budget (gateway/store/budgets.py), in one statement."""
        ...

    async def purge_budgets(self, now: float) -> int:
        """Delete some budgets full again by `now`; how many."""
        ...


# --- one ledger write, the same on every database --------------------------------------


class LedgerWrites(Protocol):
    """What a ledger write needs of one database, inside one open write transaction.

    The few operations that differ between databases: how invoices are locked, the
    SQL of the reads and writes, and savepoints. `apply_steps` is the rest.
    """

    async def lock(self, tenant: str, invoice_ids: Sequence[int]) -> None:
        """Lock the invoices (ids in ascending order) against other writers, if the
        database lets writers in side by side."""
        ...

    async def invoice(self, tenant: str, invoice_id: int) -> Invoice | None:
        """The invoice with its totals, locked for this transaction; no payments."""
        ...

    async def payment(self, tenant: str, payment_id: int, invoice_id: int) -> Payment | None:
        """The live payment of that invoice."""
        ...

    async def upsert(self, payment: Payment, now: datetime) -> Payment:
        """Insert (no id) or replace the payment; as stored."""
        ...

    async def delete(self, payment_id: int, now: datetime, *, voided: bool = False) -> None:
        """Mark the payment deleted (and, with `voided`, voided)."""
        ...

    async def group_version(self, tenant: str, group_id: int) -> int:
        """The version of a group's live payments, locked (in id order) against other
        writers of the group until this transaction ends; -1 if it has none."""
        ...

    async def set_version(
        self, tenant: str, group_id: int, version: int, *, skip: int | None = None
    ) -> None:
        """Move the group's live payments (but `skip`) to `version`."""
        ...

    async def invoice_totals(
        self, invoice_id: int, settled: Decimal, count: int, marked_paid: bool
    ) -> None:
        """Store the invoice's running totals and mark."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A block undone alone when it raises (the exception goes on)."""
        ...

    async def complete_key(self, seal: Seal) -> None:
        """`seal.sealed` stored as its key's answer; Conflict if the key is not held."""
        ...

    async def append_events(self, tenant: str, events: Sequence[NewEvent]) -> None:
        """The outbox: `events` numbered on from the tenant's counter, in this transaction."""
        ...


class SingleStep:
    """`Store.apply` as the one step of `apply_many`, for every store."""

    async def apply(
        self: Store,
        tenant: str,
        invoice_id: int,
        rule: Rule,
        *,
        payment_id: int | None = None,
        seal: Seal | None = None,
    ) -> Payment | None:
        return only(await self.apply_many(tenant, [Step(invoice_id, rule, payment_id)], seal=seal))


async def apply_steps(
    db: LedgerWrites,
    tenant: str,
    steps: Sequence[Step],
    *,
    each: bool = False,
    seal: Seal | None = None,
    outbox: Outbox | None = None,
    appended: list[NewEvent] | None = None,
) -> list[Written]:
    """`Store.apply_many` inside its transaction: every step in order, each rule seeing
    the steps before it, the invoices locked in id order first (see `Store`). With an
    `outbox`, each change appends its events in the same transaction (and into
    `appended`, to be counted once it commits)."""
    await db.lock(tenant, sorted({step.invoice_id for step in steps}))
    written: list[Written] = []
    # The invoices' facts after the write, for the answer a key keeps: only a seal
    # reads them, and they cost more than the write's own bookkeeping.
    invoices: dict[int, InvoiceFacts] | None = {} if seal is not None else None
    groups = Groups(written)
    for step in steps:
        if not each:
            written.append(await apply_step(db, tenant, step, invoices, outbox, appended, groups))
            continue
        try:
            async with db.savepoint():
                stored = await apply_step(db, tenant, step, invoices, outbox, appended, groups)
        except REFUSALS as refused:
            written.append(refused)
        else:
            written.append(stored)
    if seal is not None:
        seal.close(written, invoices=invoices)
        await db.complete_key(seal)
    return written


class Groups:
    """What the steps of one write know of the groups they change: the payments written
    so far (a step joining an earlier step's group reads its id there) and each group's
    new version, moved once per write."""

    def __init__(self, written: list[Written]) -> None:
        self.written = written
        self.versions: dict[int, int] = {}

    def joined(self, step: Step) -> int:
        """The group id of the earlier step `step` joins."""
        assert step.joins is not None
        made = self.written[step.joins]
        assert isinstance(made, Payment) and made.group_id is not None
        return made.group_id

    async def version(self, db: LedgerWrites, tenant: str, group_id: int, change: Change) -> int:
        """The group's new version, moved (and `change.expect` checked) the first time."""
        if group_id in self.versions:
            return self.versions[group_id]
        held = await db.group_version(tenant, group_id)
        if change.expect is not None and held != change.expect:
            raise StaleVersion(
                f"The payment is at version {held}, not {change.expect}",
                fields={"version": f"is {held}"},
            )
        self.versions[group_id] = new = held + 1
        skip = change.delete if not change.void else None
        await db.set_version(tenant, group_id, new, skip=skip)
        return new


def _changed_group(step: Step, change: Change, current: Payment | None) -> int | None:
    """The stored group a change moves to its next version (None: a new group)."""
    if current is not None:
        return current.group_id if current.group_id is not None else current.id
    if change.upsert is not None and step.joins is None:
        return change.upsert.group_id
    return None


async def apply_step(
    db: LedgerWrites,
    tenant: str,
    step: Step,
    invoices: dict[int, InvoiceFacts] | None = None,
    outbox: Outbox | None = None,
    appended: list[NewEvent] | None = None,
    groups: Groups | None = None,
) -> Payment | None:
    """Load the locked invoice (and the payment named), let the rule decide, store its
    decision, the invoice's new totals and the change's events; the payment as stored,
    and into `invoices` (if given) the invoice's facts as it stands after."""
    invoice = await db.invoice(tenant, step.invoice_id)
    if invoice is None:
        raise NotFound("Invoice not found")
    current = None
    if step.payment_id is not None:
        current = await db.payment(tenant, step.payment_id, step.invoice_id)
        if current is None:
            raise NotFound("Payment not found")
    change = step.rule(invoice, current)
    settled, count = change.totals(invoice, current)
    groups = groups if groups is not None else Groups([])
    upsert = change.upsert
    if upsert is not None and step.joins is not None:
        upsert = upsert.model_copy(update={"group_id": groups.joined(step), "version": 0})
    group = _changed_group(step, change, current)
    if group is not None:
        version = await groups.version(db, tenant, group, change)
        if upsert is not None:
            upsert = upsert.model_copy(update={"version": version})
        if current is not None and change.void:
            current = current.model_copy(update={"version": version, "voided": True})
    now = datetime.now(UTC)
    stored: Payment | None = None
    if upsert is not None:
        stored = await db.upsert(upsert, now)
    if change.delete is not None:
        await db.delete(change.delete, now, voided=change.void)
    await db.invoice_totals(step.invoice_id, settled, count, change.marked_paid)
    if outbox is not None and (made := outbox.made(invoice, current, change, stored, now)):
        await db.append_events(tenant, made)
        if appended is not None:
            appended.extend(made)
    if invoices is not None:
        invoices[step.invoice_id] = change.after(invoice, current).facts()
    return stored


T = TypeVar("T")


def finished(coroutine: Coroutine[Any, Any, T]) -> T:
    """A coroutine run to its end on this thread, without an event loop: for a
    `LedgerWrites` whose methods never wait (they call a blocking driver)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coroutine.close()
    raise RuntimeError("a synchronous database adapter waited")
