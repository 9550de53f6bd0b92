"""The database from the command line: `migrate`, and start-ups that cannot use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store.migrations import MIGRATIONS, latest

from ..http.server import write_config
from .test_contract import _sql

pytestmark = pytest.mark.stores


def gateway(config: Path, database: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(config), "--database", database, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_migrate_from_many_processes_at_once_applies_each_version_once(
    tmp_path: Path, database: str
) -> None:
    config = write_config(tmp_path)
    processes = [gateway(config, database, "migrate") for _ in range(4)]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    rows = await _sql(database, "SELECT version FROM schema_migrations ORDER BY version")
    assert [row[0] for row in rows] == [m.version for m in MIGRATIONS]


async def test_a_database_newer_than_the_gateway_stops_it_with_a_clear_line(
    tmp_path: Path, database: str
) -> None:
    config = write_config(tmp_path)
    migrated = gateway(config, database, "migrate")
    _, err = migrated.communicate(timeout=60)
    assert migrated.returncode == 0, err
    await _sql(database, "INSERT INTO schema_migrations VALUES ($1, 'later')", latest() + 1)
    process = gateway(config, database)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: the database schema is at version")
    assert "newer than this gateway" in line


def test_an_unreachable_postgresql_stops_the_start_in_one_masked_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    process = gateway(config, "postgresql://ledger:s3cret@127.0.0.1:1/ledger")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: cannot reach the database postgresql://ledger:***@127.0.0.1:1")
    assert "s3cret" not in out + err and "Traceback" not in out + err
