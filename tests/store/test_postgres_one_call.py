"""PostgreSQL writes a payment in one call (`ledger_write`, migration 11), and a server
killed mid-load loses no payment it acknowledged."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from gateway.serving.app import create_app

from ..clients import CLIENTS
from ..conftest import AiohttpClient
from ..postgres import Cluster
from ..support import make_config, new_invoice

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


async def _statements_between(
    postgres: Cluster, url: str, work: Callable[[], Awaitable[None]]
) -> int:
    """Statements the server ran for `work`: the log lines of every statement executed
    (`log_statement = all`) between two marks this test writes itself."""
    marks = await asyncpg.connect(url)
    try:
        await marks.execute("SELECT 'statements-from'")
        await work()
        await marks.execute("SELECT 'statements-to'")
    finally:
        await marks.close()
    for _ in range(500):  # the server writes its log as it goes; bounded wait for the mark
        log = postgres.log()
        if "statements-to" in log.rsplit("statements-from", 1)[-1]:
            break
        await asyncio.sleep(0.01)
    window = log.rsplit("statements-from", 1)[-1].split("statements-to", 1)[0]
    logged = [line for line in window.splitlines()[1:-1] if "LOG:  " in line]
    return sum(1 for line in logged if "statement: " in line or "execute " in line)


async def test_a_create_is_one_statement_and_a_delete_a_read_and_one(
    aiohttp_client: AiohttpClient, database: str, postgres: Cluster
) -> None:
    logged = f"{database}&log_statement=all"
    # Limits counted per process: the shared budgets' refills are statements of their
    # own, which would land in the counted window whenever a refill falls due.
    config = make_config(logged, server={"rate_limits": "process"})
    client = await aiohttp_client(create_app(config))
    invoice = await new_invoice(client)
    payer = CLIENTS["invoiless"](client)
    await payer.create(invoice["id"], "1.00")  # first use: asyncpg reads the types it meets

    async def creates() -> None:
        for _ in range(5):
            reply, _ = await payer.create(invoice["id"], "1.00")
            assert reply.status == 201, reply.body

    assert await _statements_between(postgres, logged, creates) == 5

    _, made = await payer.create(invoice["id"], "1.00")
    assert made is not None

    async def delete() -> None:
        assert (await payer.delete(invoice["id"], made)).status < 300

    assert await _statements_between(postgres, logged, delete) == 2


async def _until(done: Callable[[], bool], bound: float = 60.0) -> None:
    """Poll `done()` until it holds, for at most `bound` seconds."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + bound
    while not done():
        assert loop.time() < ends, "gave up waiting"
        await asyncio.sleep(0.01)


async def test_the_server_killed_mid_load_loses_no_acknowledged_payment(
    aiohttp_client: AiohttpClient, database: str, postgres: Cluster
) -> None:
    """An immediate shutdown (no checkpoint: the server recovers from its WAL) while
    writers pay one invoice: while it is down they are answered 503, never 500 and
    never left hanging; once it is back the same gateway writes again, and every
    payment it acknowledged is stored."""
    durable = f"{database}&synchronous_commit=on"  # the tests' server commits lazily
    client = await aiohttp_client(create_app(make_config(durable)))
    invoice = await new_invoice(client, total="1000000.00")
    payer = CLIENTS["invoiless"](client)
    acknowledged: list[int] = []
    statuses: Counter[int] = Counter()
    running = True

    async def writer() -> None:
        while running:
            reply, made = await asyncio.wait_for(payer.create(invoice["id"], "1.00"), 30)
            statuses[reply.status] += 1
            if made is not None:
                acknowledged.append(made)

    writers = [asyncio.ensure_future(writer()) for _ in range(8)]
    try:
        await _until(lambda: len(acknowledged) >= 20)
        await asyncio.to_thread(postgres.crash)
        refused = statuses[503]
        await _until(lambda: statuses[503] > refused)
        await asyncio.to_thread(postgres.restart)
        before = len(acknowledged)
        await _until(lambda: len(acknowledged) >= before + 20)
    finally:
        running = False
        await asyncio.gather(*writers)
    assert set(statuses) <= {201, 503}, statuses
    stored = {view["id"] for view in await payer.list(invoice["id"])}
    assert set(acknowledged) <= stored
