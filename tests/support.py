"""Test helpers: a two-tenant config with a section per registered dialect, and the admin API."""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

import dialects
from dialects import testing
from dialects.testing.urlkey import APP_KEY as APP_KEY
from dialects.testing.urlkey import APP_PUBLIC_PEM as APP_PUBLIC_PEM
from dialects.testing.urlkey import self_signed_token as self_signed_token
from gateway.config import Config, parse

ADMIN = {"Authorization": "Bearer test-admin-token"}


def tenant_config(name: str, *, rate_limit: dict[str, Any] | None = None) -> dict[str, Any]:
    """A section per registered dialect with plain secrets (`<tenant>-harvest` ...): no scrypt."""
    tenant: dict[str, Any] = {
        dialect: testing.support(dialect).section(name) for dialect in dialects.units()
    }
    tenant["accounts"] = [{"code": "090", "id": ACCOUNT_ID, "name": "Bank"}, {"code": "091"}]
    tenant["default_account"] = "090"
    if rate_limit:
        tenant["rate_limit"] = rate_limit
    return tenant


ACCOUNT_ID = "5690f1e8-1d02-4893-90c2-ee1a69eff942"


def secret_checks(metrics: str) -> dict[str, float]:
    """The secret checks a server has run, by form (`gateway_secret_checks_total{form=..}`),
    read from its /metrics text."""
    found = re.findall(r'^gateway_secret_checks_total\{form="(\w+)"\} (\S+)$', metrics, re.M)
    return {form: float(count) for form, count in found}


def make_config(database: str, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "database": database,
        "admin_token": "test-admin-token",
        "token_secret": "test-token-secret",
        "tenants": {"acme": tenant_config("acme"), "globex": tenant_config("globex")},
    }
    raw.update(overrides)
    return parse(raw)


def basic(user: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def new_invoice(
    client: TestClient[web.Request, web.Application],
    *,
    tenant: str = "acme",
    total: str = "1000.00",
    currency: str = "EUR",
    number: str | None = None,
    due_on: str = "2999-12-31",
) -> dict[str, Any]:
    body = {
        "tenant": tenant,
        "number": number or f"INV-{time.monotonic_ns()}",
        "currency": currency,
        "total": total,
        "issued_on": "2026-01-01",
        "due_on": due_on,
    }
    response = await client.post("/gateway/v1/invoices", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def invoice_state(client: TestClient, invoice_id: int) -> dict[str, Any]:  # type: ignore[type-arg]
    response = await client.get(f"/gateway/v1/invoices/{invoice_id}", headers=ADMIN)
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


@dataclass(frozen=True)
class Sent:
    """What a dialect client sent and got back, in canonical terms."""

    status: int
    payment_id: int | None
    body: bytes
    headers: dict[str, str]


def hexid(number: int) -> str:
    return f"{number:024x}"


def money(value: object) -> Decimal:
    return Decimal(str(value))
