"""kill -9 under concurrent keyed writers: nothing lost, nothing doubled.

The default run kills one process once, on each store: the check that the property
holds at all. The soak run (`python -m pytest -m soak`) kills each shape (one process; a
supervisor with two workers) many times over, on each store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.soak import crash

pytestmark = pytest.mark.stores  # SQLite, then PostgreSQL


def shapes(two_workers_soak: int) -> pytest.MarkDecorator:
    """One kill of one process; under soak, many of each shape (one process; a supervisor
    with two workers)."""
    return pytest.mark.parametrize(
        ("workers", "cycles"),
        [
            (1, 1),
            pytest.param(1, 20, marks=pytest.mark.soak),
            pytest.param(2, two_workers_soak, marks=pytest.mark.soak),
        ],
    )


async def kills(
    database: str, tmp_path: Path, workers: int, cycles: int, *, events: bool = False
) -> crash.Figures:
    return await crash.run(
        database,
        cycles=cycles,
        writers=6,
        workers=workers,
        window=(0.05, 0.4),
        workdir=tmp_path,
        events=events,
    )


@pytest.mark.spread
@shapes(two_workers_soak=5)
async def test_kills_under_keyed_writers_lose_and_double_nothing(
    database_factory: Callable[..., str], tmp_path: Path, workers: int, cycles: int
) -> None:
    figures = await kills(database_factory("crash"), tmp_path, workers, cycles)
    assert figures.acknowledged >= cycles, figures
    assert (figures.lost, figures.duplicated, figures.unacknowledged) == (0, 0, 0), figures
    assert (figures.wrong_due, figures.unexpected) == (0, 0), figures


@pytest.mark.spread
@shapes(two_workers_soak=20)
async def test_kills_with_a_webhook_subscriber_lose_no_event(
    database_factory: Callable[..., str],
    tmp_path: Path,
    workers: int,
    cycles: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    figures = await kills(database_factory("crash"), tmp_path, workers, cycles, events=True)
    with capsys.disabled():  # the figures, duplicates at the subscriber among them
        print(f"\n{crash.Figures.header()}\n{figures.row()}")
    assert figures.events is not None
    assert figures.acknowledged >= cycles, figures
    assert (figures.lost, figures.duplicated, figures.unacknowledged) == (0, 0, 0), figures
    # Every acknowledged payment has its event; every event reached the subscriber.
    assert figures.events.events >= 2 * figures.acknowledged, figures
    assert (figures.events.without_event, figures.events.lost) == (0, 0), figures
    assert figures.events.bad_signatures == 0, figures
