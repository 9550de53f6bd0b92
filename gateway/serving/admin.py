"""The canonical admin API under /gateway/v1 (bearer admin token, JSON), /healthz, /readyz."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

import dialects
from dialects import Dialect, Reply
from dialects.base import error_object
from dialects.errors import GatewayError, NotFound, StaleVersion, ValidationFailed
from dialects.model import Invoice, Payment, currency_exponent
from dialects.parsing import (
    ValueProblem,
    ascii_number,
    json_dumps,
    json_loads,
    parse_amount,
    parse_date,
)
from gateway.config import Webhook
from gateway.ledger import idempotency
from gateway.ledger.contract import Principal
from gateway.ledger.events import dialect_ids, event_json, moment, payment_json
from gateway.observability import metrics, trace
from gateway.observability.logs import event
from gateway.proxy.service import ProxyService
from gateway.serving import playground
from gateway.serving.http import read_body
from gateway.serving.state import GATEWAY, Gateway
from gateway.store import MAX_ID, BackendRef, KeyRecord, NewInvoice
from gateway.store.deliveries import (
    ACTIVE,
    DELIVERY_STATES,
    PENDING,
    RELAY,
    Delivery,
    Subscription,
    Track,
)

_KINDS = ("invoice", "payment")


def invoice_json(invoice: Invoice, today: date) -> dict[str, Any]:
    """The canonical invoice; its status as of `today` (the ledger's day)."""
    return {
        "id": invoice.id,
        "tenant": invoice.tenant,
        "number": invoice.number,
        "currency": invoice.currency,
        "total": str(invoice.total),
        "due_amount": str(invoice.due_amount),
        "status": invoice.status(today).value,
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "marked_paid": invoice.marked_paid,
        "customer": invoice.customer,
        "payments": [payment_json(p) for p in invoice.payments],
        "dialect_ids": dialect_ids(invoice.id),
    }


def canonical_error(error: GatewayError) -> Reply:
    """The canonical error object, with canonical field names."""
    return error_object(error, error.status, error.fields)


def _json_reply(data: object, status: int = 200) -> web.Response:
    return web.Response(body=json_dumps(data), status=status, content_type="application/json")


def _gateway(request: web.Request) -> Gateway:
    trace.note(dialect="admin")
    gateway = request.app[GATEWAY]
    gateway.auth.admin(request.headers.get("Authorization"))
    return gateway


# An invoice number: text a caller can name it by (dialects whose payments name their
# invoice by number read no other) and a store can hold: no control character, lone
# surrogate (PostgreSQL refuses one) or non-character.
NUMBER = r"[^\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]{1,64}"


def _new_invoice(gateway: Gateway, body: Any) -> NewInvoice:
    if not isinstance(body, dict):
        raise ValidationFailed("Expected a JSON object")
    problems: dict[str, str] = {}

    def field(name: str, parse: Any) -> Any:
        if body.get(name) is None:
            problems[name] = "can't be blank"
            return None
        try:
            return parse(body[name])
        except (ValueProblem, TypeError) as exc:
            problems[name] = str(exc) or "is invalid"
            return None

    tenant = field("tenant", _known_tenant(gateway))
    number = field("number", _text(NUMBER, "must be 1-64 characters"))
    currency = field("currency", _text(r"[A-Z]{3}", "must be an ISO 4217 code"))
    total = field("total", parse_amount)
    issued_on = field("issued_on", parse_date)
    due_on = field("due_on", parse_date)
    draft = bool(body.get("draft", False))
    backend_id = None
    if body.get("backend_invoice_id") is not None:
        backend_id = field("backend_invoice_id", _text(NUMBER, "must be 1-64 characters"))
        if tenant is not None and gateway.config.tenants[tenant].relay is None:
            problems["backend_invoice_id"] = "is taken for a relay tenant's invoices only"
    customer = None
    if body.get("customer") is not None:
        customer = field("customer", _text(NUMBER, "must be 1-64 characters"))
    if total is not None and total <= 0:
        problems["total"] = "must be greater than 0"
    if total is not None and currency and total != total.quantize(_step(currency)):
        problems["total"] = f"must have at most {currency_exponent(currency)} decimal places"
    if issued_on and due_on and due_on < issued_on:
        problems["due_on"] = "must not be before issued_on"
    if problems:
        raise ValidationFailed(fields=problems)
    return NewInvoice(
        tenant, number, currency, total, issued_on, due_on, draft, backend_id, customer
    )


def _step(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def _known_tenant(gateway: Gateway) -> Any:
    def parse(value: object) -> str:
        if not isinstance(value, str) or value not in gateway.config.tenants:
            raise ValueProblem("is not a configured tenant")
        return value

    return parse


def _text(pattern: str, message: str) -> Any:
    def parse(value: object) -> str:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueProblem(message)
        return value

    return parse


async def create_invoice(request: web.Request) -> web.Response:
    """Create an invoice in a ledger-mode tenant."""
    gateway = _gateway(request)
    server = gateway.config.server
    body = json_loads(await read_body(request, server.max_body_bytes, server.read_timeout_seconds))
    new = _new_invoice(gateway, body)
    if new.tenant in gateway.proxies:
        problem = "is served by its backend; invoices are created there"
        raise ValidationFailed(fields={"tenant": problem})
    invoice = await gateway.store.create_invoice(new)
    return _json_reply(invoice_json(invoice, gateway.ledger.today()), status=201)


def _number(text: str) -> int:
    number = ascii_number(text)
    if number is None or text.startswith("0"):
        raise NotFound("Not found")
    return number


async def get_invoice(request: web.Request) -> web.Response:
    """An invoice with its payments, due amount and status."""
    gateway = _gateway(request)
    invoice_id = _number(request.match_info["id"])
    tenant = await gateway.store.owner("invoice", invoice_id)
    invoice = (
        await gateway.store.invoice(tenant, invoice_id, with_payments=True) if tenant else None
    )
    if invoice is None:
        raise NotFound("Invoice not found")
    return _json_reply(invoice_json(invoice, gateway.ledger.today()))


async def _stored_payment(gateway: Gateway, payment_id: int) -> tuple[str, Payment]:
    """A live payment's tenant and the payment (404 if there is none)."""
    tenant = await gateway.store.owner("payment", payment_id)
    payment = await gateway.store.payment(tenant, payment_id) if tenant else None
    if payment is None or tenant is None:
        raise NotFound("Payment not found")
    return tenant, payment


def _etag(payment: Payment) -> dict[str, str]:
    return {"ETag": f'"{payment.version}"'}


async def get_payment(request: web.Request) -> web.Response:
    """A payment in canonical form, with its id in every dialect and the live allocations
    of the whole payment it belongs to; its version as the ETag."""
    gateway = _gateway(request)
    payment_id = _number(request.match_info["id"])
    tenant, payment = await _stored_payment(gateway, payment_id)
    group = payment.group_id if payment.group_id is not None else payment_id
    shown = payment_json(payment, await gateway.store.payments(tenant, group_ids=(group,)))
    relay = gateway.deliveries.relays.get(tenant)
    if relay is not None:
        await gateway.deliveries.fan_out(tenant, relay)  # a payment just made is owed too
        shown["relay"] = relay_json(await gateway.store.relay_tracks(tenant, payment_id))
    response = _json_reply(shown)
    response.headers.update(_etag(payment))
    return response


class PreconditionFailed(GatewayError):
    """An `If-Match` naming another version than the payment's."""

    kind, status, default_message = "precondition_failed", 412, "Precondition failed"


def _if_match(request: web.Request) -> int | None:
    """The version an `If-Match` header names (None: no header, or `*`); a header naming
    no version this API gives matches none (412)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    for tag in tags:
        match = re.fullmatch(r'"(0|[1-9][0-9]{0,17})"', tag)
        if match:
            return int(match.group(1))
    return -1  # no version is -1: a mismatch


async def delete_payment(request: web.Request) -> web.Response:
    """Delete a payment (one allocation of a payment split across invoices: the rest of
    it stays, at its next version); with `If-Match`, only at that version (else 412)."""
    gateway = _gateway(request)
    payment_id = _number(request.match_info["id"])
    tenant, payment = await _stored_payment(gateway, payment_id)
    if tenant in gateway.proxies:
        raise NotFound("Payment not found")
    who = Principal(tenant, "admin", "admin")
    try:
        await gateway.ledger.delete_payment(who, payment_id, version=_if_match(request))
    except StaleVersion as stale:
        raise PreconditionFailed(
            f"If-Match does not name the payment's version ({stale.message})",
            fields={"If-Match": "does not match the payment's ETag"},
        ) from stale
    return web.Response(status=204)


def relay_json(tracks: list[Track]) -> dict[str, Any] | None:
    """Where a relayed payment stands at the backend: its latest delivery (its delete once
    there is one, else its create), with the backend id its create was given."""
    if not tracks:
        return None  # made before the tenant's relay was configured
    latest = tracks[-1]
    return {
        "state": latest.state,
        "backend_id": tracks[0].backend_id,
        "attempts": latest.attempts,
        "last_error": latest.last_error,
    }


async def lookup_ids(request: web.Request) -> web.Response:
    """The ids of one object in every dialect, from its id in one of them."""
    gateway = _gateway(request)
    kind = request.match_info["kind"]
    try:
        dialect = dialects.get(request.match_info["dialect"])
    except dialects.UnknownDialect as exc:
        raise NotFound(str(exc.args[0])) from exc
    if kind not in _KINDS:
        raise NotFound(f"No such kind {kind!r}: use invoice or payment")
    tenant = request.query.get("tenant")
    proxy = gateway.proxies.get(tenant) if tenant else None
    if proxy is not None:
        return _json_reply(await _proxied_ids(proxy, dialect, kind, request.match_info["id"]))
    number = dialect.parse_id(request.match_info["id"])
    held = number is not None and number <= MAX_ID
    owner = await gateway.store.owner(kind, number) if held and number else None
    if number is None or owner is None or (tenant and owner != tenant):
        raise NotFound(f"No {kind} with that id")
    return _json_reply({"dialect_ids": dialect_ids(number)})


async def _proxied_ids(
    proxy: ProxyService, dialect: Dialect, kind: str, wire_id: str
) -> dict[str, object]:
    """In proxy mode an id in the backend's own dialect is the backend's id; in any other
    dialect it is the id that dialect's callers use. The object must exist at the backend."""
    if dialect.name == proxy.dialect.name:
        ref: BackendRef | None = BackendRef(wire_id)
    else:
        number = dialect.parse_id(wire_id)
        ref = await proxy.ids.ref(kind, number) if number is not None else None
    if ref is None:
        raise NotFound(f"No {kind} with that id")
    await proxy.check(kind, ref)
    return {"dialect_ids": await proxy.callers_ids(kind, ref), "backend_id": ref.backend_id}


def key_json(record: KeyRecord) -> dict[str, Any]:
    """A key as an operator sees it: state, lease, expiry and the stored answer."""
    answer = None
    if record.answer is not None:
        try:
            body: str = record.answer.body.decode("utf-8")
        except UnicodeDecodeError:
            body = record.answer.body.hex()
        answer = {
            "status": record.answer.status,
            "headers": dict(record.answer.headers),
            "body": body,
        }
    return {
        "tenant": record.tenant,
        "key": record.key,
        "state": record.state.value,
        "fingerprint": record.fingerprint,
        "created_at": record.created_at.isoformat(),
        "lease_until": record.lease_until.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "answer": answer,
    }


async def get_key(request: web.Request) -> web.Response:
    """An Idempotency-Key's state and stored answer."""
    gateway = _gateway(request)
    tenant, key = _key_in_path(request)
    record = await gateway.store.key_record(tenant, key)
    if record is None:
        raise NotFound("No such Idempotency-Key")
    return _json_reply(key_json(record))


async def forget_key(request: web.Request) -> web.Response:
    """Resolve a held key (an unknown outcome, say) by forgetting it: the operator has
    checked the backend, and the client's next request with the key runs afresh."""
    gateway = _gateway(request)
    tenant, key = _key_in_path(request)
    if not await gateway.store.forget_key(tenant, key):
        raise NotFound("No such Idempotency-Key")
    return web.Response(status=204)


def _key_in_path(request: web.Request) -> tuple[str, str]:
    """The tenant and key a path names; none is held under text no key can be."""
    tenant, key = request.match_info["tenant"], request.match_info["key"]
    if not (idempotency.holdable(tenant) and idempotency.holdable(key)):
        raise NotFound("No such Idempotency-Key")
    return tenant, key


# The change feed: the events one page holds unless asked for fewer, and at most.
EVENTS_PAGE = 100
EVENTS_PAGE_MAX = 1000


async def list_events(request: web.Request) -> web.Response:
    """A tenant's events after a cursor, in sequence order: the change feed."""
    gateway = _gateway(request)
    query = request.query
    problems: dict[str, str] = {}
    tenant = query.get("tenant")
    if tenant is None or tenant not in gateway.config.tenants:
        problems["tenant"] = "is not a configured tenant"
    after = _whole(query.get("after"), "after", problems)
    limit = _whole(query.get("limit"), "limit", problems)
    if limit is not None and not 1 <= limit <= EVENTS_PAGE_MAX:
        problems["limit"] = f"must be from 1 to {EVENTS_PAGE_MAX}"
    if problems:
        raise ValidationFailed(fields=problems)
    assert tenant is not None
    page = await gateway.feed.page(tenant, after, limit or EVENTS_PAGE)
    events = [event_json(event) for event in page.events]
    last = page.events[-1].sequence if page.events else None
    cursor = last if last is not None else after if after is not None else page.purged_through
    return _json_reply({"events": events, "next": cursor})


# --- webhooks (gateway/events/webhooks.py) ----------------------------------------------

DELIVERIES_PAGE = 100


def _hook(gateway: Gateway, tenant: str, name: str | None = None) -> Webhook | None:
    """The configured tenant (404 if not) and its webhook `name` (404 if not)."""
    spec = gateway.config.tenants.get(tenant)
    if spec is None:
        raise NotFound("No such tenant")
    if name is None:
        return None
    for hook in spec.webhooks:
        if hook.name == name:
            return hook
    raise NotFound("No such webhook")


def _when(at: datetime | None) -> str | None:
    return None if at is None else moment(at)


def subscription_json(found: Subscription, hook: Webhook) -> dict[str, Any]:
    return {
        "name": found.name,
        "state": found.state,
        "format": hook.format,
        "events": list(hook.events),
        "last_success": _when(found.last_success),
        "last_failure": _when(found.last_failure),
        "backlog": found.backlog,
        "oldest_pending": _when(found.oldest_pending),
    }


def delivery_json(found: Delivery) -> dict[str, Any]:
    return {
        "event_id": found.event_id,
        "sequence": found.sequence,
        "type": found.type,
        "state": found.state,
        "attempts": found.attempts,
        "next_attempt": _when(found.next_at) if found.state == PENDING else None,
        "last_status": found.last_status,
        "last_error": found.last_error,
        "updated_at": _when(found.updated_at),
    }


async def list_webhooks(request: web.Request) -> web.Response:
    """A tenant's webhooks: each one's state, last success and failure, and backlog."""
    gateway = _gateway(request)
    tenant = request.match_info["tenant"]
    _hook(gateway, tenant)
    hooks = {hook.name: hook for hook in gateway.config.tenants[tenant].webhooks}
    stored = await gateway.store.webhooks(tenant)
    shown = [subscription_json(found, hooks[found.name]) for found in stored if found.name in hooks]
    return _json_reply({"webhooks": shown})


async def list_deliveries(request: web.Request) -> web.Response:
    """A webhook's deliveries in one state (pending, failed or delivered), newest first."""
    gateway = _gateway(request)
    tenant, name = request.match_info["tenant"], request.match_info["name"]
    _hook(gateway, tenant, name)
    state, limit = _state_page(request)
    found = await gateway.store.webhook_deliveries(tenant, name, state, limit)
    return _json_reply({"deliveries": [delivery_json(item) for item in found]})


def _state_page(request: web.Request) -> tuple[str, int]:
    """A deliveries list's `state` (default pending) and `limit`, checked."""
    problems: dict[str, str] = {}
    state = request.query.get("state", PENDING)
    if state not in DELIVERY_STATES:
        problems["state"] = f"must be one of {', '.join(DELIVERY_STATES)}"
    limit = _whole(request.query.get("limit"), "limit", problems)
    if limit is not None and not 1 <= limit <= EVENTS_PAGE_MAX:
        problems["limit"] = f"must be from 1 to {EVENTS_PAGE_MAX}"
    if problems:
        raise ValidationFailed(fields=problems)
    return state, limit or DELIVERIES_PAGE


async def replay_webhook(request: web.Request) -> web.Response:
    """Send a webhook's events again: every one kept after a sequence, or one event."""
    gateway = _gateway(request)
    tenant, name = request.match_info["tenant"], request.match_info["name"]
    hook = _hook(gateway, tenant, name)
    assert hook is not None
    server = gateway.config.server
    body = json_loads(await read_body(request, server.max_body_bytes, server.read_timeout_seconds))
    after = body.get("after") if isinstance(body, dict) else None
    event_id = body.get("event_id") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) not in ({"after"}, {"event_id"}):
        raise ValidationFailed("Give exactly one of after and event_id")
    if "after" in body and (
        isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_ID
    ):
        raise ValidationFailed(fields={"after": "must be a whole number, an event sequence"})
    if "event_id" in body and not (isinstance(event_id, str) and 0 < len(event_id) <= 64):
        raise ValidationFailed(fields={"event_id": "must be an event id"})
    now = gateway.deliveries.clock()
    count = await gateway.store.webhook_replay(
        tenant, name, hook.events, now, after=after, event_id=event_id
    )
    if event_id is not None and not count:
        raise NotFound("No such event for this webhook (of its types, and still kept)")
    return _json_reply({"replayed": count})


async def enable_webhook(request: web.Request) -> web.Response:
    """Make a webhook disabled by a 410 Gone active again: its pending deliveries resume."""
    gateway = _gateway(request)
    tenant, name = request.match_info["tenant"], request.match_info["name"]
    _hook(gateway, tenant, name)
    if not await gateway.store.webhook_enable(tenant, name):
        raise NotFound("No such webhook")
    return _json_reply({"name": name, "state": ACTIVE})


def _relay_tenant(gateway: Gateway, tenant: str) -> None:
    if tenant not in gateway.deliveries.relays:
        raise NotFound("No such relay tenant")


async def list_relay(request: web.Request) -> web.Response:
    """A relay tenant's forwards in one state (pending, failed or delivered), newest first."""
    gateway = _gateway(request)
    tenant = request.match_info["tenant"]
    _relay_tenant(gateway, tenant)
    state, limit = _state_page(request)
    found = await gateway.store.webhook_deliveries(tenant, RELAY, state, limit)
    shown = [
        delivery_json(item) | {"payment_id": item.payment_id, "backend_id": item.backend_id}
        for item in found
    ]
    return _json_reply({"relay": shown})


async def replay_relay(request: web.Request) -> web.Response:
    """Forward failed payments again (one, or every failed one) once their cause is fixed."""
    gateway = _gateway(request)
    tenant = request.match_info["tenant"]
    _relay_tenant(gateway, tenant)
    server = gateway.config.server
    body = json_loads(await read_body(request, server.max_body_bytes, server.read_timeout_seconds))
    if not isinstance(body, dict) or set(body) not in ({"payment_id"}, {"failed"}):
        raise ValidationFailed('Give exactly one of payment_id and "failed": "all"')
    payment_id = body.get("payment_id")
    if "payment_id" in body and (
        isinstance(payment_id, bool) or not isinstance(payment_id, int)
        or not 0 < payment_id <= MAX_ID
    ):  # fmt: skip
        raise ValidationFailed(fields={"payment_id": "must be a payment id"})
    if "failed" in body and body["failed"] != "all":
        raise ValidationFailed(fields={"failed": 'must be "all"'})
    now = gateway.deliveries.clock()
    count = await gateway.store.relay_replay(tenant, now, payment_id)
    return _json_reply({"replayed": count})


def _whole(text: str | None, name: str, problems: dict[str, str]) -> int | None:
    """A query parameter's whole number (None if absent); a problem noted if it is not one."""
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", text):
        problems[name] = "must be a whole number"
        return None
    return int(text)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Touches nothing else, so it stays cheap."""
    return _json_reply({"status": "ok"})


async def scrape(request: web.Request) -> web.Response:
    """`GET /metrics`: behind the admin token unless the config makes it public."""
    gateway = request.app[GATEWAY]
    if not gateway.config.metrics.enabled:
        raise NotFound("Metrics are disabled in the config")
    if not gateway.config.metrics.public:
        gateway.auth.admin(request.headers.get("Authorization"))
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            await gateway.deliveries.observe_lag()
    except Exception as exc:  # the other figures are still worth answering with
        reason = " ".join(str(exc).split()) or type(exc).__name__
        event("webhook_lag_unread", logging.WARNING, reason=reason)
    response = web.Response(body=metrics.exposition())
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response


_READY_TIMEOUT = 2.0


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 once the store answers a query, else 503; the status alone.

    With the admin token, the detail too: the reason, and each proxied backend's
    breaker (which names tenants and their dialects: no one else's business). A wrong
    token is refused (and counted) as the admin API refuses it."""
    gateway = request.app[GATEWAY]
    header = request.headers.get("Authorization")
    detailed = header is not None
    if detailed:
        gateway.auth.admin(header)
    backends = {
        tenant: {"dialect": proxy.dialect.name, "breaker": proxy.client.breaker.state}
        for tenant, proxy in sorted(gateway.proxies.items())
    }
    try:
        async with asyncio.timeout(_READY_TIMEOUT):
            await gateway.store.owner("invoice", 1)
    except Exception as exc:  # whatever the engine raises, the store is not answering
        reason = f"the store did not answer: {' '.join(str(exc).split()) or type(exc).__name__}"
        event("not_ready", logging.WARNING, reason=reason)
        if not detailed:
            return _json_reply({"status": "unavailable"}, 503)
        return _json_reply({"status": "unavailable", "reason": reason, "backends": backends}, 503)
    if not detailed:
        return _json_reply({"status": "ready"})
    return _json_reply({"status": "ready", "store": "ok", "backends": backends})


@dataclass(frozen=True)
class AdminRoute:
    """One endpoint of the admin API; `body` is the JSON schema of what it takes."""

    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    status: int = 200
    body: dict[str, Any] | None = None
    public: bool = False
    media: str = "application/json"


# What POST /gateway/v1/invoices takes (checked field by field in `_new_invoice`).
NEW_INVOICE: dict[str, Any] = {
    "type": "object",
    "required": ["tenant", "number", "currency", "total", "issued_on", "due_on"],
    "properties": {
        "tenant": {"type": "string"},
        "number": {"type": "string", "minLength": 1, "maxLength": 64},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "total": {"type": ["string", "number"]},
        "issued_on": {"type": "string", "format": "date"},
        "due_on": {"type": "string", "format": "date"},
        "draft": {"type": "boolean"},
        "backend_invoice_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "customer": {"type": "string", "minLength": 1, "maxLength": 64},
    },
}

# What POST /gateway/v1/relay/{tenant}/replay takes: one payment, or every failed one.
RELAY_REPLAY: dict[str, Any] = {
    "type": "object",
    "oneOf": [
        {
            "required": ["payment_id"],
            "properties": {"payment_id": {"type": "integer", "minimum": 1}},
            "additionalProperties": False,
        },
        {
            "required": ["failed"],
            "properties": {"failed": {"const": "all"}},
            "additionalProperties": False,
        },
    ],
}

# What POST /gateway/v1/webhooks/{tenant}/{name}/replay takes: one of the two.
REPLAY: dict[str, Any] = {
    "type": "object",
    "oneOf": [
        {
            "required": ["after"],
            "properties": {"after": {"type": "integer", "minimum": 0}},
            "additionalProperties": False,
        },
        {
            "required": ["event_id"],
            "properties": {"event_id": {"type": "string", "minLength": 1, "maxLength": 64}},
            "additionalProperties": False,
        },
    ],
}

ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("POST", "/gateway/v1/invoices", create_invoice, 201, NEW_INVOICE),
    AdminRoute("GET", "/gateway/v1/invoices/{id}", get_invoice),
    AdminRoute("GET", "/gateway/v1/payments/{id}", get_payment),
    AdminRoute("DELETE", "/gateway/v1/payments/{id}", delete_payment, 204),
    AdminRoute("GET", "/gateway/v1/ids/{dialect}/{kind}/{id}", lookup_ids),
    AdminRoute("GET", "/gateway/v1/idempotency/{tenant}/{key:.+}", get_key),
    AdminRoute("DELETE", "/gateway/v1/idempotency/{tenant}/{key:.+}", forget_key, 204),
    AdminRoute("GET", "/gateway/v1/events", list_events),
    AdminRoute("GET", "/gateway/v1/webhooks/{tenant}", list_webhooks),
    AdminRoute("GET", "/gateway/v1/webhooks/{tenant}/{name}/deliveries", list_deliveries),
    AdminRoute("POST", "/gateway/v1/webhooks/{tenant}/{name}/replay", replay_webhook, 200, REPLAY),
    AdminRoute("POST", "/gateway/v1/webhooks/{tenant}/{name}/enable", enable_webhook),
    AdminRoute("GET", "/gateway/v1/relay/{tenant}", list_relay),
    AdminRoute("POST", "/gateway/v1/relay/{tenant}/replay", replay_relay, 200, RELAY_REPLAY),
    AdminRoute("POST", playground.TRANSLATE, playground.translate, 200, playground.REQUEST, True),
    AdminRoute("GET", playground.PAGE, playground.page, public=True, media="text/html"),
    AdminRoute("GET", "/healthz", healthz, public=True),
    AdminRoute("GET", "/readyz", readyz, public=True),
    AdminRoute("GET", "/metrics", scrape, media="text/plain"),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
