"""Configuration pieces several dialects share: Basic users, and Basic toward a backend."""

from __future__ import annotations

import base64

from .unit import BackendConfig, ClientAuth, Credential, StaticHeaders


def basic_header(user: str, secret: str) -> dict[str, str]:
    pair = f"{user}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def email_login(email: str, secret: str, name: str) -> Credential:
    """A Basic user known by email: the principal is named, and recorded, by it."""
    return Credential(secret, name or email, label=email, login=email, email=email)


class BasicBackend(BackendConfig):
    """A backend the gateway calls with HTTP Basic `user:password`."""

    user: str | None = None
    password: str | None = None
    needs = ("user", "password")

    def client_auth(self) -> ClientAuth:
        return StaticHeaders(basic_header(self.user or "", self.password or ""))
