"""The data and requests the wrk suite sends: invoices, payments, each dialect's calls."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from benchmarks.harness import ADMIN
from benchmarks.wrk import Scenario

BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench@example.com:bench").decode()}
API_KEY = {"api-key": "bench-key"}
INVOILESS_BODY = json.dumps({"amount": 1.25, "method": "Card", "notes": "bench"}).encode()
HARVEST_BODY = (
    b'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
    b'<amount type="decimal">1.25</amount><notes>bench</notes></payment>'
)
BARE_BODY = json.dumps({"amount": 1.25, "method": "Card", "notes": "bench"}).encode()


@dataclass(frozen=True)
class Invoice:
    """One invoice as each dialect names it (`dialect_ids` of the admin API)."""

    ids: dict[str, Any]

    def wire(self, dialect: str) -> str:
        return str(self.ids[dialect])


async def invoices(base: str, prefix: str, count: int, tenant: str = "bench") -> list[Invoice]:
    """`count` invoices of `tenant` large enough never to fill up."""
    found = []
    async with aiohttp.ClientSession() as session:
        for number in range(count):
            body = {
                "tenant": tenant, "number": f"{prefix}-{number}", "currency": "EUR",
                "total": "99999999999.00", "issued_on": "2026-01-01", "due_on": "2999-12-31",
            }  # fmt: skip
            url = f"{base}/gateway/v1/invoices"
            async with session.post(url, json=body, headers=ADMIN) as response:
                assert response.status == 201, await response.text()
                found.append(Invoice((await response.json())["dialect_ids"]))
    return found


async def pay(base: str, invoice: Invoice, count: int, parallel: int = 16) -> list[str]:
    """`count` Invoiless payments on `invoice`; their Invoiless ids."""
    url = f"{base}/v1/invoices/{invoice.wire('invoiless')}/payments"
    headers = {**API_KEY, "Content-Type": "application/json"}
    ids: list[str] = []
    numbers = iter(range(count))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for _ in numbers:
                async with session.post(url, data=INVOILESS_BODY, headers=headers) as response:
                    assert response.status == 201, await response.text()
                    ids.append((await response.json())["id"])

        await asyncio.gather(*(worker() for _ in range(parallel)))
    return ids


async def urlkey_token(base: str) -> str:
    body = {"strategy": "app-secret", "appId": "bench-app", "appSecret": "bench"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/authentication", json=body) as response:
            assert response.status == 201, await response.text()
            token: str = (await response.json())["accessToken"]
            return token


async def local_id(proxy: str, kind: str, backend_id: str) -> str:
    """The id a proxy's Invoiless caller uses for a backend object."""
    url = f"{proxy}/gateway/v1/ids/invoiless/{kind}/{backend_id}?tenant=bench"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=ADMIN) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["dialect_ids"]["invoiless"])


# --- scenarios ---------------------------------------------------------------------------


def bare_post(base: str) -> Scenario:
    return Scenario(base, ["/things"], "POST", BARE_BODY, {"Content-Type": "application/json"})


def bare_get(base: str) -> Scenario:
    return Scenario(base, ["/things/1"])


def floor_post(base: str) -> Scenario:
    headers = {**API_KEY, "Content-Type": "application/json"}
    return Scenario(base, ["/invoices/1/payments"], "POST", INVOILESS_BODY, headers)


def floor_get(base: str) -> Scenario:
    return Scenario(base, ["/payments/1"], headers=API_KEY)


def floor_relay(base: str, payment: str) -> Scenario:
    """Invoiless get one of a backend, relayed unchanged by the floor app."""
    return Scenario(base, [f"/relay/v1/payments/{payment}"], headers=API_KEY)


def invoiless_create(base: str, targets: list[Invoice]) -> Scenario:
    paths = [f"/v1/invoices/{i.wire('invoiless')}/payments" for i in targets]
    headers = {**API_KEY, "Content-Type": "application/json"}
    return Scenario(base, paths, "POST", INVOILESS_BODY, headers)


def harvest_create(base: str, targets: list[Invoice]) -> Scenario:
    paths = [f"/invoices/{i.wire('harvest')}/payments" for i in targets]
    headers = {**BASIC, "Content-Type": "application/xml"}
    return Scenario(base, paths, "POST", HARVEST_BODY, headers)


def invoiless_get(base: str, payment: str) -> Scenario:
    return Scenario(base, [f"/v1/payments/{payment}"], headers=API_KEY)


def listing(base: str, dialect: str, invoice: Invoice, token: str) -> Scenario:
    """One invoice's payments listed in `dialect`'s own default format."""
    wire = invoice.wire(dialect)
    if dialect == "harvest":
        return Scenario(base, [f"/invoices/{wire}/payments"], headers=BASIC)
    if dialect == "fastbill":
        return Scenario(base, [f"/api/invoice-payments?invoice_id={wire}"], headers=BASIC)
    if dialect == "invoiless":
        return Scenario(base, [f"/v1/invoices/{wire}/payments"], headers=API_KEY)
    if dialect == "urlkey":
        path = f"/businesses/bench/invoices/{wire}/payments"
        return Scenario(base, [path], headers={"Authorization": f"Bearer {token}"})
    raise KeyError(dialect)


LIST_DIALECTS = ("harvest", "fastbill", "invoiless", "urlkey")
