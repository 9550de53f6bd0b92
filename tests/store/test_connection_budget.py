"""PostgreSQL connections: a bounded wait for one (then 503), and PgBouncer in transaction mode."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from ..http.processes import invoice_state, new_invoice, pay_all, speak, started
from ..http.server import free_port, running, write_config
from ..postgres import SUPERUSER, Cluster
from ..support import tenant_config

KEY = {"api-key": "acme-invoiless"}
BOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)


def config_file(directory: Path, **top: Any) -> Path:
    """The processes' usual config.yaml, with `top`'s keys set."""
    path = write_config(directory)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**raw, **top}), encoding="utf-8")
    return path


async def _waiting_on_a_lock(url: str, deadline: float) -> None:
    """Until a session of the database waits for a row lock (bounded)."""
    conn = await asyncpg.connect(url)
    try:
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the gateway's write never waited for the row lock")
    finally:
        await conn.close()


async def test_a_gateway_out_of_connections_answers_503_with_retry_after_then_recovers(
    tmp_path: Path, postgres: Cluster
) -> None:
    url = postgres.url(postgres.create())
    config = config_file(tmp_path, database_pool_size=1, database_acquire_timeout_seconds=0.3)
    with running(config, url, tmp_path / "gateway.log") as server:
        async with aiohttp.ClientSession() as session:
            await server.ready(session)
            invoice = await new_invoice(session, server, "100.00")
            holder = await asyncpg.connect(url)
            held = holder.transaction()
            await held.start()
            await holder.execute("SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE", invoice)
            # A payment takes the pool's one connection and waits for the row...
            paying = asyncio.create_task(
                speak("invoiless", session, server).create(invoice, "10.00")
            )
            await _waiting_on_a_lock(url, time.monotonic() + 10)
            # ...so a read finds no connection: refused in its dialect, not left hanging.
            path = f"/v1/invoices/{invoice}/payments"
            async with session.get(f"{server.url}{path}", headers=KEY) as busy:
                assert busy.status == 503
                assert busy.headers["Retry-After"] == "1"
                assert "error" in await busy.json()
            await held.rollback()
            await holder.close()
            reply, payment = await paying
            assert reply.status == 201 and payment is not None
            async with session.get(f"{server.url}{path}", headers=KEY) as again:
                assert again.status == 200
                assert len(await again.json()) == 1


@pytest.fixture
def bouncer(tmp_path: Path, postgres: Cluster) -> Iterator[str]:
    """A PgBouncer in transaction mode before a new database of the session's server."""
    if BOUNCER is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is required under CI=true (apt-get install pgbouncer)")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    name = f"bounced_{os.getpid()}"
    postgres.call(_sql(postgres, f"CREATE DATABASE {name}"))
    # Its own directory: the server's user may not pass through pytest's (root's) tmp_path.
    directory = Path(tempfile.mkdtemp(prefix="gateway-bouncer-"))
    port = free_port()
    (directory / "users.txt").write_text(f'"{SUPERUSER}" ""\n', encoding="utf-8")
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n{name} = host={postgres.root} dbname={name}\n"
        "[pgbouncer]\nlisten_addr = 127.0.0.1\n"
        f"listen_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\npool_mode = transaction\n"
        "default_pool_size = 3\nmax_client_conn = 200\n"
        "",
        encoding="utf-8",
    )
    if postgres.user is not None:  # pgbouncer refuses to run as root
        shutil.chown(directory, postgres.user)
        for file in directory.iterdir():
            shutil.chown(file, postgres.user)
    output = (tmp_path / "pgbouncer.out").open("wb")
    process = subprocess.Popen(
        [BOUNCER, str(directory / "pgbouncer.ini")],
        user=postgres.user,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        _listening(port, process, tmp_path / "pgbouncer.out")
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{name}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        output.close()
        shutil.rmtree(directory, ignore_errors=True)
        postgres.call(_sql(postgres, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("pgbouncer did not listen in 10 s")


async def _sql(postgres: Cluster, statement: str) -> None:
    conn = await asyncpg.connect(postgres.url(database="postgres"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_two_gateways_behind_pgbouncer_in_transaction_mode(
    tmp_path: Path, bouncer: str
) -> None:
    """Fewer server connections than the gateways' pools, multiplexed per transaction:
    the migrations' lock, every write and the shared rate budgets hold no session state,
    and no prepared statement outlives its transaction."""
    config = config_file(
        tmp_path,
        database_pool_size=4,
        database_statement_cache_size=0,
        tenants={"acme": tenant_config("acme", rate_limit={"per_second": 100, "burst": 1000})},
    )
    async with (
        started(tmp_path, config, bouncer, 2) as servers,
        aiohttp.ClientSession() as session,
    ):
        invoice = await new_invoice(session, servers[0], "1000.00")
        statuses = await pay_all(session, servers, invoice, 20)
        state = await invoice_state(session, servers[1], invoice)
    assert statuses == [201] * 20
    assert (state["due_amount"], len(state["payments"])) == ("700.00", 20)
