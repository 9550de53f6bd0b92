"""Proxy mode: a PaymentService that translates each operation into another dialect's API.

The caller's request arrives decoded (canonical); here it is re-encoded in the
backend's dialect, sent, and the backend's answer decoded back. Ids cross through
the id map (idmap.py): callers use the backend's own ids wherever their id form can
carry them, and ids minted once and kept in the store where it cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import dialects
from dialects import Decoded, Dialect, Format
from dialects.errors import (
    GatewayError,
    NotFound,
    NotSupported,
    SplitUnsupported,
    StaleVersion,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from dialects.listing import Row, rows_of
from dialects.media import CONTENT_TYPES, media_format
from dialects.model import InvoiceFacts, Page, Payment, PaymentQuery, stored_payment
from dialects.unit import DialectUnit, Op, Route
from gateway.ledger.contract import Outcome, Principal
from gateway.ledger.rules import check_total, part_of
from gateway.ledger.search import select
from gateway.observability.logs import event
from gateway.observability.metrics import BREAKER, BREAKER_STATES
from gateway.proxy.errors import Refusal, caller_error
from gateway.proxy.idmap import IdMap
from gateway.proxy.keys import KeyStates
from gateway.proxy.outbound import OutboundRules
from gateway.proxy.upstream import Answer, UpstreamClient, retry_after, unanswered
from gateway.store import REFUSALS, BackendRef, Seal, Store

BATCH_REFUSED = (
    "A proxied backend stores each payment on its own, so a batch of several cannot be"
    " stored all or nothing, nor under one Idempotency-Key: send them one by one, or"
    " ask for each to be answered on its own, without an Idempotency-Key"
)


ITEM_UNKNOWN = (
    "The backend did not answer for this payment, which it may have stored:"
    " check its invoice before sending it again"
)


class ProxyService:
    """Serves one tenant's payment operations from an upstream in any dialect.

    It orchestrates: ids cross through the id map (`IdMap`), a write's fields through
    the backend's outbound rules (`OutboundRules`), a write under an Idempotency-Key
    through its key states (`KeyStates`), and a backend's error status becomes the
    caller's error through one table (`errors.caller_error`).
    """

    def __init__(self, tenant: str, client: UpstreamClient, store: Store) -> None:
        self.tenant = tenant
        self.client = client
        self.store = store
        self.unit: DialectUnit = dialects.unit(client.config.dialect)
        self.dialect: Dialect = self.unit.codec
        self.ids = IdMap(store, tenant, self.dialect, parents=self._nested())
        self.fmt: Format = client.config.format or self.dialect.formats[0]
        self.strict = client.config.strict
        self.outbound = OutboundRules(self.dialect, strict=self.strict)
        self.keys = KeyStates(store, tenant, self.unit.idempotency_header)
        self._accept = CONTENT_TYPES[self.fmt].split(";")[0]
        client.breaker.watch = self._breaker_moved
        self._breaker_moved(client.breaker.state, quiet=True)

    def _breaker_moved(self, state: str, *, quiet: bool = False) -> None:
        BREAKER.labels(self.tenant, self.dialect.name).set(BREAKER_STATES[state])
        if not quiet:
            level = logging.INFO if state == "closed" else logging.WARNING
            event(f"breaker_{state.replace('-', '_')}", level, tenant=self.tenant,
                  backend=self.dialect.name)  # fmt: skip

    def _garbage(self, message: str) -> UpstreamError:
        """An answer the backend should never have sent: refused, and logged."""
        event("backend_garbage", logging.WARNING, backend=self.dialect.name, reason=message)
        return UpstreamError(message)

    # --- PaymentService ----------------------------------------------------------------

    async def list_payments(self, who: Principal, invoice_id: int) -> list[Payment]:
        invoice = await self._ref("invoice", invoice_id)
        return await self._list(_caller(who), invoice_id, invoice.backend_id)

    async def list_rows(
        self,
        who: Principal,
        invoice_id: int,
        columns: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Row]:
        """The backend's list, decoded whole (backends answer lists whole), then paged."""
        payments = await self.list_payments(who, invoice_id)
        end = None if limit is None else offset + limit
        return rows_of(payments[offset:end], columns)

    async def get_payment(
        self, who: Principal, payment_id: int, *, deleted: bool = False
    ) -> Payment:
        """A live payment at the backend: through the proxy a deleted payment is gone (a
        backend's lists hold live payments only), whatever `deleted` asks."""
        caller = _caller(who)
        ref = await self._ref("payment", payment_id)
        invoice_id = await self._invoice_of(ref, caller)
        if self.unit.route(Op.GET) is None:
            # No get-one route: the nearest honest thing is its invoice's list.
            if ref.parent is None:
                raise NotFound("Payment not found")
            for payment in await self._list(caller, invoice_id, ref.parent):
                if payment.id == payment_id:
                    return payment
            raise NotFound("Payment not found")
        answer = await self._call(Op.GET, payment=ref.backend_id, invoice=ref.parent)
        [found] = await self._payments(caller, answer, invoice_id, ref.parent, single=True)
        if found.deleted_at is not None:  # a backend that keeps them, marked deleted
            raise NotFound("Payment not found")
        return found

    async def create_payment(
        self, who: Principal, invoice_id: int, request: Decoded, *, seal: Seal | None = None
    ) -> Outcome:
        invoice = await self._ref("invoice", invoice_id)
        fields, warnings = self.outbound.fields(_caller(who), request, creating=True)
        self._defaults(fields)
        self.outbound.invoice(fields, invoice.backend_id)
        body = self.dialect.codecs[self.fmt].encode_request(fields, warnings)
        answer = await self._write(seal, Op.CREATE, invoice=invoice.backend_id, body=body)
        read = self._payments(_caller(who), answer, invoice_id, invoice.backend_id, single=True)
        payment = (await self.keys.settle(seal, read, tuple(warnings)))[0]
        return Outcome(payment, tuple(warnings))

    async def create_payments(
        self,
        who: Principal,
        items: Sequence[tuple[int, Decoded]],
        *,
        each: bool,
        seal: Seal | None = None,
    ) -> list[Outcome | GatewayError]:
        """A backend takes each payment in a write of its own: several can be neither
        one transaction there nor one Idempotency-Key's single write, so such a batch is
        refused before anything is sent; item by item, each stands on its own."""
        if len(items) > 1 and (seal is not None or not each):
            raise ValidationFailed(BATCH_REFUSED)
        if not each or seal is None:
            made: list[Outcome | GatewayError] = []
            for invoice_id, request in items:
                try:
                    made.append(await self.create_payment(who, invoice_id, request, seal=seal))
                except GatewayError as failed:
                    if not each:
                        failed.sent = request.sent
                        raise
                    made.append(_item_failure(failed))
            return made
        if not items:  # every item refused before any write: the key keeps that answer
            await self.keys.keep(seal, [])
            return []
        ((invoice_id, request),) = items
        try:
            return [await self.create_payment(who, invoice_id, request, seal=seal)]
        except REFUSALS as refused:  # the backend stored nothing: the key keeps the refusal
            await self.keys.keep(seal, [refused])
            return [refused]

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
        _unversioned(version)
        op = Op.REPLACE if replace else Op.PATCH
        if self.unit.route(op) is None:
            raise NotSupported(f"The {self.dialect.name} backend cannot change a payment")
        ref = await self._ref("payment", payment_id)
        invoice_id = await self._invoice_of(ref, _caller(who))
        fields, warnings = self.outbound.fields(_caller(who), request, creating=replace)
        body = self.dialect.codecs[self.fmt].encode_request(fields, warnings)
        answer = await self._write(seal, op, payment=ref.backend_id, invoice=ref.parent, body=body)
        read = self._payments(_caller(who), answer, invoice_id, ref.parent, single=True)
        payment = (await self.keys.settle(seal, read, tuple(warnings)))[0]
        return Outcome(payment, tuple(warnings))

    async def delete_payment(
        self,
        who: Principal,
        payment_id: int,
        *,
        seal: Seal | None = None,
        version: int | None = None,
    ) -> None:
        _unversioned(version)
        if self._route(Op.DELETE) is None:
            raise NotSupported(f"The {self.dialect.name} backend cannot delete a payment")
        ref = await self._ref("payment", payment_id)
        await self._write(seal, Op.DELETE, payment=ref.backend_id, invoice=ref.parent)
        await self.keys.settle(seal, _nothing(), ())

    # --- whole payments: a backend holds one invoice per payment --------------------------

    async def get_group(
        self, who: Principal, group_id: int, *, deleted: bool = False
    ) -> list[Payment]:
        """Through the proxy every payment is a group of its own (its id the group's)."""
        return [_own_group(await self.get_payment(who, group_id, deleted=deleted))]

    async def create_group(
        self, who: Principal, request: Decoded, *, seal: Seal | None = None
    ) -> list[Outcome]:
        """A payment on one invoice, created as any other; one split across invoices is
        refused (SplitUnsupported) before anything is sent: the backend could hold it
        only as several payments, which it cannot make or undo together."""
        invoice_id, part = _one_allocation(request)
        made = await self.create_payment(who, invoice_id, part, seal=seal)
        return [Outcome(_own_group(made.payment), made.warnings)]

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
        if request.allocations:
            invoice_id, request = _one_allocation(request)
            current = await self.get_payment(who, group_id)
            if current.invoice_id is not None and invoice_id != current.invoice_id:
                raise NotSupported("Through the proxy a payment stays on its invoice")
        made = await self.update_payment(
            who, group_id, request, replace=replace, seal=seal, version=version
        )
        return [Outcome(_own_group(made.payment), made.warnings)]

    async def delete_group(
        self,
        who: Principal,
        group_id: int,
        *,
        version: int | None,
        void: bool,
        seal: Seal | None = None,
    ) -> list[Payment]:
        """The backend's payment deleted; a void too (backends keep no voided payments)."""
        current = await self.get_payment(who, group_id)
        await self.delete_payment(who, group_id, seal=seal, version=version)
        gone = {"deleted_at": datetime.now(UTC), "voided": void}
        return [_own_group(current).model_copy(update=gone)]

    async def _write(self, seal: Seal | None, op: Op, **request: Any) -> Answer:
        """A write sent to the backend, through its key's states if it has one."""
        return await self.keys.send(seal, lambda key: self._call(op, key=key, **request))

    async def search_payments(
        self, who: Principal, query: PaymentQuery
    ) -> tuple[list[Payment], Page | None]:
        """A search within named invoices, from their lists at the backend."""
        if query.invoice_ids is None:
            raise NotSupported("Through the proxy, payments are listed by invoice")
        if query.invoice_numbers is not None:
            raise NotSupported("Through the proxy, an invoice is named by its id")
        found: list[Payment] = []
        for invoice_id in dict.fromkeys(query.invoice_ids):
            found += await self.list_payments(who, invoice_id)
        return select(found, query)

    async def invoice_by_number(self, who: Principal, number: str) -> int | None:
        raise NotSupported("Through the proxy, an invoice is named by its id")

    async def invoice_facts(
        self, who: Principal, invoice_ids: Sequence[int]
    ) -> dict[int, InvoiceFacts]:
        """None: the backend's invoices are known here by their ids alone."""
        return {}

    # --- relay: a ledger payment forwarded (gateway/events/relay.py) ---------------------

    def _relayed(self, payment: Payment, backend_invoice: str) -> dict[str, Any]:
        """The fields a relayed create sends (refused, LedgerRefused, if money has no place)."""
        fields, _ = self.outbound.fields(
            _origin(payment, self.dialect), _as_sent(payment), creating=True
        )
        self.outbound.invoice(fields, backend_invoice)
        self._defaults(fields)
        return fields

    async def relay_create(self, backend_invoice: str, payment: Payment, key: str | None) -> str:
        """Create `payment` at the backend on its invoice `backend_invoice`, under `key`
        where the backend's dialect takes one; the id the backend gave it."""
        fields = self._relayed(payment, backend_invoice)
        body = self.dialect.codecs[self.fmt].encode_request(fields, [])
        answer = await self._call(Op.CREATE, invoice=backend_invoice, body=body, key=key)
        (made,) = self._decoded(answer, single=True)
        if "id" not in made.ids:
            raise self._garbage("The backend sent a payment without an id")
        return made.ids["id"]

    async def relay_matches(self, backend_invoice: str, payment: Payment) -> list[str]:
        """The backend ids of the live payments of `backend_invoice` holding what a relayed
        create of `payment` sends (its amount, date, reference and notes where sent)."""
        fields = self._relayed(payment, backend_invoice)
        answer = await self._call(Op.LIST, invoice=backend_invoice)
        return [
            item.ids["id"]
            for item in self._decoded(answer, single=False)
            if "id" in item.ids and item.payment.deleted_at is None and _holds(item, fields)
        ]

    async def relay_delete(self, backend_id: str, backend_invoice: str) -> None:
        """Delete the backend's payment `backend_id` (of invoice `backend_invoice`)."""
        if self._route(Op.DELETE) is None:
            raise NotSupported(f"The {self.dialect.name} backend cannot delete a payment")
        await self._call(Op.DELETE, payment=backend_id, invoice=backend_invoice)

    # --- ids ---------------------------------------------------------------------------

    def _nested(self) -> bool:
        """Whether the backend reaches a payment only through its invoice."""
        routes = [self.unit.route(op) for op in (Op.GET, Op.DELETE)]
        return any(route is None or "{invoice_id}" in route.path for route in routes)

    async def _ref(self, kind: str, local_id: int) -> BackendRef:
        ref = await self.ids.ref(kind, local_id)
        if ref is None:
            raise NotFound(f"{kind.capitalize()} not found")
        return ref

    async def _invoice_of(self, ref: BackendRef, caller: Dialect) -> int | None:
        if ref.parent is None:
            return None
        return (await self.ids.local("invoice", [BackendRef(ref.parent)], caller))[0]

    async def check(self, kind: str, ref: BackendRef) -> None:
        """Raise NotFound unless the backend has the object.

        An invoice exists if its payments can be listed; a payment if the backend
        can show it alone, or its invoice's list holds it.
        """
        if kind == "invoice":
            await self._call(Op.LIST, invoice=ref.backend_id)
            return
        route = self.unit.route(Op.GET)
        if route is not None and ("{invoice_id}" not in route.path or ref.parent is not None):
            await self._call(Op.GET, payment=ref.backend_id, invoice=ref.parent)
            return
        if ref.parent is None:
            raise NotFound("List the payment's invoice to learn its id")
        answer = await self._call(Op.LIST, invoice=ref.parent)
        if all(
            item.ids.get("id") != ref.backend_id for item in self._decoded(answer, single=False)
        ):
            raise NotFound("Payment not found")

    async def callers_ids(self, kind: str, ref: BackendRef) -> dict[str, object]:
        """The object's id as each dialect's callers know it."""
        found: dict[str, object] = {}
        for name, caller in dialects.DIALECTS.items():
            local = (await self.ids.local(kind, [ref], caller))[0]
            found[name] = caller.wire_id(local)
        return found

    # --- requests ----------------------------------------------------------------------

    def _route(self, op: Op) -> Route | None:
        """The backend's route for `op`, or the one that does its work there (a search
        lists an invoice, a batch create takes one, a removal deletes)."""
        found = self.unit.route(op)
        for other in _STANDS_IN.get(op, ()):
            found = found or self.unit.route(other)
        return found

    def _defaults(self, fields: dict[str, Any]) -> None:
        """A create's values the backend's config gives where the caller gave none."""
        for name, value in self.client.config.create_defaults().items():
            if fields.get(name) is None:
                fields[name] = value

    async def _call(
        self,
        op: Op,
        *,
        invoice: str | None = None,
        payment: str | None = None,
        body: bytes | None = None,
        key: str | None = None,
    ) -> Answer:
        route = self._route(op)
        assert route is not None
        removal = self.dialect.codecs[self.fmt].removal
        if route.op is Op.REMOVE and removal is not None:
            body = removal.removal_request()
        values = {
            **self.client.config.path_values(),
            "invoice_id": invoice,
            "payment_id": payment,
        }
        if "{invoice_id}" in route.path and invoice is None:
            raise NotSupported(f"The {self.dialect.name} backend needs the payment's invoice")
        path = route.path.format(**{k: _quote(v or "") for k, v in values.items()})
        listing = op is Op.LIST and "{invoice_id}" not in route.path
        params = self.dialect.list_params(invoice or "") if listing else None
        if route.op is Op.WRITE and op is Op.DELETE:  # a whole payment's delete, by body
            params, body = await self._group_removal(payment or "", invoice)
        headers = {"Accept": self._accept}
        if body is not None:
            headers["Content-Type"] = CONTENT_TYPES[self.fmt]
        if key is not None:
            headers.update(self.keys.forwarded(key))
        idempotent = op in (Op.LIST, Op.GET, Op.REPLACE, Op.DELETE)
        answer = await self.client.send(
            route.method, path, body=body, headers=headers, params=params, idempotent=idempotent
        )
        if answer.status >= 300:
            missing = "Invoice not found" if op in (Op.LIST, Op.CREATE) else "Payment not found"
            details = partial(self._error_details, answer)
            refusal = Refusal(answer.status, retry_after(answer.headers), details, missing)
            raise caller_error(refusal)
        return answer

    async def _group_removal(
        self, payment: str, invoice: str | None
    ) -> tuple[dict[str, str], bytes]:
        """The query and body deleting a whole payment at a backend whose ids name them,
        at the version the backend shows now (it refuses a stale one)."""
        groups = self.unit.groups
        assert groups is not None  # a write route is served only where the unit groups
        current = await self._call(Op.GET, payment=payment, invoice=invoice)
        (shown,) = self._decoded(current, single=True)
        return groups.delete_request(self.fmt, payment, shown.payment.version)

    # --- answers -----------------------------------------------------------------------

    def _decoded(self, answer: Answer, *, single: bool) -> list[Decoded]:
        fmt = self._answer_format(answer)
        try:
            if single:
                return [self.dialect.codecs[fmt].decode_payment(answer.body, foreign_ids=True)]
            return self.dialect.codecs[fmt].decode_list(answer.body, foreign_ids=True)
        except GatewayError as exc:
            raise self._garbage(f"The backend sent an unreadable answer: {exc.message}") from exc

    async def _payments(
        self,
        caller: Dialect,
        answer: Answer,
        invoice_id: int | None,
        invoice_ref: str | None,
        *,
        single: bool,
    ) -> list[Payment]:
        """The backend's payments with the ids `caller` knows them by."""
        decoded = self._decoded(answer, single=single)
        parents = [d.ids.get("invoice_id", invoice_ref) for d in decoded]
        if invoice_id is None and parents and parents[0] is not None:
            invoice_id = (await self.ids.local("invoice", [BackendRef(parents[0])], caller))[0]
        refs = []
        for item, parent in zip(decoded, parents, strict=True):
            if "id" not in item.ids:
                raise self._garbage("The backend sent a payment without an id")
            refs.append(BackendRef(item.ids["id"], parent))
        local_ids = await self.ids.local("payment", refs, caller)
        return [
            _owned(d.payment, self.tenant, invoice_id, local)
            for d, local in zip(decoded, local_ids, strict=True)
        ]

    async def _list(
        self, caller: Dialect, invoice_id: int | None, backend_invoice: str
    ) -> list[Payment]:
        answer = await self._call(Op.LIST, invoice=backend_invoice)
        found = await self._payments(caller, answer, invoice_id, backend_invoice, single=False)
        return [payment for payment in found if payment.deleted_at is None]

    def _answer_format(self, answer: Answer) -> Format:
        found = media_format(answer.headers.get("Content-Type", ""))
        if found is None or found not in self.dialect.formats:
            raise self._garbage("The backend answered in an unexpected content type")
        return found

    def _error_details(self, answer: Answer) -> tuple[str, dict[str, str]]:
        try:
            message, wire = self.dialect.codecs[self._answer_format(answer)].error_details(
                answer.body
            )
        except GatewayError:
            return "The backend refused the request", {}
        return message, self.dialect.canonical_fields(wire)


