"""kill -9 under concurrent keyed writers, twenty times over: nothing lost, nothing doubled."""

from __future__ import annotations

from pathlib import Path

from benchmarks import crash


async def test_twenty_kills_under_keyed_writers_lose_and_double_nothing(tmp_path: Path) -> None:
    figures = await crash.run(
        f"sqlite:///{tmp_path / 'crash.db'}",
        cycles=20,
        writers=6,
        window=(0.05, 0.4),
        workdir=tmp_path,
    )
    assert figures.acknowledged >= 20, figures
    assert (figures.lost, figures.duplicated, figures.unacknowledged) == (0, 0, 0), figures
    assert (figures.wrong_due, figures.unexpected) == (0, 0), figures
