"""Durable creates per second and p99 for SQLite and PostgreSQL, one process and `--workers 2`.

    python -m benchmarks.bench_scale [--requests 4000] [--connections 16 64]
    python -m benchmarks.bench_scale --hot [--requests 4000] [--connections 64]
    python -m benchmarks.bench_scale --load wrk [--seconds 8] [--connections 16 64] [--hot]
    python -m benchmarks.bench_scale --wrk [--seconds 8] [--rounds 3] [--against TREE]

One run measures the four configurations on this machine, one after another: the
ledger on SQLite (synchronous=FULL), and on a throwaway PostgreSQL server this script
starts itself (initdb and pg_ctl, as the tests do, but durable: fsync and
synchronous_commit on), each served by one gateway process and by `--workers 2`.
Every answer counted is a 201 after the payment is committed. Prints a markdown table.

`--hot` pays one invoice from every connection instead of spreading the payments over
64: writes to one invoice wait for its row's lock one after another, so this is how
many creates/s one invoice takes.

`--load wrk` drives the same four configurations with wrk (one thread, `--seconds`
per connection count) instead of this process's aiohttp loop, a load generator that
takes far less CPU from the cores the gateway and the server share; the table then
gives the gateway's CPU and wrk's per create, and the issue's targets are checked
against the run.

`--wrk` measures the suite's `--workers 2` rows instead (`benchmarks.suite`): SQLite
only, Invoiless and Harvest creates driven by wrk (one thread, 16 connections), one
gateway process beside `--workers 2`, all scenarios once per round and the median of
the rounds. Besides creates/s it prints the server CPU per create and the writes per
commit (from the store's batch-size histogram). `--against TREE` adds the same rows
for the gateway in another source tree (a worktree of an older commit), measured in
the same rounds: an A/B in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import fixtures
from benchmarks.bench_create import creator, new_invoices
from benchmarks.harness import ADMIN, Result, bench_config, gateway_process, gateway_server, load
from benchmarks.suite import Measure, alternate, gateway_config
from benchmarks.wrk import Run, ensure_tools, run
from tests.postgres import Cluster

CONFIGURATIONS = (
    ("SQLite", 1),
    ("SQLite", 2),
    ("PostgreSQL", 1),
    ("PostgreSQL", 2),
)


@contextmanager
def database(cluster: Cluster | None) -> Iterator[dict[str, str]]:
    """Config entries naming a fresh database for one configuration."""
    if cluster is None:
        yield {}  # the harness puts a fresh SQLite file in a temporary directory
        return
    schema = cluster.create()
    try:
        yield {"database": cluster.url(schema)}
    finally:
        cluster.drop(schema)


def measure(
    workers: int,
    cluster: Cluster | None,
    connections: list[int],
    requests: int,
    invoices: int = 64,
) -> list[tuple[int, Result]]:
    """Creates at each connection count, on a fresh database and fresh processes, spread
    round-robin over that many `invoices`."""
    results = []
    config = bench_config(database_pool_size=32)
    with database(cluster) as entries:
        config.update(entries)
        with gateway_process(config, args=("--workers", str(workers))) as base:
            targets = asyncio.run(new_invoices(base, "scale", invoices))
            send = creator(base, "invoiless", targets)
            asyncio.run(load(send, connections=4, total=200))  # warm-up
            for count in connections:
                used = time.process_time()
                result = asyncio.run(load(send, connections=count, total=requests))
                used = time.process_time() - used
                print(f"the aiohttp loop: {used * 1000 / result.requests:.3f} ms CPU per create")
                results.append((count, result))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per measurement")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--hot", action="store_true", help="every payment to one invoice")
    parser.add_argument("--load", choices=("aiohttp", "wrk"), default="aiohttp",
                        help="the load generator of the four configurations")  # fmt: skip
    parser.add_argument("--wrk", action="store_true", help="the suite's SQLite rows, by wrk")
    parser.add_argument("--seconds", type=float, default=8.0, help="--wrk: each run's length")
    parser.add_argument("--rounds", type=int, default=3, help="--wrk: alternating rounds")
    parser.add_argument("--against", type=Path, help="--wrk: also the gateway in this tree")
    args = parser.parse_args()
    if args.wrk:
        compare(args.seconds, args.rounds, args.against)
        return
    if args.load == "wrk":
        by_wrk(args.connections, args.seconds, args.hot)
        return
    cluster = Cluster(durable=True).start()
    rows = []
    try:
        for engine, workers in CONFIGURATIONS:
            chosen = cluster if engine == "PostgreSQL" else None
            invoices = 1 if args.hot else 64
            found = measure(workers, chosen, args.connections, args.requests, invoices)
            for count, result in found:
                rows.append(
                    f"| {engine} | {workers} | {count} | {result.rate:,.0f} |"
                    f" {result.percentile(50):.2f} ms | {result.percentile(99):.2f} ms |"
                    f" {result.errors} |"
                )
                print(result.line(f"{engine} workers={workers} c={count}"), flush=True)
    finally:
        cluster.stop()
    print()
    if args.hot:
        print("One invoice, every payment to it:")
    print("| database | processes | connections | creates/s | p50 | p99 | errors |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


# --- --load wrk: the four configurations, driven by wrk ---------------------------------


def by_wrk(connections: list[int], seconds: float, hot: bool) -> None:
    """Measure the four configurations with wrk; print their table and the targets."""
    ensure_tools()
    load = os.getloadavg()[0]
    cluster = Cluster(durable=True).start()
    found: dict[tuple[str, int, int], Run] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for engine, workers in CONFIGURATIONS:
                chosen = cluster if engine == "PostgreSQL" else None
                shape = Shape(workers, 1 if hot else 64, seconds, Path(tmp))
                for count, result in wrk_measure(chosen, connections, shape):
                    found[engine, workers, count] = result
                    print(f"{engine} w{workers} c={count}: {result.rate:,.0f}/s", flush=True)
    finally:
        cluster.stop()
    flags = f"--load wrk --seconds {seconds:g}{' --hot' if hot else ''}"
    after = os.getloadavg()[0]
    print(
        f"\n<!-- python -m benchmarks.bench_scale {flags}: load average {load:.1f} -> {after:.1f} -->"
    )
    print(
        "| database | processes | connections | creates/s | p50 | p99 | errors"
        " | gateway CPU per create | wrk CPU per create |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (engine, workers, count), one in found.items():
        print(
            f"| {engine} | {workers} | {count} | {one.rate:,.0f} | {one.p50_ms:.2f} ms"
            f" | {one.p99_ms:.2f} ms | {one.failures} | {one.cpu_ms_each:.3f} ms"
            f" | {one.generator_ms_each:.3f} ms |"
        )
    if not hot:
        print()
        print(targets(found, min(connections), max(connections)))


@dataclass(frozen=True)
class Shape:
    workers: int
    invoices: int
    seconds: float
    workdir: Path


def wrk_measure(
    cluster: Cluster | None, connections: list[int], shape: Shape
) -> list[tuple[int, Run]]:
    """Creates by wrk at each connection count, on a fresh database and fresh processes."""
    results = []
    config = bench_config(database_pool_size=32)
    with database(cluster) as entries:
        config.update(entries)
        extra = ("--workers", str(shape.workers))
        with gateway_server(config, extra=extra) as (base, process):
            targets = asyncio.run(fixtures.invoices(base, "scale", shape.invoices))
            scenario = fixtures.invoiless_create(base, targets)
            driven = functools.partial(run, scenario, server_pid=process.pid, workdir=shape.workdir)
            driven(connections=4, seconds=1)  # warm-up
            for count in connections:
                results.append((count, driven(connections=count, seconds=shape.seconds)))
    return results


def targets(found: dict[tuple[str, int, int], Run], low: int, high: int) -> str:
    """The issue's targets, as this run measured them."""
    lines = []
    sqlite = found.get(("SQLite", 1, low))
    alone, two = found.get(("PostgreSQL", 1, low)), found.get(("PostgreSQL", 2, low))
    if sqlite and alone:
        ratio = alone.rate / sqlite.rate
        lines.append(
            f"- PostgreSQL, one process, {low} connections: {alone.rate:,.0f} creates/s,"
            f" {ratio:.2f}x SQLite's {sqlite.rate:,.0f} (target: at least 1x):"
            f" {'met' if ratio >= 1 else 'not met'}"
        )
    if alone and two:
        ratio = two.rate / alone.rate
        lines.append(
            f"- PostgreSQL, `--workers 2`, {low} connections: {two.rate:,.0f} creates/s,"
            f" {ratio:.2f}x one process (target: 1.7x): {'met' if ratio >= 1.7 else 'not met'}"
        )
    for workers in (1, 2):
        tail = found.get(("PostgreSQL", workers, high))
        if tail:
            lines.append(
                f"- PostgreSQL, {workers} process(es), {high} connections: p99"
                f" {tail.p99_ms:.1f} ms (target: under 100 ms):"
                f" {'met' if tail.p99_ms < 100 else 'not met'}"
            )
    return "\n".join(lines)


