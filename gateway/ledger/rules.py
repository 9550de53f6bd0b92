"""The ledger: the rules that keep an invoice's due amount and status true, over a Store."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from dialects import Decoded
from dialects.errors import (
    CustomerMismatch,
    GatewayError,
    LedgerRefused,
    NotFound,
    NotPayable,
    Overpayment,
    StaleVersion,
    Unapplied,
    ValidationFailed,
)
from dialects.listing import Row
from dialects.model import (
    ZERO,
    Allocation,
    Invoice,
    InvoiceFacts,
    InvoiceStatus,
    Page,
    Payment,
    PaymentQuery,
    currency_exponent,
)
from gateway.ledger.contract import Outcome, Principal
from gateway.ledger.idempotency import Clock, utc_now
from gateway.ledger.search import select
from gateway.store import MAX_ID, Change, Plan, Planned, Rule, Seal, Step, Store

PAYABLE = (InvoiceStatus.OPEN, InvoiceStatus.PARTIAL, InvoiceStatus.OVERDUE)
# What PUT resets when a field is left out (the amount resets to the whole due amount).
_RESETS: dict[str, Any] = {
    "method": None, "method_label": None, "origin": None, "notes": None, "reference": None,
    "tax_withheld": ZERO, "fee": ZERO, "notify_customer": False,
}  # fmt: skip
# What the store owns of a payment's group, whatever a request carries.
_GROUP_OWNED = ("group_id", "version", "voided")


def today_midnight(clock: Clock = utc_now) -> datetime:
    """The start of the clock's day, UTC: a payment's date when its caller gives none."""
    return datetime.combine(clock().astimezone(UTC).date(), time(), UTC)


def check_amounts(invoice: Invoice, payment: Payment) -> None:
    """Money fits the invoice's currency: positive amount, no more places than it has."""
    places = currency_exponent(invoice.currency)
    step = Decimal(1).scaleb(-places)
    problems: dict[str, str] = {}
    for name in ("amount", "tax_withheld", "fee"):
        value: Decimal = getattr(payment, name) or ZERO
        if value != value.quantize(step):
            problems[name] = f"must have at most {places} decimal places for {invoice.currency}"
    if payment.amount is None or payment.amount <= 0:
        problems["amount"] = "must be greater than 0"
    if problems:
        raise ValidationFailed(fields=problems)


def check_settles(invoice: Invoice, payment: Payment, *, replacing: Payment | None = None) -> None:
    """Refuse a payment that would settle more than is due."""
    due = invoice.due_amount + (replacing.settled if replacing else ZERO)
    if payment.settled > due:
        raise Overpayment(
            f"Payment of {payment.settled} exceeds the amount due ({max(due, ZERO)})",
            fields={"amount": f"exceeds the amount due ({max(due, ZERO)})"},
        )


def check_payable(invoice: Invoice, today: date) -> None:
    status = invoice.status(today)
    if status not in PAYABLE:
        raise NotPayable(
            f"Invoice is {status.value} and takes no payments",
            fields={"invoice_id": f"is {status.value} and takes no payments"},
        )


def check_customer(invoice: Invoice, payment: Payment) -> None:
    """Refuse a payment for one customer on an invoice of another (an invoice that names
    no customer takes any payment's)."""
    if payment.customer is not None and invoice.customer not in (None, payment.customer):
        raise CustomerMismatch(
            f"Payment customer {payment.customer} does not match the customer of invoice"
            f" {invoice.number}",
            fields={"customer": f"does not match the customer of invoice {invoice.number}"},
        )


def check_payment(invoice: Invoice, payment: Payment, *, replacing: Payment | None = None) -> None:
    """What every payment written to `invoice` must satisfy: its amounts, what it
    settles (in place of `replacing`), and its customer."""
    check_amounts(invoice, payment)
    check_settles(invoice, payment, replacing=replacing)
    check_customer(invoice, payment)


def check_version(current: Payment, version: int | None) -> None:
    """Refuse a change that expects another version than the payment (its group) has."""
    if version is not None and version != current.version:
        raise StaleVersion(
            f"The payment is at version {current.version}, not {version}",
            fields={"version": f"is {current.version}"},
        )


