"""What checking a login costs, counted rather than timed, on a real server.

Every check of a secret not proven before is counted by the form it takes
(`gateway_secret_checks_total{form}` on /metrics): a plain comparison or a scrypt run.
An identity that does not exist must cost what a wrong secret of one that does costs,
whatever form the configured secrets have, in every dialect that takes a login and a
secret (Basic, and the token endpoints); a secret proven before costs nothing; and a
spray from many addresses is bounded over the whole process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import dialects
from dialects import testing
from dialects.unit import BasicAuth
from gateway.config import hashes
from gateway.serving.app import create_app

from ..conftest import AiohttpClient, Client
from ..security.harness import hashed_tenant
from ..support import ADMIN, make_config, secret_checks, tenant_config

# (method, path, headers, body) of a login attempt naming `login` with `secret`.
Login = tuple[str, str, dict[str, str], bytes | None]


def attempt_of(dialect: str) -> Callable[[str, str], Login]:
    def attempt(login: str, secret: str) -> Login:
        request = testing.support(dialect).login(login, secret)
        return request.method, request.path, dict(request.headers), request.body

    return attempt


# Every dialect a caller logs in to with a name and a secret: Basic, or a token endpoint.
WITH_LOGINS = sorted(
    name
    for name, unit in dialects.units().items()
    if isinstance(unit.caller_auth, BasicAuth) or unit.token_endpoint is not None
)


LOGINS = {dialect: attempt_of(dialect) for dialect in WITH_LOGINS}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashes, "_N", 16)  # the tests count scrypt runs, not wait for them


def known(tenant: str, dialect: str) -> tuple[str, str]:
    """A configured login of `tenant` in `dialect`, and its plain secret."""
    plain = make_config("sqlite:///unused.db", tenants={tenant: tenant_config(tenant)})
    [credential] = [c for c in plain.tenants[tenant].section(dialect).credentials() if c.secret]
    assert credential.login is not None and credential.secret is not None
    return credential.login, credential.secret


def tenant(name: str, hashed: str | None) -> dict[str, Any]:
    """`name`'s config, its secrets plain, or hashed in dialect `hashed` ("*": in all)."""
    if hashed == "*":
        return hashed_tenant(name)
    config = tenant_config(name)
    if hashed is not None:
        config[hashed] = testing.support(hashed).hashed(config[hashed], hashes.make_hash)
    return config


async def checks(client: Client) -> dict[str, float]:
    """The secret checks counted so far, by form."""
    async with client.get("/metrics", headers=ADMIN) as response:
        return secret_checks(await response.text())


async def cost(client: Client, attempt: Login) -> tuple[int, dict[str, float]]:
    """The attempt's status, and the secret checks it made, by form."""
    before = await checks(client)
    method, path, headers, body = attempt
    async with client.request(method, path, headers=headers, data=body) as response:
        status = response.status
    after = await checks(client)
    return status, {
        form: n - before.get(form, 0) for form, n in after.items() if n > before.get(form, 0)
    }


async def server(
    aiohttp_client: AiohttpClient, database: str, tenants: dict[str, Any], **server: Any
) -> Client:
    config = make_config(
        database, tenants=tenants, server={"trusted_proxies": ["127.0.0.1"], **server}
    )
    return await aiohttp_client(create_app(config))


@pytest.mark.parametrize("form", ["plain", "scrypt"])
@pytest.mark.parametrize("dialect", WITH_LOGINS)
async def test_an_unknown_identity_costs_what_a_wrong_secret_of_a_known_one_costs(
    aiohttp_client: AiohttpClient, database: str, dialect: str, form: str
) -> None:
    hashed = "*" if form == "scrypt" else None
    client = await server(aiohttp_client, database, {"acme": tenant("acme", hashed)})
    login, _ = known("acme", dialect)
    attempt = LOGINS[dialect]

    wrong_secret = await cost(client, attempt(login, "a-wrong-guess"))
    unknown = await cost(client, attempt("nobody-" + login, "a-wrong-guess"))

    assert wrong_secret == (401, {form: 1})
    assert unknown == wrong_secret


@pytest.mark.parametrize("dialect", WITH_LOGINS)
async def test_a_dialect_mixing_plain_and_hashed_secrets_costs_one_scrypt_run_for_each(
    aiohttp_client: AiohttpClient, database: str, dialect: str
) -> None:
    tenants = {"acme": tenant("acme", dialect), "globex": tenant("globex", None)}
    client = await server(aiohttp_client, database, tenants)
    attempt = LOGINS[dialect]
    plain_login, plain_secret = known("globex", dialect)
    hashed_login, _ = known("acme", dialect)

    costs = [
        await cost(client, attempt(plain_login, "a-wrong-guess")),
        await cost(client, attempt(hashed_login, "a-wrong-guess")),
        await cost(client, attempt("nobody-" + plain_login, "a-wrong-guess")),
    ]
    assert costs == [(401, {"scrypt": 1})] * 3
    status, spent = await cost(client, attempt(plain_login, plain_secret))  # still right
    assert status != 401 and spent == {"scrypt": 1}


@pytest.mark.parametrize("dialect", WITH_LOGINS)
async def test_a_secret_proven_before_is_answered_without_another_check(
    aiohttp_client: AiohttpClient, database: str, dialect: str
) -> None:
    client = await server(aiohttp_client, database, {"acme": tenant("acme", "*")})
    login, secret = known("acme", dialect)
    attempt = LOGINS[dialect]

    first_status, first = await cost(client, attempt(login, secret))
    again = [await cost(client, attempt(login, secret)) for _ in range(3)]

    assert first_status != 401 and first == {"scrypt": 1}
    assert again == [(first_status, {})] * 3
    status, spent = await cost(client, attempt(login, secret + "-not"))  # a near miss is checked
    assert (status, spent) == (401, {"scrypt": 1})


@pytest.mark.parametrize("dialect", WITH_LOGINS)
async def test_a_spray_from_many_addresses_is_bounded_but_a_proven_secret_never_waits(
    aiohttp_client: AiohttpClient, database: str, dialect: str
) -> None:
    everyone = {"per_second": 0.001, "burst": 3}  # three unproven checks, then hardly any
    # Counted in this process alone: the exact counts below are this process's rule; a
    # shared budget may lend the proven check's token back a batch late (the README's
    # error bound), which tests/processes/test_cluster_limits.py covers.
    client = await server(aiohttp_client, database, {"acme": tenant("acme", "*")},
                          auth_global_failures=everyone, rate_limits="process")  # fmt: skip
    login, secret = known("acme", dialect)
    method, path, headers, body = LOGINS[dialect](login, secret)
    proven, _ = await cost(client, (method, path, headers, body))
    assert proven != 401

    answers = []
    for number in range(6):  # six addresses, one made-up identity each: no address limit hit
        method, path, sprayed, data = LOGINS[dialect](f"nobody{number}", "a-guess")
        forwarded = {**sprayed, "X-Forwarded-For": f"198.51.100.{number}"}
        answers.append(await cost(client, (method, path, forwarded, data)))
    limited = dialects.get(dialect).statuses.get("rate_limited", 429)  # Harvest's is 503
    assert [status for status, _ in answers] == [401] * 3 + [limited] * 3
    assert [spent for _, spent in answers] == [{"scrypt": 1}] * 3 + [{}] * 3

    from_elsewhere = {**headers, "X-Forwarded-For": "203.0.113.9"}
    assert await cost(client, (method, path, from_elsewhere, body)) == (proven, {})
