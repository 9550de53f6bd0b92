"""Who may call: each dialect's credentials, its 401/403 shapes, and urlKey's JWTs."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import dialects
from dialects import testing
from dialects.errors import NotAuthenticated
from dialects.rails import RailsDialect
from gateway import config as gateway_config
from gateway.access.auth import ISSUER
from gateway.serving.app import create_app

from ..conftest import AiohttpClient, Client
from ..registry import ALL, basic_auth, names
from ..support import APP_KEY, APP_PUBLIC_PEM, basic, hexid, new_invoice, self_signed_token
from .helpers import (
    JSON,
    OTHER_KEY,
    XML,
    Answer,
    app_claims,
    assert_feathers,
    b64url,
    b64url_decode,
    bearer,
    credentials,
    feathers,
    hs256_token,
    invoiless_error,
    list_path,
    rails_json,
    rails_xml,
    segment,
    send,
    unsigned_token,
)

pytestmark = pytest.mark.stores

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = {"strategy": "app-secret", "appId": "acme-app", "appSecret": "acme-app-secret"}


async def authenticate(client: Client, body: dict[str, Any]) -> Answer:
    return await send(
        client,
        "POST",
        "/authentication",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body),
    )


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- no credentials, wrong credentials ----------------------------------------------


async def test_harvest_without_credentials_is_a_basic_challenge_with_rails_errors(
    client: Client,
) -> None:
    invoice = await new_invoice(client)
    answer = await send(client, "GET", list_path("harvest", invoice["id"]))
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Harvest"'
    assert answer.content_type == XML
    assert answer.body == rails_xml("Authentication required")


async def test_harvest_without_credentials_in_json_is_a_challenge_with_json_errors(
    client: Client,
) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client, "GET", list_path("harvest", invoice["id"]), headers={"Accept": "application/json"}
    )
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Harvest"'
    assert answer.content_type == JSON
    assert answer.json() == rails_json("Authentication required")


async def test_fastbill_without_credentials_is_a_basic_challenge_with_rails_errors(
    client: Client,
) -> None:
    invoice = await new_invoice(client)
    answer = await send(client, "GET", list_path("fastbill", invoice["id"]))
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="FastBill"'
    assert answer.content_type == XML
    assert answer.body == rails_xml("Authentication required")


async def test_invoiless_without_api_key_is_401_unauthenticated(client: Client) -> None:
    invoice = await new_invoice(client)
    answer = await send(client, "GET", list_path("invoiless", invoice["id"]))
    assert answer.status == 401
    assert answer.content_type == JSON
    assert "WWW-Authenticate" not in answer.headers
    assert answer.json() == invoiless_error("unauthenticated", "Missing api-key header")


async def test_urlkey_without_bearer_is_a_feathers_not_authenticated(client: Client) -> None:
    invoice = await new_invoice(client)
    answer = await send(client, "GET", list_path("urlkey", invoice["id"]))
    assert_feathers(answer, 401, "Invalid authentication")
    assert answer.json() == {
        "name": "NotAuthenticated",
        "message": "Invalid authentication",
        "code": 401,
        "className": "not-authenticated",
        "data": {"message": "Invalid authentication"},
        "errors": {},
    }


@pytest.mark.parametrize("dialect", names(basic_auth))
@pytest.mark.parametrize(
    "user,secret",
    [
        ("acme@example.com", "wrong-password"),
        ("acme@example.com", "globex-{dialect}"),  # another tenant's password
        ("globex@example.com", "acme-{dialect}"),  # another tenant's user
        ("nobody@example.com", "acme-{dialect}"),
        ("acme@example.com", "acme-{dialect}-"),  # a prefix match is no match
        ("ACME@example.com", "acme-{dialect}"),
    ],
)
async def test_basic_dialects_refuse_a_wrong_login_with_the_challenge(
    client: Client, dialect: str, user: str, secret: str
) -> None:
    """Every dialect whose callers log in with Basic (tests.support's secrets are
    `<tenant>-<dialect>`), refused with the challenge its codec writes."""
    invoice = await new_invoice(client)
    answer = await send(
        client,
        "GET",
        list_path(dialect, invoice["id"]),
        headers=basic(user, secret.format(dialect=dialect)),
    )
    assert answer.status == 401
    codec = dialects.get(dialect).codecs[dialects.get(dialect).formats[0]]
    challenge = codec.encode_error(NotAuthenticated()).headers
    assert answer.headers["WWW-Authenticate"] == challenge["WWW-Authenticate"]
    assert answer.headers["WWW-Authenticate"].startswith('Basic realm="')
    if isinstance(dialects.get(dialect), RailsDialect):
        assert answer.body == rails_xml("Invalid login")
    else:
        reply = testing.Answer(answer.status, dict(answer.headers), answer.body)
        assert testing.support(dialect).error(reply, 401, "unauthenticated") == "Invalid login"


async def test_one_dialects_secret_does_not_open_the_other_basic_dialect(client: Client) -> None:
    invoice = await new_invoice(client)
    harvest_with_fastbill_key = basic("acme@example.com", "acme-fastbill")
    fastbill_with_harvest_password = basic("acme@example.com", "acme-harvest")
    answer = await send(
        client, "GET", list_path("harvest", invoice["id"]), headers=harvest_with_fastbill_key
    )
    assert (answer.status, answer.body) == (401, rails_xml("Invalid login"))
    answer = await send(
        client, "GET", list_path("fastbill", invoice["id"]), headers=fastbill_with_harvest_password
    )
    assert (answer.status, answer.body) == (401, rails_xml("Invalid login"))


@pytest.mark.parametrize(
    "header,message",
    [
        ("Basic !!!not-base64!!!", "Malformed Basic credentials"),
        ("Basic " + b64(b"\xff\xfe:x"), "Malformed Basic credentials"),
        ("Basic " + b64(b"no-colon-here"), "Invalid login"),
        ("Basic " + b64(b"acme@example.com:"), "Invalid login"),
        ("Basic " + b64(b":acme-harvest"), "Invalid login"),
        ("Bearer acme-harvest", "Authentication required"),
        ("acme@example.com:acme-harvest", "Authentication required"),
    ],
)
async def test_harvest_refuses_malformed_basic_headers(
    client: Client, header: str, message: str
) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client, "GET", list_path("harvest", invoice["id"]), headers={"Authorization": header}
    )
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Harvest"'
    assert answer.body == rails_xml(message)


@pytest.mark.parametrize(
    "key", ["wrong-key", "globex-invoiless-", "acme-harvest", "ACME-INVOILESS"]
)
async def test_invoiless_refuses_a_wrong_api_key(client: Client, key: str) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client, "GET", list_path("invoiless", invoice["id"]), headers={"api-key": key}
    )
    assert answer.status == 401
    assert answer.json() == invoiless_error("unauthenticated", "Invalid api-key")


@pytest.mark.parametrize(
    "header", ["Bearer not-a-jwt", "Bearer ", "Basic YWNtZTphY21l", "Bearer a.b.c", "bearer x"]
)
async def test_urlkey_refuses_a_garbage_authorization_header(client: Client, header: str) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client, "GET", list_path("urlkey", invoice["id"]), headers={"Authorization": header}
    )
    body = assert_feathers(answer, 401)
    assert body["message"].startswith("Invalid authentication")


@pytest.mark.parametrize("dialect", ALL)
async def test_the_right_credentials_open_each_dialect(client: Client, dialect: str) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client, "GET", list_path(dialect, invoice["id"]), headers=credentials(dialect)
    )
    assert answer.status == 200, answer.body


# --- invoiless scopes -----------------------------------------------------------------


async def test_invoiless_scope_the_key_owns_is_served(client: Client) -> None:
    invoice = await new_invoice(client)
    headers = {**credentials("invoiless"), "scope-id": "acme-scope"}
    answer = await send(client, "GET", list_path("invoiless", invoice["id"]), headers=headers)
    assert answer.status == 200
    assert answer.json() == []


@pytest.mark.parametrize("scope", ["globex-scope", "no-such-scope", "", "ACME-SCOPE"])
async def test_invoiless_scope_the_key_does_not_own_is_403(client: Client, scope: str) -> None:
    invoice = await new_invoice(client)
    headers = {**credentials("invoiless"), "scope-id": scope}
    answer = await send(client, "GET", list_path("invoiless", invoice["id"]), headers=headers)
    assert answer.status == 403
    assert answer.content_type == JSON
    assert answer.json() == invoiless_error("forbidden", "This api-key has no access to that scope")


async def test_invoiless_bad_key_with_a_scope_is_still_401(client: Client) -> None:
    invoice = await new_invoice(client)
    headers = {"api-key": "wrong", "scope-id": "acme-scope"}
    answer = await send(client, "GET", list_path("invoiless", invoice["id"]), headers=headers)
    assert answer.status == 401
    assert answer.json() == invoiless_error("unauthenticated", "Invalid api-key")


# --- urlKey: POST /authentication ---------------------------------------------------


async def test_urlkey_app_secret_strategy_issues_a_token_that_opens_its_business(
    client: Client,
) -> None:
    invoice = await new_invoice(client)
    answer = await authenticate(client, APP_SECRET)
    assert answer.status == 201, answer.body
    assert answer.content_type is not None and answer.content_type.startswith("application/json")
    issued = answer.json()
    assert set(issued) == {"accessToken", "name", "appId"}
    assert issued["name"] == "acme-app"
    assert issued["appId"] == "acme-app"
    assert isinstance(issued["accessToken"], str) and issued["accessToken"].count(".") == 2

    claims = jwt.decode(issued["accessToken"], options={"verify_signature": False})
    assert claims["aud"] == "serana"
    assert claims["sub"] == "acme-app"
    assert 0 < claims["exp"] - claims["iat"] <= 86400

    token = bearer(issued["accessToken"])
    listed = await send(client, "GET", list_path("urlkey", invoice["id"]), headers=token)
    assert listed.status == 200, listed.body
    assert listed.json() == {"payments": []}
    created = await send(
        client,
        "POST",
        list_path("urlkey", invoice["id"]),
        headers={**token, "Content-Type": "application/json"},
        body='{"amount": 5, "paymentMethod": "CASH"}',
    )
    assert created.status == 201, created.body
    assert created.json()["appId"] == "acme-app"


async def test_urlkey_issued_token_does_not_open_another_business(client: Client) -> None:
    invoice = await new_invoice(client, tenant="globex")
    issued = (await authenticate(client, APP_SECRET)).json()
    answer = await send(
        client,
        "GET",
        list_path("urlkey", invoice["id"], tenant="globex"),
        headers=bearer(issued["accessToken"]),
    )
    assert_feathers(answer, 403, "This token does not open that business")


@pytest.mark.parametrize(
    "body",
    [
        {**APP_SECRET, "appSecret": "wrong-secret"},
        {**APP_SECRET, "appSecret": "globex-app-secret"},
        {**APP_SECRET, "appId": "globex-app"},  # acme's secret for globex's app
        {**APP_SECRET, "appId": "no-such-app"},
        {**APP_SECRET, "appSecret": ""},
        {**APP_SECRET, "appSecret": 12345},
        {"strategy": "app-secret", "appId": "acme-app"},
        {"strategy": "app-secret"},
    ],
    ids=[
        "wrong",
        "other-tenants",
        "other-app",
        "unknown-app",
        "empty",
        "number",
        "no-secret",
        "none",
    ],
)
async def test_urlkey_authentication_with_a_wrong_secret_is_401_feathers(
    client: Client, body: dict[str, Any]
) -> None:
    answer = await authenticate(client, body)
    assert answer.status == 401
    assert answer.json() == feathers(401, "Invalid login")


async def test_urlkey_authentication_with_another_strategy_is_400_feathers(
    client: Client,
) -> None:
    answer = await authenticate(client, {**APP_SECRET, "strategy": "local"})
    assert answer.json() == feathers(400, "strategy must be app-secret")
    assert answer.status == 400


async def test_urlkey_authentication_with_malformed_json_is_400_feathers(client: Client) -> None:
    answer = await send(
        client,
        "POST",
        "/authentication",
        headers={"Content-Type": "application/json"},
        body='{"strategy": "app-secret",',
    )
    body = assert_feathers(answer, 400)
    assert body["message"].startswith("Malformed JSON")


# --- urlKey: self-signed ES256 tokens and the attacks on them --------------------------


async def test_urlkey_es256_self_signed_token_is_accepted(client: Client) -> None:
    invoice = await new_invoice(client)
    token = self_signed_token("acme-app")
    answer = await send(client, "GET", list_path("urlkey", invoice["id"]), headers=bearer(token))
    assert answer.status == 200, answer.body
    assert answer.json() == {"payments": []}


async def test_urlkey_token_of_exactly_one_day_is_accepted(client: Client) -> None:
    invoice = await new_invoice(client)
    token = self_signed_token("acme-app", lifetime=86400)
    answer = await send(client, "GET", list_path("urlkey", invoice["id"]), headers=bearer(token))
    assert answer.status == 200, answer.body


async def test_urlkey_kid_and_jku_headers_are_ignored_on_a_good_token(client: Client) -> None:
    invoice = await new_invoice(client)
    token = jwt.encode(
        app_claims(),
        APP_KEY,
        algorithm="ES256",
        headers={"kid": "elsewhere", "jku": "https://attacker.example/jwks.json"},
    )
    answer = await send(client, "GET", list_path("urlkey", invoice["id"]), headers=bearer(token))
    assert answer.status == 200, answer.body


def _tampered_signature() -> str:
    header, payload, signature = self_signed_token("acme-app").split(".")
    raw = bytearray(b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def _tampered_payload() -> str:
    """A good token's signature over a payload changed afterwards (a longer life)."""
    header, payload, signature = self_signed_token("acme-app").split(".")
    claims = json.loads(b64url_decode(payload))
    claims["exp"] += 3600
    return f"{header}.{segment(claims)}.{signature}"