def whole_due(
    invoice: Invoice, fields: dict[str, Any], replacing: Payment | None = None
) -> Decimal:
    """The amount that settles the invoice, tax withheld and fee counted."""
    due = invoice.due_amount + (replacing.settled if replacing else ZERO)
    amount: Decimal = due - fields.get("tax_withheld", ZERO) - fields.get("fee", ZERO)
    if amount <= 0:
        raise LedgerRefused("Nothing is due on this invoice", fields={"amount": "nothing is due"})
    return amount


def _recorded(
    tenant: str | None, invoice_id: int, request: Decoded, who: Principal, midnight: datetime
) -> dict[str, Any]:
    """A new payment's fields (its amount None when none was given: the whole amount due)."""
    fields = _client_values(request)
    fields.setdefault("paid_at", midnight)
    owned = {
        "tenant": tenant,
        "invoice_id": invoice_id,
        "recorded_by": who.name,
        "recorded_by_email": who.email,
        "client_app": who.app,
    }
    return {**fields, **owned}


def record(invoice: Invoice, request: Decoded, who: Principal, clock: Clock = utc_now) -> Change:
    """A new payment on `invoice`; `clock` says what day it is."""
    midnight = today_midnight(clock)
    check_payable(invoice, midnight.date())
    fields = _recorded(invoice.tenant, invoice.id, request, who, midnight)
    if fields.get("amount") is None:
        fields["amount"] = whole_due(invoice, fields)
    payment = Payment(**fields)
    check_payment(invoice, payment)
    marked = invoice.marked_paid or bool(request.options.get("mark_invoice_paid"))
    return Change(marked_paid=marked, upsert=payment)


def revise(
    invoice: Invoice,
    current: Payment,
    request: Decoded,
    *,
    replace: bool,
    clock: Clock = utc_now,
    version: int | None = None,
) -> Change:
    """Change a payment: PUT (`replace`) resets what it leaves out, PATCH keeps it; the
    store checks `version` against its group's (see `Change.expect`)."""
    fields = _revised(request, replace=replace, clock=clock)
    if replace and fields.get("amount") is None:
        fields["amount"] = whole_due(invoice, fields, replacing=current)
    payment = current.model_copy(update=fields)
    check_payment(invoice, payment, replacing=current)
    return Change(marked_paid=invoice.marked_paid, upsert=payment, expect=version)


def _client_values(request: Decoded) -> dict[str, Any]:
    """The fields a request sets, without those the store owns of a payment's group."""
    fields = request.provided_values()
    for owned in _GROUP_OWNED:
        fields.pop(owned, None)
    return fields


def _revised(request: Decoded, *, replace: bool, clock: Clock) -> dict[str, Any]:
    """The fields a change sets (PUT's amount None when none was given: the whole due)."""
    fields = _client_values(request)
    if replace:
        fields = {**_RESETS, **fields}
        fields.setdefault("paid_at", today_midnight(clock))
    return fields


def planned_record(
    tenant: str, invoice_id: int, request: Decoded, who: Principal, clock: Clock
) -> Plan | None:
    """`record`'s plan: the payment it makes before it sees the invoice (None if it
    makes none: the rule says why)."""
    midnight = today_midnight(clock)
    try:
        payment = Payment(**_recorded(tenant, invoice_id, request, who, midnight))
    except ValueError:
        return None
    if payment.customer is not None:  # the template's rule checks the invoice's customer
        return None
    marked = bool(request.options.get("mark_invoice_paid"))
    return Plan("record", payment, mark_paid=marked, payable_on=midnight.date())


def planned_revision(
    current: Payment, request: Decoded, *, replace: bool, clock: Clock
) -> Plan | None:
    """`revise`'s plan for the payment as read (None for a PATCH leaving no amount)."""
    fields = _revised(request, replace=replace, clock=clock)
    if replace:
        fields["amount"] = fields.get("amount")  # None: the whole amount due
    elif fields.get("amount", current.amount) is None:
        return None
    payment = current.model_copy(update=fields)
    if payment.customer is not None:  # the template's rule checks the invoice's customer
        return None
    return Plan("revise", payment, version=current.updated_at)


def remove(
    invoice: Invoice, current: Payment, *, version: int | None = None, void: bool = False
) -> Change:
    """Delete a payment (`void`: remembered as voided); the invoice goes back to open or
    overdue."""
    return Change(marked_paid=False, delete=current.id, expect=version, void=void)


