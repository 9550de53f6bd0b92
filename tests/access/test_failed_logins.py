"""The failed-login limits: which address they count by, behind trusted proxies or not,
and what a spray of made-up identities from one address can make the gateway do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import dialects
from dialects import testing
from dialects.auth import basic_header
from dialects.errors import TooManyRequests
from dialects.unit import ApiKeyAuth, BasicAuth
from gateway.access import passwords
from gateway.access.limits import RateLimiter
from gateway.config import Config, hashes
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY

from ..conftest import AiohttpClient, Client
from ..security.harness import hashed_tenant
from ..support import make_config, new_invoice

FAILURES = {"per_second": 0.01, "burst": 2}
WRONG = basic_header("acme@example.com", "a-wrong-guess")


async def gateway(aiohttp_client: AiohttpClient, database: str, **server: Any) -> Client:
    config = make_config(database, server={"auth_failures": FAILURES, **server})
    return await aiohttp_client(create_app(config))


async def status(client: Client, headers: dict[str, str]) -> int:
    request = testing.support("harvest").listing("acme", 1)
    async with client.get(request.path, headers=headers) as response:
        return response.status


@pytest.mark.parametrize("proxy", ["127.0.0.1", "127.0.0.0/8"])
async def test_behind_a_trusted_proxy_failures_count_against_the_forwarded_address(
    aiohttp_client: AiohttpClient, database: str, proxy: str
) -> None:
    client = await gateway(aiohttp_client, database, trusted_proxies=[proxy])
    right = testing.support("harvest").credentials("acme")
    attacker = {"X-Forwarded-For": "198.51.100.7, 203.0.113.5"}  # the proxy appended .5
    for _ in range(2):
        assert await status(client, {**WRONG, **attacker}) == 401

    assert await status(client, {**right, **attacker}) == 503  # Harvest's throttle
    assert await status(client, {**right, "X-Forwarded-For": "203.0.113.6"}) == 404
    assert await status(client, {**right, "X-Forwarded-For": "203.0.113.5"}) == 503


async def test_from_an_untrusted_peer_x_forwarded_for_is_ignored(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    client = await gateway(aiohttp_client, database, trusted_proxies=["10.0.0.0/8"])
    for number in range(2):
        assert await status(client, {**WRONG, "X-Forwarded-For": f"203.0.113.{number}"}) == 401

    right = testing.support("harvest").credentials("acme")
    assert await status(client, {**right, "X-Forwarded-For": "203.0.113.99"}) == 503


def test_a_trusted_proxy_must_be_an_address_or_network(database: str) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        make_config(database, server={"trusted_proxies": ["proxy.example"]})


# --- a spray of made-up identities ----------------------------------------------------

BUDGET, WAIT_LIMIT = 5, 10  # the address's five failures, then one a second; 10 s at most
SPRAYER, ELSEWHERE = "198.51.100.7", "203.0.113.9"
SPRAYED = BUDGET + 7 + 20  # 5 checked at once, 7 paced; 2 more paced past a right one, 18 refused


class HeldClock:
    """The limiter's clock, standing still until the test lets the paced checks run."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.released = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await self.released.wait()
        self.now += seconds


def made_up(dialect: str, number: int) -> dict[str, str]:
    """A credential naming an identity that exists nowhere, in `dialect`'s scheme."""
    scheme = dialects.unit(dialect).caller_auth
    if isinstance(scheme, BasicAuth):
        return basic_header(f"nobody{number}@example.com", "a-guess")
    assert isinstance(scheme, ApiKeyAuth)
    return {**testing.support(dialect).credentials("acme"), scheme.header: f"made-up-{number}"}


SPRAYABLE = [  # the schemes whose secrets are checked by scrypt: Basic and api keys
    name for name, unit in dialects.units().items()
    if isinstance(unit.caller_auth, BasicAuth | ApiKeyAuth)
]  # fmt: skip


@pytest.mark.stores
@pytest.mark.parametrize("dialect", SPRAYABLE)
async def test_a_spray_of_made_up_identities_is_paced_and_starves_no_right_credential(
    aiohttp_client: AiohttpClient, database: str, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    monkeypatch.setattr(hashes, "_N", 16)  # cheap hashes: the test counts, not waits
    runs: list[str] = []
    check = passwords._check

    def counted(stored: str, presented: str) -> bool:
        runs.append(presented)
        return check(stored, presented)

    monkeypatch.setattr(passwords, "_check", counted)
    config = make_config(database, tenants={"acme": hashed_tenant("acme"), "globex": hashed_tenant("globex")},
                         server={"trusted_proxies": ["127.0.0.1"],
                                 "read_timeout_seconds": WAIT_LIMIT,
                                 "auth_address_failures": {"per_second": 1, "burst": BUDGET}})  # fmt: skip
    app = create_app(config)
    client = await aiohttp_client(app)
    limits, clock = app[GATEWAY].limits, HeldClock()
    limits.clock, limits.sleep = clock, clock.sleep
    paths = {
        tenant: testing.support(dialect).listing(tenant, invoice["id"]).path
        for tenant in ("acme", "globex")
        for invoice in [await new_invoice(client, tenant=tenant)]
    }

    async def get(
        headers: dict[str, str], address: str, tenant: str = "acme"
    ) -> tuple[int, str | None]:
        headers = {**headers, "X-Forwarded-For": address}
        async with client.get(paths[tenant], headers=headers) as answer:
            return answer.status, answer.headers.get("Retry-After")

    def spray(numbers: range) -> list[asyncio.Task[tuple[int, str | None]]]:
        return [asyncio.create_task(get(made_up(dialect, n), SPRAYER)) for n in numbers]

    first = spray(range(BUDGET + 7))
    await until(lambda: len(runs) == BUDGET * candidates(config, dialect) and queued(limits) == 6)
    # the sprayer's paced checks are held; another address is served meanwhile
    right = testing.support(dialect).credentials
    assert (await get(right("acme"), ELSEWHERE))[0] == 200
    waiting = asyncio.create_task(
        get(right("globex"), SPRAYER, "globex")
    )  # waits its turn, after 7
    await until(lambda: queued(limits) == 7)
    rest = spray(range(BUDGET + 7, SPRAYED))
    refused = [await task for task in rest[2:]]  # turns further away than the read timeout
    assert refused == [(limited(dialect), "11")] * 18
    clock.released.set()

    assert await waiting == (200, None)
    answers = [await task for task in [*first, *rest[:2]]]
    assert answers == [(401, None)] * (BUDGET + 9)
    assert clock.now == 1000.0 + 10  # 14 checks in ten seconds: the budget, then its pace
    assert len(runs) <= (BUDGET + 9 + 2) * candidates(config, dialect)


def limited(dialect: str) -> int:
    """The status `dialect` refuses too many requests with (Harvest: 503)."""
    codec = dialects.unit(dialect).codec
    return codec.codecs[codec.formats[0]].encode_error(TooManyRequests("", retry_after=1)).status


def candidates(config: Config, dialect: str) -> int:
    """scrypt runs one wrong secret costs: one (the user's, or the decoy), or one per key."""
    unit = dialects.unit(dialect)
    return len(config.tenants) if isinstance(unit.caller_auth, ApiKeyAuth) else 1


def queued(limits: RateLimiter) -> int:
    lane = limits._lanes.get(SPRAYER)
    return 0 if lane is None else lane.users - 1  # all but the one holding the lane (paced)


async def until(condition: Callable[[], bool]) -> None:
    """Let the server run until `condition` holds (no clock involved: it is all in flight)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the server never got there")
