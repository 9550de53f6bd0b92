"""Gateway processes sharing one database, driven by the dialect clients over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiohttp

import dialects as registered
from dialects import testing

from ..clients import CLIENTS, DialectClient
from ..conftest import Client
from .server import ADMIN_TOKEN, Server

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_NUMBERS = itertools.count(1)


class Remote:
    """Enough of a TestClient for tests.clients: paths resolved against a process's URL."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.request(method, f"{self.url}{path}", **kwargs)


def speak(dialect: str, session: aiohttp.ClientSession, server: Server) -> DialectClient:
    return CLIENTS[dialect](cast(Client, Remote(session, server.url)))


@asynccontextmanager
async def started(
    directory: Path, config: Path, database: str, count: int, *args: str
) -> AsyncIterator[list[Server]]:
    """`count` gateway processes on one database, answering /healthz; stopped after."""
    servers = [
        Server(config, database, directory / f"gateway-{index}.log", args=args)
        for index in range(count)
    ]
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(server.ready(session) for server in servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


async def new_invoice(session: aiohttp.ClientSession, server: Server, total: str) -> int:
    body = {
        "tenant": "acme",
        "number": f"INV-{next(_NUMBERS)}",
        "currency": "EUR",
        "total": total,
        "issued_on": "2026-01-01",
        "due_on": "2999-12-31",
    }
    async with session.post(f"{server.url}/gateway/v1/invoices", json=body, headers=ADMIN) as r:
        assert r.status == 201, await r.text()
        number: int = (await r.json())["id"]
    return number


async def invoice_state(
    session: aiohttp.ClientSession, server: Server, invoice: int
) -> dict[str, Any]:
    async with session.get(f"{server.url}/gateway/v1/invoices/{invoice}", headers=ADMIN) as r:
        assert r.status == 200, await r.text()
        state: dict[str, Any] = await r.json()
    return state


def worker_pids(server: Server) -> list[int]:
    """The children of a `--workers` gateway's supervising process (Linux /proc)."""
    pid = server.process.pid
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    return [int(child) for child in text.split()]


ESTABLISHED = "01"  # the TCP state as /proc/net/tcp writes it


def sockets_per_worker(server: Server, state: str = ESTABLISHED) -> dict[int, int]:
    """How many sockets on the server's port in `state` each worker holds (Linux /proc)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()  # sl, local, remote, state, ..., inode (10th)
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == server.port:
                inodes.add(f"socket:[{fields[9]}]")
    return {pid: len(inodes & _open_files(pid)) for pid in worker_pids(server)}


def _open_files(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except FileNotFoundError:  # closed meanwhile
            pass
    return found


async def pay_all(
    session: aiohttp.ClientSession, servers: Sequence[Server], invoice: int, count: int
) -> list[int]:
    """`count` concurrent 15.00 payments, dialects and processes taken in turn: statuses."""
    dialects = sorted(CLIENTS)

    async def pay(index: int) -> int:
        client = speak(dialects[index % 4], session, servers[index % len(servers)])
        reply, _ = await client.create(invoice, "15.00")
        return canonical_status(dialects[index % 4], reply.status)

    return list(await asyncio.gather(*(pay(index) for index in range(count))))


def canonical_status(dialect: str, status: int) -> int:
    """A create's status as the canonical one: 201 made, 422 refused by the ledger, in
    whatever statuses the dialect answers them with."""
    if status == testing.support(dialect).create_status:
        return 201
    if status == registered.get(dialect).statuses.get("ledger", 422):
        return 422
    return status


class Payer:
    """Payments of 1.00 on one invoice under load, remembering which were acknowledged."""

    def __init__(self, session: aiohttp.ClientSession, invoice: int) -> None:
        self.session = session
        self.invoice = invoice
        self.acknowledged: list[int] = []
        self.first = asyncio.Event()  # set by the first acknowledgement

    async def pay(self, server: Server) -> bool:
        """True when the payment was acknowledged (201); False when the connection broke."""
        try:
            reply, payment = await speak("harvest", self.session, server).create(
                self.invoice, "1.00"
            )
        except aiohttp.ClientError:
            return False  # cut off by a kill: never acknowledged
        assert reply.status == 201, reply.body
        self.acknowledged.append(payment or 0)
        self.first.set()
        return True

    def check(self, stored: list[dict[str, Any]], cut_off: int) -> None:
        """Every acknowledged payment is stored; at most those cut off are stored besides."""
        ids = {payment["id"] for payment in stored}
        assert set(self.acknowledged) <= ids
        assert len(ids) - len(self.acknowledged) <= cut_off
