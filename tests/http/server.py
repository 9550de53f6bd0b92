"""The gateway as a real process: a config file on disk, a free port, a bounded start."""

from __future__ import annotations

import asyncio
import http.client
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import yaml

from dialects.testing import Answer

from ..support import tenant_config

ADMIN_TOKEN = "process-admin-token"
START_TIMEOUT = 30.0  # generous: several processes may be starting at once on a busy machine


def write_config(directory: Path) -> Path:
    """A config.yaml with plain-text credentials for tenant acme (as tests.support has them)."""
    raw: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "token_secret": "process-token-secret",
        "server": {"access_log": False},
        "tenants": {"acme": tenant_config("acme")},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def engine_database(request: pytest.FixtureRequest, directory: Path, name: str) -> Path | str:
    """A fresh database on the engine a fixture is parametrised with (`tests.conftest.ENGINES`):
    a file in `directory` for SQLite, a new schema of the session's PostgreSQL server else."""
    if request.param == "sqlite":
        return directory / f"{name}.db"
    cluster = request.getfixturevalue("postgres")
    return str(cluster.url(cluster.create()))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Every log file a gateway process of this test run wrote (searched for secrets at the end).
LOGS: list[Path] = []


class Server:
    """One `python -m gateway` process; its output goes to a log file for diagnosis.

    `args` come after the usual options (`serve --log-format json`, say).
    """

    def __init__(
        self,
        config: Path,
        database: Path | str,
        log: Path,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        """`database`: a SQLite file, or any database URL; `args`: more options; `port`:
        the one to listen on (a free one if not given)."""
        url = database if isinstance(database, str) else f"sqlite:///{database}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        LOGS.append(log)
        self._log_file: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "--config",
                str(config),
                "--port",
                str(self.port),
                "--database",
                url,
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def ready(self, session: aiohttp.ClientSession) -> None:
        """Wait (bounded) until /healthz answers; fail early if the process died."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"gateway exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                async with session.get(
                    f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    if response.status == 200 and await response.json() == {"status": "ok"}:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"gateway did not answer /healthz in {START_TIMEOUT} s:\n{self.output()}"
        )

    def wait_ready(self) -> Server:
        """`ready` for code outside an event loop (fixtures); stops the process on failure."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"gateway exited:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"gateway did not start in {START_TIMEOUT} s:\n{self.output()}")

    def wait_for(self, text: str, after: int = 0) -> str:
        """Wait (bounded) until the output past offset `after` contains `text`."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            output = self.output()[after:]
            if text in output:
                return output
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the gateway's output:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no chance to flush anything."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()


@contextmanager
def running(
    config: Path,
    database: Path | str,
    log: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    server = Server(config, database, log, env=env, args=args)
    try:
        yield server
    finally:
        server.stop()


def send(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One request on a new connection, from code outside an event loop (hypothesis)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()
