"""Hostile credentials: forged and misused JWTs, wrong Basic logins, api-keys and scopes.

Every attempt is a create with an otherwise good payment: refused in the dialect's
shape, in time, with nothing recorded. Secrets of tenant `hashed` are scrypt hashes,
as config.yaml stores them; refusing a guess of one takes a scrypt run on purpose, so
those cases are bounded by BOUND_MS plus that cost (measured here, on this machine).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import aiohttp
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from dialects import testing
from gateway.access import passwords
from gateway.config import hashes

from ..access.helpers import OTHER_KEY, app_claims, b64url, hs256_token, segment, unsigned_token
from ..registry import ALL, basic_auth, names
from ..support import APP_KEY, APP_PUBLIC_PEM, secret_checks, self_signed_token
from .conftest import Catalogue
from .harness import (
    ADMIN,
    BOUND_MS,
    FIGURES,
    MAX_RSS_GROWTH_MB,
    Answer,
    assert_error,
    basic,
    credentials,
    hexid,
    ledger,
    memory_kb,
    new_invoice,
    send,
    timed,
)


@cache
def scrypt_ms() -> float:
    """What one scrypt check of a config hash costs on this machine (best of three)."""
    stored = hashes.make_hash("probe")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        passwords._check(stored, "wrong")
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


async def scrypt_runs(http: aiohttp.ClientSession, url: str) -> float:
    """The scrypt checks the server has run (`gateway_secret_checks_total{form="scrypt"}`)."""
    text = (await send(http, url, "GET", "/metrics", headers=ADMIN)).body.decode()
    return secret_checks(text).get("scrypt", 0.0)


def hashed_bound() -> float:
    return BOUND_MS + 1.5 * scrypt_ms()


async def attempt(
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    dialect: str,
    auth: dict[str, str],
    *,
    tenant: str = "acme",
    business: str | None = None,
) -> tuple[Answer, Any, Any]:
    """A good create with `auth` as the only credentials: (answer, ledger before, after)."""
    invoice = await new_invoice(http, catalogue.url, tenant=tenant)
    before = await ledger(http, catalogue.url, invoice)
    if dialect == "harvest":
        path = f"/invoices/{invoice}/payments"
        body = ('<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
                '<amount type="decimal">10.00</amount></payment>')  # fmt: skip
        kind = "application/xml"
    elif dialect == "fastbill":
        path = "/api/invoice-payments"
        body = f"<invoice-payment><invoice_id>{invoice}</invoice_id><amount>10</amount></invoice-payment>"
        kind = "application/xml"
    elif dialect == "invoiless":
        path = f"/v1/invoices/{invoice}/payments"
        body = '{"amount": 10, "method": "Cash"}'
        kind = "application/json"
    elif dialect == "urlkey":
        path = f"/businesses/{business or tenant + '-biz'}/invoices/{hexid(invoice)}/payments"
        body = '{"amount": 10, "paymentMethod": "CASH"}'
        kind = "application/json"
    else:  # any other dialect: its own test support's create
        request = testing.support(dialect).create(tenant, invoice, "10.00")
        path, body = request.path, (request.body or b"").decode()
        kind = request.headers["Content-Type"]
    answer = await send(http, catalogue.url, "POST", path,
                        headers={**auth, "Content-Type": kind}, body=body)  # fmt: skip
    return answer, before, await ledger(http, catalogue.url, invoice)


# --- urlKey bearer JWTs -----------------------------------------------------------------


def es256(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey = APP_KEY,
          **headers: Any) -> str:  # fmt: skip
    return jwt.encode(claims, key, algorithm="ES256", headers=headers or None)


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big"))}  # fmt: skip


def tampered_signature() -> str:
    token = self_signed_token("acme-app")
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def tampered_payload() -> str:
    token = self_signed_token("acme-app")
    head, _, signature = token.split(".")
    return f"{head}.{segment(app_claims(exp=int(time.time()) + 80000))}.{signature}"


def issued_claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a token the gateway's POST /authentication would issue to acme-app."""
    now = int(time.time())
    claims = {"iss": "invoice-payments-gateway", "sub": "acme-app", "aud": "serana",
              "business": "acme-biz", "auth": {"entity": "app", "strategy": "app-secret"},
              "iat": now, "exp": now + 3600}  # fmt: skip
    return {**claims, **overrides}


