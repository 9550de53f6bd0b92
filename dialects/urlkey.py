"""Refrens (urlKey): JSON, 24-hex ObjectId-style ids, Feathers.js errors."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import jwt
from pydantic import Field, model_validator

from . import _json, _values
from .base import Kind, Reply, Spec
from .errors import BadRequest, GatewayError, NotAuthenticated, UpstreamError
from .jsonapi import JsonCodec, JsonDialect
from .model import Method
from .unit import (
    BackendConfig,
    BearerAuth,
    ClientAuth,
    Credential,
    DialectUnit,
    Op,
    Route,
    Section,
    SelfSignedToken,
    Strict,
    TokenEndpoint,
    TokenGrant,
)

# The audience of every Refrens token, and the claims of an app's own (self-signed) one.
AUDIENCE = "serana"
SELF_SIGNED = {"entity": "app", "strategy": "app-iss-app-token"}

_HEX24 = re.compile(r"[0-9a-f]{24}")

# Feathers.js error names by status.
_FEATHERS = {
    400: "BadRequest",
    401: "NotAuthenticated",
    402: "PaymentError",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "Timeout",
    409: "Conflict",
    411: "LengthRequired",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    500: "GeneralError",
    501: "NotImplemented",
    502: "BadGateway",
    503: "Unavailable",
    504: "GatewayTimeout",
}


def business_id(tenant: str | None) -> str | None:
    """The 24-hex id a tenant's business shows in urlKey documents."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:24] if tenant else None


class UrlKeyJson(JsonCodec):
    """UrlKey's error bodies, written and read."""

    def encode_error(self, error: GatewayError) -> Reply:
        return feathers_error(
            self.dialect.status_of(error), error.message, self.dialect.wire_fields(error), error
        )

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        document = _json.loads(body) if body else None
        if not isinstance(document, dict):
            return "Request refused", {}
        errors = document.get("errors")
        problems = {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}
        return str(document.get("message") or "Request refused"), problems


class UrlKey(JsonDialect):
    codec_types = {"json": UrlKeyJson}
    name = "urlkey"
    list_key = "payments"
    fields = (
        Spec("tds", "tax_withheld", Kind.MONEY),
        Spec("transactionCharge", "fee", Kind.MONEY),
        Spec("amount", "amount", Kind.AMOUNT),
        Spec("paymentDate", "paid_at", Kind.DATETIME),
        Spec("paymentMethod", "method", Kind.METHOD),
        Spec("notes", "notes", Kind.TEXT),
        Spec("refId", "reference", Kind.TEXT),
        Spec(
            "business",
            "business",
            Kind.CONST,
            value=lambda p: business_id(p.tenant),
            reads=("tenant",),
        ),
        Spec("payerBusiness", "payer_business", Kind.CONST, value=lambda p: None, reads=()),
        Spec("isApproved", "approved", Kind.CONST, value=lambda p: True, reads=()),
        Spec("isRemoved", "removed", Kind.CONST, value=lambda p: False, reads=()),
        Spec("appId", "client_app", Kind.TEXT, server_owned=True),
        Spec("_id", "id", Kind.ID, server_owned=True),
    )
    required = frozenset({"amount"})
    methods = {
        "ACCOUNT_TRANSFER": Method.BANK_TRANSFER,
        "CASH": Method.CASH,
        "CHEQUE": Method.CHEQUE,
        "CREDIT_CARD": Method.CREDIT_CARD,
        "DEBIT_CARD": Method.DEBIT_CARD,
        "DD": Method.DEMAND_DRAFT,
        "UPI": Method.UPI,
    }
    method_words = {
        Method.CASH: "CASH",
        Method.CHEQUE: "CHEQUE",
        Method.CARD: "DEBIT_CARD",
        Method.CREDIT_CARD: "CREDIT_CARD",
        Method.DEBIT_CARD: "DEBIT_CARD",
        Method.BANK_TRANSFER: "ACCOUNT_TRANSFER",
        Method.DIRECT_DEBIT: "ACCOUNT_TRANSFER",
        Method.PAYPAL: "ACCOUNT_TRANSFER",
        Method.UPI: "UPI",
        Method.DEMAND_DRAFT: "DD",
    }
    # credit_note, coupon and other have no urlKey word: shown as null, with a warning.
    method_fallback = None
    statuses = {"validation": 400}
    id_limit = 16**24  # what 24 hex digits hold
    id_format = "024x"

    def parse_id(self, text: object) -> int | None:
        if not isinstance(text, str) or not _HEX24.fullmatch(text):
            return None
        return _values.ascii_number(text, digits=24, base=16) or None

    def datetime(self, moment: datetime) -> str:
        return _values.iso_z(moment, millis=True)

    def datetime_text(self, stored: str) -> str:
        return _values.iso_z_text(stored, millis=True)


