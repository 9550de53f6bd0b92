"""Idempotency-Key over HTTP against a gateway process: once, replayed, refused, scoped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import yaml

import dialects
from dialects import testing
from dialects.errors import Overpayment
from gateway.serving.app import create_app

from ..clients import CLIENTS, Reply
from ..conftest import ENGINES, AiohttpClient, Client
from ..http.server import Server
from ..http.wire import (
    DIALECTS,
    call,
    make_invoice,
    payment_id,
    payment_request,
    state,
)
from ..postgres import Cluster
from ..support import ADMIN, make_config, tenant_config

KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# What a replay must repeat besides status and body.
KEPT = ("Content-Type", "Location", "X-Gateway-Warnings")


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One gateway process per engine: on a SQLite file, then on a PostgreSQL schema."""
    root = tmp_path_factory.mktemp("idempotency")
    cluster: Cluster | None = None
    database: Path | str = root / "ledger.db"
    if request.param != "sqlite":
        cluster = request.getfixturevalue("postgres")
        schema = cluster.create()
        database = cluster.url(schema)
    raw = {
        "admin_token": ADMIN["Authorization"].removeprefix("Bearer "),
        "token_secret": "process-token-secret",
        "server": {"access_log": False},
        "tenants": {"acme": tenant_config("acme"), "globex": tenant_config("globex")},
    }
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    process = Server(config, database, root / "gateway.log").wait_ready()
    try:
        yield process
    finally:
        process.stop()
        if cluster is not None:
            cluster.drop(schema)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    """A session on the gateway process, used as the suite's dialect clients use theirs."""
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield cast(Client, session)


async def keyed_pay(
    client: Client, dialect: str, invoice: int, amount: str, key: str, **extra: str
) -> Reply:
    path, body, headers = payment_request(dialect, invoice, amount, **extra)
    return await call(client, dialect, "POST", path, body, {**headers, KEY: key})


def assert_error(dialect: str, reply: Reply, status: int, kind: str, message: str) -> None:
    """An error as `dialect` shapes it, carrying `message`."""
    assert REPLAYED not in reply.headers
    assert message in testing.support(dialect).error(reply.answer(), status, kind)


def created(dialect: str) -> int:
    """The status a create answers in `dialect`."""
    return testing.support(dialect).create_status


def refused_status(dialect: str) -> int:
    """The status of a payment the ledger refuses (an overpayment) in `dialect`."""
    return dialects.get(dialect).status_of(Overpayment())


def kept(reply: Reply) -> dict[str, str | None]:
    return {name: reply.headers.get(name) for name in KEPT}


def assert_replayed(again: Reply, first: Reply) -> None:
    """`again` is `first` replayed: the same status, body and kept headers, marked so."""
    assert REPLAYED not in first.headers
    assert (again.status, again.body, kept(again)) == (first.status, first.body, kept(first))
    assert again.headers[REPLAYED] == "true"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("quoted", [False, True], ids=["same-key", "255-characters-quoted"])
