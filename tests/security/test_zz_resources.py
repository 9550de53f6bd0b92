"""After the catalogue (this file is collected last): the server alive, small and quiet.

Peak memory is the catalogue server's VmHWM (the kernel's high-water mark of its
resident set) against its RSS just after start-up: the bombs, the megabyte documents
and the fuzz must not have grown it past MAX_RSS_GROWTH_MB.
"""

from __future__ import annotations

import aiohttp

from .conftest import Catalogue
from .harness import FIGURES, MAX_RSS_GROWTH_MB, memory_kb, send


async def test_the_catalogue_server_is_alive_small_and_quiet(catalogue: Catalogue) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await send(http, catalogue.url, "GET", "/healthz")
        assert (answer.status, answer.json()) == (200, {"status": "ok"})

    memory = memory_kb(catalogue.pid)
    FIGURES.rss_peak_kb, FIGURES.rss_end_kb = memory["VmHWM"], memory["VmRSS"]
    growth_mb = (memory["VmHWM"] - FIGURES.rss_baseline_kb) / 1024
    assert growth_mb < MAX_RSS_GROWTH_MB, f"peak RSS grew {growth_mb:.1f} MB"
    log = catalogue.server.output()
    assert "unexpected error" not in log, "a request met an unhandled exception (a 500)"
    assert "Traceback" not in log, "malformed requests are logged in one line each"
