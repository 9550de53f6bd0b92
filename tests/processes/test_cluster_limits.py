"""Rate limits and failed-login budgets held by every gateway process on one database.

Each process takes tokens from the database's budget in batches (gateway/access/shared.py):
the cluster admits what one process would, give or take one batch per process, where
processes counting alone (`server.rate_limits: process`) admit that many times as much.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.config import parse
from gateway.serving.app import create_app

from ..conftest import AiohttpClient
from ..http.processes import sockets_per_worker
from ..http.server import ADMIN_TOKEN, Server, running
from ..postgres import Cluster
from ..support import basic, tenant_config

BURST = 24
BATCH = 4  # server.rate_limit_batch, below a quarter of BURST: the batch taken
FAILURES = 8  # auth_failures burst; its batch is a quarter of it
PROCESSES = 3
# A list of an invoice no test creates: admitted or refused before the store is asked.
LIST = "/v1/invoices/424242/payments"
KEY = {"api-key": "acme-invoiless"}


def limited_config(directory: Path, scope: str = "database") -> Path:
    """Tenant acme limited to BURST requests (refilling one per 100 s), a few failures."""
    raw: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "token_secret": "process-token-secret",
        "server": {
            "access_log": False,
            "rate_limits": scope,
            "rate_limit_batch": BATCH,
            "auth_failures": {"per_second": 0.01, "burst": FAILURES},
        },
        "tenants": {
            "acme": tenant_config("acme", rate_limit={"per_second": 0.01, "burst": BURST}),
            "globex": tenant_config("globex"),
        },
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


async def statuses(
    sessions: Sequence[tuple[aiohttp.ClientSession, str]],
    count: int,
    headers: dict[str, str],
) -> list[tuple[int, str | None]]:
    """`count` requests one after the other, taking the (session, gateway URL)s in turn."""
    answers = []
    for (session, url), _ in zip(itertools.cycle(sessions), range(count), strict=False):
        async with session.get(f"{url}{LIST}", headers=headers) as response:
            await response.read()
            answers.append((response.status, response.headers.get("Retry-After")))
    return answers


def admitted(answers: list[tuple[int, str | None]]) -> int:
    refused = [retry for status, retry in answers if status == 429]
    assert all(retry is not None and int(retry) >= 1 for retry in refused), answers
    return len(answers) - len(refused)


@pytest.fixture(scope="module")
def gateways(postgres: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """PROCESSES gateways on one PostgreSQL database, shared by the module's tests (SQLite's
    processes share the budgets the same way: the --workers test below)."""
    directory = tmp_path_factory.mktemp("limits")
    database = postgres.url(postgres.create())
    config = limited_config(directory)
    servers = [Server(config, database, directory / f"g{n}.log") for n in range(PROCESSES)]
    try:
        yield [server.wait_ready() for server in servers]
    finally:
        for server in servers:
            server.stop()


async def test_a_rate_limit_holds_for_three_gateways_on_one_database(
    gateways: list[Server],
) -> None:
    async with aiohttp.ClientSession() as session:
        answers = await statuses([(session, s.url) for s in gateways], PROCESSES * BURST, KEY)
    # Every token spent was granted by the shared budget; a process's lease may leave
    # up to a batch unspent when the others run dry.
    assert BURST - PROCESSES * BATCH <= admitted(answers) <= BURST, answers


async def test_gateways_counting_alone_each_admit_the_whole_limit(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    """`rate_limits: process`: two gateways (in this process, on one database) count alone."""
    raw = yaml.safe_load(limited_config(tmp_path, "process").read_text(encoding="utf-8"))
    config = parse({**raw, "database": f"sqlite:///{tmp_path / 'alone.db'}"})
    clients = [await aiohttp_client(create_app(config)) for _ in range(2)]
    async with aiohttp.ClientSession() as session:
        urls = [(session, f"http://{client.host}:{client.port}") for client in clients]
        answers = await statuses(urls, 2 * BURST + 2, KEY)
    assert admitted(answers) == 2 * BURST, answers


async def test_failed_logins_of_one_identity_are_counted_over_every_gateway(
    gateways: list[Server],
) -> None:
    wrong = basic("globex@example.com", "not-the-password")
    async with aiohttp.ClientSession() as session:
        answers = []
        for server, _ in zip(itertools.cycle(gateways), range(PROCESSES * FAILURES), strict=False):
            async with session.get(f"{server.url}/invoices/1/payments", headers=wrong) as r:
                await r.read()
                answers.append((r.status, r.headers.get("Retry-After")))
    failed = [status for status, _ in answers if status == 401]
    # Harvest refuses too many requests as its API does: 503 with Retry-After.
    assert {status for status, _ in answers} == {401, 503}, answers
    assert all(retry for status, retry in answers if status == 503), answers
    # Counted alone, each process would check FAILURES of them: all of them. Shared, a
    # process may check what its lease holds (a quarter of the burst) and the one
    # failure that finds the budget spent, past the burst.
    assert FAILURES <= len(failed) <= FAILURES + PROCESSES * (FAILURES // 4 + 1), [
        status for status, _ in answers
    ]


async def test_the_workers_of_one_gateway_share_the_rate_limit_on_sqlite(tmp_path: Path) -> None:
    config = limited_config(tmp_path)
    with running(config, tmp_path / "w.db", tmp_path / "w.log", args=["--workers", "2"]) as server:
        async with aiohttp.ClientSession() as probe:
            await server.ready(probe)
        async with _one_in_each_worker(server) as (one, other):
            answers = await statuses([(one, server.url), (other, server.url)], 2 * BURST, KEY)
    assert BURST - 2 * BATCH <= admitted(answers) <= BURST, answers


@asynccontextmanager
async def _one_in_each_worker(
    server: Server,
) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientSession]]:
    """Two sessions of one kept-alive connection each, held by different workers (they
    split connections evenly once both accept; tried again, bounded, until they do)."""
    deadline = time.monotonic() + 10
    while True:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as one,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as other,
        ):
            for session in (one, other):
                async with session.get(f"{server.url}/healthz") as response:
                    await response.read()
            if sorted(sockets_per_worker(server).values()) == [1, 1]:
                yield one, other
                return
        assert time.monotonic() < deadline, sockets_per_worker(server)
