"""Helpers for the auth, isolation and error tests: raw calls and each dialect's shapes.

Expected shapes are written out from the spec (`dialects.md`), not taken from the
gateway's own encoders, so a change in an encoder shows up here as a failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDictProxy

from dialects import testing
from dialects.model import Invoice, Payment
from gateway.serving.state import GATEWAY
from gateway.store import SQLiteStore

from ..conftest import Client
from ..registry import ALL

DIALECTS = ALL
XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Ids no test ever creates: far past anything a fresh ledger hands out.
NEVER_INVOICE = 987_654_321
NEVER_PAYMENT = 987_654_322


@dataclass(frozen=True)
class Answer:
    """One response, fully read."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


async def send(
    client: Client,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> Answer:
    data = body.encode() if isinstance(body, str) else body
    async with client.request(method, path, headers=headers or {}, data=data) as response:
        return Answer(response.status, response.headers, await response.read())


# --- credentials and paths, per dialect ------------------------------------------------


def credentials(dialect: str, tenant: str = "acme") -> dict[str, str]:
    """The working credentials of `tenant` in `dialect` (see tests/support.py)."""
    return testing.support(dialect).credentials(tenant)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def list_path(dialect: str, invoice: int, tenant: str = "acme") -> str:
    return testing.support(dialect).listing(tenant, invoice).path


def create_request(
    dialect: str, invoice: int, amount: str = "10.00", tenant: str = "acme"
) -> tuple[str, str, dict[str, str]]:
    """(path, body, headers) of a valid create in `dialect`."""
    request = testing.support(dialect).create(tenant, invoice, amount)
    return request.path, (request.body or b"").decode(), dict(request.headers)


def payment_path(dialect: str, invoice: int, payment: int) -> str:
    """The get/delete path of one payment (for dialects that have one)."""
    request = testing.support(dialect).delete("acme", invoice, payment)
    assert request is not None, dialect
    return request.path


# --- expected error shapes -------------------------------------------------------------


def rails_xml(*messages: str) -> bytes:
    """Rails' `<errors>` document, as harvest and fastbill write it."""
    items = "".join(f"\n  <error>{escape(message)}</error>" for message in messages)
    return f"{DECLARATION}<errors>{items}\n</errors>\n".encode()


def rails_json(*messages: str) -> dict[str, Any]:
    return {"errors": list(messages)}


def invoiless_error(
    code: str, message: str, fields: dict[str, str] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


FEATHERS_NAMES = {
    400: ("BadRequest", "bad-request"),
    401: ("NotAuthenticated", "not-authenticated"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "not-found"),
    405: ("MethodNotAllowed", "method-not-allowed"),
    406: ("NotAcceptable", "not-acceptable"),
    413: ("PayloadTooLarge", "payload-too-large"),
    415: ("UnsupportedMediaType", "unsupported-media-type"),
    422: ("Unprocessable", "unprocessable"),
    429: ("TooManyRequests", "too-many-requests"),
    500: ("GeneralError", "general-error"),
}


def feathers(code: int, message: str, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """A Feathers.js error object, the shape of every urlKey error."""
    name, class_name = FEATHERS_NAMES[code]
    return {
        "name": name,
        "message": message,
        "code": code,
        "className": class_name,
        "data": {"message": message},
        "errors": errors or {},
    }


def assert_feathers(answer: Answer, code: int, message: str | None = None) -> dict[str, Any]:
    """A Feathers error of status `code`; `message` None checks everything but the message."""
    assert answer.status == code, answer.body
    assert answer.content_type == JSON
    body: dict[str, Any] = answer.json()
    expected = feathers(code, body["message"] if message is None else message)
    assert body == expected
    return body


# --- JWTs, forged by hand -----------------------------------------------------------

OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(document: dict[str, Any]) -> str:
    return b64url(json.dumps(document, separators=(",", ":")).encode())


def app_claims(app_id: str = "acme-app", **overrides: Any) -> dict[str, Any]:
    """The claims of a good self-signed urlKey token, with `overrides` applied."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": app_id,
        "sub": app_id,
        "aud": "serana",
        "auth": {"entity": "app", "strategy": "app-iss-app-token"},
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return claims


def unsigned_token(claims: dict[str, Any], alg: str = "none") -> str:
    return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}."


def hs256_token(claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}"
    signature = hmac.digest(secret, signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64url(signature)}"


# --- app plumbing --------------------------------------------------------------------


def freeze_rate_clock(app: web.Application, at: float = 1000.0) -> list[float]:
    """Stop the rate limiter's clock at `at`; move it by changing the returned cell."""
    now = [at]
    app[GATEWAY].limits.clock = lambda: now[0]
    return now


SECRET_DETAIL = "store exploded: password=hunter2 at /srv/secret/ledger.db"


class FailingStore(SQLiteStore):
    """A real SQLite store whose reads of payments and invoices blow up."""

    async def payment(self, tenant: str, payment_id: int, **kwargs: Any) -> Payment | None:
        raise RuntimeError(SECRET_DETAIL)

    async def invoice(
        self, tenant: str, invoice_id: int, *args: Any, **kwargs: Any
    ) -> Invoice | None:
        raise RuntimeError(SECRET_DETAIL)

    async def listing(self, tenant: str, invoice_id: int, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET_DETAIL)


def sqlite_path(database: str) -> str:
    """The file of a `sqlite:///...` URL, as gateway.store.open_store reads it."""
    return database.removeprefix("sqlite://").removeprefix("/")
