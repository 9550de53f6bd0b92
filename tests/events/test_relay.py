"""Relay: a ledger tenant's payments forwarded to a backend, over HTTP, on both stores.

The backend is a real second gateway (ledger mode, `tests.proxy.harness`), spoken to in
each registered dialect in turn. The relaying gateway runs in process with its clock
moved by the test and its deliveries stepped (`gateway.deliveries.step()`), so a retry
is tried exactly when due.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

import dialects
from dialects.unit import DialectUnit
from gateway.config import DEFAULT_RETRY_SCHEDULE, ConfigError, parse
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY, Gateway

from ..clients import CLIENTS
from ..conftest import AiohttpClient, Client
from ..http.server import Server, free_port
from ..proxy.harness import LedgerBackend, upstream, write_backend_config
from ..registry import deletes, names
from ..support import ADMIN, make_config, tenant_config
from .test_webhooks import Clock

pytestmark = pytest.mark.stores  # SQLite, then PostgreSQL


def keyed(unit: DialectUnit) -> bool:
    """The backend's dialect takes an idempotency key."""
    return unit.idempotency_header is not None


def keyless(unit: DialectUnit) -> bool:
    return unit.idempotency_header is None


CALLER = names(deletes)[0]  # the dialect payments are made (and deleted) in
BACKENDS = names()
# One backend dialect that takes idempotency keys, one that does not.
KEYED_AND_NOT = [names(keyed)[0], names(keyless)[0]]


Start = Callable[..., Awaitable[tuple[Client, Gateway, Clock]]]


@pytest.fixture
def start(aiohttp_client: AiohttpClient, database: str) -> Start:
    """The relaying gateway: tenant acme relays to `url` in `dialect`; globex does not."""

    async def make(dialect: str, url: str, **relay: Any) -> tuple[Client, Gateway, Clock]:
        spec = upstream(dialect, url, retries=0, retry_schedule=[1, 1, 1], **relay)
        tenants = {
            "acme": tenant_config("acme") | {"relay": spec},
            "globex": tenant_config("globex"),
        }
        clock = Clock()
        app = create_app(make_config(database, tenants=tenants), clock=clock, deliver=False)
        client = await aiohttp_client(app)
        return client, client.app[GATEWAY], clock

    return make