def _other_key_pointing_elsewhere(extra: dict[str, Any]) -> str:
    return jwt.encode(app_claims(), OTHER_KEY, algorithm="ES256", headers=extra)


def _attacker_jwk() -> dict[str, Any]:
    public = OTHER_KEY.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(public.x.to_bytes(32, "big")),
        "y": b64url(public.y.to_bytes(32, "big")),
    }


def _public_pem_bytes() -> bytes:
    return APP_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _attack(name: str) -> str:
    now = int(time.time())
    match name:
        case "alg-none":
            return unsigned_token(app_claims())
        case "alg-none-uppercase":
            return unsigned_token(app_claims(), alg="NONE")
        case "alg-none-as-gateway-issuer":
            claims = app_claims(iss=ISSUER, business="acme-biz")
            return unsigned_token(claims)
        case "hs256-with-public-pem":
            return hs256_token(app_claims(), APP_PUBLIC_PEM.encode())
        case "hs256-with-public-pem-bytes":
            return hs256_token(app_claims(), _public_pem_bytes().strip())
        case "hs256-with-public-pem-as-gateway-issuer":
            claims = app_claims(iss=ISSUER, business="acme-biz")
            return hs256_token(claims, APP_PUBLIC_PEM.encode())
        case "expired":
            return jwt.encode(
                app_claims(iat=now - 7200, exp=now - 3600), APP_KEY, algorithm="ES256"
            )
        case "iat-in-the-future":
            return jwt.encode(
                app_claims(iat=now + 3600, exp=now + 7200), APP_KEY, algorithm="ES256"
            )
        case "nbf-in-the-future":
            return jwt.encode(app_claims(nbf=now + 3600), APP_KEY, algorithm="ES256")
        case "wrong-aud":
            return jwt.encode(app_claims(aud="someone-else"), APP_KEY, algorithm="ES256")
        case "no-aud":
            claims = app_claims()
            del claims["aud"]
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "wrong-iss":
            return jwt.encode(app_claims(iss="someone-else"), APP_KEY, algorithm="ES256")
        case "sub-not-iss":
            return jwt.encode(app_claims(sub="globex-app"), APP_KEY, algorithm="ES256")
        case "lifetime-over-a-day":
            return self_signed_token("acme-app", lifetime=86401)
        case "lifetime-over-a-day-iat-in-the-past":
            claims = app_claims(iat=now - 2 * 86400, exp=now + 3600)
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "no-exp":
            claims = app_claims()
            del claims["exp"]
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "no-iat":
            claims = app_claims()
            del claims["iat"]
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "string-times":
            claims = app_claims(iat=str(now), exp=str(now + 3600))
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "wrong-strategy":
            claims = app_claims(auth={"entity": "app", "strategy": "app-secret"})
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "no-auth-claim":
            claims = app_claims()
            del claims["auth"]
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "kid-elsewhere-other-key":
            return _other_key_pointing_elsewhere({"kid": "attacker-key"})
        case "jku-elsewhere-other-key":
            return _other_key_pointing_elsewhere(
                {"kid": "attacker-key", "jku": "https://attacker.example/jwks.json"}
            )
        case "x5u-elsewhere-other-key":
            return _other_key_pointing_elsewhere({"x5u": "https://attacker.example/cert.pem"})
        case "embedded-jwk-other-key":
            return _other_key_pointing_elsewhere({"jwk": _attacker_jwk()})
        case "tampered-signature":
            return _tampered_signature()
        case "tampered-payload":
            return _tampered_payload()
        case "es256-claiming-gateway-issuer":
            claims = app_claims(iss=ISSUER, business="acme-biz")
            return jwt.encode(claims, APP_KEY, algorithm="ES256")
        case "gateway-issuer-with-guessed-secret":
            claims = app_claims(iss=ISSUER, business="acme-biz")
            return hs256_token(claims, b"test-token-secret-guess-guess-guess")
    raise AssertionError(name)


