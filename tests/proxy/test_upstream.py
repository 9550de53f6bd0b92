"""How the proxy reaches its backend: the configured URL only, and the gateway's own
credentials there in the backend dialect's scheme (never the caller's)."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import jwt
import pytest
from aiohttp import web

from dialects import testing
from dialects.errors import UpstreamTimeout
from gateway.config import backend_config
from gateway.proxy import httpclient
from gateway.proxy.upstream import UpstreamClient

from ..clients import CLIENTS
from ..http.wire import pay, urlkey_path
from ..registry import names, rails
from .conftest import ProxyFactory
from .fake import TOKEN_KEY, FakeBackend, raw_answer, urlkey_backend
from .harness import (
    DIALECTS,
    SIGNER_KEY,
    SIGNER_PRIVATE_PEM,
    LedgerBackend,
    caller_invoice,
    held,
    lookup,
    upstream,
)

pytestmark = pytest.mark.stores

URLKEY_LIST = "GET /businesses/acme-biz/invoices/inv-1/payments"


def basic_header(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


async def test_caller_headers_cannot_redirect_the_backend_url(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy = await make_proxy(upstream("invoiless", fake.url))
    found = await lookup(proxy, "invoiless", "invoice", "inv-1")
    fake.requests.clear()
    elsewhere = {
        "Host": "evil.example:1",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "Forwarded": "host=evil.example;proto=https",
        "X-Original-URL": "/v1/invoices/other/payments",
    }

    reply = await CLIENTS["invoiless"](proxy).call(
        "GET", f"/v1/invoices/{found['dialect_ids']['invoiless']}/payments", headers=elsewhere
    )

    assert reply.status == 200, reply.body
    assert fake.calls() == ["GET /v1/invoices/inv-1/payments"]
    seen = fake.requests[0].headers
    assert seen["Host"] == fake.url.removeprefix("http://")
    assert not {"X-Forwarded-Host", "Forwarded", "X-Original-URL"} & set(seen)


@pytest.mark.parametrize("dialect", names(rails))
async def test_rails_backends_get_the_configured_basic_credentials(
    dialect: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    support = testing.support(dialect)
    assert isinstance(support, testing.RailsSupport)
    root = support.list_root.encode()
    fake.answer = raw_answer(b'<%s type="array"/>' % root, content_type="application/xml")
    credentials = {"user": "gateway@backend.example", "password": f"{dialect}-backend-secret"}
    proxy = await make_proxy(upstream(dialect, fake.url, **credentials))

    await lookup(proxy, dialect, "invoice", "7")
    reply = await CLIENTS["invoiless"](proxy).call("GET", "/v1/invoices/1/payments")

    assert reply.status == 200, reply.body
    assert reply.json() == []
    expected = basic_header("gateway@backend.example", f"{dialect}-backend-secret")
    assert [seen.headers["Authorization"] for seen in fake] == [expected, expected]
    assert [seen.headers["Accept"] for seen in fake] == ["application/xml"] * 2


async def test_invoiless_backend_gets_the_configured_api_key_and_scope(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy = await make_proxy(
        upstream("invoiless", fake.url, api_key="backend-key", scope_id="backend-scope")
    )

    await lookup(proxy, "invoiless", "invoice", "inv-1")
    # The caller's own api-key and scope must not travel on.
    reply = await CLIENTS["invoiless"](proxy).call(
        "GET", "/v1/invoices/1/payments", headers={"scope-id": "acme-scope"}
    )

    assert reply.status == 200, reply.body
    assert [(s.headers["api-key"], s.headers["scope-id"]) for s in fake] == [
        ("backend-key", "backend-scope"),
        ("backend-key", "backend-scope"),
    ]
    assert not any("Authorization" in seen.headers for seen in fake)


async def test_invoiless_backend_without_scope_gets_no_scope_header(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    backend = upstream("invoiless", fake.url)
    del backend["scope_id"]
    proxy = await make_proxy(backend)

    await lookup(proxy, "invoiless", "invoice", "inv-1")

    assert [(s.headers["api-key"], "scope-id" in s.headers) for s in fake] == [
        ("acme-invoiless", False)
    ]


async def test_urlkey_backend_token_is_fetched_once_and_reused(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url))

    found = await lookup(proxy, "urlkey", "invoice", "inv-1")
    invoice = found["dialect_ids"]["harvest"]
    listed = [await CLIENTS[c](proxy).list(invoice) for c in DIALECTS]
    created = await pay(proxy, "invoiless", invoice, "12.50")

    assert [len(items) for items in listed] == [1] * len(DIALECTS)
    assert created.status == 201, created.body
    assert fake.calls() == [
        "POST /authentication",
        *[URLKEY_LIST] * (1 + len(DIALECTS)),  # the lookup, then each caller's list
        "POST /businesses/acme-biz/invoices/inv-1/payments",
    ]
    login = fake.requests[0]
    assert login.headers["Content-Type"] == "application/json"
    assert (
        login.body == b'{"strategy":"app-secret","appId":"acme-app","appSecret":"acme-app-secret"}'
    )
    token = jwt.decode(
        fake.requests[1].headers["Authorization"].removeprefix("Bearer "),
        TOKEN_KEY,
        algorithms=["HS256"],
    )
    assert token["sub"] == "acme-app"
    bearers = {seen.headers["Authorization"] for seen in fake.requests[1:]}
    assert len(bearers) == 1


async def test_urlkey_backend_refusing_the_token_gets_a_new_one_and_the_call_once_more(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """A backend restarted with a new signing key answers 401 to the cached token."""
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url, retries=0))
    found = await lookup(proxy, "urlkey", "invoice", "inv-1")
    invoice = found["dialect_ids"]["harvest"]
    stale = raw_answer(b'{"name": "NotAuthenticated", "code": 401}', status=401)
    fake.then(stale)

    listed = await CLIENTS["invoiless"](proxy).list(invoice)
    fake.then(stale)
    created = await pay(proxy, "invoiless", invoice, "12.50")

    assert len(listed) == 1
    assert created.status == 201, created.body
    create = "POST /businesses/acme-biz/invoices/inv-1/payments"
    assert fake.calls() == [
        "POST /authentication",
        URLKEY_LIST,
        URLKEY_LIST,  # 401
        "POST /authentication",
        URLKEY_LIST,
        create,  # 401
        "POST /authentication",
        create,
    ]
    bearers = [s.headers.get("Authorization") for s in fake if not s.path.endswith("tion")]
    assert len(set(bearers)) == 3  # a new token after each refusal


async def test_urlkey_backend_refusing_every_token_answers_502_after_one_renewal(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url, retries=2))
    found = await lookup(proxy, "urlkey", "invoice", "inv-1")
    invoice = found["dialect_ids"]["harvest"]
    healthy = fake.answer

    async def refusing(request: web.Request) -> web.StreamResponse:
        if request.path == "/authentication":
            return await healthy(request)
        return web.Response(status=401)

    fake.answer = refusing

    reply = await pay(proxy, "invoiless", invoice, "12.50")

    assert reply.status == 502
    assert reply.json()["error"] == {
        "code": "upstream",
        "message": "The backend refused the gateway's credentials",
    }
    create = "POST /businesses/acme-biz/invoices/inv-1/payments"
    assert fake.calls() == [
        "POST /authentication",
        URLKEY_LIST,
        create,
        "POST /authentication",
        create,
    ]


async def test_urlkey_backend_gets_a_self_signed_es256_token(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    fake.answer = urlkey_backend()
    backend: dict[str, Any] = {
        **upstream("urlkey", fake.url, app_id="acme-signer", private_key=SIGNER_PRIVATE_PEM),
    }
    del backend["app_secret"]
    proxy = await make_proxy(backend)

    await lookup(proxy, "urlkey", "invoice", "inv-1")
    await lookup(proxy, "urlkey", "invoice", "inv-1")

    assert fake.calls() == [URLKEY_LIST, URLKEY_LIST]  # no /authentication
    token = fake.requests[0].headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    claims = jwt.decode(token, SIGNER_KEY.public_key(), algorithms=["ES256"], audience="serana")
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("acme-signer",) * 2 + ("serana",)
    assert claims["auth"] == {"entity": "app", "strategy": "app-iss-app-token"}
    assert claims["exp"] - claims["iat"] == 3600


async def test_real_urlkey_backend_accepts_the_proxys_es256_token(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    """The backend knows only the public half of the proxy's key (app acme-signer)."""
    config = upstream("urlkey", backend.url, app_id="acme-signer", private_key=SIGNER_PRIVATE_PEM)
    del config["app_secret"]
    proxy = await make_proxy(config)
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "urlkey", number)

    created = await pay(proxy, "harvest", invoice, "75.25")
    listed = await CLIENTS["urlkey"](proxy).list(invoice)

    assert created.status == 201, created.body
    assert [(item["amount"], item["notes"]) for item in listed] == [(Decimal("75.25"), None)]
    stored = [held(p) for p in await backend.payments(number)]
    assert [(p["recorded_by"], p["client_app"], p["amount"]) for p in stored] == [
        ("Proxy signer", "acme-signer", Decimal("75.25"))
    ]


