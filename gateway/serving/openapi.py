"""OpenAPI 3.1 documents: one per registered dialect and one for the admin API.

Nothing here is written out by hand. A dialect's paths, methods, statuses and
security come from its unit's route and auth declarations; its document, list
and error schemas from what its own codec writes for sample payments and errors
(so a codec change is a document change); the admin API's from its route table
and the functions that render its answers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from aiohttp import web

import dialects
from dialects import Dialect
from dialects import errors as gateway_errors
from dialects.errors import GatewayError, MethodNotAllowed, NotFound, ValidationFailed
from dialects.model import Facts, Invoice, InvoiceFacts, InvoiceStatus, Method, Payment
from dialects.parsing import json_dumps, json_loads
from dialects.unit import ApiKeyAuth, BasicAuth, BearerAuth, Credential, DialectUnit, Op, Route
from gateway.config import Webhook
from gateway.ledger import events as shown
from gateway.ledger.events import CursorPurged
from gateway.serving import admin
from gateway.store.deliveries import Delivery, Subscription
from gateway.store.outbox import StoredEvent

Schema = dict[str, Any]
ADMIN = "admin"
_BODY_OPS = (Op.CREATE, Op.REPLACE, Op.PATCH, Op.WRITE)
_MEDIA = {"json": "application/json", "xml": "application/xml"}
_MOMENT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


# --- schemas inferred from what the code writes -----------------------------------------


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def infer(*samples: Any) -> Schema:
    """The narrowest schema every sample fits: types, object keys always present, items."""
    types = sorted({_type(s) for s in samples})
    schema: Schema = {"type": types[0] if len(types) == 1 else types}
    objects = [s for s in samples if isinstance(s, dict)]
    if objects:
        keys = list(dict.fromkeys(k for o in objects for k in o))
        schema["properties"] = {k: infer(*(o[k] for o in objects if k in o)) for k in keys}
        schema["required"] = [k for k in keys if all(k in o for o in objects)]
    items = [item for s in samples if isinstance(s, list) for item in s]
    if any(isinstance(s, list) for s in samples):
        schema["items"] = infer(*items) if items else {}
    return schema


def _payments() -> tuple[Payment, Payment]:
    """A payment with every field set, and one with none but the amount."""
    full = Payment(
        id=7, tenant="acme", invoice_id=3, amount=Decimal("1250.50"), paid_at=_MOMENT,
        method=Method.BANK_TRANSFER, notes="Wire", reference="REF-1",
        tax_withheld=Decimal("1.00"), fee=Decimal("0.50"), recorded_by="Owner",
        recorded_by_email="owner@example.com", client_app="app", notify_customer=True,
        created_at=_MOMENT, updated_at=_MOMENT, account_code="090",
    )  # fmt: skip
    return full, Payment(amount=Decimal("3"))


# What an answer may tell beside the full payment (a dialect that shows facts shows them).
_FACTS = Facts(
    {3: InvoiceFacts("INV-3", "EUR", Decimal("249.50"), InvoiceStatus.PARTIAL)}, {"090": "Bank"}
)


def _errors() -> list[GatewayError]:
    """One of each error the gateway raises, and one naming a field."""
    # Two field maps with different keys: a map of fields is keyed by whichever failed.
    found: list[GatewayError] = [
        ValidationFailed(fields={"amount": "is not a number"}),
        ValidationFailed(fields={"paid_at": "is not a date"}),
    ]
    classes: list[type[GatewayError]] = [GatewayError]
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        if cls is MethodNotAllowed:
            found.append(MethodNotAllowed(allow=("GET",)))
        elif cls.__module__ == gateway_errors.__name__:
            found.append(cls(retry_after=1))
    return found


def _error_responses(render: Any) -> dict[str, Any]:
    """Each status an error can have, with the schema of what is rendered for it."""
    by_status: dict[int, list[Any]] = {}
    texts: dict[int, str] = {}
    for error in _errors():
        status, body, *media = render(error)
        if media and "json" not in media[0]:  # an error in a type of its own (plain text)
            texts[status] = media[0].split(";")[0]
            continue
        by_status.setdefault(status, []).append(json_loads(body))
    found = {
        status: {"application/json": {"schema": infer(*bodies)}}
        for status, bodies in by_status.items()
    }
    for status, media_type in texts.items():
        found.setdefault(status, {})[media_type] = {"schema": {"type": "string"}}
    return {
        str(status): {"description": "An error", "content": content}
        for status, content in sorted(found.items())
    }


# --- a dialect ---------------------------------------------------------------------------


def _security(unit: DialectUnit) -> tuple[Schema, list[Schema]]:
    auth = unit.caller_auth
    if isinstance(auth, BasicAuth):
        scheme: Schema = {"type": "http", "scheme": "basic"}
    elif isinstance(auth, ApiKeyAuth):
        scheme = {"type": "apiKey", "in": "header", "name": auth.header}
    else:
        scheme = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    extra: list[Schema] = []
    if isinstance(auth, ApiKeyAuth) and auth.scope_header:
        extra.append({"name": auth.scope_header, "in": "header", "schema": {"type": "string"}})
    if isinstance(auth, BearerAuth) and auth.scope[0] == "header":
        extra.append(
            {"name": auth.scope[1], "in": "header", "required": True, "schema": {"type": "string"}}
        )
    return scheme, extra


def path_of(route_path: str) -> str:
    """aiohttp's `{name:regex}` as OpenAPI's `{name}`."""
    return re.sub(r"\{(\w+)(?::[^{}]*(?:\{[^{}]*\}[^{}]*)*)?\}", r"{\1}", route_path)


def _parameters(route: Route, extra: list[Schema]) -> list[Schema]:
    names = re.findall(r"\{(\w+)", route.path)
    found: list[Schema] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]
    if route.op is Op.LIST and "invoice_id" not in names:
        found.append(
            {"name": "invoice_id", "in": "query", "required": True, "schema": {"type": "string"}}
        )
    if route.query_body is not None and route.method == "GET":
        found.append({"name": route.query_body, "in": "query", "schema": {"type": "string"}})
    return found + extra


def _content(codec: Dialect, schemas: dict[str, Schema]) -> dict[str, Any]:
    return {_MEDIA[f]: {"schema": schemas[f]} if f in schemas else {} for f in codec.formats}


def _operation(unit: DialectUnit, route: Route, extra: list[Schema]) -> Schema:
    codec = unit.codec
    full, bare = _payments()
    encoded = (codec.codecs["json"].encode_payment(p, [], facts=_FACTS) for p in (full, bare))
    one = infer(*(json_loads(answer) for answer in encoded))
    many = infer(json_loads(codec.codecs["json"].encode_payments([full, bare], [], facts=_FACTS)))
    body = {"json": many} if route.op in (Op.LIST, Op.SEARCH) else {"json": one}
    success: Schema = {"description": f"{route.op.value}: done"}
    if route.status != 204:
        success["content"] = _content(codec, body)
    operation: Schema = {
        "operationId": re.sub(r"\W+", "-", f"{unit.name} {route.method} {route.path}").strip("-"),
        "summary": f"{route.op.value.capitalize()} payments as {unit.name} does",
        "parameters": _parameters(route, extra),
        "responses": {
            str(route.status): success,
            **_error_responses(lambda e: _rendered(codec, e)),
        },
    }
    if route.op in _BODY_OPS:
        request = {**one, "required": []}
        operation["requestBody"] = {"required": True, "content": _content(codec, {"json": request})}
    return operation


def _rendered(codec: Dialect, error: GatewayError) -> tuple[int, bytes, str]:
    reply = codec.codecs["json"].encode_error(error)
    return reply.status, reply.body, reply.headers.get("Content-Type", "application/json")


def _token_path(unit: DialectUnit) -> Schema:
    endpoint = unit.token_endpoint
    assert endpoint is not None
    holder = Credential(secret=None, name="App", label="app", login="app-id", app="app-id")
    status, media, body = endpoint.answer("a.signed.token", holder, 3600)
    media_type = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
    return {
        "post": {
            "operationId": f"{unit.name}-token",
            "summary": "Trade an app's secret for an access token",
            "requestBody": {
                "required": True,
                "content": {media_type[endpoint.body_format]: {"schema": {"type": "object"}}},
            },
            "responses": {
                str(status): {
                    "description": "An access token",
                    "content": {media.split(";")[0]: {"schema": infer(json_loads(body))}},
                },
                **_error_responses(lambda e: _rendered(unit.codec, e)),
            },
        }
    }


def dialect_document(unit: DialectUnit) -> Schema:
    scheme, extra = _security(unit)
    paths: dict[str, Schema] = {}
    for route in unit.routes:
        item = paths.setdefault(path_of(route.path), {})
        item.setdefault(route.method.lower(), _operation(unit, route, extra))
    if unit.token_endpoint is not None:
        paths[unit.token_endpoint.path] = _token_path(unit)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{unit.name} dialect", "version": _version()},
        "paths": paths,
        "components": {"securitySchemes": {unit.name: scheme}},
        "security": [{unit.name: []}] if unit.token_endpoint is None else [{unit.name: []}],
    }


# --- the admin API ------------------------------------------------------------------------


def _admin_answers() -> dict[str, Schema]:
    """What each admin handler answers, from the functions that render it."""
    full, bare = _payments()
    invoice = Invoice(
        id=3, tenant="acme", number="INV-1", currency="EUR", total=Decimal("100.00"),
        issued_on=date(2026, 1, 1), due_on=date(2026, 2, 1), payments=(full,),
        created_at=_MOMENT,
    )  # fmt: skip
    ids = {"dialect_ids": shown.dialect_ids(3)}
    return {
        "create_invoice": infer(admin.invoice_json(invoice, invoice.issued_on)),
        "get_invoice": infer(admin.invoice_json(invoice, invoice.issued_on)),
        "get_payment": infer(
            shown.payment_json(full), shown.payment_json(bare.model_copy(update={"id": 8}))
        ),
        "lookup_ids": infer(ids, {**ids, "backend_id": "b-1"}),
        "list_events": infer({"events": [shown.event_json(_event(full))], "next": 42}),
        **_webhook_answers(),
    }


def _webhook_answers() -> dict[str, Schema]:
    """What the webhook endpoints answer, rendered from made-up stored rows."""
    hook = Webhook(name="erp", url="https://erp.example.com/hooks", secret=_SECRET)
    once = Subscription("erp", "active", _MOMENT, None, 1, _MOMENT)
    never = Subscription("erp", "disabled", None, _MOMENT, 0, None)
    delivered = Delivery("evt_01M7YSMB78K048Z2KXG1ND9CAA", 42, "payment.created", "delivered",
                         1, _MOMENT, 204, None, _MOMENT)  # fmt: skip
    pending = Delivery("evt_01M7YSMB78K048Z2KXG1ND9CAB", 43, "payment.created", "pending",
                       2, _MOMENT, None, "no answer within 10 s", _MOMENT)  # fmt: skip
    subscriptions = [admin.subscription_json(s, hook) for s in (once, never)]
    return {
        "list_webhooks": infer({"webhooks": subscriptions}),
        "list_deliveries": infer(
            {"deliveries": [admin.delivery_json(d) for d in (delivered, pending)]}
        ),
        "replay_webhook": infer({"replayed": 3}),
        "enable_webhook": infer({"name": "erp", "state": "active"}),
    }


# A made-up webhook secret: 24 zero bytes.
_SECRET = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _event(payment: Payment) -> StoredEvent:
    """An event as the change feed shows one."""
    facts = {"id": 3, "number": "INV-1", "due_amount": "249.50", "status": "partial"}
    data = {"payment": payment.model_dump(mode="json"), "invoice": facts}
    return StoredEvent(
        "evt_01M7YSMB78K048Z2KXG1ND9CAA", "acme", 42, "payment.created", _MOMENT, data
    )


def admin_document() -> Schema:
    answers = _admin_answers()
    errors = _error_responses(_admin_rendered)
    paths: dict[str, Schema] = {}
    for route in admin.ROUTES:
        operation: Schema = {
            "operationId": route.handler.__name__,
            "summary": (route.handler.__doc__ or route.handler.__name__).splitlines()[0],
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"\{(\w+)", route.path)
            ],
            "responses": {**errors, **_admin_success(route, answers)},
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": route.body}},
            }
        if not route.public:
            operation["security"] = [{"admin": []}]
        paths.setdefault(path_of(route.path), {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gateway admin API", "version": _version()},
        "paths": paths,
        "components": {"securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}}},
    }


def _admin_success(route: admin.AdminRoute, answers: dict[str, Schema]) -> dict[str, Any]:
    done: Schema = {"description": "Done"}
    if route.status == 204:
        return {"204": done}
    if route.media != "application/json":
        done["content"] = {route.media: {"schema": {"type": "string"}}}
        return {str(route.status): done}
    answer = answers.get(route.handler.__name__, {"type": "object"})
    done["content"] = {"application/json": {"schema": answer}}
    found = {str(route.status): done}
    if route.handler is admin.readyz:  # not ready: its own shape, with the reason
        found["503"] = {"description": "Not ready", "content": done["content"]}
    if route.handler is admin.list_events:  # a cursor older than the events kept
        gone = _admin_rendered(CursorPurged(41))[1]
        found["410"] = {
            "description": "Events after the cursor were purged",
            "content": {"application/json": {"schema": infer(json_loads(gone))}},
        }
    return found


def _admin_rendered(error: GatewayError) -> tuple[int, bytes]:
    reply = admin.canonical_error(error)
    return reply.status, reply.body


def _version() -> str:
    from importlib.metadata import version

    return version("invoice-payments-gateway")


@cache
def rendered(name: str) -> bytes:
    """The document called `name` (a dialect, or `admin`), as JSON."""
    if name == ADMIN:
        return json_dumps(admin_document())
    return json_dumps(dialect_document(dialects.unit(name)))


def names() -> list[str]:
    return [*dialects.units(), ADMIN]


async def serve(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in names():
        raise NotFound(f"No API document {name!r}; there are {', '.join(names())}")
    return web.Response(body=rendered(name), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/gateway/v1/openapi/{name}.json", serve)
