"""Fixtures: the backend process (once per module), its admin API, and proxy gateways."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from gateway.serving.app import create_app

from ..conftest import AiohttpClient, Client
from ..http.server import Server
from .fake import FakeBackend, invoiless_backend
from .harness import LedgerBackend, proxy_config, start_backend

ProxyFactory = Callable[..., Awaitable[Client]]


@pytest.fixture(scope="module")
def backend_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_backend(tmp_path_factory.mktemp("backend"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def backend(backend_process: Server) -> AsyncIterator[LedgerBackend]:
    async with aiohttp.ClientSession() as session:
        yield LedgerBackend(backend_process.url, session)


@pytest.fixture
def proxy_database(database_factory: Callable[..., str]) -> str:
    """The proxy's own database (its id map), of the test's engine."""
    return database_factory("proxy")


@pytest.fixture
def make_proxy(aiohttp_client: AiohttpClient, proxy_database: str) -> ProxyFactory:
    """A proxy gateway in process: tenant acme's payments live at `backend`."""

    async def make(backend: dict[str, Any], *, database: str | None = None) -> Client:
        return await aiohttp_client(create_app(proxy_config(database or proxy_database, backend)))

    return make


@pytest.fixture
async def fake(aiohttp_server: AiohttpServer) -> FakeBackend:
    """A fake backend on a free port, answering as a healthy Invoiless backend."""
    backend = FakeBackend(invoiless_backend)
    server = await aiohttp_server(backend.app())
    backend.url = f"http://{server.host}:{server.port}"
    return backend