def _recording(request: Decoded, who: Principal, clock: Clock) -> Rule:
    """The rule that records `request` on whichever invoice its step names; a refusal
    says which request it refused (a batch's answer may echo it)."""

    def rule(invoice: Invoice, _: Payment | None) -> Change:
        try:
            return record(invoice, request, who, clock)
        except GatewayError as refused:
            refused.sent = request.sent
            raise

    return rule


def _target(payment: Payment | None) -> Payment:
    if payment is None:  # the store found none: it says NotFound before asking
        raise NotFound("Payment not found")
    return payment


class Ledger:
    """The embedded system of record: a PaymentService over a Store.

    `clock` is the wall clock whose day decides what is overdue and dates a payment
    given without one (tests set it to any day).
    """

    def __init__(self, store: Store, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    async def list_rows(
        self,
        who: Principal,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        rows = await self.store.listing(
            who.tenant, _stored(invoice_id, "Invoice"), columns, limit=limit, offset=offset
        )
        if rows is None:
            raise NotFound("Invoice not found")
        return rows

    async def get_payment(
        self, who: Principal, payment_id: int, *, deleted: bool = False
    ) -> Payment:
        stored = _stored(payment_id, "Payment")
        payment = await self.store.payment(who.tenant, stored, deleted=deleted)
        if payment is None:
            raise NotFound("Payment not found")
        return payment

    async def create_payment(
        self, who: Principal, invoice_id: int, request: Decoded, *, seal: Seal | None = None
    ) -> Outcome:
        number = _stored(invoice_id, "Invoice")
        rule = _recording(request, who, self.clock)
        plan = planned_record(who.tenant, number, request, who, self.clock)
        stored = await self.store.apply(
            who.tenant, number, rule if plan is None else Planned(rule, plan), seal=seal
        )
        assert stored is not None
        return Outcome(stored)

    async def create_payments(
        self,
        who: Principal,
        items: Sequence[tuple[int, Decoded]],
        *,
        each: bool,
        seal: Seal | None = None,
    ) -> list[Outcome | GatewayError]:
        steps = [
            Step(_stored(invoice_id, "Invoice"), _recording(request, who, self.clock))
            for invoice_id, request in items
        ]
        try:
            written = await self.store.apply_many(who.tenant, steps, each=each, seal=seal)
        except NotFound as missing:  # an invoice no step could load: say whose it was
            for invoice_id, request in items:
                if (
                    missing.sent is None
                    and await self.store.invoice(who.tenant, invoice_id) is None
                ):
                    missing.sent = request.sent
            raise
        made: list[Outcome | GatewayError] = []
        for stored in written:
            assert stored is not None
            made.append(stored if isinstance(stored, GatewayError) else Outcome(stored))
        return made

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
        current = await self.get_payment(who, payment_id)
        assert current.invoice_id is not None
        check_version(current, version)

        def rule(invoice: Invoice, payment: Payment | None) -> Change:
            return revise(
                invoice, _target(payment), request, replace=replace, clock=self.clock,
                version=version,
            )  # fmt: skip

        plan = planned_revision(current, request, replace=replace, clock=self.clock)
        stored = await self.store.apply(
            who.tenant,
            current.invoice_id,
            rule if plan is None else Planned(rule, plan),
            payment_id=payment_id,
            seal=seal,
        )
        assert stored is not None
        return Outcome(stored)

    async def search_payments(
        self, who: Principal, query: PaymentQuery
    ) -> tuple[list[Payment], Page | None]:
        invoice_ids = query.invoice_ids
        if query.invoice_numbers is not None:
            named = [await self.store.invoice_id(who.tenant, n) or 0 for n in query.invoice_numbers]
            invoice_ids = tuple(i for i in named if invoice_ids is None or i in invoice_ids)
        found = await self.store.payments(
            who.tenant,
            invoice_ids,
            deleted=query.deleted or query.voided,
            group_ids=query.group_ids,
        )
        return select(found, query)

    async def invoice_by_number(self, who: Principal, number: str) -> int | None:
        return await self.store.invoice_id(who.tenant, number)

    async def invoice_facts(
        self, who: Principal, invoice_ids: Sequence[int]
    ) -> dict[int, InvoiceFacts]:
        held = [number for number in dict.fromkeys(invoice_ids) if 0 < number <= MAX_ID]
        found = await self.store.invoices(who.tenant, held) if held else []
        return {invoice.id: invoice.facts() for invoice in found}

    async def delete_payment(
        self,
        who: Principal,
        payment_id: int,
        *,
        seal: Seal | None = None,
        version: int | None = None,
    ) -> None:
        current = await self.get_payment(who, payment_id)
        assert current.invoice_id is not None
        check_version(current, version)
        plan = Plan("remove", current, version=current.updated_at)
        await self.store.apply(
            who.tenant,
            current.invoice_id,
            Planned(_removing(version), plan),
            payment_id=payment_id,
            seal=seal,
        )

    # --- whole payments, split across invoices ------------------------------------------

    async def get_group(
        self, who: Principal, group_id: int, *, deleted: bool = False
    ) -> list[Payment]:
        stored = _stored(group_id, "Payment")
        found = await self.store.payments(who.tenant, deleted=deleted, group_ids=(stored,))
        if not found:
            raise NotFound("Payment not found")
        return found

    async def create_group(
        self, who: Principal, request: Decoded, *, seal: Seal | None = None
    ) -> list[Outcome]:
        lines = _lines(request.allocations)
        if not lines:
            raise ValidationFailed(fields={"allocations": "must name at least one invoice"})
        check_total(request, sum(lines.values(), ZERO))
        if len(lines) > 1:
            _one_invoice_fields(request)
        currencies: list[str] = []
        steps = []
        for index, (invoice_id, amount) in enumerate(lines.items()):
            part = part_of(request, amount)
            steps.append(
                Step(
                    _stored(invoice_id, "Invoice"),
                    self._allocating(part, who, currencies),
                    joins=0 if index else None,
                )
            )
        written = await self.store.apply_many(who.tenant, steps, seal=seal)
        return [Outcome(_made(stored)) for stored in written]

    def _allocating(self, part: Decoded, who: Principal, currencies: list[str]) -> Rule:
        """The rule recording one allocation of a new payment: every invoice in the
        currency of the first."""

        def rule(invoice: Invoice, _: Payment | None) -> Change:
            _same_currency(invoice, currencies)
            return record(invoice, part, who, self.clock)

        return rule

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
        held = await self.get_group(who, group_id)
        check_version(held[0], version)
        shared = _revised(request, replace=replace, clock=self.clock)
        shared.pop("amount", None)
        amounts = {p.invoice_id: p.amount or ZERO for p in held if p.invoice_id is not None}
        given = request.payment.amount if "amount" in request.provided else None
        if request.allocations:
            amounts = _lines(request.allocations)
        elif given is not None and len(amounts) == 1:  # one line: the amount is its own
            amounts = dict.fromkeys(amounts, given)
        check_total(request, sum(amounts.values(), ZERO))
        if len(amounts) > 1:
            _one_invoice_fields(request)
        currencies: list[str] = []
        steps: list[Step] = []
        kept = {p.invoice_id: p for p in held}
        for payment in held:  # the lines no longer named go first
            if payment.invoice_id not in amounts:
                assert payment.invoice_id is not None
                steps.append(Step(payment.invoice_id, _removing(version), payment_id=payment.id))
        for invoice_id, amount in amounts.items():
            changes = {**shared, "amount": amount}
            if invoice_id in kept:
                current = kept[invoice_id]
                rule = _amending(changes, version, currencies)
                steps.append(Step(invoice_id, rule, payment_id=current.id))
            else:
                first = held[0]
                fields = {**first.model_dump(exclude={"id", "invoice_id"}), **changes}
                fields.update(tenant=who.tenant, invoice_id=invoice_id, group_id=first.group_id)
                new = Payment(**{k: v for k, v in fields.items() if k not in _UNSET_ON_NEW})
                rule = _joining(new, version, currencies, self.clock)
                steps.append(Step(_stored(invoice_id, "Invoice"), rule))
        written = await self.store.apply_many(who.tenant, steps, seal=seal)
        live = [stored for stored in written if isinstance(stored, Payment)]
        return [Outcome(payment) for payment in sorted(live, key=lambda p: p.id or 0)]

    async def delete_group(
        self,
        who: Principal,
        group_id: int,
        *,
        version: int | None,
        void: bool,
        seal: Seal | None = None,
    ) -> list[Payment]:
        held = await self.get_group(who, group_id)
        check_version(held[0], version)
        steps = []
        for payment in held:
            assert payment.invoice_id is not None
            steps.append(
                Step(payment.invoice_id, _removing(version, void=void), payment_id=payment.id)
            )
        await self.store.apply_many(who.tenant, steps, seal=seal)
        ids = {payment.id for payment in held}
        gone = await self.store.payments(who.tenant, deleted=True, group_ids=(group_id,))
        return [payment for payment in gone if payment.id in ids]


# What a new allocation of a stored group does not take over from the group's first.
_UNSET_ON_NEW = ("created_at", "updated_at", "deleted_at", "version", "voided")


def _lines(allocations: Sequence[Allocation]) -> dict[int, Decimal]:
    """A payment's allocations by invoice: each invoice once, each amount positive."""
    lines: dict[int, Decimal] = {}
    for allocation in allocations:
        if allocation.invoice_id in lines:
            raise ValidationFailed(
                f"Invoice {allocation.invoice_id} is named twice in one payment",
                fields={"allocations": "must name each invoice once"},
            )
        if allocation.amount <= 0:
            raise ValidationFailed(fields={"amount": "must be greater than 0"})
        lines[allocation.invoice_id] = allocation.amount
    return lines


def check_total(request: Decoded, applied: Decimal) -> None:
    """The payment's amount, where given, is what its allocations apply: more would be
    money that settles no invoice (refused: Unapplied), less is a wrong amount."""
    total = request.payment.amount if "amount" in request.provided else None
    if total is None or total == applied:
        return
    if total > applied:
        raise Unapplied(
            f"Payment amount {total} exceeds the {applied} applied to invoices; unapplied"
            " money is not kept",
            fields={"amount": f"exceeds the amount applied to invoices ({applied})"},
        )
    raise ValidationFailed(
        f"Payment amount {total} is less than the {applied} applied to invoices",
        fields={"amount": f"must equal the amount applied to invoices ({applied})"},
    )


def _one_invoice_fields(request: Decoded) -> None:
    """Tax withheld and fees belong to one invoice: a split payment carries none."""
    for name in ("tax_withheld", "fee"):
        if name in request.provided and getattr(request.payment, name):
            raise ValidationFailed(fields={name: "is taken on a payment of one invoice only"})


def part_of(request: Decoded, amount: Decimal) -> Decoded:
    """The request for one allocation: the shared fields, with its own amount (and no
    allocations of its own)."""
    payment = request.payment.model_copy(update={"amount": amount})
    return dataclasses.replace(
        request, payment=payment, provided=request.provided | {"amount"}, allocations=()
    )


def _same_currency(invoice: Invoice, currencies: list[str]) -> None:
    if currencies and invoice.currency != currencies[0]:
        raise ValidationFailed(
            f"Invoice {invoice.number} is in {invoice.currency}, not {currencies[0]}",
            fields={"allocations": "must all be on invoices in one currency"},
        )
    currencies.append(invoice.currency)


def _made(stored: Payment | GatewayError | None) -> Payment:
    assert isinstance(stored, Payment)
    return stored


def _removing(version: int | None, *, void: bool = False) -> Rule:
    def rule(invoice: Invoice, payment: Payment | None) -> Change:
        return remove(invoice, _target(payment), version=version, void=void)

    return rule


def _amending(changes: dict[str, Any], version: int | None, currencies: list[str]) -> Rule:
    """The rule changing a kept allocation of a group to `changes`."""

    def rule(invoice: Invoice, payment: Payment | None) -> Change:
        current = _target(payment)
        _same_currency(invoice, currencies)
        revised = current.model_copy(update=changes)
        check_payment(invoice, revised, replacing=current)
        return Change(marked_paid=invoice.marked_paid, upsert=revised, expect=version)

    return rule


def _joining(new: Payment, version: int | None, currencies: list[str], clock: Clock) -> Rule:
    """The rule adding a new allocation to a stored group."""

    def rule(invoice: Invoice, _: Payment | None) -> Change:
        check_payable(invoice, today_midnight(clock).date())
        _same_currency(invoice, currencies)
        check_payment(invoice, new)
        return Change(marked_paid=invoice.marked_paid, upsert=new, expect=version)

    return rule


def _stored(number: int, what: str) -> int:
    """`number`, if a store can hold it; else nothing has it (404, not a store error)."""
    if number > MAX_ID:
        raise NotFound(f"{what} not found")
    return number