def feathers_error(
    status: int, message: str, fields: dict[str, str], error: GatewayError | None = None
) -> Reply:
    """A Feathers.js error object, the shape of every urlKey error."""
    name = _FEATHERS.get(status, "GeneralError")
    class_name = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    data: dict[str, Any] = {"message": message}
    body = {
        "name": name,
        "message": message,
        "code": status,
        "className": class_name,
        "data": data,
        "errors": fields,
    }
    return Reply(status, _json.dumps(body), error.headers() if error is not None else {})


# --- configuration: the business and its apps; the gateway as an app of a backend --------


class UrlKeyApp(Strict):
    app_id: str
    secret: str | None = None
    name: str = ""
    public_key: str | None = Field(default=None, description="PEM of the app's ES256 key")


class UrlKeyAuth(Section):
    business: str
    apps: tuple[UrlKeyApp, ...] = ()
    routing = ("business", "apps.*.app_id")

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(
            Credential(
                app.secret,
                app.name or app.app_id,
                label=app.app_id,
                login=app.app_id,
                app=app.app_id,
                public_key=app.public_key,
                scope=self.business,
            )
            for app in self.apps
        )


class UrlKeyBackend(BackendConfig):
    dialect: Literal["urlkey"]
    business: str | None = None
    app_id: str | None = None
    app_secret: str | None = None
    private_key: str | None = Field(default=None, description="PEM of an ES256 key")
    needs = ("business", "app_id", "app_secret or private_key")

    @model_validator(mode="after")
    def _readable_key(self) -> UrlKeyBackend:
        if self.private_key is not None:
            _check_es256_private_key(self.private_key)
        return self

    def client_auth(self) -> ClientAuth:
        app_id = self.app_id or ""
        if self.private_key:
            return SelfSignedToken(self.private_key, lambda now, exp: _app_claims(app_id, now, exp))
        body = {"strategy": "app-secret", "appId": app_id, "appSecret": self.app_secret}
        headers = {"Content-Type": "application/json"}
        return TokenGrant("/authentication", _json.dumps(body), headers, _token_from)

    def path_values(self) -> dict[str, str]:
        return {"business": self.business or ""}


def _app_claims(app_id: str, now: int, expires: int) -> dict[str, Any]:
    return {
        "iss": app_id,
        "sub": app_id,
        "aud": AUDIENCE,
        "auth": dict(SELF_SIGNED),
        "iat": now,
        "exp": expires,
    }


def _check_es256_private_key(pem: str) -> None:
    """Refuse at start-up a key that could only fail on the first request."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("private_key is not a readable PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("private_key must be a P-256 (ES256) key")


def _token_from(status: int, data: bytes) -> tuple[str, float | None]:
    """The token of a backend's `POST /authentication` answer, and when it expires."""
    try:
        token = _json.loads(data).get("accessToken") if status in (200, 201) else None
    except (GatewayError, AttributeError):
        token = None
    if not isinstance(token, str):
        raise UpstreamError("The backend refused the gateway's credentials")
    try:
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError as exc:
        raise UpstreamError("The backend issued an unreadable token") from exc
    return token, float(expires) if isinstance(expires, int | float) else time.time() + 300


# --- `POST /authentication`: an app secret for an access token ------------------------------


def _read_login(body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    document = _json.loads(body)
    if not isinstance(document, dict):
        raise BadRequest("Expected a JSON object")
    if document.get("strategy") != "app-secret":
        raise BadRequest("strategy must be app-secret")
    app_id, secret = document.get("appId"), document.get("appSecret")
    if not isinstance(app_id, str) or not isinstance(secret, str):
        raise NotAuthenticated("Invalid login")
    return app_id, secret


def _token_claims(credential: Credential) -> dict[str, Any]:
    return {"business": credential.scope, "auth": {"entity": "app", "strategy": "app-secret"}}


def _token_answer(token: str, credential: Credential, lifetime: int) -> tuple[int, str, bytes]:
    data = {"accessToken": token, "name": credential.name, "appId": credential.app}
    return 201, "application/json", _json.dumps(data)


_PAYMENTS = "/businesses/{business}/invoices/{invoice_id}/payments"

UNIT = DialectUnit(
    codec=UrlKey(),
    routes=(Route("POST", _PAYMENTS, Op.CREATE, 201), Route("GET", _PAYMENTS, Op.LIST)),
    prefixes=("/businesses/", "/authentication"),
    caller_auth=BearerAuth(
        AUDIENCE,
        scope=("path", "business"),
        scope_claim="business",
        claims={"auth": SELF_SIGNED},
        forbidden="This token does not open that business",
    ),
    token_endpoint=TokenEndpoint("/authentication", _read_login, _token_claims, _token_answer),
    section=UrlKeyAuth,
    backend=UrlKeyBackend,
    vendor=("urlkey", "refrens"),
    testing="dialects.testing.urlkey",
)