def now() -> int:
    return int(time.time())


NOWHERE = "http://127.0.0.1:9"
TOKENS: list[tuple[str, Callable[[], str]]] = [
    ("alg-none", lambda: unsigned_token(app_claims())),
    ("alg-None", lambda: unsigned_token(app_claims(), alg="None")),
    ("alg-NONE-issued-claims", lambda: unsigned_token(issued_claims(), alg="NONE")),
    ("hs256-signed-with-the-public-key", lambda: hs256_token(app_claims(), APP_PUBLIC_PEM.encode())),
    ("hs256-issued-claims-signed-with-the-public-key",
     lambda: hs256_token(issued_claims(), APP_PUBLIC_PEM.encode())),
    ("hs256-issued-claims-guessed-secret", lambda: hs256_token(issued_claims(), b"secret")),
    ("hs256-issued-claims-raw-config-secret",
     lambda: hs256_token(issued_claims(), b"security-token-secret")),
    ("expired", lambda: es256(app_claims(iat=now() - 7200, exp=now() - 3600))),
    ("expired-past-leeway", lambda: es256(app_claims(iat=now() - 600, exp=now() - 31))),
    ("not-yet-valid", lambda: es256(app_claims(nbf=now() + 3600))),
    ("issued-in-the-future", lambda: es256(app_claims(iat=now() + 3600, exp=now() + 7200))),
    ("wrong-audience", lambda: es256(app_claims(aud="someone-else"))),
    ("no-audience", lambda: es256({k: v for k, v in app_claims().items() if k != "aud"})),
    ("unknown-issuer", lambda: es256(app_claims("mallory-app"))),
    ("issuer-not-subject", lambda: es256(app_claims(sub="globex-app"))),
    ("kid-picks-a-key", lambda: es256(app_claims(), OTHER_KEY, kid="../../../../dev/null")),
    ("jku-picks-a-key", lambda: es256(app_claims(), OTHER_KEY, jku=f"{NOWHERE}/jwks.json")),
    ("x5u-picks-a-key", lambda: es256(app_claims(), OTHER_KEY, x5u=f"{NOWHERE}/cert.pem")),
    ("embedded-jwk", lambda: es256(app_claims(), OTHER_KEY, jwk=public_jwk(OTHER_KEY))),
    ("signed-by-another-key", lambda: es256(app_claims(), OTHER_KEY)),
    ("tampered-signature", tampered_signature),
    ("tampered-payload", tampered_payload),
    ("lifetime-over-a-day", lambda: es256(app_claims(exp=now() + 86401))),
    ("exp-as-string", lambda: es256(app_claims(exp=str(now() + 3600)))),
    ("wrong-strategy", lambda: es256(app_claims(auth={"entity": "app", "strategy": "app-secret"}))),
    ("user-entity", lambda: es256(app_claims(auth={"entity": "user", "strategy": "app-iss-app-token"}))),
    ("garbage", lambda: "abc"),
    ("three-empty-segments", lambda: ".."),
    ("header-not-json", lambda: f"{b64url(b'not json')}.{segment(app_claims())}.sig"),
    ("long-token", lambda: unsigned_token(app_claims(pad="x" * 5000))),
]  # fmt: skip


