"""Benchmark plumbing: run a gateway process on a free port, and a bounded load loop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import yaml

ADMIN = {"Authorization": "Bearer bench-admin-token"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


XERO_TENANT = "0b5e1c1e-7f37-4a57-9c3e-6d1f0c2a9b11"


def bench_config(tenants: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A config with plain-text demo-like credentials and no rate limit."""
    tenant = {
        "harvest": {
            "users": [{"email": "bench@example.com", "password": "bench", "name": "Bench"}]
        },
        "fastbill": {"users": [{"email": "bench@example.com", "api_key": "bench"}]},
        "invoiless": {"keys": [{"key": "bench-key", "scopes": ["bench"]}]},
        "urlkey": {"business": "bench", "apps": [{"app_id": "bench-app", "secret": "bench"}]},
        "xero": {
            "tenant_id": XERO_TENANT,
            "clients": [{"client_id": "bench-xero", "secret": "bench"}],
        },
        "accounts": [{"code": "090"}],
        "default_account": "090",
    }
    config: dict[str, Any] = {
        "admin_token": "bench-admin-token",
        "token_secret": "bench-token-secret",
        "server": {"access_log": False},
        "tenants": tenants or {"bench": tenant},
    }
    config.update(extra)
    return config


@contextmanager
def gateway_process(
    config: dict[str, Any], workdir: Path | None = None, args: Sequence[str] = ()
) -> Iterator[str]:
    """Start `python -m gateway` with `config` (and `args`) on a free port; yield its URL."""
    with gateway_server(config, workdir, args) as (base, _):
        yield base


@contextmanager
def gateway_server(
    config: dict[str, Any],
    workdir: Path | None = None,
    extra: Sequence[str] = (),
    checkout: Path | None = None,
    log_pipe: bool = False,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start `python -m gateway` (plus `extra` arguments); yield its base URL and process.

    `checkout`: run the gateway of another source tree (say, an older commit's
    worktree) instead of this one. `log_pipe`: its log lines go into a pipe, read and
    dropped here, as under a service manager or a container runtime, instead of
    /dev/null (where a write costs next to nothing).
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = workdir or Path(tmp)
        port = free_port()
        path = root / f"gateway-{port}.yaml"
        config = {
            **config,
            "database": config.get("database", f"sqlite:///{root}/ledger-{port}.db"),
        }
        path.write_text(yaml.safe_dump(config))
        command = ["-m", "gateway", "--config", str(path), "--port", str(port), *extra]
        with server_process(command, port, cwd=checkout, log_pipe=log_pipe) as process:
            yield f"http://127.0.0.1:{port}", process


@contextmanager
def server_process(
    arguments: Sequence[str], port: int, cwd: Path | None = None, log_pipe: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python ARGUMENTS` until its /healthz on `port` answers; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if log_pipe else subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=cwd,  # `-m` imports from the working directory first
    )
    if process.stderr is not None:
        threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
    try:
        asyncio.run(wait_healthy(f"http://127.0.0.1:{port}", process))
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _drain(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass


async def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited with {process.returncode}")
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("gateway did not become healthy")


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.requests} requests in {self.seconds:.2f}s = {self.rate:,.0f} req/s; "
            f"p50 {self.percentile(50):.2f} ms, p99 {self.percentile(99):.2f} ms, "
            f"mean {statistics.fmean(self.latencies) * 1000:.2f} ms, errors {self.errors}"
        )


Request = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def load(
    request: Request, *, connections: int, total: int, max_seconds: float = 60.0
) -> Result:
    """Send at most `total` requests over `connections` keep-alive connections."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(limit=connections)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for index in counter:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                status = await request(session, index)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - started
    return Result(len(latencies), errors, seconds, latencies)


async def relay_settled(
    session: aiohttp.ClientSession, base: str, tenant: str, limit: float
) -> list[dict[str, Any]]:
    """Wait until the gateway at `base` has no forward of `tenant` pending (three polls
    in a row, since the last events' fan-out may come after a first empty one); its
    failed forwards (at most one shown). Raises after `limit` seconds."""
    deadline = time.monotonic() + limit
    listing = f"{base}/gateway/v1/relay/{tenant}"
    quiet = 0
    while quiet < 3:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay still had pending forwards after {limit:g} s")
        async with session.get(f"{listing}?state=pending&limit=1", headers=ADMIN) as r:
            quiet = 0 if (await r.json())["relay"] else quiet + 1
        await asyncio.sleep(0.2)
    async with session.get(f"{listing}?state=failed&limit=1", headers=ADMIN) as r:
        failed: list[dict[str, Any]] = (await r.json())["relay"]
    return failed
