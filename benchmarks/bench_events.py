"""What events cost a create, and how late a webhook delivery arrives.

    python -m benchmarks.bench_events [--seconds 8] [--rounds 3] [--connections 16]
                                      [--rate 25] [--lag-seconds 15] [--stores sqlite postgresql]

For each store (SQLite with synchronous=FULL on a new file; PostgreSQL on a throwaway
durable server, as `benchmarks.bench_scale` starts it) one gateway process per variant
runs side by side, each on its own database:

- `none`: no subscription;
- `webhooks`: two webhook subscriptions (format `standard`) to local receivers served
  by a separate process (one aiohttp server, two paths; it records each delivery);
- `webhooks+relay`: the same two subscriptions, and a relay of every payment to a
  second gateway (ledger mode on SQLite, spoken to in Harvest XML, so each forward is a
  create without an idempotency key) on the same machine.

Throughput: Harvest XML creates over `--connections` keep-alive connections (the
benchmarks' aiohttp load loop) for `--seconds`, alternating the variants for `--rounds`
rounds in one sitting; after each run the gateway's deliveries and forwards are left to
drain (the receiver counts the deliveries; the relay's pending list empties) before the
next run starts, so no run pays for another's backlog. Lag: creates at a
steady `--rate` per second, below saturation, to the `webhooks` gateway, then the
time from each event's timestamp to its receipt at the receiver (p50, p99, max).
Prints markdown tables, the load average before and after each run included.

A variant is the tenant keys it adds (`VARIANTS`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.bench_create import creator, new_invoices
from benchmarks.harness import (
    bench_config,
    free_port,
    gateway_process,
    load,
    relay_settled,
    server_process,
)

SECRET = "whsec_" + "YmVuY2gtZXZlbnRzLXdlYmhvb2stc2VjcmV0LTMyYg=="
TENANT = "bench"


@dataclass(frozen=True)
class Context:
    """What a variant's config may point at: the receiver's and the relay backend's
    base URLs."""

    receiver: str
    backend: str


def two_webhooks(at: Context) -> dict[str, Any]:
    return {
        "webhooks": [
            {"name": name, "url": f"{at.receiver}/{name}", "secret": SECRET}
            for name in ("erp", "crm")
        ]
    }


RELAY = {"dialect": "harvest", "user": "bench@example.com", "password": "bench"}


# Each variant: the keys it adds to the bench tenant's config.
VARIANTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "none": lambda _: {},
    "webhooks": two_webhooks,
    "webhooks+relay": lambda at: {**two_webhooks(at), "relay": {**RELAY, "url": at.backend}},
}
# Deliveries the receiver is owed per create (two events, each to two subscriptions).
OWED = {"none": 0, "webhooks": 4, "webhooks+relay": 4}


def config(variant: str, context: Context, database: dict[str, str]) -> dict[str, Any]:
    made = bench_config()
    made.update(database)
    made["tenants"][TENANT].update(VARIANTS[variant](context))
    return made


# --- the receiver (its own process) -------------------------------------------------


def serve_receiver(port: int) -> None:
    """Record each delivery's event time and receipt time; `GET /lags` hands them over,
    `GET /count` says how many deliveries arrived in all."""
    received: list[tuple[str, float]] = []
    count = [0]

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        received.append((json.loads(body)["timestamp"], time.time()))
        count[0] += 1
        return web.Response(status=204)

    async def counted(request: web.Request) -> web.Response:
        return web.json_response(count[0])

    async def lags(request: web.Request) -> web.Response:
        taken = [
            at - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            for stamp, at in received
        ]
        received.clear()
        return web.json_response(taken)

    app = web.Application()
    app.router.add_post("/{name}", receive)
    app.router.add_get("/lags", lags)
    app.router.add_get("/count", counted)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@contextmanager
def receiver() -> Iterator[str]:
    port = free_port()
    with server_process(["-m", "benchmarks.bench_events", "--receiver", str(port)], port):
        yield f"http://127.0.0.1:{port}"


# --- measuring ----------------------------------------------------------------------


async def delivered(receiver_base: str, owed: int, limit: float = 300.0) -> float:
    """Seconds until the receiver has had `owed` deliveries in all (each event of the
    `webhooks` gateway, to each of its two subscriptions)."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < limit:
            async with session.get(f"{receiver_base}/count") as response:
                if await response.json() >= owed:
                    break
            await asyncio.sleep(0.1)
    return time.monotonic() - started


async def drained(base: str, receiver_base: str, owed: int, relaying: bool) -> float:
    """Seconds until the receiver has had `owed` deliveries and, where the gateway at
    `base` relays, its forwards are all made (a run in which one failed is refused)."""
    started = time.monotonic()
    await delivered(receiver_base, owed)
    if relaying:
        async with aiohttp.ClientSession() as session:
            failed = await relay_settled(session, base, TENANT, 300.0)
        assert not failed, f"a forward failed: {failed}"
    return time.monotonic() - started


async def taken_lags(receiver_base: str) -> list[float]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{receiver_base}/lags") as response:
            found: list[float] = await response.json()
            return found


