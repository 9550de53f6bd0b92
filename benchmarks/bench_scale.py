"""Durable creates per second and p99 for SQLite and PostgreSQL, one process and `--workers 2`.

    python -m benchmarks.bench_scale [--requests 4000] [--connections 16 64]

One run measures the four configurations on this machine, one after another: the
ledger on SQLite (synchronous=FULL), and on a throwaway PostgreSQL server this script
starts itself (initdb and pg_ctl, as the tests do, but durable: fsync and
synchronous_commit on), each served by one gateway process and by `--workers 2`.
Every answer counted is a 201 after the payment is committed. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.bench_create import creator, new_invoices
from benchmarks.harness import Result, bench_config, gateway_process, load
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
    workers: int, cluster: Cluster | None, connections: list[int], requests: int
) -> list[tuple[int, Result]]:
    """Creates at each connection count, on a fresh database and fresh processes."""
    results = []
    config = bench_config(database_pool_size=32)
    with database(cluster) as entries:
        config.update(entries)
        with gateway_process(config, args=("--workers", str(workers))) as base:
            invoices = asyncio.run(new_invoices(base, "scale", 64))
            send = creator(base, "invoiless", invoices)
            asyncio.run(load(send, connections=4, total=200))  # warm-up
            for count in connections:
                result = asyncio.run(load(send, connections=count, total=requests))
                results.append((count, result))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per measurement")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    cluster = Cluster(durable=True).start()
    rows = []
    try:
        for engine, workers in CONFIGURATIONS:
            chosen = cluster if engine == "PostgreSQL" else None
            for count, result in measure(workers, chosen, args.connections, args.requests):
                rows.append(
                    f"| {engine} | {workers} | {count} | {result.rate:,.0f} |"
                    f" {result.percentile(50):.2f} ms | {result.percentile(99):.2f} ms |"
                    f" {result.errors} |"
                )
                print(result.line(f"{engine} workers={workers} c={count}"), flush=True)
    finally:
        cluster.stop()
    print()
    print("| database | processes | connections | creates/s | p50 | p99 | errors |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
