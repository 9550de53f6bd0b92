"""Fixtures of the security catalogue: one real gateway process for the whole session.

The catalogue server has tenants acme and globex (plain secrets, as tests.support),
`hashed` (every secret a scrypt hash, as config.yaml keeps them) and `fuzz` (what the
fuzz test authenticates as). Its failed-authentication limit is off, since the catalogue
fails on purpose hundreds of times from one address; test_abuse.py runs its own servers
to prove that limit and the others. Figures are printed at the end of the run
(tests/conftest.py, from each worker).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from ..http.server import Server
from ..support import tenant_config
from .harness import FIGURES, MAX_RSS_GROWTH_MB, gateway, hashed_tenant, memory_kb, warm_up


@dataclass(frozen=True)
class Catalogue:
    server: Server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> int:
        return self.server.process.pid


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogue]:
    tenants = {
        "acme": tenant_config("acme"),
        "globex": tenant_config("globex"),
        "hashed": hashed_tenant("hashed"),
        "fuzz": tenant_config("fuzz"),
    }
    directory = tmp_path_factory.mktemp("catalogue")
    with gateway(
        directory,
        "catalogue",
        tenants,
        auth_failures=None,
        auth_address_failures=None,
        auth_global_failures=None,
    ) as server:
        FIGURES.rss_baseline_kb = memory_kb(server.process.pid)["VmRSS"]
        catalogue = Catalogue(server)
        yield catalogue
        # After every catalogue test this process ran, in whatever order they came.
        assert_alive_small_and_quiet(catalogue)


def assert_alive_small_and_quiet(catalogue: Catalogue) -> None:
    """The server answers, its peak RSS grew less than the bound, and it logged no 500."""
    with urllib.request.urlopen(f"{catalogue.url}/healthz", timeout=30) as answer:
        assert (answer.status, json.load(answer)) == (200, {"status": "ok"})
    memory = memory_kb(catalogue.pid)
    FIGURES.rss_peak_kb, FIGURES.rss_end_kb = memory["VmHWM"], memory["VmRSS"]
    growth_mb = (memory["VmHWM"] - FIGURES.rss_baseline_kb) / 1024
    assert growth_mb < MAX_RSS_GROWTH_MB, f"peak RSS grew {growth_mb:.1f} MB"
    log = catalogue.server.output()
    assert "unexpected error" not in log, "a request met an unhandled exception (a 500)"
    assert "Traceback" not in log, "malformed requests are logged in one line each"


@pytest.fixture
async def http(catalogue: Catalogue) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, warmed up against the catalogue server."""
    async with aiohttp.ClientSession() as session:
        await warm_up(session, catalogue.url)
        yield session
