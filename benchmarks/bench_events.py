"""What events cost a create, and how late a webhook delivery arrives.

    python -m benchmarks.bench_events [--seconds 4] [--rounds 9] [--connections 16]
                                      [--rate 25] [--lag-seconds 15] [--stores sqlite postgresql]
                                      [--against DIR] [--profile SECONDS]
                                      [--deliveries inline process]

For each store (SQLite with synchronous=FULL on a new file; PostgreSQL on a throwaway
durable server, as `benchmarks.bench_scale` starts it) one gateway process per variant
runs side by side, each on its own database:

- `none`: no subscription;
- `webhooks`: two webhook subscriptions (format `standard`) to local receivers served
  by a separate process (one aiohttp server, two paths; it counts each delivery);
- `webhooks+relay`: the same two subscriptions, and a relay of every payment to a
  second gateway (ledger mode on SQLite, spoken to in Harvest XML, so each forward is a
  create without an idempotency key) on the same machine.

Throughput: Harvest XML creates over `--connections` keep-alive connections for
`--seconds` (the window), the variants alternating (ABCABC...) for `--rounds` rounds in
one sitting. After each window the gateway is left to drain: the run ends when the
receiver has every delivery owed and the relay has no forward pending, so no run pays
for another's backlog. Each run reports

- creates/s over the window, and deliveries/s received over the same window (a variant
  owes four per create: two events, each to two webhooks);
- sustained creates/s: creates / (window + drain), the rate at which the deliveries and
  forwards keep up with the creates (the honest figure for a gateway with subscriptions:
  a backlog that grows is not throughput);
- the gateway's CPU-seconds per create, from /proc/<pid>/stat (user + system), from the
  window's start to the drain's end: what a create costs with all it owes, and much less
  sensitive to a busy machine than any rate.

The summary gives each figure's median and spread per variant, the ratio of each variant
to `none` per round and its median, and whether the issue's target (at most 10% fewer
creates/s with two subscriptions and a relay) holds on the sustained rate, and on CPU
per create (the rate a gateway bound by its own CPU would reach).

`--against DIR`: every variant also runs from the source tree DIR (say, an older
commit's `git archive`), labelled `@before`, in the same alternation: before and after
in one sitting. `--profile SECONDS`: instead of measuring, py-spy samples the
`webhooks+relay` gateway for SECONDS under the create load and prints where its CPU
goes (by function, inclusive and self; `pip install py-spy`).

Lag: creates at a steady `--rate` per second, below saturation, to the `webhooks`
gateway, then the time from each event's timestamp to its receipt at the receiver (p50,
p99, max); `--lag-seconds 0` leaves it out. Load average before and after each run is
printed beside it.

`--deliveries inline process`: every variant runs twice, as today (`inline`: the serving
process runs the delivery loops) and with `events.deliveries: process` (labelled
`@process`: a supervisor, one serving worker, and a delivery process at nice 10); each is
compared with the `none` of its own kind. CPU per create is then the serving processes'
(supervisor and worker), and the delivery process's CPU per create is shown beside it;
the lag is measured for each kind's `webhooks` gateway.

A variant is the tenant keys it adds (`VARIANTS`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.bench_create import creator, new_invoices
from benchmarks.harness import (
    ADMIN,
    bench_config,
    free_port,
    gateway_server,
    load,
    relay_settled,
    server_process,
)

SECRET = "whsec_" + "YmVuY2gtZXZlbnRzLXdlYmhvb2stc2VjcmV0LTMyYg=="
TENANT = "bench"
# The target: creates/s with two subscriptions and a relay at most 10% fewer.
TARGET = 0.90


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
BEFORE = "@before"
PROCESS = "@process"  # events.deliveries: process


def config(
    variant: str, context: Context, database: dict[str, str], deliveries: str = "inline"
) -> dict[str, Any]:
    made = bench_config()
    made.update(database)
    made["tenants"][TENANT].update(VARIANTS[variant](context))
    if deliveries != "inline":
        made["events"] = {**made.get("events", {}), "deliveries": deliveries}
    return made


def kind(variant: str) -> tuple[str, str]:
    """A run's variant and its label (`@process`, `@before`, or none)."""
    base = variant.split("@", 1)[0]
    return base, variant.removeprefix(base)


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

POLL_SECONDS = 0.05