async def test_get_one_against_a_urlkey_backend_is_served_from_its_list(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url))
    found = await lookup(proxy, "urlkey", "invoice", "inv-1")
    invoice = found["dialect_ids"]["harvest"]
    (listed,) = await CLIENTS["fastbill"](proxy).list(invoice)
    fake.requests.clear()

    got = await CLIENTS["invoiless"](proxy).call("GET", f"/v1/payments/{listed['id']}")
    nested = await CLIENTS["harvest"](proxy).get(invoice, listed["id"])
    missing = await CLIENTS["invoiless"](proxy).call("GET", f"/v1/payments/{listed['id'] + 99}")

    assert got.status == 200, got.body
    assert got.json() == {
        "id": str(listed["id"]),
        "invoice": str(invoice),
        "amount": 12.5,
        "method": "Other",
        "paidAt": "2026-11-20",
        "notes": None,
        "sendNotification": False,
    }
    assert nested == {**listed, "paid_on": "2026-11-20"}
    assert missing.status == 404
    # Both reads were its list; the unknown id never reached the backend.
    assert fake.calls() == [URLKEY_LIST, URLKEY_LIST]


async def test_urlkey_callers_business_in_the_path_is_the_callers_not_the_backends(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """The caller's urlKey path names its own business; the backend's comes from config."""
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url, business="backend-biz"))
    found = await lookup(proxy, "urlkey", "invoice", "inv-1")

    reply = await CLIENTS["urlkey"](proxy).call("GET", urlkey_path(found["dialect_ids"]["harvest"]))

    assert reply.status == 200, reply.body
    assert fake.calls()[-1] == "GET /businesses/backend-biz/invoices/inv-1/payments"


class _Unreachable:
    """A pool whose every connection attempt times out before anything is sent."""

    def __init__(self) -> None:
        self.attempts = 0

    async def request(self, *args: object, **kwargs: object) -> object:
        self.attempts += 1
        raise httpclient.ConnectFailed("connect timed out", timed_out=True)

    async def close(self) -> None:
        return None


async def test_a_post_whose_connection_timed_out_is_retried_since_it_was_never_sent() -> None:
    upstream = backend_config(
        {
            "dialect": "invoiless",
            "url": "http://127.0.0.1:9",
            "api_key": "k",
            "retries": 2,
            "retry_budget": 1,
        }
    )
    client = UpstreamClient(upstream)
    unreachable = _Unreachable()
    client._pool = unreachable  # type: ignore[assignment]
    with pytest.raises(UpstreamTimeout):
        await client.send("POST", "/v1/invoices/1/payments", body=b"{}", idempotent=False)
    assert unreachable.attempts == 3