@pytest.mark.parametrize("make", [t[1] for t in TOKENS], ids=[t[0] for t in TOKENS])
async def test_forged_or_unacceptable_jwt_is_401(
    catalogue: Catalogue, http: aiohttp.ClientSession, make: Callable[[], str]
) -> None:
    token = make()
    answer, before, after = await attempt(catalogue, http, "urlkey",
                                          {"Authorization": f"Bearer {token}"})  # fmt: skip

    assert_error("urlkey", answer, "unauthenticated")
    name = next(n for n, m in TOKENS if m is make)
    timed(f"jwt {name}", answer)
    assert after == before


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic YWNtZS1hcHA6YWNtZS1hcHAtc2VjcmV0", "Token abc"],
    ids=["missing", "scheme-only", "empty-token", "basic-app-secret", "other-scheme"],
)
async def test_missing_or_wrong_authorization_scheme_is_401(
    catalogue: Catalogue, http: aiohttp.ClientSession, header: str
) -> None:
    auth = {"Authorization": header} if header else {}
    answer, before, after = await attempt(catalogue, http, "urlkey", auth)

    assert_error("urlkey", answer, "unauthenticated")
    timed(f"jwt header {header!r}", answer)
    assert after == before


@pytest.mark.parametrize(
    ("business", "issuer"),
    [("acme-biz", "globex"), ("no-such-biz", "acme")],
    ids=["another-tenants-business", "a-business-that-does-not-exist"],
)
async def test_a_valid_token_opens_only_its_own_business(
    catalogue: Catalogue, http: aiohttp.ClientSession, business: str, issuer: str
) -> None:
    """globex's good token on acme's business is answered as on one that does not exist."""
    answer, before, after = await attempt(
        catalogue, http, "urlkey", credentials("urlkey", issuer), business=business
    )

    assert_error("urlkey", answer, "forbidden", message="does not open that business")
    timed(f"jwt valid token on {business} ({issuer})", answer)
    assert after == before


