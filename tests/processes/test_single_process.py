"""The real server process over the network, and a payment surviving kill -9."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from ..http.server import ADMIN_TOKEN, Server, running, write_config
from ..support import basic

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HARVEST = basic("acme@example.com", "acme-harvest")
INVOILESS = {"api-key": "acme-invoiless"}


async def new_invoice(session: aiohttp.ClientSession, server: Server, number: str) -> int:
    body = {
        "tenant": "acme",
        "number": number,
        "currency": "EUR",
        "total": "1000.00",
        "issued_on": "2026-01-01",
        "due_on": "2999-12-31",
    }
    async with session.post(f"{server.url}/gateway/v1/invoices", json=body, headers=ADMIN) as r:
        assert r.status == 201, await r.text()
        created: dict[str, Any] = await r.json()
    number_id: int = created["id"]
    return number_id


async def invoice_state(session: aiohttp.ClientSession, server: Server, invoice: int) -> Any:
    async with session.get(f"{server.url}/gateway/v1/invoices/{invoice}", headers=ADMIN) as r:
        assert r.status == 200
        return await r.json()


async def harvest_payment(
    session: aiohttp.ClientSession, server: Server, invoice: int, amount: str
) -> int:
    body = (
        '<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
        f'<amount type="decimal">{amount}</amount><notes>over the wire</notes></payment>'
    )
    async with session.post(
        f"{server.url}/invoices/{invoice}/payments",
        data=body.encode(),
        headers={**HARVEST, "Content-Type": "application/xml"},
    ) as r:
        text = await r.read()
        assert r.status == 201, text
        number = int(etree.fromstring(text).findtext("id") or "0")
        assert r.headers["Location"] == f"/invoices/{invoice}/payments/{number}"
    return number


async def test_server_process_serves_two_dialects_over_the_network(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "server.log") as server:
        async with aiohttp.ClientSession() as session:
            await server.ready(session)
            invoice = await new_invoice(session, server, "NET-1")

            number = await harvest_payment(session, server, invoice, "250.5")

            async with session.get(f"{server.url}/v1/payments/{number}", headers=INVOILESS) as r:
                assert r.status == 200
                assert r.headers["Content-Type"] == "application/json; charset=utf-8"
                payment = await r.json()
            assert (payment["id"], payment["invoice"], payment["amount"]) == (
                str(number),
                str(invoice),
                250.5,
            )
            assert (payment["notes"], payment["paidAt"]) == ("over the wire", "2026-11-20")

            async with session.get(f"{server.url}/v1/invoices/{invoice}/payments") as r:
                assert r.status == 401

            state = await invoice_state(session, server, invoice)
            assert (state["due_amount"], state["status"]) == ("749.50", "partial")


async def test_a_recorded_payment_survives_kill_9(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    database = tmp_path / "x.db"
    log = tmp_path / "server.log"
    async with aiohttp.ClientSession() as session:
        with running(config, database, log) as first:
            await first.ready(session)
            invoice = await new_invoice(session, first, "KILL-1")
            number = await harvest_payment(session, first, invoice, "400")
            first.kill()
            assert first.process.returncode == -9

        with running(config, database, log) as second:
            await second.ready(session)
            async with session.get(f"{second.url}/v1/payments/{number}", headers=INVOILESS) as r:
                assert r.status == 200, await r.text()
                payment = await r.json()
            assert (payment["id"], payment["amount"], payment["notes"]) == (
                str(number),
                400,
                "over the wire",
            )
            state = await invoice_state(session, second, invoice)
            assert (state["due_amount"], state["status"]) == ("600.00", "partial")
            assert [p["id"] for p in state["payments"]] == [number]