def _owned(payment: Payment, tenant: str, invoice_id: int | None, local: int) -> Payment:
    """A decoded (so validated) payment with the tenant and ids this gateway gives it.

    Built as the store builds its rows' payments: every value is already of its
    final type, so pydantic's copy (a validated model's dict copied field by field)
    has nothing left to check.
    """
    data = payment.__dict__.copy()
    data.update(tenant=tenant, invoice_id=invoice_id, id=local)
    return stored_payment(data)


# What a stored payment's create sends, as a caller's document would have carried it.
_SENT = ("amount", "paid_at", "method", "notes", "reference", "tax_withheld", "fee",
         "notify_customer", "account_code", "account_id")  # fmt: skip


def _as_sent(payment: Payment) -> Decoded:
    defaults = Payment()
    given = [a for a in _SENT if getattr(payment, a) not in (None, getattr(defaults, a))]
    return Decoded(payment, frozenset(given))


def _origin(payment: Payment, backend: Dialect) -> Dialect:
    """The dialect that wrote the payment (what a dropped field is named as in warnings)."""
    return dialects.DIALECTS.get(payment.origin or "") or backend


def _holds(found: Decoded, sent: dict[str, Any]) -> bool:
    """Whether a backend payment holds what was sent: its amount, its day (a day apart at
    most: a backend may keep dates alone, in its own zone), its reference and notes."""
    payment = found.payment
    if payment.amount is None or payment.amount != sent.get("amount"):
        return False
    when = sent.get("paid_at")
    if when is not None and payment.paid_at is not None:
        if abs((payment.paid_at - when).total_seconds()) > 86_400:
            return False
    return all(
        getattr(payment, text) in (sent[text], None)
        for text in ("reference", "notes")
        if sent.get(text)
    )


