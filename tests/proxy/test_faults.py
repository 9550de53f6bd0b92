"""A misbehaving backend: slow, failing, garbled, hanging up, flooding; retries; breaker.

The backend is a fake that counts what reaches it, so retries (and their absence)
are seen where they happen. Timeouts are small so each case costs well under a second.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dialects import testing

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..http.server import free_port
from .conftest import ProxyFactory
from .fake import (
    FakeBackend,
    dripping_answer,
    dropped,
    huge_answer,
    invoiless_backend,
    raw_answer,
    slow_answer,
    status_answer,
    urlkey_backend,
)
from .harness import DIALECTS, lookup, upstream

pytestmark = pytest.mark.stores

LIST = "GET /v1/invoices/inv-1/payments"
CREATE = "POST /v1/invoices/inv-1/payments"


async def proxied(
    make_proxy: ProxyFactory, fake: FakeBackend, dialect: str = "invoiless", **settings: Any
) -> tuple[Client, int]:
    """A proxy in front of `fake`, and the caller-visible id of the fake's invoice inv-1.

    Small timeouts; no retries or breaker trips unless `settings` ask for them.
    """
    config = {
        "timeout": 0.4,
        "connect_timeout": 0.4,
        "retries": 0,
        "breaker": {"failures": 50, "reset_seconds": 0.3},
        **settings,
    }
    proxy = await make_proxy(upstream(dialect, fake.url, **config))
    invoice_ref = "7" if dialect in ("harvest", "fastbill") else "inv-1"
    found = await lookup(proxy, dialect, "invoice", invoice_ref)
    fake.requests.clear()
    number: int = found["dialect_ids"]["harvest"]
    return proxy, number


async def list_as(caller: str, proxy: Client, invoice: int) -> Reply:
    """The caller's list of `invoice`'s payments, as its test support asks for it."""
    return await CLIENTS[caller](proxy).send(testing.support(caller).listing("acme", invoice))


async def create_as_invoiless(proxy: Client, invoice: int) -> Reply:
    body = b'{"amount": 12.5, "method": "Cash", "paidAt": "2026-11-20"}'
    return await CLIENTS["invoiless"](proxy).call(
        "POST", f"/v1/invoices/{invoice}/payments", body, {"Content-Type": "application/json"}
    )


def shaped(caller: str, reply: Reply) -> tuple[int, str]:
    """(status, message) of an error reply, checked to be in the caller's own shape."""
    if caller not in ("harvest", "fastbill", "invoiless", "urlkey"):  # Xero, and any other:
        fmt = "xml" if "xml" in reply.headers.get("Content-Type", "") else "json"  # its support
        return reply.status, testing.support(caller).error(reply.answer(), reply.status, "", fmt)
    if caller in ("harvest", "fastbill"):
        assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
        root = reply.xml()
        assert root.tag == "errors"
        return reply.status, "; ".join(child.text or "" for child in root)
    body = reply.json()
    if caller == "invoiless":
        assert set(body) == {"error"}
        return reply.status, f"{body['error']['code']}: {body['error']['message']}"
    assert body["code"] == reply.status
    assert body["data"] == {"message": body["message"]} and body["errors"] == {}
    return reply.status, f"{body['name']}/{body['className']}: {body['message']}"


TIMEOUT = {
    "harvest": (504, "The backend did not answer in time"),
    "fastbill": (504, "The backend did not answer in time"),
    "invoiless": (504, "timeout: The backend did not answer in time"),
    "urlkey": (504, "GatewayTimeout/gateway-timeout: The backend did not answer in time"),
}


@pytest.mark.parametrize("caller", sorted(TIMEOUT))
async def test_slow_backend_answers_504_in_the_callers_dialect(
    caller: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, timeout=0.3)
    fake.answer = slow_answer(3, invoiless_backend)

    reply = await list_as(caller, proxy, invoice)

    assert shaped(caller, reply) == TIMEOUT[caller]
    assert fake.calls() == [LIST]


async def test_post_that_times_out_is_not_retried(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2, timeout=0.3)
    fake.answer = slow_answer(3, invoiless_backend)

    reply = await create_as_invoiless(proxy, invoice)

    assert shaped("invoiless", reply) == (504, "timeout: The backend did not answer in time")
    await asyncio.sleep(0.2)  # room for a retry that must not come
    assert fake.calls() == [CREATE]


@pytest.mark.parametrize("answer", ["silent", "dripping"])
async def test_a_get_that_times_out_is_not_retried_past_the_calls_deadline(
    make_proxy: ProxyFactory, fake: FakeBackend, answer: str
) -> None:
    """`timeout` is for the whole call: an attempt that used it all leaves no time for
    another (each retry once had a deadline of its own: three times the time)."""
    proxy, invoice = await proxied(make_proxy, fake, retries=2, timeout=0.3)
    fake.answer = slow_answer(3, invoiless_backend) if answer == "silent" else dripping_answer(0.02)

    reply = await list_as("invoiless", proxy, invoice)

    assert shaped("invoiless", reply) == (504, "timeout: The backend did not answer in time")
    assert fake.calls() == [LIST], "one attempt: no retry starts after the call's deadline"


