"""The proxy's ids: the backend's own where the caller's form carries them, kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.proxy.idmap import MINTED

from ..clients import CLIENTS
from ..http.server import Server
from ..support import ADMIN, basic
from .conftest import ProxyFactory
from .fake import FakeBackend, status_answer, urlkey_backend
from .harness import (
    DIALECTS,
    LedgerBackend,
    caller_invoice,
    lookup,
    upstream,
    write_proxy_config,
)

pytestmark = pytest.mark.stores

INVOILESS = {"api-key": "acme-invoiless"}


async def invoiless_ids(session: aiohttp.ClientSession, url: str) -> list[tuple[str, float]]:
    async with session.get(url, headers=INVOILESS) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = await response.json()
    return [(item["id"], item["amount"]) for item in items]


async def test_payment_keeps_its_caller_id_when_the_proxy_process_is_killed_and_restarted(
    backend: LedgerBackend, tmp_path: Path, proxy_database: str
) -> None:
    config = write_proxy_config(tmp_path, upstream("urlkey", backend.url))
    database, log = proxy_database, tmp_path / "proxy.log"
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
    assert before[1][0] != through_proxy
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


@pytest.mark.parametrize("backend_dialect", DIALECTS)
@pytest.mark.parametrize("caller", DIALECTS)
async def test_a_caller_uses_the_backends_own_ids_with_no_set_up(
    caller: str, backend_dialect: str, backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream(backend_dialect, backend.url))
    number = await backend.new_invoice("100.00")
    client = CLIENTS[caller](proxy)

    created, payment = await client.create(number, "12.50")  # no admin call first

    assert created.status == client.support.create_status, created.body
    (stored,) = await backend.payments(number)
    assert payment == stored["id"]
    assert [view["id"] for view in await client.list(number)] == [stored["id"]]


async def test_an_unknown_invoice_is_asked_of_the_backend_and_is_404_in_the_callers_shape(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy = await make_proxy(upstream("invoiless", fake.url))
    fake.answer = status_answer(404)

    reply = await CLIENTS["harvest"](proxy).call("GET", "/invoices/424242/payments")

    assert fake.calls() == ["GET /v1/invoices/424242/payments"]
    assert reply.status == 404
    assert [child.text for child in reply.xml()] == ["Invoice not found"]


async def test_ids_a_callers_form_cannot_carry_are_minted_and_told_by_the_lookup(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """A real ObjectId (96 bits): a urlKey caller uses it as it is, a Harvest caller cannot."""
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url))
    object_id, payment_id = "65f1c0ffee00000000abcdef", "66c1f0e2a1b2c3d4e5f60718"

    as_urlkey = await CLIENTS["urlkey"](proxy).call(
        "GET", f"/businesses/acme-biz/invoices/{object_id}/payments"
    )
    found = await lookup(proxy, "urlkey", "invoice", object_id)
    minted = found["dialect_ids"]["harvest"]
    as_harvest = await CLIENTS["harvest"](proxy).list(minted)
    again = await lookup(proxy, "harvest", "invoice", minted)

    assert as_urlkey.status == 200, as_urlkey.body
    assert [item["_id"] for item in as_urlkey.json()["payments"]] == [payment_id]
    assert found["backend_id"] == object_id and found["dialect_ids"]["urlkey"] == object_id
    assert MINTED <= minted < 10**18 and found["dialect_ids"]["invoiless"] == str(minted)
    assert [MINTED <= view["id"] < 10**18 for view in as_harvest] == [True]
    assert again == found
