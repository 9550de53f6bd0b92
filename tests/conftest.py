"""Shared fixtures: a gateway on a fresh SQLite file per test, driven over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import Config

from .http.server import LOGS
from .logscan import Collector, leaks
from .support import make_config

Client = TestClient[web.Request, web.Application]
AiohttpClient = Callable[..., Awaitable[Client]]


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
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def config(database: str) -> Config:
    return make_config(database)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, config: Config) -> Any:
    return await aiohttp_client(create_app(config))
