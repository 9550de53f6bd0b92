"""Raw per-dialect requests for the HTTP tests: any body, any header, exact replies back."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from dialects import testing
from dialects.testing import decimal_json

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..registry import ALL
from ..support import ADMIN, hexid

DIALECTS = ALL
_NUMBERS = itertools.count(1)
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


async def make_invoice(
    client: Client,
    *,
    total: str = "1000.00",
    currency: str = "EUR",
    issued_on: str = "2026-01-01",
    due_on: str = "2999-12-31",
    tenant: str = "acme",
) -> int:
    """A new invoice through the admin API (any dates, unlike support.new_invoice)."""
    body = {
        "tenant": tenant,
        "number": f"INV-{next(_NUMBERS)}",
        "currency": currency,
        "total": total,
        "issued_on": issued_on,
        "due_on": due_on,
    }
    response = await client.post("/gateway/v1/invoices", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    number: int = created["id"]
    return number


async def state(client: Client, invoice_id: int) -> tuple[str, str, int]:
    """(due amount, status, live payment count) as the admin API shows the invoice."""
    response = await client.get(f"/gateway/v1/invoices/{invoice_id}", headers=ADMIN)
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data["due_amount"], data["status"], len(data["payments"])


async def call(
    client: Client,
    dialect: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request with the dialect's credentials for tenant acme."""
    return await CLIENTS[dialect](client).call(method, path, body, headers)


def json_body(fields: dict[str, Any]) -> bytes:
    """JSON text in which Decimal values are written as exact number literals."""
    return decimal_json(fields)


def xml_body(root: str, fields: dict[str, str]) -> bytes:
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f"<{root}>{inner}</{root}>".encode()


def urlkey_path(invoice_id: int) -> str:
    return f"/businesses/acme-biz/invoices/{hexid(invoice_id)}/payments"


def payment_request(
    dialect: str, invoice_id: int, amount: str, **extra: str
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of a POST recording `amount` in `dialect`'s own wire form."""
    request = testing.support(dialect).create("acme", invoice_id, amount, extra=extra)
    return request.path, request.body or b"", dict(request.headers)


async def pay(client: Client, dialect: str, invoice_id: int, amount: str, **extra: str) -> Reply:
    """Record `amount` on an invoice in `dialect`'s own wire form; `extra` adds wire fields."""
    path, body, headers = payment_request(dialect, invoice_id, amount, **extra)
    return await call(client, dialect, "POST", path, body, headers)


def exact(reply: Reply) -> Any:
    """A JSON reply with every number as an exact Decimal (no float in between)."""
    return json.loads(reply.body, parse_float=Decimal, parse_int=Decimal)


def payment_id(dialect: str, reply: Reply) -> int:
    """The canonical id of the payment a create reply carries."""
    return testing.support(dialect).created(reply.answer())


async def delete(client: Client, dialect: str, invoice_id: int, payment: int) -> Reply:
    request = testing.support(dialect).delete("acme", invoice_id, payment)
    assert request is not None, f"{dialect} has no delete"
    return await CLIENTS[dialect](client).send(request)


def error_messages(reply: Reply) -> list[str]:
    """The messages of a Rails `<errors>` document."""
    assert reply.body.startswith(DECLARATION), reply.body
    root = reply.xml()
    assert root.tag == "errors"
    return [child.text or "" for child in root]
