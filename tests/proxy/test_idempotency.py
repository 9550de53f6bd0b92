"""Idempotency-Key in proxy mode: a retried write never reaches the backend twice."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_aiohttp import AiohttpServer

from dialects import testing

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..http.wire import DIALECTS, payment_request
from ..support import ADMIN
from .conftest import ProxyFactory
from .fake import FakeBackend, dropped, invoiless_backend, slow_answer, status_answer
from .test_faults import CREATE, proxied

KEY = "Idempotency-Key"
UNKNOWN = (
    "The backend's outcome for this Idempotency-Key is unknown; it is held until it"
    " expires or an operator resolves it"
)


async def keyed_create(proxy: Client, caller: str, invoice: int, key: str) -> Reply:
    path, body, headers = payment_request(caller, invoice, "12.50")
    return await CLIENTS[caller](proxy).call("POST", path, body, {**headers, KEY: key})


async def admin(proxy: Client, method: str, key: str) -> tuple[int, Any]:
    async with proxy.request(method, f"/gateway/v1/idempotency/acme/{key}", headers=ADMIN) as r:
        return r.status, (await r.json() if r.status == 200 else None)


@pytest.mark.parametrize("caller", DIALECTS)
async def test_a_retried_create_reaches_the_backend_once(
    caller: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    first = await keyed_create(proxy, caller, invoice, "once")
    again = await keyed_create(proxy, caller, invoice, "once")
    created = testing.support(caller).create_status
    assert first.status == created, first.body
    assert (again.status, again.body, again.headers["Idempotent-Replayed"]) == (
        created,
        first.body,
        "true",
    )
    assert fake.calls("POST") == [CREATE]
    # An Invoiless backend takes no key: none is forwarded.
    assert not any(KEY.lower() == name.lower() for name in fake.requests[0].headers)


@pytest.mark.parametrize("caller", DIALECTS)
async def test_a_create_sent_but_never_answered_is_504_and_held_until_resolved(
    caller: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(slow_answer(2.0, invoiless_backend))
    timed_out = await keyed_create(proxy, caller, invoice, "unknown")
    retried = await keyed_create(proxy, caller, invoice, "unknown")
    for reply in (timed_out, retried):
        assert UNKNOWN in testing.support(caller).error(reply.answer(), 504, "timeout")
    assert fake.calls("POST") == [CREATE]
    status, shown = await admin(proxy, "GET", "unknown")
    assert (status, shown["state"], shown["answer"]) == (200, "unknown", None)
    assert (await admin(proxy, "DELETE", "unknown"))[0] == 204
    resolved = await keyed_create(proxy, caller, invoice, "unknown")
    assert resolved.status == testing.support(caller).create_status, resolved.body
    assert fake.calls("POST") == [CREATE, CREATE]
    assert (await admin(proxy, "GET", "unknown"))[1]["state"] == "done"


async def test_a_connection_lost_after_sending_holds_the_key_too(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(dropped)
    lost = await keyed_create(proxy, "invoiless", invoice, "dropped")
    retried = await keyed_create(proxy, "invoiless", invoice, "dropped")
    assert (lost.status, retried.status) == (504, 504), lost.body
    assert fake.calls("POST") == [CREATE]


async def test_a_create_refused_by_the_backend_may_be_retried_with_its_key(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(status_answer(503, **{"Retry-After": "30"}))
    busy = await keyed_create(proxy, "invoiless", invoice, "busy")
    assert busy.status == 503, busy.body
    retried = await keyed_create(proxy, "invoiless", invoice, "busy")
    assert retried.status == 201, retried.body
    assert fake.calls("POST") == [CREATE, CREATE]


async def test_a_create_never_sent_may_be_retried_with_its_key(
    make_proxy: ProxyFactory, aiohttp_server: AiohttpServer
) -> None:
    fake = FakeBackend(invoiless_backend)
    server = await aiohttp_server(fake.app())
    fake.url = f"http://{server.host}:{server.port}"
    proxy, invoice = await proxied(make_proxy, fake)
    port = server.port
    await server.close()  # nothing listens: the connection is refused, nothing is sent
    refused = await keyed_create(proxy, "invoiless", invoice, "unsent")
    assert refused.status == 503, refused.body
    await aiohttp_server(fake.app(), port=port)
    retried = await keyed_create(proxy, "invoiless", invoice, "unsent")
    assert retried.status == 201, retried.body
    assert fake.calls("POST") == [CREATE]
