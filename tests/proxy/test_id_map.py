"""The id map: a backend object keeps its caller-visible id across a proxy restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from ..http.server import Server
from ..support import ADMIN, basic
from .conftest import ProxyFactory
from .harness import LedgerBackend, caller_invoice, lookup, upstream, write_proxy_config

INVOILESS = {"api-key": "acme-invoiless"}


async def invoiless_ids(session: aiohttp.ClientSession, url: str) -> list[tuple[str, float]]:
    async with session.get(url, headers=INVOILESS) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = await response.json()
    return [(item["id"], item["amount"]) for item in items]


async def test_payment_keeps_its_caller_id_when_the_proxy_process_is_killed_and_restarted(
    backend: LedgerBackend, tmp_path: Path
) -> None:
    config = write_proxy_config(tmp_path, upstream("urlkey", backend.url))
    database, log = tmp_path / "proxy.db", tmp_path / "proxy.log"
    number = await backend.new_invoice()
    wire_invoice = f"{number:024x}"
    async with aiohttp.ClientSession() as session:
        first = Server(config, database, log)
        try:
            await first.ready(session)
            ids_url = f"{first.url}/gateway/v1/ids/urlkey/invoice/{wire_invoice}?tenant=acme"
            async with session.get(ids_url, headers=ADMIN) as response:
                assert response.status == 200, await response.text()
                invoice = (await response.json())["dialect_ids"]["invoiless"]
            async with session.post(
                f"{first.url}/v1/invoices/{invoice}/payments",
                data=b'{"amount": 10.5, "method": "Cash", "paidAt": "2026-11-20"}',
                headers={**INVOILESS, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 201, await response.text()
                through_proxy = (await response.json())["id"]
            # A payment the backend got directly, first seen by the proxy in a list.
            async with session.post(
                f"{backend.url}/invoices/{number}/payments",
                data=b"<payment><paid-at>2026-11-21</paid-at><amount>20</amount></payment>",
                headers={
                    **basic("acme@example.com", "acme-harvest"),
                    "Content-Type": "application/xml",
                },
            ) as response:
                assert response.status == 201, await response.text()
            before = await invoiless_ids(session, f"{first.url}/v1/invoices/{invoice}/payments")
        finally:
            first.kill()
            first.stop()

        second = Server(config, database, log)
        try:
            await second.ready(session)
            after = await invoiless_ids(session, f"{second.url}/v1/invoices/{invoice}/payments")
            async with session.get(
                f"{second.url}/v1/payments/{through_proxy}", headers=INVOILESS
            ) as response:
                assert response.status == 200, await response.text()
                one = await response.json()
            ids_url = f"{second.url}/gateway/v1/ids/urlkey/invoice/{wire_invoice}?tenant=acme"
            async with session.get(ids_url, headers=ADMIN) as response:
                again = (await response.json())["dialect_ids"]["invoiless"]
        finally:
            second.stop()

    assert before == [(through_proxy, 10.5), (before[1][0], 20)]
    assert before[1][0] not in (invoice, through_proxy)
    assert after == before
    assert (one["id"], one["invoice"], one["amount"]) == (through_proxy, invoice, 10.5)
    assert again == invoice


async def test_a_new_app_on_the_same_database_keeps_every_id(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    number = await backend.new_invoice()
    first = await make_proxy(upstream("fastbill", backend.url))
    invoice = await caller_invoice(first, "fastbill", number)
    created = await first.post(
        f"/v1/invoices/{invoice}/payments",
        data=b'{"amount": 1, "method": "Cash"}',
        headers={**INVOILESS, "Content-Type": "application/json"},
    )
    assert created.status == 201
    payment = (await created.json())["id"]
    await first.close()

    second = await make_proxy(upstream("fastbill", backend.url))
    found = await lookup(second, "invoiless", "payment", payment)
    listed = await second.get(f"/v1/invoices/{invoice}/payments", headers=INVOILESS)

    assert await caller_invoice(second, "fastbill", number) == invoice
    assert found["dialect_ids"]["invoiless"] == payment
    assert [item["id"] for item in await listed.json()] == [payment]