# --- --wrk: the suite's --workers 2 rows, optionally against another tree -------------

CREATES = {"invoiless": fixtures.invoiless_create, "harvest": fixtures.harvest_create}


@dataclass(frozen=True)
class Served:
    """One gateway under test: which tree, how many processes, where."""

    tree: str
    workers: int
    base: str
    pid: int

    def name(self, dialect: str) -> str:
        return f"{self.tree} {dialect} w{self.workers}"


def compare(seconds: float, rounds: int, against: Path | None) -> None:
    """Start every gateway, measure all their creates in alternating rounds, print."""
    ensure_tools()
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if against is not None:
        trees.append((against.name, against.resolve()))
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        served = []
        for tree, checkout in trees:
            for workers in (1, 2):
                extra = ("--workers", str(workers))
                started = gateway_server(gateway_config(), extra=extra, checkout=checkout)
                base, process = stack.enter_context(started)
                served.append(Served(tree, workers, base, process.pid))
        measures = asyncio.run(_measures(served))
        medians = alternate(measures, seconds, rounds, Path(tmp))
        batches = {one: _writes_per_commit(one.base) for one in served}
    print(f"\n<!-- python -m benchmarks.bench_scale --wrk: {rounds} x {seconds:g} s -->")
    print(_table(served, medians, batches))


