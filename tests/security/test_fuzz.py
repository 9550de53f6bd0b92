"""Generated malformed requests at every endpoint of every dialect, on the real server.

A bounded, derandomized run (SECURITY_FUZZ_EXAMPLES, default 300, spread over the
endpoints); `python -m benchmarks.soak.fuzz_long` runs longer. Every answer is below 500
with no traceback in it; afterwards the ledger is unchanged and the server alive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .conftest import Catalogue
from .fuzz import ENDPOINTS, Endpoint, Target, run
from .harness import FIGURES

TOTAL = int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "300"))
PER_ENDPOINT = max(5, TOTAL // len(ENDPOINTS))


@pytest.fixture(scope="module")
def target(catalogue: Catalogue) -> Iterator[Target]:
    target = Target(catalogue.url, catalogue.port)
    target.prepare()
    before = target.ledger()
    yield target
    FIGURES.fuzz_examples += target.examples
    for status, count in target.statuses.items():
        FIGURES.fuzz_statuses[status] = FIGURES.fuzz_statuses.get(status, 0) + count
    assert target.ledger() == before, "the fuzz changed the ledger"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_fuzzed_requests_are_never_a_5xx(target: Target, endpoint: Endpoint) -> None:
    before = target.ledger()

    run(target, endpoint, PER_ENDPOINT)

    assert target.ledger() == before
    assert target.alive()


def test_the_server_survived_the_fuzz(target: Target, catalogue: Catalogue) -> None:
    assert target.alive()
    assert "unexpected error" not in catalogue.server.output()