async def received(session: aiohttp.ClientSession, receiver_base: str) -> int:
    async with session.get(f"{receiver_base}/count") as response:
        count: int = await response.json()
        return count


async def delivered(receiver_base: str, owed: int, limit: float = 300.0) -> float:
    """Seconds until the receiver has had `owed` deliveries in all."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < limit:
            if await received(session, receiver_base) >= owed:
                break
            await asyncio.sleep(POLL_SECONDS)
    return time.monotonic() - started


async def drained(base: str, receiver_base: str, owed: int, relaying: bool) -> float:
    """Seconds until the receiver has had `owed` deliveries and, where the gateway at
    `base` relays, no forward is pending: the time of the first of three quiet polls in
    a row (the last events' fan-out may come after a first quiet one). A run in which a
    forward failed is refused."""
    started = time.monotonic()
    await delivered(receiver_base, owed)
    if not relaying:
        return time.monotonic() - started
    listing = f"{base}/gateway/v1/relay/{TENANT}?state=pending&limit=1"
    quiet_since: float | None = None
    quiet = 0
    async with aiohttp.ClientSession() as session:
        while quiet < 3:
            if time.monotonic() - started > 300:
                raise RuntimeError("the relay still had pending forwards after 300 s")
            polled = time.monotonic()
            async with session.get(listing, headers=ADMIN) as response:
                pending = (await response.json())["relay"]
            if pending:
                quiet, quiet_since = 0, None
            else:
                quiet += 1
                quiet_since = polled if quiet_since is None else quiet_since
            await asyncio.sleep(POLL_SECONDS)
        failed = await relay_settled(session, base, TENANT, 10.0)
    assert not failed, f"a forward failed: {failed}"
    assert quiet_since is not None
    return quiet_since - started


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


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU-seconds a process has used (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU-seconds of a gateway's serving processes (it and its children, for a
    supervisor), and of its delivery process (the child at a lower priority), if any."""
    serving, delivering = cpu_seconds(pid), 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii").split()
    for child in map(int, children):
        try:
            used = cpu_seconds(child)
            lower = os.getpriority(os.PRIO_PROCESS, child) > os.getpriority(os.PRIO_PROCESS, pid)
        except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
            continue
        if lower:
            delivering += used
        else:
            serving += used
    return serving, delivering


@dataclass(frozen=True)
class Gateway:
    """One variant's gateway: its URL and pid, its load and whether it relays."""

    variant: str  # with BEFORE appended when run from the `--against` tree
    base: str
    pid: int
    send: Any
    invoices: list[int]
    relaying: bool

    @property
    def owed(self) -> int:
        return OWED[kind(self.variant)[0]]


@dataclass
class Row:
    store: str
    variant: str
    creates: int
    window_s: float
    delivered: int  # deliveries received during the window
    p99_ms: float
    drain_s: float
    cpu_s: float  # the serving processes'
    delivery_cpu_s: float  # the delivery process's (events.deliveries: process)
    load_before: str
    load_after: str

    @property
    def rate(self) -> float:
        return self.creates / self.window_s

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.window_s

    @property
    def sustained(self) -> float:
        return self.creates / (self.window_s + self.drain_s)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / self.creates

    @property
    def delivery_cpu_ms(self) -> float:
        return self.delivery_cpu_s * 1000 / self.creates

    def line(self) -> str:
        return (
            f"| {self.store} | {self.variant} | {self.rate:,.0f} | {self.delivered_rate:,.0f}"
            f" | {self.drain_s:.1f} | {self.sustained:,.0f} | {self.cpu_ms:.2f}"
            f" | {self.delivery_cpu_ms:.2f} | {self.p99_ms:.1f} | {self.load_before} | {self.load_after} |"
        )


RUN_HEADER = (
    "| store | variant | creates/s | delivered/s | drain s | sustained creates/s"
    " | CPU ms/create | delivery process CPU ms/create | p99 ms | load before | load after |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


def run_once(store: str, gateway: Gateway, receiver_base: str, owed: int, args: Any) -> Row:
    """One window of creates on `gateway`, then its drain; `owed`: deliveries the
    receiver has had in all before it."""
    before = loadavg()
    cpu, delivery_cpu = cpu_split(gateway.pid)
    result = asyncio.run(
        load(gateway.send, connections=args.connections, total=10**9, max_seconds=args.seconds)
    )

    async def count() -> int:
        async with aiohttp.ClientSession() as session:
            return await received(session, receiver_base)

    in_window = asyncio.run(count()) - owed
    assert result.errors == 0, f"{result.errors} failed creates"
    owed += gateway.owed * result.requests
    drain = asyncio.run(drained(gateway.base, receiver_base, owed, gateway.relaying))
    cpu_after, delivery_after = cpu_split(gateway.pid)
    return Row(
        store, gateway.variant, result.requests, result.seconds, in_window,
        result.percentile(99), drain, cpu_after - cpu, delivery_after - delivery_cpu,
        before, loadavg(),
    )  # fmt: skip


def spread(values: list[float]) -> str:
    """The range of `values` around their median, in percent of it."""
    middle = statistics.median(values)
    return f"{(min(values) / middle - 1) * 100:+.0f}%/{(max(values) / middle - 1) * 100:+.0f}%"


def verdict(ratios: list[float]) -> str:
    """Whether per-round ratios to `none` say the target holds: decided when there are
    three rounds at least, and at least three in four fall on the side of TARGET their
    median falls on."""
    if len(ratios) < 3:
        return f"undecided ({len(ratios)} rounds: three at least)"
    middle = statistics.median(ratios)
    side = [ratio >= TARGET for ratio in ratios]
    agree = side.count(middle >= TARGET)
    if agree * 4 < len(ratios) * 3:
        return f"undecided ({agree} of {len(ratios)} rounds agree with the median)"
    return ("holds" if middle >= TARGET else "does not hold") + (
        f" ({agree} of {len(ratios)} rounds agree)"
    )


def summary(store: str, rows: list[Row]) -> list[str]:
    """Medians and spreads per variant, per-round ratios to `none`, and the verdicts."""
    lines = [
        "",
        "| store | variant | creates/s | delivered/s | sustained creates/s | spread"
        " | CPU ms/create | spread | delivery process CPU ms/create | sustained / none"
        " | CPU none / variant |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---|---|",
    ]
    variants = list(dict.fromkeys(row.variant for row in rows))
    verdicts = []
    for variant in variants:
        mine = [row for row in rows if row.variant == variant]
        label = kind(variant)[1]
        base = [row for row in rows if row.variant == "none" + label]
        pairs = list(zip(base, mine, strict=False))
        rates = [ratio.sustained / none.rate for none, ratio in pairs]
        cpus = [none.cpu_ms / ratio.cpu_ms for none, ratio in pairs]
        sustained = [row.sustained for row in mine]
        cpu = [row.cpu_ms for row in mine]
        lines.append(
            f"| {store} | {variant} | {statistics.median(row.rate for row in mine):,.0f}"
            f" | {statistics.median(row.delivered_rate for row in mine):,.0f}"
            f" | {statistics.median(sustained):,.0f} | {spread(sustained)}"
            f" | {statistics.median(cpu):.2f} | {spread(cpu)}"
            f" | {statistics.median(row.delivery_cpu_ms for row in mine):.2f}"
            f" | {statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})"
            f" | {statistics.median(cpus):.2f} ({min(cpus):.2f}-{max(cpus):.2f}) |"
        )
        if variant.startswith("webhooks+relay"):
            verdicts += [
                f"{store}, {variant}: target (at most 10% fewer creates/s) on the sustained"
                f" rate: {verdict(rates)}; on CPU per create: {verdict(cpus)}"
            ]
    return [*lines, "", *verdicts]


def measure_store(store: str, database: Callable[[], Any], args: argparse.Namespace) -> list[str]:
    """The alternating throughput runs and the lag run on one store; table lines."""
    rows: list[Row] = []
    lag_lines: list[str] = []
    with receiver() as receiver_base, ExitStack() as stack:
        backend, _ = stack.enter_context(gateway_server(bench_config()))
        asyncio.run(new_invoices(backend, "ev-backend", 64))  # ids 1-64, as the relay's own
        context = Context(receiver_base, backend)
        trees = [("", None)] + ([(BEFORE, Path(args.against))] if args.against else [])
        gateways: list[Gateway] = []
        owed = 0  # deliveries the receiver is to have had: 2 events of a create, 2 webhooks
        kinds = [
            (label + ("" if mode == "inline" else PROCESS), checkout, mode)
            for mode in args.deliveries
            for label, checkout in trees
            if mode == "inline" or checkout is None  # an older tree may not know the key
        ]
        for variant in VARIANTS:
            for label, checkout, mode in kinds:
                made = config(variant, context, stack.enter_context(database()), mode)
                base, process = stack.enter_context(gateway_server(made, checkout=checkout))
                invoices = asyncio.run(new_invoices(base, f"ev-{variant}", 64))
                gateway = Gateway(
                    variant + label, base, process.pid, creator(base, "harvest", invoices),
                    invoices, "relay" in made["tenants"][TENANT],
                )  # fmt: skip
                asyncio.run(load(gateway.send, connections=1, total=200))  # warm-up
                owed += gateway.owed * 200
                asyncio.run(drained(base, receiver_base, owed, gateway.relaying))
                gateways.append(gateway)
        if args.profile:
            profile(next(g for g in gateways if g.variant == "webhooks+relay"), args)
            return []
        for _ in range(args.rounds):
            for gateway in gateways:
                rows.append(run_once(store, gateway, receiver_base, owed, args))
                owed += gateway.owed * rows[-1].creates
                print(rows[-1].line(), flush=True)
        for gateway in gateways:
            if args.lag_seconds > 0 and kind(gateway.variant) in {
                ("webhooks", ""),
                ("webhooks", PROCESS),
            }:
                lag_lines.append(lag(store, gateway, receiver_base, owed, args))
                owed += 4 * int(args.rate * args.lag_seconds)
    lags = [LAG_HEADER, *lag_lines, ""] if lag_lines else []
    return [*summary(store, rows), "", *lags] if rows else lags


def lag(store: str, gateway: Gateway, receiver_base: str, owed: int, args: Any) -> str:
    """Creates at a steady rate to the `webhooks` gateway; the lag of its deliveries."""
    asyncio.run(taken_lags(receiver_base))  # forget the throughput runs' deliveries
    before = loadavg()
    errors = asyncio.run(steady(gateway.base, gateway.invoices, args.rate, args.lag_seconds))
    assert errors == 0, f"{errors} failed creates"
    expected = 4 * int(args.rate * args.lag_seconds)
    asyncio.run(delivered(receiver_base, owed + expected))
    lags = asyncio.run(taken_lags(receiver_base))
    line = (
        f"| {store} | {gateway.variant} | {args.rate:g}/s for {args.lag_seconds:g} s"
        f" | {len(lags)} of {expected}"
        f" | {percentile(lags, 50) * 1000:.1f} | {percentile(lags, 99) * 1000:.1f}"
        f" | {max(lags) * 1000:.1f} | {before} | {loadavg()} |"
    )
    print(line, flush=True)
    return line


def profile(gateway: Gateway, args: argparse.Namespace) -> None:
    """py-spy samples `gateway` for `--profile` seconds under the create load."""
    from benchmarks.profile import summary as profiled

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    seconds = args.profile
    loader = threading.Thread(
        target=lambda: asyncio.run(
            load(gateway.send, connections=args.connections, total=10**9, max_seconds=seconds + 2)
        )
    )
    loader.start()
    record = [spy, "record", "--pid", str(gateway.pid), "--duration", f"{seconds:g}"]
    record += ["--rate", "200", "--nonblocking", "--threads", "--format", "raw", "-o"]
    with tempfile.TemporaryDirectory() as tmp:
        for phase in ("under create load", "draining its backlog, no creates"):
            raw = Path(tmp) / "profile.txt"
            subprocess.run([*record, str(raw)], check=True, timeout=seconds + 120)
            loader.join()
            print(f"{gateway.variant} gateway {phase}, {seconds:g} s:")
            print(profiled(raw, 60), flush=True)


LAG_HEADER = (
    "| store | variant | steady creates | deliveries received | lag p50 ms | lag p99 ms | max ms"
    " | load before | load after |\n|---|---|---|---:|---:|---:|---:|---|---|"
)


@contextmanager
def sqlite_database() -> Iterator[dict[str, str]]:
    yield {}  # the harness puts a fresh SQLite file in a temporary directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument("--against", help="a source tree whose gateway runs as @before")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--deliveries", nargs="+", choices=("inline", "process"),
                        default=["inline"], help="events.deliveries of the variants")  # fmt: skip
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])  # fmt: skip
    args = parser.parse_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    print(f"machine: {os.cpu_count()} cores; load average (1/5/15 min) at start {loadavg()}")
    if not args.profile:
        print(RUN_HEADER, flush=True)
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
    print("\n".join(tables))


if __name__ == "__main__":
    main()
