"""urlKey's (Refrens') test client and samples: 24-hex ids, self-signed ES256 app tokens."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..urlkey import AUDIENCE, SELF_SIGNED
from . import JSON, Answer, Request, Support, View

# The key every test app signs its own tokens with; its public half is in the config.
APP_KEY = ec.generate_private_key(ec.SECP256R1())
APP_PUBLIC_PEM = (
    APP_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
FEATHERS = {
    400: "BadRequest", 401: "NotAuthenticated", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 408: "Timeout", 409: "Conflict",
    413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable",
    429: "TooManyRequests", 500: "GeneralError", 501: "NotImplemented", 502: "BadGateway",
    503: "Unavailable", 504: "GatewayTimeout",
}  # fmt: skip


def self_signed_token(app_id: str, *, lifetime: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": app_id,
        "sub": app_id,
        "aud": AUDIENCE,
        "auth": dict(SELF_SIGNED),
        "iat": now,
        "exp": now + lifetime,
        **claims,
    }
    return jwt.encode(payload, APP_KEY, algorithm="ES256")


class UrlKeySupport(Support):
    name = "urlkey"
    method = "upi"
    deleted_status = None
    list_path = "/businesses/{tenant}-biz/invoices/{invoice}/payments"

    def section(self, tenant: str) -> dict[str, Any]:
        app = {"app_id": f"{tenant}-app", "secret": f"{tenant}-app-secret",
               "public_key": APP_PUBLIC_PEM}  # fmt: skip
        return {"business": f"{tenant}-biz", "apps": [app]}

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        apps = [{**app, "secret": hash(app["secret"])} for app in section["apps"]]
        return {**section, "apps": apps}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {"business": f"{tenant}-biz", "app_id": f"{tenant}-app",
                "app_secret": f"{tenant}-app-secret"}  # fmt: skip

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return (f"{tenant}-app", f"{tenant}-app")

    def credentials(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self_signed_token(f'{tenant}-app')}"}

    def login(self, name: str, secret: str) -> Request:
        body = {"strategy": "app-secret", "appId": name, "appSecret": secret}
        return Request(
            "POST",
            "/authentication",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"paymentDate": f"{paid_on}T00:00:00.000Z", "paymentMethod": "UPI"}
        return data if notes is None else {**data, "notes": notes}

    def view(self, body: bytes) -> View:
        return _view(Answer(200, {}, body).json())

    def views(self, body: bytes) -> list[View]:
        return [_view(item) for item in Answer(200, {}, body).json()["payments"]]

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        """A Feathers.js error object, the shape of every urlKey error."""
        assert answer.status == status, (answer.status, answer.body[:500])
        assert answer.header("Content-Type") == JSON, answer.headers
        document = answer.json()
        assert set(document) == {"name", "message", "code", "className", "data", "errors"}
        assert document["code"] == status and document["name"] == FEATHERS[status], document
        assert document["className"] == re.sub(r"(?<!^)(?=[A-Z])", "-", document["name"]).lower()
        assert document["data"] == {"message": document["message"]}
        assert isinstance(document["errors"], dict)
        return str(document["message"]) + "".join(
            f"; {k} {v}" for k, v in document["errors"].items()
        )


def _view(item: dict[str, Any]) -> View:
    return {
        "id": int(item["_id"], 16),
        "amount": Decimal(str(item["amount"])),
        "notes": item["notes"],
        "paid_on": item["paymentDate"][:10],
    }


SUPPORT = UrlKeySupport()
