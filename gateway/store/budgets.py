"""Shared rate budgets: token buckets in the database, taken from in batches.

Every gateway process on one database takes tokens of one bucket per limited key
(migration 12's `rate_budgets`). A take is one statement, on either engine: the bucket
is refilled to `now` (it holds at most `burst`, and gains `per_second` a second), then
charged `owed` tokens the process has already spent (the bucket may go below zero: the
debt is paid back by refill time before anything more is granted), then up to `want`
more whole tokens are granted while it holds them. The row is locked for that one
statement, so concurrent takers from any process see each other's takes.

Time is seconds since the epoch as the taking process counts it; a bucket never refills
for a stamp earlier than its own (a process whose clock lags takes no refill it has not
waited for).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

PURGE_BATCH = 1000  # rows one purge deletes at most


@dataclass(frozen=True)
class Take:
    """One take from a shared bucket."""

    key: str
    burst: float
    per_second: float
    owed: int  # tokens already spent: charged whatever the bucket holds
    want: int  # tokens wanted on top, granted while the bucket holds them
    now: float


@dataclass(frozen=True)
class Grant:
    granted: int  # of `want`
    left: float  # the bucket's tokens after the take (below 1: empty, below 0: in debt)


def _upsert(mark: str) -> str:
    """The take as one statement; `mark` numbers the parameters (`$` or `?`)."""
    key, burst, rate, owed, want, now = (f"{mark}{n}" for n in range(1, 7))
    refilled = f"MIN_({burst}, b.tokens + MAX_(0, {now} - b.stamp) * {rate}) - {owed}"
    granted = f"MIN_({want}, MAX_(0, CAST(FLOOR_({refilled}) AS BIGINT)))"
    fresh_granted = f"MIN_({want}, MAX_(0, CAST(FLOOR_({burst} - {owed}) AS BIGINT)))"
    fresh_left = f"{burst} - {owed} - {fresh_granted}"
    return (
        f"INSERT INTO rate_budgets AS b (key, tokens, granted, stamp, idle_at)"
        f" VALUES ({key}, {fresh_left}, {fresh_granted}, {now},"
        f" {now} + ({burst} - ({fresh_left})) / {rate})"
        f" ON CONFLICT (key) DO UPDATE SET"
        f" tokens = {refilled} - {granted},"
        f" granted = {granted},"
        f" stamp = MAX_(b.stamp, {now}),"
        f" idle_at = MAX_(b.stamp, {now}) + ({burst} - ({refilled} - {granted})) / {rate}"
        f" RETURNING granted, tokens"
    )


def _spelled(sql: str, *, least: str, greatest: str, floor: str) -> str:
    return sql.replace("MIN_", least).replace("MAX_", greatest).replace("FLOOR_", floor)


# PostgreSQL: typed parameters, so one prepared statement serves every take.
POSTGRES_TAKE = _spelled(
    _upsert("$")
    .replace("$1", "$1::text")
    .replace("$2", "$2::float8")
    .replace("$3", "$3::float8")
    .replace("$4", "$4::bigint")
    .replace("$5", "$5::bigint")
    .replace("$6", "$6::float8"),
    least="LEAST",
    greatest="GREATEST",
    floor="floor",
)
# SQLite's two-argument MIN and MAX are scalar; CAST to INTEGER truncates toward zero,
# which is the floor for what is not negative (the only values whose floor counts).
SQLITE_TAKE = _spelled(_upsert("?"), least="MIN", greatest="MAX", floor="")

POSTGRES_PURGE = (
    "DELETE FROM rate_budgets WHERE key IN"
    f" (SELECT key FROM rate_budgets WHERE idle_at < $1 LIMIT {PURGE_BATCH})"
)
SQLITE_PURGE = (
    "DELETE FROM rate_budgets WHERE key IN"
    f" (SELECT key FROM rate_budgets WHERE idle_at < ? LIMIT {PURGE_BATCH})"
)


def _params(take: Take) -> tuple[Any, ...]:
    return (take.key, float(take.burst), take.per_second, take.owed, take.want, take.now)


async def postgres_take(conn: asyncpg.Connection[Any] | Any, take: Take) -> Grant:
    row = await conn.fetchrow(POSTGRES_TAKE, *_params(take))
    assert row is not None  # an upsert returns its row
    return Grant(int(row[0]), float(row[1]))


async def postgres_purge(conn: asyncpg.Connection[Any] | Any, now: float) -> int:
    status: str = await conn.execute(POSTGRES_PURGE, now)
    return int(status.rsplit(" ", 1)[-1])


def sqlite_take(db: sqlite3.Connection, take: Take) -> Grant:
    row = db.execute(SQLITE_TAKE, _params(take)).fetchone()
    return Grant(int(row[0]), float(row[1]))


def sqlite_purge(db: sqlite3.Connection, now: float) -> int:
    return db.execute(SQLITE_PURGE, (now,)).rowcount
