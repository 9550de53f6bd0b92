"""The one set of handlers that serves every dialect's native paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial

from aiohttp import web

import dialects
from dialects import Decoded, Dialect, Format, Reply
from dialects.errors import (
    BadQuery,
    BadRequest,
    GatewayError,
    NotFound,
    NotSupported,
    ValidationFailed,
)
from dialects.media import CONTENT_TYPES, SUFFIXES
from dialects.model import NO_FACTS, Facts, GroupFacts, InvoiceFacts, Payment, PaymentQuery
from dialects.parsing import ValueProblem, parse_integer
from dialects.registry import owner_of
from dialects.unit import DialectUnit, Document, Endpoint, EndpointCall, GroupWrite, Op, Route
from gateway.ledger import accounts, idempotency
from gateway.ledger.contract import Outcome, PaymentService, Principal
from gateway.observability import trace
from gateway.serving.http import (
    body_format,
    read_body,
    replay,
    reply,
    response_format,
    split_suffix,
)
from gateway.serving.state import FORMAT, GATEWAY, Gateway
from gateway.store import MAX_ID, REFUSALS, Seal, Written, only


def unit_for(path: str) -> DialectUnit | None:
    """The dialect whose paths hold `path`, for errors raised before any route matched."""
    return owner_of(dialects.units(), path)


def dialect_for(path: str) -> Dialect | None:
    unit = unit_for(path)
    return unit.codec if unit is not None else None


@dataclass
class Call:
    """One request on its way through: who, in which dialect, answered in which format."""

    request: web.Request
    gateway: Gateway
    unit: DialectUnit
    route: Route
    fmt: Format
    ids: dict[str, str]
    who: Principal | None = None
    raw: bytes | None = None
    seal: Seal | None = None  # the Idempotency-Key this write completes
    current: Payment | None = None  # the payment a removal acts on, for its answer
    batch: Batch | None = None  # a batch create's items, for its answer
    write: GroupWrite | None = None  # a grouped write, for its answer
    # The whole payments the answer's allocations belong to, where the dialect shows them.
    groups: Mapping[int, GroupFacts] = field(default_factory=dict)
    group: list[Payment] | None = None  # the group a void acts on, for its answer

    @property
    def dialect(self) -> Dialect:
        return self.unit.codec

    @property
    def service(self) -> PaymentService:
        assert self.who is not None
        return self.gateway.service(self.who.tenant)

    def id_of(self, name: str, what: str) -> int:
        number = self.dialect.parse_id(self.ids.get(name))
        if number is None:
            raise NotFound(f"{what} not found")
        return number

    async def raw_body(self) -> bytes:
        if self.raw is None:
            server = self.gateway.config.server
            self.raw = await read_body(
                self.request, server.max_body_bytes, server.read_timeout_seconds
            )
        return self.raw

    async def body(self) -> Decoded:
        fmt = body_format(self.dialect, self.request, self.fmt)
        return self.dialect.codecs[fmt].decode_payment(await self.raw_body())

    def body_format(self) -> Format:
        return body_format(self.dialect, self.request, self.fmt)

    def completed(self, request: Decoded) -> Decoded:
        """A create request with its deposit account completed from the tenant's accounts."""
        assert self.who is not None
        return accounts.resolve(self.gateway.config.tenants[self.who.tenant], request)

    def answer(
        self,
        body: bytes,
        *,
        status: int = 200,
        warnings: tuple[str, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        headers = dict(headers or {})
        if warnings:
            headers["X-Gateway-Warnings"] = "; ".join(warnings)
        return reply(body, self.fmt, status=status, headers=headers)


# --- operations ----------------------------------------------------------------------


async def list_payments(call: Call) -> web.Response:
    if "invoice_id" not in call.ids:
        raw = call.request.query.get("invoice_id")
        if not raw:
            raise ValidationFailed(fields={"invoice_id": "can't be blank"})
        call.ids["invoice_id"] = raw
    invoice_id = call.id_of("invoice_id", "Invoice")
    limit, offset = _page(call)
    dialect = call.dialect
    rows = await call.service.list_rows(
        _who(call), invoice_id, dialect.row_columns, limit=limit, offset=offset
    )
    warnings: list[str] = []
    return call.answer(
        dialect.codecs[call.fmt].encode_rows(rows, warnings), warnings=tuple(warnings)
    )


_PAGE_BOUNDS = (
    (1, "must be a positive whole number"),
    (0, "must be zero or a positive whole number"),
)


def _page(call: Call) -> tuple[int | None, int]:
    """The part of a list the caller asked for (limit, offset), where its vendor pages
    lists; else all of it."""
    if call.route.paging is None:
        return None, 0
    found: list[int | None] = []
    problems: dict[str, str] = {}
    for name, (least, problem) in zip(call.route.paging, _PAGE_BOUNDS, strict=True):
        text = call.request.query.get(name)
        number = None if text is None else _whole(text)
        if text is not None and (number is None or number < least):
            problems[name] = problem
        found.append(number)
    if problems:
        raise ValidationFailed(fields=problems)
    limit, offset = found
    return limit, offset or 0


def _whole(text: str) -> int | None:
    try:
        return parse_integer(text)
    except ValueProblem:
        return None


async def get_payment(call: Call) -> web.Response:
    payment_id = _payment_in_path(call)
    if call.unit.groups is not None:
        return await _get_group(call, payment_id)
    payment = await call.service.get_payment(
        _who(call), payment_id, deleted=call.dialect.shows_deleted
    )
    _check_invoice(call, payment.invoice_id)
    return _answer_payment(call, payment, (), await _invoices(call, [payment]))


async def create_payment(call: Call) -> web.Response:
    request = call.completed(await call.body())
    call.dialect.check_create(request)
    if "invoice_id" in call.ids:
        invoice_id = call.id_of("invoice_id", "Invoice")
    else:
        invoice_id = request.payment.invoice_id or 0
    outcome = await call.service.create_payment(_who(call), invoice_id, request, seal=call.seal)
    invoices = await _invoices(call, [outcome.payment])
    return _answer_payment(call, outcome.payment, outcome.warnings, invoices)


async def create_many(call: Call) -> web.Response:
    """One or many payments in one body; each names its invoice by id or by number.

    Summarised (the default), the batch is one transaction: the first item refused
    answers for the batch and nothing of it is stored. Else every item is stored or
    refused on its own and answered in its place. An Idempotency-Key covers the batch.
    """
    raw = await call.raw_body()
    items = call.dialect.codecs[call.body_format()].decode_items(raw)
    if not items:
        raise BadRequest("The request holds no payments")
    batch = call.batch = Batch(items, call.dialect.summarised(call.request.query))
    if batch.summarised:  # every item read and checked before any is looked up
        for item in items:
            _check_item(call, item)
    entries: list[tuple[int, Decoded]] = []
    for place, item in enumerate(items):
        try:
            request = _check_item(call, item)
            entries.append((await _invoice_named(call, request), request))
        except REFUSALS as refused:
            if batch.summarised:
                raise
            batch.refused[place] = refused
    try:
        made = await call.service.create_payments(
            _who(call), entries, each=not batch.summarised, seal=call.seal
        )
    except NotFound as exc:
        raise _item_refusal(exc) from exc
    written = [outcome.payment if isinstance(outcome, Outcome) else outcome for outcome in made]
    warnings = [w for outcome in made if isinstance(outcome, Outcome) for w in outcome.warnings]
    invoices = await _invoices(call, [w for w in written if isinstance(w, Payment)])
    return _respond(call, _batch_answer(call, written, tuple(warnings), invoices))


@dataclass
class Batch:
    """A batch's items as read, and those refused before any write, by place."""

    items: list[Decoded | GatewayError]
    summarised: bool
    refused: dict[int, GatewayError] = field(default_factory=dict)


def _batch_answer(
    call: Call,
    written: Sequence[Written],
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    """A batch's answer, from what its writes left (those refused before any write put
    back in their places), as sent and as an Idempotency-Key stores it."""
    batch = call.batch
    assert batch is not None
    left = iter(written)
    results: list[Payment | GatewayError] = []
    for place, item in enumerate(batch.items):
        result = batch.refused[place] if place in batch.refused else next(left)
        assert result is not None
        if isinstance(result, GatewayError):
            result = _item_refusal(result)
            if result.sent is None and isinstance(item, Decoded):
                result.sent = item.sent  # which item it was, whoever refused it
        results.append(result)
    found = list(warnings)
    facts = _facts(call, invoices)
    if batch.summarised:
        made = [result for result in results if isinstance(result, Payment)]
        body = call.dialect.codecs[call.fmt].encode_payments(made, found, facts=facts)
    else:
        batches = call.dialect.codecs[call.fmt].batches
        assert batches is not None  # answered one by one only where the dialect can
        body = batches.encode_batch(results, found, facts=facts)
    return _reply(call, body, tuple(found))


def _reply(call: Call, body: bytes, warnings: tuple[str, ...]) -> Reply:
    headers = {"Content-Type": CONTENT_TYPES[call.fmt]}
    if warnings:
        headers["X-Gateway-Warnings"] = "; ".join(warnings)
    return Reply(call.route.status, body, headers)


async def _invoice_named(call: Call, request: Decoded) -> int:
    """The invoice a body names by id or by number; one that does not exist is a
    problem with the payment (a field), not a missing resource: the path named none."""
    invoice_id = request.payment.invoice_id
    number = request.options.get("invoice_number")
    if invoice_id is None and isinstance(number, str):
        invoice_id = await call.service.invoice_by_number(_who(call), number)
    if invoice_id is None or invoice_id > MAX_ID:
        missing = NotFound("Invoice not found")
        missing.sent = request.sent
        raise _item_refusal(missing)
    return invoice_id


def _check_item(call: Call, item: Decoded | GatewayError) -> Decoded:
    """A batch item read, its account completed and checked as a create; else its
    refusal (saying which item it was) is raised."""
    try:
        if isinstance(item, GatewayError):
            raise item
        request = call.completed(item)
        call.dialect.check_create(request)
        return request
    except REFUSALS as refused:
        if refused.sent is None and not isinstance(item, GatewayError):
            refused.sent = item.sent
        raise


def _item_refusal(error: GatewayError) -> GatewayError:
    if isinstance(error, NotFound):
        problem = {"invoice_id": "could not be found"}
        refused = ValidationFailed("Invoice could not be found", fields=problem)
        refused.sent = error.sent
        return refused
    return error


async def search_payments(call: Call) -> web.Response:
    if call.unit.groups is not None:
        return await _query_groups(call)
    search = call.dialect.search
    assert search is not None  # the route is served only where the dialect searches
    query = search.read_search(call.request.query, call.request.headers)
    payments, page = await call.service.search_payments(_who(call), query)
    warnings: list[str] = []
    facts = _facts(call, await _invoices(call, payments))
    body = call.dialect.codecs[call.fmt].encode_page(payments, page, warnings=warnings, facts=facts)
    return call.answer(body, warnings=tuple(warnings))


async def remove_payment(call: Call) -> web.Response:
    """A POST whose body marks the payment deleted: answered with the payment as it was."""
    removal = call.dialect.codecs[call.body_format()].removal
    assert removal is not None  # the route is served only where the dialect removes
    removal.read_removal(await call.raw_body())
    payment_id = _payment_in_path(call)
    call.current = await call.service.get_payment(_who(call), payment_id)
    await call.service.delete_payment(_who(call), payment_id, seal=call.seal)
    return _respond(call, _removed(call, None, (), await _invoices(call, [call.current])))


def _removed(
    call: Call,
    payment: Payment | None,
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    """The payment as it was, marked deleted; its invoice as the deletion left it."""
    assert call.current is not None
    removal = call.dialect.codecs[call.fmt].removal
    assert removal is not None
    body = removal.encode_removed(call.current, facts=_facts(call, invoices))
    return _reply(call, body, warnings)


async def replace_payment(call: Call) -> web.Response:
    request = await call.body()
    call.dialect.check_create(request)
    return await _update(call, request, replace=True)


async def patch_payment(call: Call) -> web.Response:
    return await _update(call, await call.body(), replace=False)


async def _update(call: Call, request: Decoded, *, replace: bool) -> web.Response:
    payment_id = _payment_in_path(call)
    outcome = await call.service.update_payment(
        _who(call), payment_id, request, replace=replace, seal=call.seal
    )
    invoices = await _invoices(call, [outcome.payment])
    return _answer_payment(call, outcome.payment, outcome.warnings, invoices)


async def delete_payment(call: Call) -> web.Response:
    payment_id = _payment_in_path(call)
    if "invoice_id" in call.ids:
        current = await call.service.get_payment(_who(call), payment_id)
        _check_invoice(call, current.invoice_id)
    await call.service.delete_payment(_who(call), payment_id, seal=call.seal)
    return _respond(call, _deleted(call, None, (), {}))


def _deleted(
    call: Call,
    payment: Payment | None,
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    return Reply(call.route.status, b"", {})


def _answer_payment(
    call: Call,
    payment: Payment,
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> web.Response:
    return _respond(call, _encode_payment(call, payment, warnings, invoices))


def _encode_payment(
    call: Call,
    payment: Payment | None,
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    """A payment's answer: status, the headers that matter, the body's exact bytes."""
    assert payment is not None
    found = list(warnings)
    body = call.dialect.codecs[call.fmt].encode_payment(
        payment, found, facts=_facts(call, invoices)
    )
    headers: dict[str, str] = {}
    if call.route.location and payment.id is not None and payment.invoice_id is not None:
        wire = call.dialect.wire_id
        headers["Location"] = call.route.location.format(
            invoice_id=wire(payment.invoice_id), id=wire(payment.id)
        )
    if found:
        headers["X-Gateway-Warnings"] = "; ".join(found)
    if body:
        headers["Content-Type"] = CONTENT_TYPES[call.fmt]
    return Reply(call.route.status, body, headers)


def _respond(call: Call, answer: Reply) -> web.Response:
    """The answer sent: the one stored with an Idempotency-Key if this write had one."""
    if call.seal is not None and call.seal.sealed is not None:
        answer = call.seal.sealed
    return web.Response(body=answer.body, status=answer.status, headers=answer.headers)


async def _invoices(call: Call, payments: Iterable[Payment | None]) -> Mapping[int, InvoiceFacts]:
    """The facts of the payments' invoices as they stand now, where the dialect shows
    them and no answer was stored already (a keyed write's tells of its own change)."""
    if not call.dialect.shows_facts or (call.seal is not None and call.seal.sealed is not None):
        return {}
    shown = [p for p in payments if p is not None]
    if call.dialect.shows_groups:
        call.groups = await _groups(call, shown)
    ids = [p.invoice_id for p in shown if p.invoice_id is not None]
    return await call.service.invoice_facts(_who(call), ids) if ids else {}


async def _groups(call: Call, payments: Sequence[Payment]) -> dict[int, GroupFacts]:
    """The whole payments that `payments` are allocations of, by group id: their live
    allocations' sum and count (none where the service keeps no groups: a proxy)."""
    group_ids = tuple(_groups_of(payments))
    if not group_ids:
        return {}
    try:
        rows, _ = await call.service.search_payments(
            _who(call), PaymentQuery(group_ids=group_ids, order=(("id", False),))
        )
    except NotSupported:
        return {}
    totals: dict[int, tuple[Decimal, int]] = {}
    for row in rows:
        if row.group_id is not None and row.amount is not None:
            total, count = totals.get(row.group_id, (Decimal(0), 0))
            totals[row.group_id] = (total + row.amount, count + 1)
    return {group: GroupFacts(total, count) for group, (total, count) in totals.items()}


def _facts(call: Call, invoices: Mapping[int, InvoiceFacts]) -> Facts:
    """What an answer may tell beside its payments: `invoices`, and the names the
    tenant gives its deposit accounts (for the dialects that show them)."""
    if not call.dialect.shows_facts:
        return NO_FACTS
    tenant = call.gateway.config.tenants[_who(call).tenant]
    names = {account.code: account.name for account in tenant.accounts if account.name}
    return Facts(invoices, names, call.groups)


def _who(call: Call) -> Principal:
    assert call.who is not None
    return call.who


def _payment_in_path(call: Call) -> int:
    return call.id_of("payment_id", "Payment")


def _check_invoice(call: Call, invoice_id: int | None) -> None:
    """On paths nested under an invoice, a payment of another invoice does not exist."""
    if "invoice_id" in call.ids and call.id_of("invoice_id", "Invoice") != invoice_id:
        raise NotFound("Payment not found")


# --- whole payments (groups of allocations), where a dialect's ids name them ------------------


def _groups_of(payments: Sequence[Payment]) -> dict[int, None]:
    return {(p.group_id or p.id or 0): None for p in payments}


def _shown(rows: Sequence[Payment]) -> list[Payment]:
    """What a group reads as: its live allocations; if none is left but it was voided,
    the voided ones (a voided payment stays readable); else nothing."""
    live = [row for row in rows if row.deleted_at is None]
    if live:
        return live
    return [row for row in rows if row.voided]


async def _get_group(call: Call, group_id: int) -> web.Response:
    rows = _shown(await call.service.get_group(_who(call), group_id, deleted=True))
    if not rows:
        raise NotFound("Payment not found")
    return _respond(call, _group_reply(call, rows, (), await _invoices(call, rows)))


def _group_reply(
    call: Call,
    payments: Sequence[Payment],
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    groups = call.unit.groups
    assert groups is not None
    found = list(warnings)
    body = groups.encode_group(call.fmt, payments, found, _facts(call, invoices))
    return _reply(call, body, tuple(found))


async def write_group(call: Call) -> web.Response:
    """A POST of a whole payment: a create, an update, a delete or a void, as its body
    and query ask (`DialectUnit.groups`); one transaction however many invoices it names."""
    groups = call.unit.groups
    assert groups is not None  # the route is served only where the unit groups
    write = call.write = groups.read_write(
        call.body_format(), await call.raw_body(), call.request.query
    )
    who = _who(call)
    service = call.service
    if write.action in ("delete", "void"):
        assert write.group_id is not None
        call.group = await service.get_group(who, write.group_id)
        gone = await service.delete_group(
            who, write.group_id, version=write.version, void=write.action == "void",
            seal=call.seal,
        )  # fmt: skip
        return _respond(call, _group_answer(call, list(gone), (), {}))
    if write.action == "create":
        made = await service.create_group(who, call.completed(write.request), seal=call.seal)
    else:
        assert write.group_id is not None
        made = await service.update_group(
            who, write.group_id, write.request, replace=write.replace, version=write.version,
            seal=call.seal,
        )  # fmt: skip
    payments = [outcome.payment for outcome in made]
    warnings = tuple(w for outcome in made for w in outcome.warnings)
    return _respond(call, _group_answer(call, payments, warnings, await _invoices(call, payments)))


def _group_answer(
    call: Call,
    written: Sequence[Written],
    warnings: tuple[str, ...],
    invoices: Mapping[int, InvoiceFacts],
) -> Reply:
    """A grouped write's answer, as sent and as an idempotency key stores it: the group
    as the write left it, or the deletion's answer."""
    write, groups = call.write, call.unit.groups
    assert write is not None and groups is not None
    if write.action == "delete":
        assert write.group_id is not None
        return _reply(call, groups.encode_deleted(call.fmt, write.group_id), warnings)
    payments = [item for item in written if isinstance(item, Payment)]
    if write.action == "void":
        payments = [p for p in payments if p.voided] or [
            p.model_copy(update={"voided": True}) for p in call.group or []
        ]
    return _group_reply(call, payments, warnings, invoices)


async def _query_groups(call: Call) -> web.Response:
    """A query statement (a query parameter, or a POST's text body): the store finds the
    allocations, the dialect groups, filters, orders and pages them."""
    groups, name = call.unit.groups, call.route.query_body
    assert groups is not None and name is not None
    if call.request.method == "POST":
        try:
            statement = (await call.raw_body()).decode("utf-8")
        except UnicodeDecodeError:
            raise BadQuery("The query is not UTF-8 text") from None
    else:
        statement = call.request.query.get(name, "")
    query, plan = groups.read_query(statement)
    payments, _ = await call.service.search_payments(_who(call), query)
    if query.invoice_ids is not None and payments:
        # Found by their invoices: each payment is answered whole, with its other lines.
        whole = replace(query, invoice_ids=None, group_ids=tuple(_groups_of(payments)))
        with suppress(NotSupported):  # through the proxy each payment is one allocation
            payments, _ = await call.service.search_payments(_who(call), whole)
    warnings: list[str] = []
    facts = _facts(call, await _invoices(call, payments))
    body = groups.encode_result(call.fmt, payments, plan, warnings, facts)
    return call.answer(body, warnings=tuple(warnings))


Operation = Callable[[Call], Awaitable[web.Response]]
OPERATIONS: dict[Op, Operation] = {
    Op.LIST: list_payments,
    Op.GET: get_payment,
    Op.CREATE: create_payment,
    Op.REPLACE: replace_payment,
    Op.PATCH: patch_payment,
    Op.DELETE: delete_payment,
    Op.SEARCH: search_payments,
    Op.CREATE_MANY: create_many,
    Op.REMOVE: remove_payment,
    Op.WRITE: write_group,
}
Answer = Callable[[Call, Sequence[Written], tuple[str, ...], Mapping[int, InvoiceFacts]], Reply]
Encode = Callable[[Call, Payment | None, tuple[str, ...], Mapping[int, InvoiceFacts]], Reply]


def _single(encode: Encode) -> Answer:
    """The answer of a write of one payment, from what its one step left."""

    def answer(
        call: Call,
        written: Sequence[Written],
        warnings: tuple[str, ...],
        invoices: Mapping[int, InvoiceFacts],
    ) -> Reply:
        return encode(call, only(written), warnings, invoices)

    return answer


# The writes an Idempotency-Key guards, and how each one's answer is encoded.
ANSWERS: dict[Op, Answer] = {
    Op.CREATE: _single(_encode_payment),
    Op.REPLACE: _single(_encode_payment),
    Op.PATCH: _single(_encode_payment),
    Op.DELETE: _single(_deleted),
    Op.CREATE_MANY: _batch_answer,
    Op.REMOVE: _single(_removed),
    Op.WRITE: _group_answer,
}


async def keyed(call: Call, key: str, operation: Operation) -> web.Response:
    """A write under an Idempotency-Key: once, then the same answer to every retry."""
    who, request = _who(call), call.request
    claimed = idempotency.fingerprint(who, request.method, request.raw_path, await call.raw_body())
    keys = call.gateway.keys
    held = await keys.hold(who, key, claimed, partial(ANSWERS[call.route.op], call))
    if isinstance(held, Reply):
        return replay(held)
    call.seal = held
    try:
        return await operation(call)
    except BaseException:
        await keys.release(held)
        raise


# --- wiring ----------------------------------------------------------------------------


async def authenticate(call: Call) -> Principal:
    request = call.request
    return await call.gateway.auth.caller(call.unit, request.headers, request.match_info)


async def serve(unit: DialectUnit, route: Route, request: web.Request) -> web.Response:
    trace.note(dialect=unit.name, operation=route.op.value)
    dialect = unit.codec
    ids = dict(request.match_info)
    ext = ids.pop("ext", None)
    suffix = SUFFIXES[ext] if ext else None
    if unit.suffixes and route.path.endswith("}"):
        last = route.path.rsplit("{", 1)[1].rstrip("}")
        ids[last], suffix = split_suffix(ids[last])
    request[FORMAT] = suffix or dialect.formats[0]
    gateway = request.app[GATEWAY]
    fmt = response_format(dialect, request.headers.get("Accept"), suffix)
    call = Call(request, gateway, unit, route, fmt, ids)
    request[FORMAT] = fmt
    call.who = await authenticate(call)
    trace.note(tenant=call.who.tenant)
    await gateway.limits.admit(call.who)
    operation = OPERATIONS[route.op]
    if route.op in ANSWERS and (key := _key_of(unit, request)) is not None:
        return await keyed(call, key, operation)
    return await operation(call)


def _key_of(unit: DialectUnit, request: web.Request) -> str | None:
    """The request's idempotency key: its Idempotency-Key header, else the query
    parameter the unit takes one in (the same rules: 400 if empty, over-long, repeated
    or unprintable)."""
    key = idempotency.key_of(request.headers)
    name = unit.idempotency_query
    if key is not None or name is None:
        return key
    values = request.query.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"Send one {name}")
    found = values[0].strip()
    if not found or len(found) > idempotency.MAX_LENGTH or not idempotency.holdable(found):
        raise BadRequest(f"{name} must be 1 to {idempotency.MAX_LENGTH} printable characters")
    return found


async def serve_document(
    unit: DialectUnit, document: Document, request: web.Request
) -> web.Response:
    """A unit's public document (a discovery document), for anyone who asks."""
    request[FORMAT] = "json"
    status, media_type, body = document.render(f"{request.scheme}://{request.host}")
    return web.Response(body=body, status=status, content_type=media_type)


async def serve_endpoint(
    unit: DialectUnit, endpoint: Endpoint, request: web.Request
) -> web.Response:
    """A unit's further endpoint: the caller authenticated as on its routes, then answered."""
    fmt = request[FORMAT] = response_format(unit.codec, request.headers.get("Accept"), None)
    gateway = request.app[GATEWAY]
    auth = gateway.auth
    who = await auth.caller(unit, request.headers, request.match_info, scoped=endpoint.scoped)
    await gateway.limits.admit(who)
    section = gateway.config.tenants[who.tenant].section(unit.name)
    call = EndpointCall(who.tenant, auth.credential(who), section, fmt)
    status, media_type, body = endpoint.respond(call)
    return web.Response(body=body, status=status, content_type=media_type)


def add_routes(app: web.Application) -> None:
    for unit in dialects.units().values():
        for route in unit.routes:
            handler = partial(serve, unit, route)
            app.router.add_route(route.method, route.path, handler)
            if unit.suffixes and not route.path.endswith("}"):
                app.router.add_route(route.method, route.path + r"{ext:\.(?:xml|json)}", handler)
        for endpoint in unit.endpoints:
            handler = partial(serve_endpoint, unit, endpoint)
            app.router.add_route(endpoint.method, endpoint.path, handler)
        for document in unit.documents:
            app.router.add_route(
                document.method, document.path, partial(serve_document, unit, document)
            )
