"""The failed-login limits on an injected clock: per (address, identity), and per address."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from dialects.errors import TooManyRequests
from gateway.access.limits import ATTEMPT, Identity, RateLimiter, claim, proven, unproven
from gateway.config import RateLimit
from gateway.processes.reload import reload
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY

from ..support import make_config

ME: Identity = ("harvest", "login", "me@example.com")
YOU: Identity = ("harvest", "login", "you@example.com")
SPRAYER = "198.51.100.7"


class Clock:
    """Time that passes only when a test (or a wait) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(clock: Clock, *, burst: int = 3, address_burst: int = 5, **extra: Any) -> RateLimiter:
    return RateLimiter(
        {},
        clock=clock,
        failures=RateLimit(per_second=1, burst=burst),
        address_failures=RateLimit(per_second=1, burst=address_burst),
        wait_limit=10,
        sleep=clock.sleep,
        **extra,
    )


async def check(limits: RateLimiter, address: str, identity: Identity, right: bool) -> bool:
    """One request's authentication as auth.py runs it; whether its lockout began."""
    attempt = limits.attempt(address)
    token = ATTEMPT.set(attempt)
    try:
        claim(identity)
        async with unproven():
            pass
        if right:
            proven()
            return False
        return attempt.failed()
    finally:
        ATTEMPT.reset(token)


# --- per (address, identity) ---------------------------------------------------------


async def test_an_identitys_failures_lock_out_that_identity_alone_until_it_refills() -> None:
    clock = Clock()
    limits = limiter(clock)
    began = [await check(limits, SPRAYER, ME, right=False) for _ in range(3)]
    assert began == [False, False, True]

    with pytest.raises(TooManyRequests) as refused:
        await check(limits, SPRAYER, ME, right=True)
    assert refused.value.retry_after == 1
    assert not await check(limits, SPRAYER, YOU, right=True)  # another identity is served
    assert not await check(limits, "203.0.113.9", ME, right=True)  # so is it elsewhere
    clock.now += 1.0
    await check(limits, SPRAYER, ME, right=True)  # one token back: served again


def test_checking_an_identity_without_failures_keeps_nothing() -> None:
    limits = limiter(Clock())
    for number in range(100):
        limits.check(SPRAYER, ("harvest", "login", f"user{number}"))
    assert len(limits._identities) == 0


def test_a_blocked_identity_knocking_is_kept_while_other_identities_fill_the_table() -> None:
    clock = Clock()
    limits = limiter(clock, capacity=10)
    for _ in range(3):
        limits.failed(SPRAYER, ME)
    for number in range(100):
        limits.failed(SPRAYER, ("harvest", "login", f"user{number}"))
        with pytest.raises(TooManyRequests):
            limits.check(SPRAYER, ME)


async def test_an_evicted_identity_gets_a_bucket_back_but_its_address_is_paced() -> None:
    """What eviction can give away: the identity's burst, never the address's pace."""
    clock = Clock()
    limits = limiter(clock, capacity=10)
    for _ in range(3):
        await check(limits, SPRAYER, ME, right=False)
    for number in range(10):  # a spray of new identities, left alone, evicts ME's bucket
        await check(limits, SPRAYER, ("harvest", "login", f"user{number}"), right=False)
    limits.check(SPRAYER, ME)

    clock.waits.clear()
    await check(limits, SPRAYER, ME, right=False)
    assert clock.waits == [pytest.approx(1.0)]  # waited its turn at the address's pace


# --- per address ------------------------------------------------------------------------


async def test_an_address_out_of_budget_has_its_unproven_checks_paced_not_refused() -> None:
    clock = Clock()
    limits = limiter(clock)
    for number in range(5):  # five new identities: the address's budget of five
        await check(limits, SPRAYER, ("harvest", "login", f"user{number}"), right=False)
    assert clock.waits == []

    start = clock.now
    for number in range(5, 10):
        await check(limits, SPRAYER, ("harvest", "login", f"user{number}"), right=False)
    assert clock.now - start == pytest.approx(5.0)  # one a second, the budget's refill
    assert not await check(limits, SPRAYER, ME, right=True)  # a right secret waits its turn
    assert clock.now - start == pytest.approx(6.0)
    assert not await check(limits, "203.0.113.9", ME, right=True)  # elsewhere: no wait
    assert clock.now - start == pytest.approx(6.0)


async def test_a_turn_further_away_than_the_wait_limit_is_refused_with_retry_after() -> None:
    clock = Clock()
    limits = limiter(clock)
    taken = [limits._reserve(SPRAYER, "harvest") for _ in range(5 + 10)]  # 5 now, 10 queued
    assert taken[-1] == pytest.approx(clock.now + 10)
    with pytest.raises(TooManyRequests) as refused:
        limits._reserve(SPRAYER, "harvest")
    assert refused.value.retry_after == 11
    clock.now += 1
    assert limits._reserve(SPRAYER, "harvest") == pytest.approx(clock.now + 10)


async def test_a_right_secret_gives_its_token_back() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(20):
        await check(limits, SPRAYER, ("harvest", "login", "me"), right=True)
    assert clock.waits == []  # never spent anything, never waited


async def test_failures_that_took_no_turn_spend_the_budget_without_debt() -> None:
    clock = Clock()
    limits = limiter(clock)
    for number in range(50):  # say, bearer tokens: no secret to guess, no turn taken
        attempt = limits.attempt(SPRAYER)
        attempt.identity = ("urlkey", "app", f"app{number}")
        attempt.failed()
    clock.waits.clear()
    await check(limits, SPRAYER, ME, right=True)
    assert clock.waits == [pytest.approx(1.0)]  # paced, one refill away (no more)


