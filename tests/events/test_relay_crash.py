"""kill -9 of every gateway process while it relays: each acknowledged payment reaches
the backend (a second gateway, never killed) exactly once when the backend takes
idempotency keys; without keys, the duplicates found there are reported.

The default run kills once while relaying to a backend that takes keys, on each store;
the soak run (`python -m pytest -m soak`) twenty times, to either backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.soak import crash

pytestmark = pytest.mark.stores  # SQLite, then PostgreSQL


@pytest.mark.spread
@pytest.mark.parametrize(
    ("relay", "cycles"),
    [
        ("xero", 1),
        pytest.param("xero", 20, marks=pytest.mark.soak),
        pytest.param("harvest", 20, marks=pytest.mark.soak),
    ],
)
async def test_kills_while_relaying_leave_each_payment_once_at_the_backend(
    database_factory: Callable[..., str], tmp_path: Path, relay: str, cycles: int
) -> None:
    figures = await crash.run(
        database_factory("relay-crash"),
        cycles=cycles,
        writers=3,
        window=(0.1, 0.3),
        workdir=tmp_path,
        relay=relay,
    )
    print(figures.row())  # the figures, for the record (duplicates without keys)
    assert figures.acknowledged >= cycles, figures
    assert (figures.lost, figures.duplicated, figures.unacknowledged) == (0, 0, 0), figures
    assert figures.relay_missing == 0, figures
    assert figures.relayed == figures.acknowledged + figures.relay_duplicated, figures
    if relay == "xero":  # the backend takes keys: exactly once
        assert figures.relay_duplicated == 0, figures
