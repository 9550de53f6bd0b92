"""The bounded LRU/TTL map, and the tables kept in it: rate-limit buckets and the id map."""

from __future__ import annotations

from pathlib import Path

import pytest

import dialects
from dialects.errors import TooManyRequests
from gateway.access.limits import MAX_BUCKETS, RateLimiter
from gateway.access.lru import LRU
from gateway.config import RateLimit
from gateway.proxy.idmap import IdMap
from gateway.store import BackendRef, SQLiteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_past_capacity_the_least_recently_used_entry_goes() -> None:
    table: LRU[str, int] = LRU(3)
    for number, key in enumerate("abc"):
        table.put(key, number)
    assert table.get("a") == 0  # now the most recently used

    table.put("d", 3)

    assert (table.get("b"), table.get("a"), table.get("c"), table.get("d")) == (None, 0, 2, 3)
    assert len(table) == 3


def test_an_entry_expires_ttl_seconds_after_it_was_last_written() -> None:
    clock = Clock()
    table: LRU[str, str] = LRU(10, ttl=5, clock=clock)
    table.put("a", "first")
    clock.now += 4
    table.put("b", "second")
    assert table.get("a") == "first"  # reading does not extend its life

    clock.now += 1
    assert table.get("a") is None
    assert table.get("b") == "second"
    table.put("a", "again")
    clock.now += 4.5
    assert (table.get("a"), table.get("b")) == ("again", None)


def test_writing_drops_the_expired_entries_so_they_hold_no_memory() -> None:
    clock = Clock()
    table: LRU[int, int] = LRU(100, ttl=1, clock=clock)
    for key in range(50):
        table.put(key, key)
    clock.now += 2
    table.put(-1, -1)
    assert len(table) == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)


ME = ("harvest", "login", "me@example.com")


def test_a_blocked_identity_stays_blocked_however_many_other_addresses_fail() -> None:
    """The table once emptied itself at 100,000 addresses, refilling every bucket."""
    clock = Clock()
    limiter = RateLimiter({}, clock=clock, failures=RateLimit(per_second=0.01, burst=2))
    for _ in range(2):
        limiter.failed("10.0.0.1", ME)
    for number in range(MAX_BUCKETS + 10):
        limiter.failed(f"fd00::{number:x}", ME)
        if number % 1000 == 0:  # the blocked client keeps knocking, and is kept
            with pytest.raises(TooManyRequests):
                limiter.check("10.0.0.1", ME)
    with pytest.raises(TooManyRequests):
        limiter.check("10.0.0.1", ME)


def test_a_bucket_expires_only_once_it_would_be_full_again() -> None:
    clock = Clock()
    limiter = RateLimiter({}, clock=clock, failures=RateLimit(per_second=1, burst=3), capacity=10)
    for _ in range(3):
        limiter.failed("10.0.0.1", ME)
    clock.now += 1.5
    limiter.check("10.0.0.1", ME)  # one token back
    limiter.failed("10.0.0.1", ME)
    with pytest.raises(TooManyRequests):
        limiter.check("10.0.0.1", ME)


async def test_the_id_map_keeps_its_recent_entries_past_its_capacity(tmp_path: Path) -> None:
    """Once, the cache was emptied when full: every id a store round trip again."""
    store = SQLiteStore(str(tmp_path / "ids.db"))
    await store.open()
    backend, caller = dialects.get("invoiless"), dialects.get("harvest")
    ids = IdMap(store, "acme", backend, parents=False, capacity=200)
    refs = [BackendRef(f"inv-{number}") for number in range(201)]  # minted: not numbers
    local = await ids.local("invoice", refs[:-1], caller)
    recent = refs[-100:-1]
    assert await ids.local("invoice", recent, caller) == local[-99:]
    await ids.local("invoice", refs[-1:], caller)
    await store.close()  # from here on, only the cache can answer

    assert await ids.local("invoice", recent, caller) == local[-99:]
    assert await ids.ref("invoice", local[-1]) == recent[-1]
    with pytest.raises(RuntimeError, match="not open"):
        await ids.local("invoice", refs[:1], caller)  # the least recently used went