async def test_a_retried_create_records_once_and_replays_the_answer_byte_for_byte(
    client: Client, dialect: str, quoted: bool
) -> None:
    """Retried with the same key; or a key of 255 characters retried in its quoted form,
    which is the same key."""
    invoice = await make_invoice(client, total="100.00")
    key = f"{dialect}-".ljust(255, "k") if quoted else f"create-{dialect}"
    first = await keyed_pay(client, dialect, invoice, "30.00", key)
    again = await keyed_pay(client, dialect, invoice, "30.00", f'"{key}"' if quoted else key)
    assert first.status == created(dialect), first.body
    assert_replayed(again, first)
    assert await state(client, invoice) == ("70.00", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_same_key_on_another_request_is_refused_422_and_changes_nothing(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client, total="100.00")
    first = await keyed_pay(client, dialect, invoice, "30.00", f"reused-{dialect}")
    assert first.status == created(dialect), first.body
    other = await keyed_pay(client, dialect, invoice, "31.00", f"reused-{dialect}")
    assert_error(
        dialect, other, 422, "key_reused", "Idempotency-Key was already used for another request"
    )
    assert await state(client, invoice) == ("70.00", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Idempotency-Key must not be empty"),
        ('""', "Idempotency-Key must not be empty"),
        ("k" * 256, "Idempotency-Key must be at most 255 characters"),
    ],
    ids=["empty", "empty-quoted", "256-characters"],
)
async def test_an_empty_or_over_long_key_is_refused_400_and_records_nothing(
    client: Client, dialect: str, key: str, message: str
) -> None:
    invoice = await make_invoice(client, total="100.00")
    refused = await keyed_pay(client, dialect, invoice, "30.00", key)
    assert_error(dialect, refused, 400, "bad_request", message)
    assert await state(client, invoice) == ("100.00", "open", 0)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_twenty_parallel_requests_with_one_key_record_one_payment(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client, total="100.00")
    replies = await asyncio.gather(
        *(keyed_pay(client, dialect, invoice, "5.00", f"parallel-{dialect}") for _ in range(20))
    )
    made = [r for r in replies if r.status == created(dialect)]
    in_flight = [r for r in replies if r.status == 409]
    assert len(made) + len(in_flight) == 20, [r.status for r in replies]
    assert {r.body for r in made} == {made[0].body}
    assert sum(REPLAYED not in r.headers for r in made) == 1
    for reply in in_flight:
        message = "A request with this Idempotency-Key is still in progress; retry later"
        assert_error(dialect, reply, 409, "conflict", message)
        assert reply.headers["Retry-After"] == "1"
    assert await state(client, invoice) == ("95.00", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_keys_are_scoped_to_the_tenant(client: Client, dialect: str) -> None:
    ours = await make_invoice(client, total="100.00")
    theirs = await make_invoice(client, total="100.00", tenant="globex")
    first = await keyed_pay(client, dialect, ours, "10.00", f"shared-{dialect}")
    request = testing.support(dialect).create("globex", theirs, "10.00")
    other = await CLIENTS[dialect](client, tenant="globex").call(
        "POST", request.path, request.body, {**request.headers, KEY: f"shared-{dialect}"}
    )
    assert (first.status, other.status) == (created(dialect), created(dialect)), other.body
    assert REPLAYED not in other.headers
    assert await state(client, ours) == ("90.00", "partial", 1)
    assert await state(client, theirs) == ("90.00", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_refused_write_frees_its_key_for_a_corrected_retry(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client, total="100.00")
    refused = await keyed_pay(client, dialect, invoice, "150.00", f"fix-{dialect}")
    assert refused.status == refused_status(dialect), refused.body
    fixed = await keyed_pay(client, dialect, invoice, "50.00", f"fix-{dialect}")
    assert fixed.status == created(dialect), fixed.body
    assert REPLAYED not in fixed.headers
    assert await state(client, invoice) == ("50.00", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_requests_without_a_key_each_record_a_payment(client: Client, dialect: str) -> None:
    invoice = await make_invoice(client, total="100.00")
    for _ in range(2):
        path, body, headers = payment_request(dialect, invoice, "10.00")
        reply = await call(client, dialect, "POST", path, body, headers)
        assert reply.status == created(dialect) and REPLAYED not in reply.headers
    assert await state(client, invoice) == ("80.00", "partial", 2)


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if testing.support(d).deleted_status])
async def test_a_retried_delete_replays_its_answer_instead_of_404(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client, total="100.00")
    created = await keyed_pay(client, dialect, invoice, "10.00", f"before-delete-{dialect}")
    request = testing.support(dialect).delete("acme", invoice, payment_id(dialect, created))
    assert request is not None
    keyed = {**request.headers, KEY: f"del-{dialect}"}
    first = await call(client, dialect, request.method, request.path, request.body, keyed)
    again = await call(client, dialect, request.method, request.path, request.body, keyed)
    assert first.status in (200, 204), first.body
    assert_replayed(again, first)
    unkeyed = dict(request.headers)
    gone = await call(client, dialect, request.method, request.path, request.body, unkeyed)
    assert gone.status == 404
    assert await state(client, invoice) == ("100.00", "open", 0)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_retried_update_is_applied_once_and_replayed(client: Client, method: str) -> None:
    invoice = await make_invoice(client, total="100.00")
    created = await keyed_pay(client, "invoiless", invoice, "10.00", f"before-{method}")
    path = f"/v1/payments/{payment_id('invoiless', created)}"
    body = b'{"amount": 25, "method": "Cash", "paidAt": "2026-11-21"}'
    headers = {"Content-Type": "application/json", KEY: f"update-{method}"}
    first = await call(client, "invoiless", method, path, body, headers)
    again = await call(client, "invoiless", method, path, body, headers)
    assert first.status == 200, first.body
    assert_replayed(again, first)
    assert await state(client, invoice) == ("75.00", "partial", 1)


async def test_an_operator_sees_a_key_and_its_stored_answer(client: Client) -> None:
    invoice = await make_invoice(client, total="100.00")
    first = await keyed_pay(client, "invoiless", invoice, "10.00", "shown/to operator")
    async with client.get(
        "/gateway/v1/idempotency/acme/shown%2Fto%20operator", headers=ADMIN
    ) as response:
        assert response.status == 200
        shown: dict[str, Any] = await response.json()
    assert shown["state"] == "done"
    assert (shown["tenant"], shown["key"]) == ("acme", "shown/to operator")
    assert shown["answer"]["status"] == 201
    assert shown["answer"]["body"] == first.body.decode()
    assert shown["answer"]["headers"]["Location"] == first.headers["Location"]
    async with client.get(
        "/gateway/v1/idempotency/globex/shown%2Fto%20operator", headers=ADMIN
    ) as r:
        assert r.status == 404
    async with client.get("/gateway/v1/idempotency/acme/shown%2Fto%20operator") as r:
        assert r.status == 401


async def test_a_key_expires_after_the_configured_time(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    config = make_config(database, idempotency={"ttl_seconds": 60})
    client = await aiohttp_client(create_app(config, clock=lambda: now[0]))
    invoice = await make_invoice(client, total="100.00")
    first = await keyed_pay(client, "invoiless", invoice, "10.00", "short-lived")
    now[0] += timedelta(seconds=59)
    replayed = await keyed_pay(client, "invoiless", invoice, "10.00", "short-lived")
    now[0] += timedelta(seconds=1)
    renewed = await keyed_pay(client, "invoiless", invoice, "10.00", "short-lived")
    assert (first.status, replayed.headers[REPLAYED], renewed.status) == (201, "true", 201)
    assert REPLAYED not in renewed.headers and renewed.body != first.body
    assert await state(client, invoice) == ("80.00", "partial", 2)
