"""`events.deliveries: process`: one delivery process, forked by the supervisor at a lower
CPU priority, sends every webhook delivery and relays every payment, while the serving
workers only write the events; killed (kill -9) mid-delivery, it is replaced and the
delivery it held arrives once its lease ends."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from standardwebhooks import Webhook as Verifier

from ..http.processes import ADMIN, _open_files, speak, started, worker_pids
from ..http.server import Server, write_config
from ..proxy.harness import LedgerBackend, upstream
from .test_relay_processes import DIALECT, relay_invoice

pytestmark = pytest.mark.stores  # SQLite, then PostgreSQL

SECRET = "whsec_" + base64.b64encode(b"d" * 32).decode()
NICE = 7


def sender(server: Server, peer: tuple[str, int], port: int) -> int | None:
    """Which child of the supervising process holds the client end of a connection to
    `port` from `peer` (Linux /proc), or None."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()  # sl, local, remote, state, ..., inode (10th)
            local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            if (local, remote) == (peer[1], port):
                inodes.add(f"socket:[{fields[9]}]")
    for pid in worker_pids(server):
        if inodes & _open_files(pid):
            return pid
    return None


def priority(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


async def test_a_process_of_its_own_delivers_and_is_replaced_when_killed(
    engine: str,
    database: str,
    tmp_path: Path,
    aiohttp_server: AiohttpServer,
    backend_process: Server,
) -> None:
    arrivals: list[tuple[str, str, int | None]] = []  # webhook-id, path + type, sending pid
    arrived = asyncio.Condition()
    hold: set[str] = set()  # event types the receiver answers only once released
    release = asyncio.Event()
    gateway: list[Server] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        Verifier(SECRET).verify(body, dict(request.headers))
        ends = request.transport
        assert ends is not None
        peer, own = ends.get_extra_info("peername"), ends.get_extra_info("sockname")
        pid = sender(gateway[0], peer, own[1])
        kind = request.path + " " + request.headers["webhook-event-type"]
        async with arrived:
            arrivals.append((request.headers["webhook-id"], kind, pid))
            arrived.notify_all()
        if kind in hold:
            await asyncio.wait_for(release.wait(), 30)
        return web.Response(status=204)

    async def first(kind: str, after: int = 0) -> tuple[str, int | None]:
        async with arrived, asyncio.timeout(30):
            await arrived.wait_for(lambda: any(k == kind for _, k, _ in arrivals[after:]))
        return next((i, p) for i, k, p in arrivals[after:] if k == kind)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    app.router.add_post("/crm", receive)
    receiver = await aiohttp_server(app)
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["events"] = {"deliveries": "process", "delivery_nice": NICE, "lease_seconds": 1}
    hook = {"name": "erp", "url": str(receiver.make_url("/hooks")), "secret": SECRET}
    raw["tenants"]["acme"]["webhooks"] = [hook]
    crm = str(receiver.make_url("/crm"))
    relay = upstream(DIALECT, backend_process.url, retry_schedule=[0.5] * 10)
    raw["tenants"]["acme"]["relay"] = relay
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    async with aiohttp.ClientSession() as session:
        backend = LedgerBackend(backend_process.url, session)
        number = await backend.new_invoice("1000.00")
        async with started(tmp_path, config, database, 1, "--workers", "2") as servers:
            gateway.extend(servers)
            (server,) = servers
            invoice = await relay_invoice(session, server, "DP-1", number)

            reply, made = await speak("harvest", session, server).create(invoice, "5.00")
            assert made is not None, reply.body
            _, pid = await first("/hooks payment.created")
            children = worker_pids(server)
            assert len(children) == 3  # two serving workers and the delivery process
            base = priority(server.process.pid)
            assert pid in children and priority(pid) == min(base + NICE, 19)
            assert all(priority(other) == base for other in children if other != pid)
            # The relayed payment, as the serving workers' admin API shows it.
            await _relayed(session, server, 1)
            assert len(await backend.payments(number)) == 1

            # kill -9 of the delivery process while it holds a delivery.
            hold.add("/hooks payment.deleted")
            seen = len(arrivals)
            deleted = await speak("harvest", session, server).delete(invoice, made)
            assert deleted.status < 300, deleted.body
            held, killed = await first("/hooks payment.deleted", seen)
            assert killed == pid
            hold.clear()
            os.kill(pid, signal.SIGKILL)
            again, by = await first("/hooks payment.deleted", seen + 1)
            release.set()
            assert again == held  # the same event, sent again once its lease ended
            assert by is not None and by != pid and by in worker_pids(server)
            assert priority(by) == min(base + NICE, 19)
            await _relayed(session, server, 2)
            assert await backend.payments(number) == []  # created, then deleted, once each

            # SIGHUP: the delivery process takes up a subscription added to the file.
            raw["tenants"]["acme"]["webhooks"].append({**hook, "name": "crm", "url": crm})
            config.write_text(yaml.safe_dump(raw), encoding="utf-8")
            server.process.send_signal(signal.SIGHUP)
            async with asyncio.timeout(30):  # a serving worker has it (and has recorded it)
                while "crm" not in await _webhooks(session, server):
                    await asyncio.sleep(0.05)
            seen = len(arrivals)
            reply, made = await speak("harvest", session, server).create(invoice, "7.00")
            assert made is not None, reply.body
            _, to_crm = await first("/crm payment.created", seen)
            assert to_crm == by
        assert server.process.returncode == 0  # SIGTERM: every process stopped cleanly
        assert server.log.read_text(encoding="utf-8").count("delivery_stopped") == 1


def test_a_delivery_process_refuses_an_in_memory_database_it_could_not_share(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["events"] = {"deliveries": "process"}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    process = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config), "--database", "sqlite://:memory:"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert process.returncode == 2
    needs = "error: events.deliveries: process needs a database file or server, not :memory:"
    assert needs in process.stderr


async def _webhooks(session: aiohttp.ClientSession, server: Server) -> list[str]:
    async with session.get(f"{server.url}/gateway/v1/webhooks/acme", headers=ADMIN) as response:
        assert response.status == 200, await response.text()
        return [found["name"] for found in (await response.json())["webhooks"]]


async def _relayed(session: aiohttp.ClientSession, server: Server, count: int) -> None:
    """Until the relay shows `count` forwards delivered (read from a serving worker)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while len(found) < count:
            url = f"{server.url}/gateway/v1/relay/acme?state=delivered"
            async with session.get(url, headers=ADMIN) as response:
                assert response.status == 200, await response.text()
                found = (await response.json())["relay"]
            await asyncio.sleep(0.05)
