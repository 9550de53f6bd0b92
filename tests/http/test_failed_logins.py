"""The failed-login limit: which address it counts by, behind trusted proxies or not."""

from __future__ import annotations

from typing import Any

import pytest

from dialects import testing
from dialects.auth import basic_header
from gateway.app import create_app

from ..conftest import AiohttpClient, Client
from ..support import make_config

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