async def test_one_unproven_check_at_a_time_per_address_in_arrival_order() -> None:
    limits = limiter(Clock(), address_burst=100)
    running: list[str] = []
    order: list[str] = []
    release = asyncio.Event()

    async def one(address: str, name: str) -> None:
        async with limits.turn(address, "harvest"):
            running.append(name)
            order.append(name)
            if name == "first":
                await release.wait()
            running.remove(name)

    tasks = [asyncio.create_task(one(SPRAYER, name)) for name in ("first", "second", "third")]
    elsewhere = asyncio.create_task(one("203.0.113.9", "elsewhere"))
    await asyncio.sleep(0.01)
    assert running == ["first"] and order == ["first", "elsewhere"]  # not queued behind
    release.set()
    await asyncio.gather(*tasks, elsewhere)
    assert order == ["first", "elsewhere", "second", "third"]
    assert limits._lanes == {}  # a lane lives while it is used


async def test_a_paced_address_is_logged_once_as_its_pacing_begins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = limiter(Clock())
    with caplog.at_level(logging.INFO, logger="gateway"):
        for number in range(8):
            await check(limits, SPRAYER, ("harvest", "login", f"user{number}"), right=False)
    [line] = [r.fields for r in caplog.records if r.getMessage() == "auth_lockout"]  # type: ignore[attr-defined]
    assert (line["address"], line["bucket"]) == (SPRAYER, "address")


# --- configuration ----------------------------------------------------------------------


async def test_reconfigured_limits_apply_and_spent_tokens_are_kept() -> None:
    clock = Clock()
    limits = limiter(clock)
    for _ in range(3):
        limits.failed(SPRAYER, ME)

    limits.reconfigure({}, RateLimit(per_second=0.5, burst=10), RateLimit(per_second=1, burst=5))
    with pytest.raises(TooManyRequests) as refused:
        limits.check(SPRAYER, ME)  # a larger burst refills no one at once
    assert refused.value.retry_after == 2  # the new pace
    clock.now += 2
    limits.check(SPRAYER, ME)

    limits.reconfigure({}, None, None)  # off: nobody refused, nothing paced
    for _ in range(100):
        assert not await check(limits, SPRAYER, ME, right=False)
    assert clock.waits == []


# --- over the whole process ------------------------------------------------------------


async def test_a_spray_from_many_addresses_is_bounded_over_the_whole_process() -> None:
    clock = Clock()
    limits = limiter(clock, global_failures=RateLimit(per_second=2, burst=10))
    for number in range(10):  # ten addresses, each well inside its own budget
        assert not await check(limits, f"198.51.100.{number}", ("harvest", "login", "x"), False)
    with pytest.raises(TooManyRequests) as refused:  # an eleventh, fresh address: refused now
        await check(limits, "198.51.100.99", ("harvest", "login", "x"), right=False)
    assert refused.value.retry_after == 1
    assert clock.waits == []  # refused, not queued behind the spray
    clock.now += 0.5  # one token refilled: one more check, and then none
    assert not await check(limits, "198.51.100.99", ("harvest", "login", "y"), right=False)
    with pytest.raises(TooManyRequests):
        await check(limits, "198.51.100.98", ("harvest", "login", "z"), right=False)


async def test_a_right_secret_gives_its_process_wide_token_back() -> None:
    clock = Clock()
    limits = limiter(clock, global_failures=RateLimit(per_second=1, burst=2))
    for number in range(30):
        await check(limits, f"198.51.100.{number}", ME, right=True)
    assert not await check(limits, SPRAYER, ME, right=False)  # the budget is whole
    assert not await check(limits, SPRAYER, ME, right=False)
    with pytest.raises(TooManyRequests):
        await check(limits, "203.0.113.9", YOU, right=False)


async def test_a_reload_applies_both_failed_login_limits(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'reload.db'}"
    app = create_app(make_config(database, server={"auth_address_failures": None}))
    gateway = app[GATEWAY]
    clock = Clock()
    gateway.limits.clock, gateway.limits.sleep = clock, clock.sleep
    for _ in range(20):
        gateway.limits.failed(SPRAYER, ME)  # the default 20: locked out
    with pytest.raises(TooManyRequests):
        gateway.limits.check(SPRAYER, ME)

    looser = {"per_second": 0.5, "burst": 50}
    tight = {"per_second": 1, "burst": 1}
    everyone = {"per_second": 0.01, "burst": 2}
    reread = make_config(database, server={"auth_failures": looser, "auth_address_failures": tight,
                                           "auth_global_failures": everyone})  # fmt: skip
    assert await reload(gateway, lambda: reread, "config.yaml")

    with pytest.raises(TooManyRequests) as refused:  # a larger burst refills no one at once
        gateway.limits.check(SPRAYER, ME)
    assert refused.value.retry_after == 2  # the new pace
    await check(gateway.limits, "203.0.113.9", YOU, right=False)
    await check(gateway.limits, "203.0.113.9", ME, right=False)
    assert clock.waits == [pytest.approx(1.0)]  # the new address budget paces the second
    with pytest.raises(TooManyRequests):  # the new process-wide budget: two in all, spent
        await check(gateway.limits, "203.0.113.10", YOU, right=False)