def _item_failure(failed: GatewayError) -> GatewayError:
    """What a batch item answered item by item says of a backend failure: never that
    nothing was stored when the backend may have acted on it."""
    if isinstance(failed, REFUSALS) or not unanswered(failed):
        return failed
    return UpstreamTimeout(ITEM_UNKNOWN)


async def _nothing() -> list[Payment]:
    return []


# Operations a backend may serve through another of its routes.
_STANDS_IN = {
    Op.LIST: (Op.SEARCH,),
    Op.CREATE: (Op.CREATE_MANY, Op.WRITE),
    Op.DELETE: (Op.REMOVE, Op.WRITE),
}


def _quote(value: str) -> str:
    return quote(value, safe="")


def _caller(who: Principal) -> Dialect:
    """The caller's dialect: the id form its ids are given and answered in."""
    return dialects.get(who.dialect)


def _unversioned(version: int | None) -> None:
    """A backend keeps no versions: its payments read as version 0, the only one a change
    may expect."""
    if version not in (None, 0):
        raise StaleVersion(
            f"The payment is at version 0, not {version}", fields={"version": "is 0"}
        )


def _own_group(payment: Payment) -> Payment:
    """A backend's payment as a group of its own."""
    return payment.model_copy(update={"group_id": payment.id})


def _one_allocation(request: Decoded) -> tuple[int, Decoded]:
    """The invoice a payment of one allocation settles, and the request for it there."""
    if not request.allocations:
        raise ValidationFailed(fields={"allocations": "must name at least one invoice"})
    if len(request.allocations) > 1:
        raise SplitUnsupported(
            "The backend holds one invoice per payment: a payment applied to several"
            " invoices is refused rather than stored as several payments"
        )
    (line,) = request.allocations
    check_total(request, line.amount)
    return line.invoice_id, part_of(request, line.amount)