ATTACKS = [
    "alg-none",
    "alg-none-uppercase",
    "alg-none-as-gateway-issuer",
    "hs256-with-public-pem",
    "hs256-with-public-pem-bytes",
    "hs256-with-public-pem-as-gateway-issuer",
    "expired",
    "iat-in-the-future",
    "nbf-in-the-future",
    "wrong-aud",
    "no-aud",
    "wrong-iss",
    "sub-not-iss",
    "lifetime-over-a-day",
    "lifetime-over-a-day-iat-in-the-past",
    "no-exp",
    "no-iat",
    "string-times",
    "wrong-strategy",
    "no-auth-claim",
    "kid-elsewhere-other-key",
    "jku-elsewhere-other-key",
    "x5u-elsewhere-other-key",
    "embedded-jwk-other-key",
    "tampered-signature",
    "tampered-payload",
    "es256-claiming-gateway-issuer",
    "gateway-issuer-with-guessed-secret",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_urlkey_refuses_forged_or_unacceptable_tokens_with_401(
    client: Client, attack: str
) -> None:
    invoice = await new_invoice(client)
    token = _attack(attack)
    for method, body in (("GET", None), ("POST", '{"amount": 5, "paymentMethod": "CASH"}')):
        answer = await send(
            client,
            method,
            list_path("urlkey", invoice["id"]),
            headers={**bearer(token), "Content-Type": "application/json"},
            body=body,
        )
        payload = assert_feathers(answer, 401)
        assert payload["message"].startswith("Invalid authentication"), payload
    state = await send(
        client, "GET", list_path("urlkey", invoice["id"]), headers=credentials("urlkey")
    )
    assert state.json() == {"payments": []}


@pytest.mark.parametrize("issued", [False, True], ids=["self-signed", "issued"])
async def test_urlkey_valid_acme_token_on_globex_business_is_403(
    client: Client, issued: bool
) -> None:
    invoice = await new_invoice(client, tenant="globex")
    if issued:
        token = (await authenticate(client, APP_SECRET)).json()["accessToken"]
    else:
        token = self_signed_token("acme-app")
    for business in ("globex-biz", "no-such-biz"):
        path = f"/businesses/{business}/invoices/{hexid(invoice['id'])}/payments"
        for method, body in (("GET", None), ("POST", '{"amount": 5}')):
            answer = await send(
                client,
                method,
                path,
                headers={**bearer(token), "Content-Type": "application/json"},
                body=body,
            )
            assert answer.json() == feathers(403, "This token does not open that business")
            assert answer.status == 403


# --- the shipped config.yaml: scrypt-hashed demo credentials -----------------------------


async def test_shipped_config_demo_credentials_work(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    shipped = gateway_config.load(ROOT / "config.yaml", environ={})
    config = shipped.model_copy(update={"database": database})
    client = await aiohttp_client(create_app(config))
    admin = {"Authorization": f"Bearer {config.admin_token}"}
    created = await send(
        client,
        "POST",
        "/gateway/v1/invoices",
        headers={**admin, "Content-Type": "application/json"},
        body=json.dumps(
            {
                "tenant": "demo",
                "number": "DEMO-1",
                "currency": "EUR",
                "total": "100.00",
                "issued_on": "2026-01-01",
                "due_on": "2999-12-31",
            }
        ),
    )
    assert created.status == 201, created.body
    invoice = int(created.json()["id"])

    harvest = basic("demo@example.com", "demo-harvest-password")
    fastbill = basic("demo@example.com", "demo-fastbill-key")
    invoiless = {"api-key": "demo-invoiless-key"}
    for _ in range(2):  # the second round is served from the verified-credential cache
        for path, headers in (
            (f"/invoices/{invoice}/payments", harvest),
            (f"/api/invoice-payments?invoice_id={invoice}", fastbill),
            (f"/v1/invoices/{invoice}/payments", invoiless),
            (f"/v1/invoices/{invoice}/payments", {**invoiless, "scope-id": "demo"}),
        ):
            answer = await send(client, "GET", path, headers=headers)
            assert answer.status == 200, (path, answer.body)

    issued = await authenticate(
        client, {"strategy": "app-secret", "appId": "demo-app", "appSecret": "demo-app-secret"}
    )
    assert issued.status == 201, issued.body
    assert issued.json()["appId"] == "demo-app"
    assert issued.json()["name"] == "Demo App"
    token = bearer(issued.json()["accessToken"])
    answer = await send(
        client, "GET", f"/businesses/demo/invoices/{hexid(invoice)}/payments", headers=token
    )
    assert answer.status == 200, answer.body
    assert answer.json() == {"payments": []}


async def test_shipped_config_refuses_wrong_and_hash_as_password(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    shipped = gateway_config.load(ROOT / "config.yaml", environ={})
    config = shipped.model_copy(update={"database": database})
    client = await aiohttp_client(create_app(config))
    stored = config.tenants["demo"].section("harvest").users[0].password
    for secret in ("wrong-password", stored, "demo-harvest-password "):
        answer = await send(
            client, "GET", "/invoices/1/payments", headers=basic("demo@example.com", secret)
        )
        assert (answer.status, answer.body) == (401, rails_xml("Invalid login"))
    answer = await send(
        client, "GET", "/v1/invoices/1/payments", headers={"api-key": "demo-invoiless-key-x"}
    )
    assert answer.status == 401
    answer = await authenticate(
        client, {"strategy": "app-secret", "appId": "demo-app", "appSecret": "demo-app-secre"}
    )
    assert answer.json() == feathers(401, "Invalid login")


# --- the admin API ------------------------------------------------------------------


ADMIN_CALLS = [
    ("POST", "/gateway/v1/invoices"),
    ("GET", "/gateway/v1/invoices/1"),
    ("GET", "/gateway/v1/payments/1"),
    ("GET", "/gateway/v1/ids/harvest/invoice/1"),
]


@pytest.mark.parametrize("method,path", ADMIN_CALLS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Bearer ",
        "Bearer test-admin-token-and-more",
        "Basic dGVzdC1hZG1pbi10b2tlbg==",
        "test-admin-token",
    ],
)
async def test_admin_api_without_the_admin_bearer_is_401_canonical_json(
    client: Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = await send(
        client, method, path, headers=headers, body="{}" if method == "POST" else None
    )
    assert answer.status == 401
    assert answer.content_type == JSON
    assert answer.json() == {
        "error": {"code": "unauthenticated", "message": "Admin token required"}
    }


async def test_dialect_credentials_do_not_open_the_admin_api(client: Client) -> None:
    for dialect in ALL:
        answer = await send(client, "GET", "/gateway/v1/invoices/1", headers=credentials(dialect))
        assert answer.status == 401, dialect
        assert answer.json()["error"]["code"] == "unauthenticated"


async def test_admin_api_with_the_admin_bearer_is_served(client: Client) -> None:
    invoice = await new_invoice(client)
    answer = await send(
        client,
        "GET",
        f"/gateway/v1/invoices/{invoice['id']}",
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert answer.status == 200
    assert answer.json()["id"] == invoice["id"]


async def test_authorization_schemes_are_matched_case_insensitively(client: Client) -> None:
    basic_lower = "basic " + base64.b64encode(b"acme@example.com:acme-harvest").decode()
    invoice = await new_invoice(client)
    async with client.get(
        f"/invoices/{invoice['id']}/payments", headers={"Authorization": basic_lower}
    ) as response:
        assert response.status == 200
    token = self_signed_token("acme-app")
    path = f"/businesses/acme-biz/invoices/{hexid(invoice['id'])}/payments"
    async with client.get(path, headers={"Authorization": f"BEARER {token}"}) as response:
        assert response.status == 200
