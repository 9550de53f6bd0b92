"""Every bearer token's lifetime is capped: one that lives too long is refused as a bad token.

A token signed with the right key (the gateway's token secret leaked, or an app's clock
ran wild) but with an `exp` far away would otherwise open its scope for that long.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

import dialects
from dialects import testing
from dialects.testing.urlkey import APP_KEY
from dialects.unit import BearerAuth
from gateway.serving.state import GATEWAY

from ..conftest import Client
from ..support import new_invoice
from .helpers import bearer, list_path, send

BEARER = sorted(
    name for name, u in dialects.units().items() if isinstance(u.caller_auth, BearerAuth)
)
ISSUED = sorted(name for name in BEARER if dialects.unit(name).token_endpoint is not None)
LIFETIME = 3600  # tests.support's config: token_lifetime_seconds left at its default


def _stretched(claims: dict[str, Any], how: str, limit: int) -> dict[str, Any]:
    now = int(time.time())
    if how == "2^40 from iat":
        return {**claims, "iat": now, "exp": now + 2**40}
    if how == "past the limit from iat":
        return {**claims, "iat": now - 60, "exp": now - 60 + limit + 120}
    assert how == "past the limit from now, iat long ago"
    return {**claims, "iat": now - 10 * limit, "exp": now + limit + 120}


HOW = ["2^40 from iat", "past the limit from iat", "past the limit from now, iat long ago"]


async def _answers(client: Client, dialect: str, token: str) -> tuple[int, int]:
    """(status with `token`, status with it badly signed); refused alike."""
    invoice = await new_invoice(client)
    headers = testing.support(dialect).credentials("acme")
    path = list_path(dialect, invoice["id"])
    answer = await send(client, "GET", path, headers={**headers, **bearer(token)})
    bad = await send(client, "GET", path, headers={**headers, **bearer(token[:-4] + "AAAA")})
    if answer.status == bad.status:
        assert answer.content_type == bad.content_type
    return answer.status, bad.status


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("dialect", ISSUED)
async def test_an_issued_token_that_lives_too_long_is_refused(
    client: Client, dialect: str, how: str
) -> None:
    unit = dialects.unit(dialect)
    auth = client.app[GATEWAY].auth
    section = client.app[GATEWAY].config.tenants["acme"].section(dialect)
    credential = next(c for c in section.credentials() if c.secret)
    token, _ = await auth.issue(unit, credential.login or "", credential.secret or "")
    claims = jwt.decode(token, options={"verify_signature": False})
    key = auth._token_key(dialect)  # the gateway's own key: as if its secret had leaked

    genuine = await _answers(client, dialect, jwt.encode(claims, key, algorithm="HS256"))
    forged = jwt.encode(_stretched(claims, how, LIFETIME), key, algorithm="HS256")
    status, bad = await _answers(client, dialect, forged)

    assert genuine[0] == 200
    assert status == bad == 401


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("dialect", BEARER)
async def test_an_app_signed_token_that_lives_too_long_is_refused(
    client: Client, dialect: str, how: str
) -> None:
    scheme = dialects.unit(dialect).caller_auth
    assert isinstance(scheme, BearerAuth)
    presented = testing.support(dialect).credentials("acme")["Authorization"].split()[1]
    claims = jwt.decode(presented, options={"verify_signature": False})

    genuine = await _answers(client, dialect, jwt.encode(claims, APP_KEY, algorithm="ES256"))
    forged = jwt.encode(_stretched(claims, how, scheme.max_lifetime), APP_KEY, algorithm="ES256")
    status, bad = await _answers(client, dialect, forged)

    assert genuine[0] == 200
    assert status == bad == 401
