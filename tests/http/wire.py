"""Raw per-dialect requests for the HTTP tests: any body, any header, exact replies back."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..support import ADMIN, hexid

DIALECTS = ("fastbill", "harvest", "invoiless", "urlkey")
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
    numbers = {key: value for key, value in fields.items() if isinstance(value, Decimal)}
    plain = {key: value for key, value in fields.items() if key not in numbers}
    text = json.dumps(plain)
    extra = ", ".join(f"{json.dumps(key)}: {value}" for key, value in numbers.items())
    if extra:
        text = text[:-1] + (", " if plain else "") + extra + "}"
    return text.encode()


def xml_body(root: str, fields: dict[str, str]) -> bytes:
    inner = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f"<{root}>{inner}</{root}>".encode()


def urlkey_path(invoice_id: int) -> str:
    return f"/businesses/acme-biz/invoices/{hexid(invoice_id)}/payments"


def payment_request(
    dialect: str, invoice_id: int, amount: str, **extra: str
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of a POST recording `amount` in `dialect`'s own wire form."""
    if dialect == "harvest":
        fields = {"paid-at": "2026-11-20T00:00:00Z", "amount": amount, **extra}
        body = xml_body("payment", fields)
        return f"/invoices/{invoice_id}/payments", body, {"Content-Type": "application/xml"}
    if dialect == "fastbill":
        fields = {"invoice_id": str(invoice_id), "date": "2026-11-20", "amount": amount}
        body = xml_body("invoice-payment", {**fields, "type": "BANK_TRANSFER", **extra})
        return "/api/invoice-payments", body, {"Content-Type": "text/xml"}
    data: dict[str, Any] = {"amount": Decimal(amount)}
    if dialect == "invoiless":
        data.update({"method": "BankTransfer", "paidAt": "2026-11-20"})
        path = f"/v1/invoices/{invoice_id}/payments"
    else:
        data.update({"paymentDate": "2026-11-20T00:00:00.000Z", "paymentMethod": "UPI"})
        path = urlkey_path(invoice_id)
    data.update({key: Decimal(value) for key, value in extra.items()})
    return path, json_body(data), {"Content-Type": "application/json"}


async def pay(client: Client, dialect: str, invoice_id: int, amount: str, **extra: str) -> Reply:
    """Record `amount` on an invoice in `dialect`'s own wire form; `extra` adds fields."""
    path, body, headers = payment_request(dialect, invoice_id, amount, **extra)
    return await call(client, dialect, "POST", path, body, headers)


def exact(reply: Reply) -> Any:
    """A JSON reply with every number as an exact Decimal (no float in between)."""
    return json.loads(reply.body, parse_float=Decimal, parse_int=Decimal)


def payment_id(dialect: str, reply: Reply) -> int:
    """The canonical id of the payment a create reply carries."""
    if dialect in ("harvest", "fastbill"):
        return int(reply.xml().findtext("id") or "0")
    if dialect == "invoiless":
        return int(reply.json()["id"])
    return int(reply.json()["_id"], 16)


async def delete(client: Client, dialect: str, invoice_id: int, payment: int) -> Reply:
    paths = {
        "harvest": f"/invoices/{invoice_id}/payments/{payment}",
        "fastbill": f"/api/invoice-payments/{payment}",
        "invoiless": f"/v1/payments/{payment}",
    }
    return await call(client, dialect, "DELETE", paths[dialect])


def error_messages(reply: Reply) -> list[str]:
    """The messages of a Rails `<errors>` document."""
    assert reply.body.startswith(DECLARATION), reply.body
    root = reply.xml()
    assert root.tag == "errors"
    return [child.text or "" for child in root]