async def steady(base: str, invoices: list[int], rate: float, seconds: float) -> int:
    """Creates at `rate` per second for `seconds`, each sent at its time."""
    send = creator(base, "harvest", invoices)
    total = int(rate * seconds)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one(index: int) -> int:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            return await send(session, index)

        statuses = await asyncio.gather(*(one(index) for index in range(total)))
    return sum(status >= 400 for status in statuses)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def loadavg() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


@dataclass
class Row:
    store: str
    variant: str
    rate: float
    p99_ms: float
    drain_s: float
    load_before: str
    load_after: str

    def line(self) -> str:
        return (
            f"| {self.store} | {self.variant} | {self.rate:,.0f} | {self.p99_ms:.1f}"
            f" | {self.drain_s:.1f} | {self.load_before} | {self.load_after} |"
        )


def measure_store(store: str, database: Callable[[], Any], args: argparse.Namespace) -> list[str]:
    """The alternating throughput runs and the lag run on one store; table lines."""
    rows: list[Row] = []
    lag_line = ""
    with receiver() as receiver_base, ExitStack() as stack:
        backend = stack.enter_context(gateway_process(bench_config()))
        asyncio.run(new_invoices(backend, "ev-backend", 64))  # ids 1-64, as the relay's own
        context = Context(receiver_base, backend)
        bases, relaying = {}, {}
        for variant in VARIANTS:
            entries = stack.enter_context(database())
            made = config(variant, context, entries)
            relaying[variant] = "relay" in made["tenants"][TENANT]
            bases[variant] = stack.enter_context(gateway_process(made))
        sends = {}
        owed = 0  # deliveries the receiver is to have had: 2 events of a create, 2 webhooks
        for variant, base in bases.items():
            invoices = asyncio.run(new_invoices(base, f"ev-{variant}", 64))
            sends[variant] = (creator(base, "harvest", invoices), invoices)
            asyncio.run(load(sends[variant][0], connections=1, total=200))  # warm-up
            owed += OWED[variant] * 200
            asyncio.run(drained(base, receiver_base, owed, relaying[variant]))
        for _ in range(args.rounds):
            for variant in bases:
                before = loadavg()
                result = asyncio.run(
                    load(
                        sends[variant][0],
                        connections=args.connections,
                        total=10**9,
                        max_seconds=args.seconds,
                    )
                )
                after = loadavg()
                assert result.errors == 0, f"{result.errors} failed creates"
                owed += OWED[variant] * result.requests
                drain = asyncio.run(drained(bases[variant], receiver_base, owed, relaying[variant]))
                rows.append(Row(store, variant, result.rate, result.percentile(99), drain,
                                before, after))  # fmt: skip
                print(rows[-1].line(), flush=True)
        asyncio.run(taken_lags(receiver_base))  # forget the throughput runs' deliveries
        base = bases["webhooks"]
        before = loadavg()
        errors = asyncio.run(steady(base, sends["webhooks"][1], args.rate, args.lag_seconds))
        assert errors == 0, f"{errors} failed creates"
        expected = 4 * int(args.rate * args.lag_seconds)
        asyncio.run(delivered(receiver_base, owed + expected))
        lags = asyncio.run(taken_lags(receiver_base))
        after = loadavg()
        lag_line = (
            f"| {store} | {args.rate:g}/s for {args.lag_seconds:g} s | {len(lags)} of {expected}"
            f" | {percentile(lags, 50) * 1000:.1f} | {percentile(lags, 99) * 1000:.1f}"
            f" | {max(lags) * 1000:.1f} | {before} | {after} |"
        )
        print(lag_line, flush=True)
    medians = []
    for variant in VARIANTS:
        mine = [row.rate for row in rows if row.variant == variant]
        if not mine:
            continue  # --rounds 0: the lag alone
        medians.append(f"| {store} | {variant} | {statistics.median(mine):,.0f} |")
    return [*medians, "", LAG_HEADER, lag_line, ""]


LAG_HEADER = (
    "| store | steady creates | deliveries received | lag p50 ms | lag p99 ms | max ms"
    " | load before | load after |\n|---|---|---:|---:|---:|---:|---|---|"
)


@contextmanager
def sqlite_database() -> Iterator[dict[str, str]]:
    yield {}  # the harness puts a fresh SQLite file in a temporary directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])  # fmt: skip
    args = parser.parse_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) at start {loadavg()}")
    print(
        "| store | variant | creates/s | p99 ms | drain s | load before | load after |\n"
        "|---|---|---:|---:|---:|---|---|",
        flush=True,
    )
    tables: list[str] = []
    for store in args.stores:
        if store == "sqlite":
            tables += measure_store("SQLite", sqlite_database, args)
            continue
        from benchmarks.bench_scale import database
        from tests.postgres import Cluster

        cluster = Cluster(durable=True).start()
        try:
            tables += measure_store("PostgreSQL", partial(database, cluster), args)
        finally:
            cluster.stop()
    print("\n| store | variant | median creates/s |\n|---|---|---:|")
    print("\n".join(tables))


if __name__ == "__main__":
    main()
