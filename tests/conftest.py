"""Shared fixtures: a gateway on a fresh SQLite file per test, driven over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import Config

from .support import make_config

Client = TestClient[web.Request, web.Application]
AiohttpClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def config(database: str) -> Config:
    return make_config(database)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, config: Config) -> Any:
    return await aiohttp_client(create_app(config))
