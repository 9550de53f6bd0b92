"""`--workers N`: N processes serve one port on one database; SIGTERM drains them all."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
import yaml

from gateway.processes import workers

from ..clients import CLIENTS
from ..http.processes import (
    ADMIN,
    Payer,
    invoice_state,
    new_invoice,
    pay_all,
    sockets_per_worker,
    speak,
    started,
    worker_pids,
)
from ..http.server import Server, write_config
from ..observability.test_request_ids_logs_metrics import value

pytestmark = pytest.mark.stores
WORKERS = ("--workers", "2")


def fresh_connections() -> aiohttp.ClientSession:
    """A new connection per request, so the kernel hands requests to either worker."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


def replaced(server: Server, dead: int) -> list[int]:
    """The workers once the supervisor has replaced `dead` (bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = worker_pids(server)
        if len(pids) == 2 and dead not in pids:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"worker {dead} was not replaced:\n{server.output()}")


async def test_workers_share_one_ledger_in_every_dialect_and_never_overpay(
    tmp_path: Path, database: str
) -> None:
    async with (
        started(tmp_path, write_config(tmp_path), database, 1, *WORKERS) as [server],
        fresh_connections() as session,
    ):
        assert len(worker_pids(server)) == 2
        invoice = await new_invoice(session, server, "1000.00")
        for writer in sorted(CLIENTS):
            reply, payment = await speak(writer, session, server).create(invoice, "2.50")
            assert reply.status in (200, 201) and payment is not None, reply.body
            for reader in sorted(CLIENTS):
                got = await speak(reader, session, server).get(invoice, payment or 0)
                assert got is not None and got["amount"] == Decimal("2.50"), (writer, reader)
        statuses = await pay_all(session, [server], invoice, 100)
        state = await invoice_state(session, server, invoice)
    left = 1000 - Decimal("2.50") * len(CLIENTS)
    fit = int(left // 15)  # exactly the payments of 15.00 that fit what was left
    assert statuses.count(201) == fit and statuses.count(422) == 100 - fit
    assert Decimal(state["due_amount"]) == left - 15 * fit
    assert len(state["payments"]) == len(CLIENTS) + fit


async def test_a_worker_killed_under_load_loses_nothing_and_is_replaced(
    tmp_path: Path, database: str
) -> None:
    async with (
        started(tmp_path, write_config(tmp_path), database, 1, *WORKERS) as [server],
        fresh_connections() as session,
    ):
        payer = Payer(session, await new_invoice(session, server, "1000.00"))
        load = [asyncio.ensure_future(payer.pay(server)) for _ in range(60)]
        await payer.first.wait()
        victim = worker_pids(server)[0]
        os.kill(victim, signal.SIGKILL)
        during = await asyncio.gather(*load)
        after = await asyncio.gather(*(payer.pay(server) for _ in range(20)))
        replaced(server, victim)
        state = await invoice_state(session, server, payer.invoice)
    assert all(after)  # the other worker kept serving
    payer.check(state["payments"], cut_off=during.count(False))
    assert "died: killed by SIGKILL" in server.output()


async def test_sigterm_drains_every_worker_and_finishes_requests_in_flight(
    tmp_path: Path, database: str
) -> None:
    async with (
        started(tmp_path, write_config(tmp_path), database, 1, *WORKERS) as [server],
        aiohttp.ClientSession() as session,
    ):
        invoice = await new_invoice(session, server, "1000.00")
        workers = worker_pids(server)
        body = b"<payment><paid-at>2026-11-20</paid-at><amount>3.00</amount></payment>"
        credentials = speak("harvest", session, server).auth()["Authorization"]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST /invoices/{invoice}/payments HTTP/1.1\r\nHost: gateway\r\n"
            f"Authorization: {credentials}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        # The worker has begun handling the request once it asks for the body.
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        server.process.send_signal(signal.SIGTERM)
        writer.write(body)
        answer = await reader.read()
        writer.close()
        code = await asyncio.to_thread(server.process.wait, 30)
    assert answer.startswith(b"HTTP/1.1 201"), (answer, server.output())
    assert code == 0, server.output()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), server.output()


@pytest.mark.parametrize("count", ["0", "-1", "two"])
def test_a_worker_count_that_is_not_a_positive_number_is_a_usage_error(
    tmp_path: Path, count: str
) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(write_config(tmp_path)),
         "--workers", count],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert process.returncode == 2
    assert f"--workers: {count!r} is not a number of processes (1-256)" in process.stderr


def test_workers_refuse_an_in_memory_database_they_could_not_share(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(write_config(tmp_path)),
         "--database", "sqlite://:memory:", "--workers", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert process.returncode == 2
    assert "error: --workers needs a database file or server, not :memory:" in process.stderr


async def test_a_metrics_scrape_of_any_worker_counts_every_workers_requests(
    tmp_path: Path, database: str
) -> None:
    async with (
        started(tmp_path, write_config(tmp_path), database, 1, *WORKERS) as [server],
        fresh_connections() as session,
    ):
        for _ in range(20):
            await new_invoice(session, server, "10.00")
        scrapes = []
        for _ in range(10):
            async with session.get(f"{server.url}/metrics", headers=ADMIN) as reply:
                assert reply.status == 200
                scrapes.append(await reply.text())
    created = {"dialect": "admin", "operation": "create_invoice", "status": "201"}
    assert [value(text, "gateway_requests_total", **created) for text in scrapes] == [20] * 10


def accepting(server: Server) -> None:
    """Wait (bounded) until both workers accept and hold no connection (the start's are
    closed): one that starts late misses the first connections."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        started = server.output().count(f"listening address={server.url}")
        if started == 2 and not sum(sockets_per_worker(server).values()):
            return
        time.sleep(0.05)
    raise AssertionError(f"the workers do not both accept:\n{server.output()}")


