"""Work anyone may ask for without credentials: `POST /gateway/v1/translate`.

Each client address has a budget of translations (on an injected clock here), a body
has a size limit that fits a translation, and the work runs on threads of its own, a
bounded number waiting, so the event loop keeps answering everyone else meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from gateway.ledger import translation
from gateway.serving.app import create_app
from gateway.serving.playground import POOL
from gateway.serving.state import GATEWAY

from ..conftest import AiohttpClient, Client
from ..processes.test_command_line import HARVEST_PAYMENT
from ..support import make_config

TRANSLATE = "/gateway/v1/translate"
REQUEST = {"from": "harvest", "document": HARVEST_PAYMENT.decode()}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def gateway(aiohttp_client: AiohttpClient, database: str, **server: Any) -> Client:
    config = make_config(database, server={"trusted_proxies": ["127.0.0.1"], **server})
    return await aiohttp_client(create_app(config))


async def clocked(
    aiohttp_client: AiohttpClient, database: str, per_second: float, burst: int
) -> tuple[Client, Clock]:
    """A gateway whose translation budget runs on a clock the test moves."""
    rate = {"per_second": per_second, "burst": burst}
    client = await gateway(aiohttp_client, database, translate_rate=rate)
    clock = Clock()
    client.app[GATEWAY].limits.clock = clock
    return client, clock


async def post(
    client: Client, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with client.post(TRANSLATE, data=body, headers=headers or {}) as reply:
        return reply.status, await reply.json(), dict(reply.headers)


async def test_each_address_has_a_budget_of_translations_that_refills(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    client, clock = await clocked(aiohttp_client, database, 0.5, 3)
    body = json.dumps(REQUEST).encode()
    flooder = {"X-Forwarded-For": "198.51.100.7"}

    statuses = [(await post(client, body, flooder))[0] for _ in range(3)]
    status, answer, headers = await post(client, body, flooder)

    assert statuses == [200] * 3
    assert (status, answer["error"]["code"], headers["Retry-After"]) == (429, "rate_limited", "2")
    assert (await post(client, body, {"X-Forwarded-For": "203.0.113.9"}))[
        0
    ] == 200  # others: served
    clock.now += 2  # one translation refilled, and one only
    assert [(await post(client, body, flooder))[0] for _ in range(2)] == [200, 429]


async def test_a_larger_document_spends_more_of_the_budget_one_token_per_4_kib(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    client, clock = await clocked(aiohttp_client, database, 1, 8)
    body = json.dumps(REQUEST).encode()
    body = body[:-1] + b" " * (3 * 4096 - len(body)) + b"}"  # three tokens' worth, to the byte

    statuses = [(await post(client, body))[0] for _ in range(3)]  # 8 -> 5 -> 2 -> -1 (owed)
    status, _, headers = await post(client, body)

    assert statuses == [200] * 3
    assert (status, headers["Retry-After"]) == (429, "2")  # two seconds to one token again
    clock.now += 2
    assert (await post(client, json.dumps(REQUEST).encode()))[0] == 200  # a small one: one token


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_past_the_translation_limit_is_413_and_one_at_it_is_translated(
    aiohttp_client: AiohttpClient, database: str, chunked: bool
) -> None:
    limit = 4096
    client = await gateway(aiohttp_client, database, translate_max_bytes=limit, translate_rate=None)
    at_limit = json.dumps(REQUEST).encode()
    at_limit = at_limit[:-1] + b" " * (limit - len(at_limit)) + b"}"  # JSON space, to the byte
    past = at_limit[:-1] + b" }"
    assert (len(at_limit), len(past)) == (limit, limit + 1)

    def sent(body: bytes) -> Any:
        async def chunks() -> Any:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        return chunks() if chunked else body

    async with client.post(TRANSLATE, data=sent(at_limit)) as reply:
        assert reply.status == 200
    async with client.post(TRANSLATE, data=sent(past)) as reply:
        answer = await reply.json()
        assert (reply.status, answer["error"]["code"]) == (413, "too_large")
        assert str(limit) in answer["error"]["message"]


def test_the_default_size_limit_fits_a_translation_not_a_megabyte(database: str) -> None:
    server = make_config(database).server
    assert server.translate_max_bytes == 64 * 1024 < server.max_body_bytes


class Gate:
    """`translation.decode`, held on a gate while the test looks at the loop; the thread
    each decode ran on is recorded."""

    def __init__(self, decode: Callable[..., Any]) -> None:
        self.decode, self.open, self.threads = decode, threading.Event(), list[str]()
        self.entered = threading.Semaphore(0)

    def __call__(self, *args: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        self.entered.release()
        assert self.open.wait(timeout=30)
        return self.decode(*args)


async def test_translations_run_off_the_loop_and_a_bounded_number_wait(
    aiohttp_client: AiohttpClient, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(translation.decode)
    monkeypatch.setattr(translation, "decode", gate)
    client = await gateway(aiohttp_client, database, translate_threads=1, translate_rate=None)
    body = json.dumps(REQUEST).encode()

    held = [asyncio.create_task(post(client, body)) for _ in range(16)]  # one thread: 16 wait
    await asyncio.to_thread(gate.entered.acquire)  # the first is on the thread, held
    pool = client.app[POOL]
    for _ in range(1000):  # bounded: until all sixteen were taken in
        if pool.waiting == 16:
            break
        await asyncio.sleep(0.01)
    status, answer, headers = await post(client, body)  # the seventeenth is one too many
    assert (status, answer["error"]["code"], headers["Retry-After"]) == (429, "rate_limited", "1")
    async with client.get("/healthz") as reply:  # the loop answers meanwhile
        assert reply.status == 200

    gate.open.set()
    assert [status for status, _, _ in await asyncio.gather(*held)] == [200] * 16
    assert set(gate.threads) and all(name.startswith("translate") for name in gate.threads)