async def test_an_issued_token_with_its_business_rewritten_is_401(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    """A token POST /authentication issued to globex, its business claim edited to acme's."""
    body = {"strategy": "app-secret", "appId": "globex-app", "appSecret": "globex-app-secret"}
    async with http.post(f"{catalogue.url}/authentication", json=body) as response:
        assert response.status == 201
        token = (await response.json())["accessToken"]
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = f"{head}.{segment({**claims, 'business': 'acme-biz', 'sub': 'acme-app'})}.{signature}"

    answer, before, after = await attempt(catalogue, http, "urlkey",
                                          {"Authorization": f"Bearer {forged}"})  # fmt: skip

    assert_error("urlkey", answer, "unauthenticated")
    timed("jwt issued token, business rewritten", answer)
    assert after == before


# --- Basic (Harvest, FastBill) --------------------------------------------------------


def raw_basic(value: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(value).decode()}


# Dialects whose callers log in with Basic; each is tried with another's secret too.
BASIC_DIALECTS = names(basic_auth)
BASIC = [
    ("wrong-password", lambda d: basic("acme@example.com", "guess")),
    ("empty-password", lambda d: basic("acme@example.com", "")),
    ("empty-user", lambda d: basic("", f"acme-{d}")),
    ("no-colon", lambda d: raw_basic(b"acme@example.com")),
    ("not-base64", lambda d: {"Authorization": "Basic !!!not-base64!!!"}),
    ("not-utf8", lambda d: raw_basic(b"acme@example.com:\xff\xfe")),
    ("scheme-only", lambda d: {"Authorization": "Basic"}),
    ("the-other-dialects-secret",
     lambda d: basic("acme@example.com", f"acme-{next(o for o in BASIC_DIALECTS if o != d)}")),
    ("another-tenants-secret", lambda d: basic("acme@example.com", f"globex-{d}")),
    ("secret-with-a-trailing-newline", lambda d: basic("acme@example.com", f"acme-{d}\n")),
    ("secret-prefix", lambda d: basic("acme@example.com", f"acme-{d}"[:-1])),
    ("missing", lambda d: {}),
]  # fmt: skip


@pytest.mark.parametrize("dialect", BASIC_DIALECTS)
@pytest.mark.parametrize("make", [b[1] for b in BASIC], ids=[b[0] for b in BASIC])
async def test_wrong_basic_credentials_are_401_with_the_challenge(
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    dialect: str,
    make: Callable[[str], dict[str, str]],
) -> None:
    answer, before, after = await attempt(catalogue, http, dialect, make(dialect))

    assert_error(dialect, answer, "unauthenticated")
    name = next(n for n, m in BASIC if m is make)
    timed(f"basic {name} ({dialect})", answer)
    assert after == before


@pytest.mark.parametrize("dialect", BASIC_DIALECTS)
@pytest.mark.parametrize(
    ("name", "user", "secret"),
    [
        ("wrong-password", "hashed@example.com", "guess"),
        ("the-stored-hash-itself", "hashed@example.com", None),
        ("unknown-user", "nobody@example.com", "guess"),
    ],
)
async def test_wrong_secrets_of_hashed_credentials_are_401(
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    dialect: str,
    name: str,
    user: str,
    secret: str | None,
) -> None:
    """Refused after one scrypt run: for an unknown user too, so time tells nothing."""
    if secret is None:
        config = yaml.safe_load((catalogue.server.log.parent / "catalogue.yaml").read_text())
        user_entry = config["tenants"]["hashed"][dialect]["users"][0]
        secret = next(v for v in user_entry.values() if isinstance(v, str) and hashes.is_hash(v))
    runs = await scrypt_runs(http, catalogue.url)
    answer, before, after = await attempt(catalogue, http, dialect, basic(user, secret),
                                          tenant="hashed")  # fmt: skip

    assert_error(dialect, answer, "unauthenticated")
    timed(f"basic hashed {name} ({dialect})", answer, bound_ms=hashed_bound())
    assert await scrypt_runs(http, catalogue.url) - runs == 1, "checked, not skipped"
    assert after == before


async def test_hashed_credentials_open_their_tenant(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    """The hashes are real: the right secrets work in every dialect."""
    for dialect in ALL:
        answer, _, after = await attempt(catalogue, http, dialect,
                                         credentials(dialect, "hashed"), tenant="hashed")  # fmt: skip
        assert answer.status == testing.support(dialect).create_status, (dialect, answer.body)
        assert len(after[0][2]) == 1


# --- Invoiless api-key, scope-id ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({}, "unauthenticated"),
        ({"api-key": ""}, "unauthenticated"),
        ({"api-key": "guess"}, "unauthenticated"),
        ({"api-key": "acme-invoiless-"}, "unauthenticated"),
        ({"api-key": "acme-harvest"}, "unauthenticated"),
        ({"Authorization": "Bearer acme-invoiless"}, "unauthenticated"),
        ({"api-key": "acme-invoiless", "scope-id": "globex-scope"}, "forbidden"),
        ({"api-key": "acme-invoiless", "scope-id": "no-such-scope"}, "forbidden"),
        ({"api-key": "acme-invoiless", "scope-id": ""}, "forbidden"),
        ({"api-key": "guess", "scope-id": "acme-scope"}, "unauthenticated"),
    ],
    ids=["missing", "empty", "wrong", "key-plus-one", "another-dialects-secret",
         "as-a-bearer", "scope-of-another-tenant", "unknown-scope", "empty-scope",
         "wrong-key-good-scope"],
)  # fmt: skip
async def test_wrong_api_key_or_scope_is_refused(
    catalogue: Catalogue, http: aiohttp.ClientSession, headers: dict[str, str], kind: str
) -> None:
    answer, before, after = await attempt(catalogue, http, "invoiless", headers)

    assert_error("invoiless", answer, kind)
    # An unknown key is checked against every configured key, `hashed`'s scrypt hash too.
    checked = kind == "unauthenticated" and bool(headers.get("api-key"))
    bound = hashed_bound() if checked else BOUND_MS
    timed(f"api-key {sorted(headers.items())}", answer, bound)
    assert after == before


