"""Two gateway processes on one database: one ledger, whichever process a request meets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from ..clients import CLIENTS
from ..conftest import ENGINES
from ..http.processes import Payer, invoice_state, new_invoice, pay_all, speak, started
from ..http.server import Server, engine_database, write_config

pytestmark = pytest.mark.stores


@pytest.fixture(scope="module", params=ENGINES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    """Two gateway processes on one database of the engine, shared by the module's tests
    that only make requests (each on an invoice of its own)."""
    directory = tmp_path_factory.mktemp(f"shared-{request.param}")
    database, config = engine_database(request, directory, "ledger"), write_config(directory)
    one, other = (Server(config, database, directory / f"gateway-{n}.log") for n in range(2))
    try:
        yield one.wait_ready(), other.wait_ready()
    finally:
        one.stop()
        other.stop()


async def test_a_payment_written_through_one_process_reads_through_another_in_every_dialect(
    pair: tuple[Server, Server],
) -> None:
    one, other = pair
    async with aiohttp.ClientSession() as session:
        invoice = await new_invoice(session, one, "1000.00")
        for writer in sorted(CLIENTS):
            reply, payment = await speak(writer, session, one).create(invoice, "1.25", notes=writer)
            assert reply.status in (200, 201) and payment is not None, reply.body
            for reader in sorted(CLIENTS):
                got = await speak(reader, session, other).get(invoice, payment)
                assert got is not None, (writer, reader)
                assert (got["id"], got["amount"]) == (payment, Decimal("1.25")), (writer, reader)
        state = await invoice_state(session, other, invoice)
    assert Decimal(state["due_amount"]) == 1000 - Decimal("1.25") * len(CLIENTS)


async def test_concurrent_payments_through_two_processes_never_overpay_an_invoice(
    pair: tuple[Server, Server],
) -> None:
    servers = list(pair)
    async with aiohttp.ClientSession() as session:
        invoice = await new_invoice(session, servers[0], "1000.00")
        statuses = await pay_all(session, servers, invoice, 100)
        state = await invoice_state(session, servers[1], invoice)
    assert statuses.count(201) == 66 and statuses.count(422) == 34
    assert (state["due_amount"], state["status"]) == ("10.00", "partial")
    assert len(state["payments"]) == 66


async def test_a_process_killed_under_load_loses_no_acknowledged_payment(
    tmp_path: Path, database: str
) -> None:
    async with (
        started(tmp_path, write_config(tmp_path), database, 2) as (doomed, survivor),
        aiohttp.ClientSession() as session,
    ):
        payer = Payer(session, await new_invoice(session, survivor, "1000.00"))
        load = [asyncio.ensure_future(payer.pay((doomed, survivor)[i % 2])) for i in range(60)]
        await payer.first.wait()
        doomed.kill()
        during = await asyncio.gather(*load)
        after = await asyncio.gather(*(payer.pay(survivor) for _ in range(20)))
        state = await invoice_state(session, survivor, payer.invoice)
    assert all(after)  # the survivor kept serving
    payer.check(state["payments"], cut_off=during.count(False))