def patient(directory: Path) -> Path:
    """A config whose workers leave a connection to the other for as long as a test runs."""
    path = write_config(directory)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["server"]["accept_defer_seconds"] = 30
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


async def hold_connection(port: int) -> asyncio.StreamWriter:
    """A keep-alive connection that has had one answer (so a worker has accepted it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    assert head.startswith(b"HTTP/1.1 200"), head
    return writer


async def test_keep_alive_connections_opened_together_are_split_evenly_between_workers(
    tmp_path: Path, database: str
) -> None:
    # A hash of addresses (SO_REUSEPORT) splits 16 evenly one time in five; three bursts
    # in a row, one time in a hundred.
    async with started(tmp_path, patient(tmp_path), database, 1, *WORKERS) as [server]:
        await asyncio.to_thread(accepting, server)
        held: list[asyncio.StreamWriter] = []
        splits = []
        for _ in range(3):
            held += await asyncio.gather(*(hold_connection(server.port) for _ in range(16)))
            splits.append(sorted(sockets_per_worker(server).values()))
        for writer in held:
            writer.close()
    assert splits == [[8, 8], [16, 16], [24, 24]], server.output()


def stopped(pid: int) -> None:
    """Wait (bounded) until the process `pid` is stopped by a signal."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


async def test_a_stopped_worker_strands_no_new_connection(tmp_path: Path, database: str) -> None:
    async with started(tmp_path, write_config(tmp_path), database, 1, *WORKERS) as [server]:
        await asyncio.to_thread(accepting, server)
        stuck, live = worker_pids(server)
        os.kill(stuck, signal.SIGSTOP)
        try:
            await asyncio.to_thread(stopped, stuck)
            held = [await hold_connection(server.port) for _ in range(6)]
            counts = sockets_per_worker(server)
        finally:
            os.kill(stuck, signal.SIGCONT)
        for writer in held:
            writer.close()
    assert counts == {stuck: 0, live: 6}


def test_the_parent_listens_so_connections_queue_until_a_worker_accepts() -> None:
    port = workers.Listener("127.0.0.1", 0, 2)
    with socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", port.port)) == 0
    assert port.table.accepting() == {}  # no worker yet
    port.sock.close()


def test_a_port_in_use_is_refused_before_any_worker_starts() -> None:
    first = workers.Listener("127.0.0.1", 0, 2)
    with pytest.raises(OSError) as taken:
        workers.Listener("127.0.0.1", first.port, 2)
    assert taken.value.errno == errno.EADDRINUSE
    first.sock.close()