async def test_wrong_hashed_api_key_is_401(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    answer, before, after = await attempt(catalogue, http, "invoiless", {"api-key": "guess"},
                                          tenant="hashed")  # fmt: skip

    assert_error("invoiless", answer, "unauthenticated")
    timed("api-key hashed wrong", answer, bound_ms=hashed_bound())
    assert after == before


# --- POST /authentication and the admin API ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "hashed"),
    [
        ({"strategy": "app-secret", "appId": "acme-app", "appSecret": "guess"},
         "unauthenticated", False),
        ({"strategy": "app-secret", "appId": "acme-app", "appSecret": ""},
         "unauthenticated", False),
        ({"strategy": "app-secret", "appId": "hashed-app", "appSecret": "guess"},
         "unauthenticated", True),
        ({"strategy": "app-secret", "appId": "mallory-app", "appSecret": "guess"},
         "unauthenticated", True),
        ({"strategy": "local", "email": "acme@example.com", "password": "acme-harvest"},
         "bad_request", False),
        ({"strategy": "jwt", "accessToken": "x"}, "bad_request", False),
    ],
    ids=["wrong-secret", "empty-secret", "hashed-wrong-secret", "unknown-app",
         "local-strategy", "jwt-strategy"],
)  # fmt: skip
async def test_authentication_refuses_wrong_app_secrets(
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    body: dict[str, str],
    kind: str,
    hashed: bool,
) -> None:
    """An unknown app is checked against a decoy hash: as slow as a known app's wrong secret
    (a scrypt run, counted on /metrics, rather than timed)."""
    before = await scrypt_runs(http, catalogue.url)
    answer = await send(http, catalogue.url, "POST", "/authentication",
                        headers={"Content-Type": "application/json"},
                        body=json.dumps(body))  # fmt: skip

    assert_error("urlkey", answer, kind)
    bound = hashed_bound() if hashed else BOUND_MS
    timed(f"/authentication {body.get('appId', body['strategy'])}", answer, bound)
    if hashed:  # the decoy, or the hashed app's secret, checked by one scrypt run
        assert await scrypt_runs(http, catalogue.url) - before == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer guess"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
     {"Authorization": f"Bearer {'x' * 4000}"}, credentials("invoiless")],
    ids=["missing", "wrong", "basic", "long", "dialect-credentials"],
)  # fmt: skip
async def test_admin_api_refuses_without_its_token(
    catalogue: Catalogue, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    body = json.dumps({"tenant": "acme", "number": "X", "currency": "EUR", "total": "1",
                       "issued_on": "2026-01-01", "due_on": "2026-01-02"})  # fmt: skip

    for method, path, data in [
        ("GET", f"/gateway/v1/invoices/{invoice}", None),
        ("POST", "/gateway/v1/invoices", body),
    ]:
        answer = await send(http, catalogue.url, method, path,
                            headers={**headers, "Content-Type": "application/json"},
                            body=data)  # fmt: skip
        assert_error("admin", answer, "unauthenticated")
        timed(f"admin {method} {sorted(headers)}", answer)
    assert await ledger(http, catalogue.url, invoice) == before


async def test_a_flood_of_hashed_secret_guesses_queues_in_bounded_memory(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    """Each scrypt check takes 16 MiB: 24 guesses at once run two at a time, not 24."""
    invoice = await new_invoice(http, catalogue.url, tenant="hashed")
    before = await ledger(http, catalogue.url, invoice)
    runs = await scrypt_runs(http, catalogue.url)
    guesses = [
        send(
            http,
            catalogue.url,
            "GET",
            f"/invoices/{invoice}/payments",
            headers=basic("hashed@example.com", f"guess-{n}"),
        )  # fmt: skip
        for n in range(24)
    ]

    answers = await asyncio.gather(*guesses)

    assert {a.status for a in answers} == {401}
    growth_mb = (memory_kb(catalogue.pid)["VmHWM"] - FIGURES.rss_baseline_kb) / 1024
    assert growth_mb < MAX_RSS_GROWTH_MB, f"peak RSS grew {growth_mb:.1f} MB"
    assert await scrypt_runs(http, catalogue.url) - runs == 24, "each guess checked"
    assert await ledger(http, catalogue.url, invoice) == before