async def _measures(served: list[Served]) -> list[Measure]:
    found = []
    for one in served:
        targets = await fixtures.invoices(one.base, "create", 64)
        for dialect, scenario in CREATES.items():
            found.append(Measure(one.name(dialect), scenario(one.base, targets), 16, one.pid))
    return found


def _writes_per_commit(base: str) -> float:
    """Mean writes per group commit over the gateway's life (all its workers)."""
    request = urllib.request.Request(f"{base}/metrics", headers=ADMIN)
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("gateway_store_commit_batch_size_"):
            name, value = line.split(" ", 1)
            found[name.removeprefix("gateway_store_commit_batch_size_")] = float(value)
    return found["sum"] / max(1.0, found["count"])


def _table(served: list[Served], medians: dict[str, Run], batches: dict[Served, float]) -> str:
    lines = [
        "| tree | dialect | processes | creates/s | CPU per create | p50 | p99"
        " | writes per commit | vs one process |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for one in served:
        for dialect in CREATES:
            run = medians[one.name(dialect)]
            single = medians[Served(one.tree, 1, "", 0).name(dialect)]
            lines.append(
                f"| {one.tree} | {dialect} | {one.workers} | {run.rate:,.0f} |"
                f" {run.cpu_ms_each:.2f} ms | {run.p50_ms:.2f} ms | {run.p99_ms:.2f} ms |"
                f" {batches[one]:.1f} | {run.rate / single.rate:.2f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
