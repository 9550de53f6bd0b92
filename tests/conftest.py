"""Shared fixtures: a gateway on a fresh database per test, driven over HTTP.

The database is SQLite unless a test (or its module, `pytestmark`) is marked
`stores`: then it runs once per engine, SQLite and PostgreSQL, on a fresh database
each time. PostgreSQL is a real server the session starts on first use
(tests.postgres); without its binaries those tests fail, they never skip.
"""

from __future__ import annotations

import ast
import functools
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.config import Config
from gateway.serving.app import create_app
from gateway.store import Store, open_store

from .http.server import LOGS
from .logscan import Collector, leaks
from .postgres import Cluster
from .security.harness import FIGURES
from .support import make_config

Client = TestClient[web.Request, web.Application]
AiohttpClient = Callable[..., Awaitable[Client]]
ENGINES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    _bytecode_cache(config)
    config.addinivalue_line("markers", "stores: run the test on SQLite and on PostgreSQL")
    config.addinivalue_line(
        "markers",
        "spread: a long run of its own (a subprocess for seconds): under pytest-xdist each of"
        " its cases may go to any worker, and they start first",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: a worker per core and one more. A test spends part of its time waiting
    (for a timeout to pass, a process to start, a socket to answer); with a worker per
    core those waits left a core idle a third of the run. PYTEST_XDIST_AUTO_NUM_WORKERS
    still decides where it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1


def _bytecode_cache(config: pytest.Config) -> None:
    """Compile the sources once per machine, not once per process, where the environment
    asks Python to write no bytecode (PYTHONDONTWRITEBYTECODE, as some CI images set).

    The run starts a few hundred Python processes (pytest-xdist workers, gateways,
    command-line runs); without bytecode each compiles every module of the gateway and
    the tests again, a third of its start-up. The tree stays as the setting wants it:
    the bytecode goes to a directory of this user's own under the temporary directory
    (PYTHONPYCACHEPREFIX), which the processes the run starts inherit. Set by the
    controlling process before it starts its workers (and for the rest of its own
    imports, for a run without workers); a chosen prefix is kept.
    """
    if hasattr(config, "workerinput") or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    if os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    cache = Path(tempfile.gettempdir()) / f"invoice-gateway-bytecode-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    if cache.stat().st_uid != os.getuid() or cache.is_symlink():
        return  # not ours: another user's bytecode is never run
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache)
    sys.pycache_prefix, sys.dont_write_bytecode = str(cache), False  # this process's imports


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The units pytest-xdist hands out (`--dist loadgroup`): a module's tests stay on one
    worker, so a server a module starts once starts once, but each case of a `spread`
    test is a unit of its own, and those long ones are handed out first, so no worker
    is left with one at the end while the others idle (`Units` hands them out)."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        spread = item.get_closest_marker("spread") is not None
        module = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(item.nodeid if spread else module))
    items.sort(key=lambda item: item.get_closest_marker("spread") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`, by the units above, whatever pytest's node ids allow.

    pytest-xdist tells the controller a test's group by appending `@group` to the node id
    a worker reports; since pytest 9.2 a node id can no longer be changed that way, so
    every test came to the controller as a group of its own, and a module's servers
    started once per worker its tests went to. `Units` finds the units from the node ids
    as they are: the module, or the test itself for a `spread` one (read from the
    module's source: the controller collects no tests). Work units keep the order the
    workers collected them in (spread ones first), not the largest first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

    class Units(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.rfind("@") > nodeid.rfind("]"):  # a pytest-xdist that names groups
                return str(super()._split_scope(nodeid))
            path, _, rest = nodeid.partition("::")
            function = rest.split("[", 1)[0].split("::")[-1]
            return nodeid if function in _spread_tests(config.rootpath / path) else path

    config.option.loadscopereorder = False
    return Units(config, log)


@functools.cache
def _spread_tests(path: Path) -> frozenset[str]:
    """The test functions of a module marked `@pytest.mark.spread`, from its source."""
    if path.suffix != ".py" or not path.is_file():
        return frozenset()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(ast.unparse(mark) == "pytest.mark.spread" for mark in node.decorator_list)
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands the security catalogue's figures to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["security_figures"] = FIGURES.lines()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    lines = getattr(node, "workeroutput", {}).get("security_figures")
    if lines:
        WORKER_FIGURES.append((str(node.gateway.id), lines))


# (worker, its security catalogue figures), gathered by the controller under pytest-xdist.
WORKER_FIGURES: list[tuple[str, list[str]]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The security catalogue's figures: this process's, or each worker's."""
    found = [("", FIGURES.lines())] if FIGURES.lines() else WORKER_FIGURES
    for worker, lines in sorted(found):
        terminalreporter.section(f"security catalogue figures {worker}".rstrip())
        for line in lines:
            terminalreporter.write_line(line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("stores"):
        metafunc.parametrize("engine", ENGINES)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The session's PostgreSQL server (started on first use)."""
    cluster = Cluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log_line() -> Iterator[None]:
    """Across the whole run: the gateways' log lines, in process and out, hold no secret.

    In-process gateways log from INFO up for the run, so their access lines count too.
    """
    collector = Collector()
    logger = logging.getLogger("gateway")
    level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(collector)
        logger.setLevel(level)
    found = leaks(collector.lines, LOGS)
    assert not found, "secrets in log lines:\n" + "\n".join(found[:20])


@pytest.fixture
def engine() -> str:
    """The store engine under test: SQLite unless the test is marked `stores`."""
    return "sqlite"


@pytest.fixture
def database_factory(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Fresh, empty database URLs of the test's engine (a PostgreSQL URL names a schema)."""
    made: list[str] = []
    cluster: Cluster | None = request.getfixturevalue("postgres") if engine != "sqlite" else None

    def make(name: str = "ledger") -> str:
        if cluster is None:
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        made.append(cluster.create())
        return cluster.url(made[-1])

    yield make
    for name in made:
        assert cluster is not None
        cluster.drop(name)


@pytest.fixture
def database(database_factory: Callable[..., str]) -> str:
    return database_factory()


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    """An open store on the test's fresh database."""
    opened = open_store(database)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def config(database: str) -> Config:
    return make_config(database)


@pytest.fixture
async def client(config: Config, aiohttp_client: AiohttpClient) -> Any:
    """A gateway on `config`; its database (set up first) is torn down after it closes."""
    return await aiohttp_client(create_app(config))