async def ledger_invoice(client: Client, backend_dialect: str, backend_number: int) -> int:
    """A relay invoice of 1000.00 naming the backend's invoice `backend_number`."""
    wire = dialects.get(backend_dialect).wire_id(backend_number)
    body = {
        "tenant": "acme", "number": f"R-{datetime.now(UTC).timestamp()}", "currency": "EUR",
        "total": "1000.00", "issued_on": "2026-01-01", "due_on": "2999-12-31",
        "backend_invoice_id": str(wire),
    }  # fmt: skip
    response = await client.post("/gateway/v1/invoices", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    number: int = (await response.json())["id"]
    return number


async def pay(client: Client, invoice: int, amount: str = "40.00") -> int:
    """A payment made by a caller; its id (the answer came without waiting for the backend)."""
    reply, _ = await CLIENTS[CALLER](client).create(invoice, amount, notes="relayed")
    assert reply.status == 201, reply.body
    response = await client.get(f"/gateway/v1/invoices/{invoice}", headers=ADMIN)
    number: int = (await response.json())["payments"][-1]["id"]
    return number


async def relay_of(client: Client, payment: int) -> dict[str, Any]:
    response = await client.get(f"/gateway/v1/payments/{payment}", headers=ADMIN)
    assert response.status == 200, await response.text()
    found: dict[str, Any] = (await response.json())["relay"]
    return found


async def listed(client: Client, state: str) -> list[dict[str, Any]]:
    response = await client.get(f"/gateway/v1/relay/acme?state={state}", headers=ADMIN)
    assert response.status == 200, await response.text()
    found: list[dict[str, Any]] = (await response.json())["relay"]
    return found


async def settle(client: Client, gateway: Gateway, clock: Clock, passes: int = 10) -> None:
    """Step the deliveries, the clock past each retry, until none is pending (bounded)."""
    for _ in range(passes):
        await gateway.deliveries.step()
        if not await listed(client, "pending"):
            return
        clock.move(2)
    raise AssertionError(f"still pending: {await listed(client, 'pending')}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def amounts(payments: list[dict[str, Any]]) -> list[Decimal]:
    return sorted(Decimal(payment["amount"]) for payment in payments)


# --- configuration ---------------------------------------------------------------------


def relay_config(**tenant: Any) -> Any:
    return parse({"admin_token": "t", "token_secret": "s",
                  "tenants": {"acme": tenant_config("acme") | tenant}})  # fmt: skip


def test_a_relay_takes_the_backend_keys_and_a_webhook_retry_schedule() -> None:
    spec = upstream(BACKENDS[0], "http://backend.example")
    relay = relay_config(relay=spec).tenants["acme"].relay
    assert relay is not None
    assert relay.retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert relay.dialect == BACKENDS[0]
    with pytest.raises(ConfigError, match="exclude each other"):
        relay_config(relay=spec, backend=spec)
    with pytest.raises(ConfigError, match="retry_schedule"):
        relay_config(relay=spec | {"retry_schedule": []})


async def test_backend_invoice_id_is_taken_for_relay_tenants_only(
    start: Start, backend_process: Server
) -> None:
    client, _, _ = await start(BACKENDS[0], backend_process.url)
    body = {"tenant": "globex", "number": "G-1", "currency": "EUR", "total": "10.00",
            "issued_on": "2026-01-01", "due_on": "2026-02-01", "backend_invoice_id": "7"}  # fmt: skip
    response = await client.post("/gateway/v1/invoices", json=body, headers=ADMIN)
    assert response.status == 422, await response.text()
    assert "backend_invoice_id" in (await response.json())["error"]["fields"]


# --- forwarding ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", BACKENDS)
async def test_each_payment_reaches_the_backend_once_and_its_delete_follows(
    start: Start, backend: LedgerBackend, dialect: str
) -> None:
    client, gateway, clock = await start(dialect, backend.url)
    number = await backend.new_invoice()
    invoice = await ledger_invoice(client, dialect, number)
    payment = await pay(client, invoice)
    assert await relay_of(client, payment) == {
        "state": "pending", "backend_id": None, "attempts": 0, "last_error": None,
    }  # fmt: skip

    await settle(client, gateway, clock)
    at_backend = await backend.payments(number)
    assert amounts(at_backend) == [Decimal("40.00")]
    shown = await relay_of(client, payment)
    assert (shown["state"], shown["attempts"]) == ("delivered", 1), shown
    assert shown["backend_id"] == str(at_backend[0]["dialect_ids"][dialect])
    clock.move(3600)
    assert await gateway.deliveries.step() == 0  # nothing is sent twice
    assert len(await backend.payments(number)) == 1

    if not deletes(dialects.unit(dialect)):
        return
    deleted = await CLIENTS[CALLER](client).delete(invoice, payment)
    assert deleted.status < 300, deleted.body
    await settle(client, gateway, clock)
    assert await backend.payments(number) == []
    delivered = await listed(client, "delivered")
    assert {item["type"] for item in delivered if item["payment_id"] == payment} == {
        "payment.created",
        "payment.deleted",
    }


@pytest.mark.parametrize("dialect", KEYED_AND_NOT)
async def test_a_payment_made_while_the_backend_is_down_is_delivered_once_it_is_up(
    start: Start, dialect: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client, gateway, clock = await start(dialect, f"http://127.0.0.1:{port}")
    invoice = await ledger_invoice(client, dialect, 1)  # the backend's first invoice
    payment = await pay(client, invoice)  # answered with the backend down
    retried = sample("gateway_relay_items_total", tenant="acme", outcome="retry")
    with caplog.at_level(logging.WARNING, logger="gateway"):
        await gateway.deliveries.step()
    shown = await relay_of(client, payment)
    assert (shown["state"], shown["attempts"]) == ("pending", 1), shown
    assert shown["last_error"]
    assert sample("gateway_relay_items_total", tenant="acme", outcome="retry") == retried + 1
    [failed] = [r for r in caplog.records if r.getMessage() == "relay_failed"]
    fields = failed.fields  # type: ignore[attr-defined]
    assert fields["event_id"].startswith("evt_") and fields["request_id"], fields
    assert fields["payment_id"] == payment

    config = write_backend_config(tmp_path)
    server = Server(config, tmp_path / "backend.db", tmp_path / "backend.log", port=port)
    try:
        server.wait_ready()
        async with aiohttp.ClientSession() as session:
            late = LedgerBackend(server.url, session)
            assert await late.new_invoice() == 1
            await settle(client, gateway, clock)
            assert amounts(await late.payments(1)) == [Decimal("40.00")]
            clock.move(3600)
            await gateway.deliveries.step()
            assert len(await late.payments(1)) == 1
    finally:
        server.stop()
    assert (await relay_of(client, payment))["state"] == "delivered"


async def test_a_refusal_fails_visibly_blocks_nothing_and_is_replayed_once_fixed(
    start: Start, backend: LedgerBackend
) -> None:
    dialect = KEYED_AND_NOT[1]
    client, gateway, clock = await start(dialect, backend.url)
    missing = await backend.new_invoice() + 2  # an invoice the backend does not have yet
    refused = await pay(client, await ledger_invoice(client, dialect, missing))
    number = await backend.new_invoice()
    behind = await pay(client, await ledger_invoice(client, dialect, number), "25.00")

    await settle(client, gateway, clock)
    shown = await relay_of(client, refused)
    assert (shown["state"], shown["attempts"], shown["backend_id"]) == ("failed", 1, None)
    assert "refused" in shown["last_error"]
    assert [item["payment_id"] for item in await listed(client, "failed")] == [refused]
    assert (await relay_of(client, behind))["state"] == "delivered"  # not blocked
    assert amounts(await backend.payments(number)) == [Decimal("25.00")]

    # The operator fixes the cause (the invoice now exists there) and replays it.
    while await backend.new_invoice() < missing:
        pass
    url = "/gateway/v1/relay/acme/replay"
    wrong = await client.post(url, json={"payment_id": "x"}, headers=ADMIN)
    assert wrong.status == 422
    response = await client.post(url, json={"payment_id": refused}, headers=ADMIN)
    assert (response.status, await response.json()) == (200, {"replayed": 1})
    await settle(client, gateway, clock)
    assert (await relay_of(client, refused))["state"] == "delivered"
    assert amounts(await backend.payments(missing)) == [Decimal("40.00")]
    again = await client.post(url, json={"failed": "all"}, headers=ADMIN)
    assert await again.json() == {"replayed": 0}


async def test_a_delete_waits_for_its_create_and_uses_the_id_the_create_was_given(
    start: Start, backend: LedgerBackend
) -> None:
    dialect = names(keyless, deletes)[0]
    client, gateway, clock = await start(dialect, backend.url)
    number = await backend.new_invoice()
    invoice = await ledger_invoice(client, dialect, number)
    kept = await pay(client, invoice, "10.00")
    gone = await pay(client, invoice, "30.00")
    # Deleted before its create was sent: both go, create first, then delete.
    deleted = await CLIENTS[CALLER](client).delete(invoice, gone)
    assert deleted.status < 300, deleted.body
    await settle(client, gateway, clock)
    assert amounts(await backend.payments(number)) == [Decimal("10.00")]
    shown = await relay_of(client, kept)
    assert shown["state"] == "delivered"
    delivered = [item for item in await listed(client, "delivered") if item["payment_id"] == gone]
    assert len(delivered) == 2 and delivered[0]["backend_id"] is None  # the delete's own row
    assert delivered[1]["backend_id"] not in (None, shown["backend_id"])