async def test_retries_after_quick_failures_share_the_calls_deadline(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """A dropped connection is retried; the retry drips until the call's deadline, and no
    third attempt follows, though two retries were allowed."""
    proxy, invoice = await proxied(make_proxy, fake, retries=2, timeout=0.3)
    fake.then(dropped)
    fake.answer = dripping_answer(0.02)

    reply = await list_as("invoiless", proxy, invoice)

    assert shaped("invoiless", reply) == (504, "timeout: The backend did not answer in time")
    assert fake.calls() == [LIST, LIST]


async def test_a_retry_within_the_deadline_still_answers(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=1, timeout=2)
    fake.then(dropped)

    reply = await list_as("invoiless", proxy, invoice)

    assert reply.status == 200, reply.body
    assert [item["id"] for item in reply.json()] == [str(invoice + 1)]
    assert fake.calls() == [LIST, LIST]


async def test_get_is_retried_on_503_and_succeeds(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.then(status_answer(503), status_answer(503))

    reply = await list_as("harvest", proxy, invoice)

    assert reply.status == 200, reply.body
    assert [item.findtext("amount") for item in reply.xml()] == ["12.5"]
    assert fake.calls() == [LIST, LIST, LIST]


async def test_get_that_keeps_meeting_503_answers_503_with_the_backends_retry_after(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = status_answer(503, **{"Retry-After": "1"})

    reply = await list_as("urlkey", proxy, invoice)

    assert shaped("urlkey", reply) == (503, "Unavailable/unavailable: The backend is busy")
    assert reply.headers["Retry-After"] == "1"
    assert fake.calls() == [LIST, LIST, LIST]


async def test_get_told_to_wait_longer_than_a_moment_is_not_retried_now(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = status_answer(503, **{"Retry-After": "7"})

    reply = await list_as("harvest", proxy, invoice)

    assert reply.status == 503
    assert reply.headers["Retry-After"] == "7"
    assert fake.calls() == [LIST]


async def test_post_meeting_500_is_not_retried_and_answers_502(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = status_answer(500)

    reply = await create_as_invoiless(proxy, invoice)

    assert shaped("invoiless", reply) == (502, "upstream: The backend failed (500)")
    assert fake.calls() == [CREATE]


async def test_post_meeting_503_is_not_retried_and_answers_503(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = status_answer(503)

    reply = await create_as_invoiless(proxy, invoice)

    assert shaped("invoiless", reply) == (503, "unavailable: The backend is busy")
    assert reply.headers["Retry-After"] == "1"
    assert fake.calls() == [CREATE]


async def test_get_meeting_500_is_not_retried(make_proxy: ProxyFactory, fake: FakeBackend) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = status_answer(500)

    reply = await list_as("fastbill", proxy, invoice)

    assert shaped("fastbill", reply) == (502, "The backend failed (500)")
    assert fake.calls() == [LIST]


async def test_refused_connection_answers_503_with_retry_after(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    await proxy.close()
    # The same id map (database), the backend now at a port where nothing listens.
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused = await make_proxy(upstream("invoiless", nowhere, retries=2, timeout=0.4))

    reply = await create_as_invoiless(refused, invoice)

    assert shaped("invoiless", reply) == (503, "unavailable: The backend refused the connection")
    assert reply.headers["Retry-After"] == "1"
    assert fake.calls() == []


async def test_malformed_json_answers_502(make_proxy: ProxyFactory, fake: FakeBackend) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.answer = raw_answer(b'[{"id": "p-1", "amount": 12.5,')

    reply = await list_as("urlkey", proxy, invoice)

    status, message = shaped("urlkey", reply)
    assert (status, message.split(":")[0]) == (502, "BadGateway/bad-gateway")
    assert message.startswith("BadGateway/bad-gateway: The backend sent an unreadable answer: "), (
        message
    )
    assert fake.calls() == [LIST]


async def test_malformed_xml_answers_502(make_proxy: ProxyFactory, fake: FakeBackend) -> None:
    fake.answer = raw_answer(b'<payments type="array"></payments>', content_type="application/xml")
    proxy, invoice = await proxied(make_proxy, fake, "harvest")
    fake.answer = raw_answer(
        b'<?xml version="1.0"?><payments type="array"><payment><id>1</payments>',
        content_type="application/xml",
    )

    reply = await list_as("invoiless", proxy, invoice)

    status, message = shaped("invoiless", reply)
    assert status == 502
    assert message.startswith("upstream: The backend sent an unreadable answer: "), message
    assert fake.calls() == ["GET /invoices/7/payments"]


async def test_answer_in_a_foreign_content_type_answers_502(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.answer = raw_answer(b"<html>maintenance</html>", content_type="text/html")

    reply = await list_as("harvest", proxy, invoice)

    assert shaped("harvest", reply) == (
        502,
        "The backend answered in an unexpected content type",
    )


async def test_dropped_connection_answers_502_and_only_a_get_is_retried(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, retries=2)
    fake.answer = dropped

    listed = await list_as("invoiless", proxy, invoice)
    created = await create_as_invoiless(proxy, invoice)

    failed = "upstream: The connection to the backend failed"
    assert shaped("invoiless", listed) == (502, failed)
    assert shaped("invoiless", created) == (502, failed)
    # Three gateway attempts at the GET (retries: 2). The first went out on the
    # connection kept alive since the lookup, and an idempotent request the backend hung
    # up on there without a byte of answer is sent once more on a new connection: four
    # in all. The POST, which may have reached the backend, is sent exactly once.
    assert fake.calls() == [LIST] * 4 + [CREATE]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_huge_answer_is_cut_off_with_502(
    declared: bool, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, max_body_bytes=4096)
    fake.answer = huge_answer(10 * 1024 * 1024, declared=declared)

    reply = await list_as("fastbill", proxy, invoice)

    assert shaped("fastbill", reply) == (502, "The backend's answer is too large")
    assert fake.calls() == [LIST]


# --- the circuit breaker --------------------------------------------------------------


async def test_breaker_opens_after_n_failures_and_answers_503_without_calling_the_backend(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, breaker={"failures": 3, "reset_seconds": 30})
    fake.answer = status_answer(500)

    failures = [await list_as("invoiless", proxy, invoice) for _ in range(3)]
    fake.answer = invoiless_backend
    refused = {caller: await list_as(caller, proxy, invoice) for caller in DIALECTS}

    assert [r.status for r in failures] == [502, 502, 502]
    assert fake.calls() == [LIST, LIST, LIST]  # nothing after the third failure
    opened = "The backend is unavailable (circuit open)"
    assert shaped("harvest", refused["harvest"]) == (503, opened)
    assert shaped("urlkey", refused["urlkey"]) == (503, f"Unavailable/unavailable: {opened}")
    for caller, reply in refused.items():  # every caller, in its own shape
        fmt = "xml" if "xml" in reply.headers.get("Content-Type", "") else "json"
        text = testing.support(caller).error(reply.answer(), 503, "unavailable", fmt)
        assert opened in text, (caller, text)
        assert reply.headers["Retry-After"] == "30", caller


async def test_breaker_lets_one_trial_through_after_reset_and_closes_on_success(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, breaker={"failures": 2, "reset_seconds": 0.3})
    fake.answer = status_answer(500)
    for _ in range(2):
        assert (await list_as("invoiless", proxy, invoice)).status == 502
    fake.answer = invoiless_backend
    still_open = await list_as("invoiless", proxy, invoice)

    await asyncio.sleep(0.35)
    recovered = [await list_as("invoiless", proxy, invoice) for _ in range(3)]

    assert still_open.status == 503 and still_open.headers["Retry-After"] == "1"
    assert [r.status for r in recovered] == [200, 200, 200]
    assert fake.calls() == [LIST] * 5


async def test_breaker_reopens_when_the_trial_fails(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake, breaker={"failures": 2, "reset_seconds": 0.3})
    fake.answer = status_answer(500)
    for _ in range(2):
        assert (await list_as("invoiless", proxy, invoice)).status == 502

    await asyncio.sleep(0.35)
    trial = await list_as("invoiless", proxy, invoice)
    fake.answer = invoiless_backend
    reopened = await list_as("invoiless", proxy, invoice)
    await asyncio.sleep(0.35)
    recovered = await list_as("invoiless", proxy, invoice)

    assert (trial.status, reopened.status, recovered.status) == (502, 503, 200)
    assert fake.calls() == [LIST] * 4


async def test_breaker_recovers_after_a_trial_that_failed_to_get_a_token(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    # Tokens that live under the renewal margin: every call asks /authentication first.
    healthy = urlkey_backend(token_lifetime=30)
    fake.answer = healthy
    proxy, invoice = await proxied(
        make_proxy, fake, "urlkey", breaker={"failures": 1, "reset_seconds": 0.3}
    )
    payments = "GET /businesses/acme-biz/invoices/inv-1/payments"
    fake.then(healthy, status_answer(500))  # a token, then the list fails: open
    opened = await list_as("invoiless", proxy, invoice)
    await asyncio.sleep(0.35)
    fake.then(status_answer(500))  # the trial cannot get a token
    trial = await list_as("invoiless", proxy, invoice)
    reopened = await list_as("invoiless", proxy, invoice)

    await asyncio.sleep(0.35)
    recovered = await list_as("invoiless", proxy, invoice)

    assert shaped("invoiless", opened) == (502, "upstream: The backend failed (500)")
    assert shaped("invoiless", trial) == (
        502,
        "upstream: The backend refused the gateway's credentials",
    )
    assert reopened.status == 503  # the failed trial opened the circuit again
    assert recovered.status == 200, recovered.body
    assert fake.calls() == [
        "POST /authentication",
        payments,
        "POST /authentication",
        "POST /authentication",
        payments,
    ]
