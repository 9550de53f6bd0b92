"""Proxy-mode harness: a ledger-mode gateway process as the backend, and proxy configs.

The backend is the gateway itself, started as `python -m gateway` on a free port with
tenant acme (tests.support.tenant_config) plus one app, `acme-signer`, that knows only
the public half of a key the proxy signs its own ES256 tokens with. The proxy runs in
process, with tenant acme's caller credentials and a `backend:` pointing there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import dialects
from dialects import testing
from gateway.config import Config

from ..conftest import Client
from ..http.server import Server
from ..registry import ALL
from ..support import ADMIN, make_config, tenant_config

DIALECTS = ALL
BACKEND_ADMIN = {"Authorization": "Bearer backend-admin-token"}

# The proxy's own ES256 key at the backend (app acme-signer), apart from support.APP_KEY.
SIGNER_KEY = ec.generate_private_key(ec.SECP256R1())
SIGNER_PRIVATE_PEM = SIGNER_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
SIGNER_PUBLIC_PEM = (
    SIGNER_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def upstream(dialect: str, url: str, **extra: Any) -> dict[str, Any]:
    """A `backend:` section for tenant acme: the dialect, the URL, acme's credentials."""
    return {"dialect": dialect, "url": url, **testing.support(dialect).backend("acme"), **extra}


def proxy_tenants(backend: dict[str, Any]) -> dict[str, Any]:
    """Tenant acme proxied to `backend`; tenant globex stays on the embedded ledger."""
    return {
        "acme": {**tenant_config("acme"), "backend": backend},
        "globex": tenant_config("globex"),
    }


def proxy_config(database: str, backend: dict[str, Any]) -> Config:
    return make_config(database, tenants=proxy_tenants(backend))


def write_proxy_config(directory: Path, backend: dict[str, Any]) -> Path:
    """A config file for a proxy gateway process (admin token as tests.support.ADMIN)."""
    raw = {
        "admin_token": ADMIN["Authorization"].removeprefix("Bearer "),
        "token_secret": "proxy-token-secret",
        "server": {"access_log": False},
        "tenants": proxy_tenants(backend),
    }
    path = directory / "proxy.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# --- the backend process ---------------------------------------------------------------


def write_backend_config(directory: Path) -> Path:
    tenant = tenant_config("acme")
    tenant["urlkey"]["apps"].append(
        {"app_id": "acme-signer", "name": "Proxy signer", "public_key": SIGNER_PUBLIC_PEM}
    )
    raw = {
        "admin_token": BACKEND_ADMIN["Authorization"].removeprefix("Bearer "),
        "token_secret": "backend-token-secret",
        "server": {"access_log": False},
        "tenants": {"acme": tenant},
    }
    path = directory / "backend.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def start_backend(directory: Path) -> Server:
    """A ledger-mode gateway process, answering /healthz (bounded wait) when returned."""
    config = write_backend_config(directory)
    return Server(config, directory / "backend.db", directory / "backend.log").wait_ready()


@dataclass
class LedgerBackend:
    """The backend process's admin API: invoices made there, payments read from there."""

    url: str
    session: aiohttp.ClientSession

    async def new_invoice(self, total: str = "1000.00", currency: str = "EUR") -> int:
        body = {
            "tenant": "acme",
            "number": f"B-{time.monotonic_ns()}",
            "currency": currency,
            "total": total,
            "issued_on": "2026-01-01",
            "due_on": "2999-12-31",
        }
        url = f"{self.url}/gateway/v1/invoices"
        async with self.session.post(url, json=body, headers=BACKEND_ADMIN) as response:
            assert response.status == 201, await response.text()
            created: dict[str, Any] = await response.json()
        number: int = created["id"]
        return number

    async def invoice(self, number: int) -> dict[str, Any]:
        url = f"{self.url}/gateway/v1/invoices/{number}"
        async with self.session.get(url, headers=BACKEND_ADMIN) as response:
            assert response.status == 200, await response.text()
            found: dict[str, Any] = await response.json()
        return found

    async def payments(self, number: int) -> list[dict[str, Any]]:
        """The invoice's live payments at the backend, as its admin API shows them."""
        found: list[dict[str, Any]] = (await self.invoice(number))["payments"]
        return found


HELD = (
    "tenant", "amount", "paid_at", "method", "origin", "notes", "reference", "tax_withheld",
    "fee", "recorded_by", "client_app", "notify_customer",
)  # fmt: skip


def held(payment: dict[str, Any]) -> dict[str, Any]:
    """What a backend payment holds, without its ids and clock times; money as Decimal."""
    found = {key: payment[key] for key in HELD}
    for money in ("amount", "tax_withheld", "fee"):
        found[money] = Decimal(found[money])
    return found


# --- the proxy's id map, through its admin API ----------------------------------------


async def lookup(proxy: Client, dialect: str, kind: str, wire_id: object) -> dict[str, Any]:
    url = f"/gateway/v1/ids/{dialect}/{kind}/{wire_id}?tenant=acme"
    response = await proxy.get(url, headers=ADMIN)
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def caller_invoice(proxy: Client, backend_dialect: str, backend_number: int) -> int:
    """The caller-visible (canonical) id of the backend's invoice `backend_number`."""
    wire = dialects.get(backend_dialect).wire_id(backend_number)
    found = await lookup(proxy, backend_dialect, "invoice", wire)
    assert found["backend_id"] == str(wire)
    number: int = found["dialect_ids"]["harvest"]
    return number


async def backend_id(proxy: Client, backend_dialect: str, kind: str, local: int) -> str:
    """The backend's id behind a caller-visible id.

    Asked in a dialect other than the backend's: in the backend's own dialect an id
    is read as the backend's id, in any other as the caller-visible one.
    """
    other = "fastbill" if backend_dialect == "harvest" else "harvest"
    found = await lookup(proxy, other, kind, local)
    assert found["dialect_ids"]["harvest"] == local
    value: str = found["backend_id"]
    return value
