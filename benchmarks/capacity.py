"""What one durable create costs each part of a PostgreSQL deployment, for the capacity model.

    python -m benchmarks.capacity [--seconds 8] [--connections 16] [--tenants 8]
                                  [--hot-connections 64]

Starts a throwaway PostgreSQL server (durable: fsync and synchronous commit on) with
`pg_stat_statements` loaded, and measures durable creates (Invoiless JSON, payments
spread over 64 invoices) driven by wrk (one thread) against a gateway of one process
and of `--workers 2`: from one tenant, then from `--tenants` tenants (a wrk each,
sharing the connections and the invoices out), since a tenant's writes wait for each
other (its event counter row) where different tenants' do not; then every payment to
one invoice (the hot invoice). For each run, per create:

- the gateway's CPU: user plus system time of all its processes (/proc/PID/stat)
  over the wrk run;
- the server's CPU: the same for every process of the PostgreSQL server (its
  backends, writers and checkpointer, and the children it has reaped);
- wrk's own CPU (the load generator, which shares this machine's cores);
- WAL bytes (`pg_wal_lsn_diff` of `pg_current_wal_lsn`), WAL flushes (`pg_stat_io`),
  commits and rows (`pg_stat_database`), and the statements the server ran with
  their mean time (`pg_stat_statements`, nested ones, those run inside the
  `ledger_write` function, included).

The server's cumulative statistics are read with no gateway connected (a backend
hands its counts over when it ends), so each gateway serves the warm-up and, once
stopped, a second one the measured run, on a fresh database (schema) for each run.
Also measured: this disk's flush rate (8 KB written and `fdatasync`ed, over and over,
in the server's data directory, as the WAL is flushed) and its write rate. Prints
markdown tables, then the model's figures: creates/s per core of gateway and of
server, the WAL flush bound, the hot invoice's lock hold, and whether `--workers 2`
can reach 1.7x one process on this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import fixtures
from benchmarks.harness import bench_config, gateway_server
from benchmarks.wrk import Run, Scenario, ensure_tools, run_together, tree_cpu
from tests.postgres import Cluster

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",  # the statements inside ledger_write too
    "track_wal_io_timing": "on",
}
POOL = 32


def server_cpu(cluster: Cluster) -> float:
    """CPU seconds of every process of the server: the postmaster's tree, and the
    children it has already reaped (a backend that ended during the run)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / _CLOCK_TICKS
    return tree_cpu(postmaster) + reaped


def online_cores() -> int:
    return len(os.sched_getaffinity(0))


# --- the server's own counters --------------------------------------------------------

COUNTERS = """
SELECT pg_current_wal_lsn() AS lsn,
       d.xact_commit AS commits, d.xact_rollback AS rollbacks,
       d.tup_inserted AS inserted, d.tup_updated AS updated, d.tup_deleted AS deleted,
       w.wal_records, w.wal_fpi,
       (SELECT sum(writes) FROM pg_stat_io WHERE object = 'wal') AS wal_writes,
       (SELECT sum(fsyncs) FROM pg_stat_io WHERE object = 'wal') AS wal_flushes,
       (SELECT sum(fsync_time) FROM pg_stat_io WHERE object = 'wal') AS flush_ms
FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()
"""

STATEMENTS = """
SELECT toplevel, calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query
FROM public.pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC
"""


@dataclass
class Counters:
    values: dict[str, float]
    payments: int

    def __sub__(self, other: Counters) -> dict[str, float]:
        found = {name: self.values[name] - other.values[name] for name in self.values}
        found["payments"] = self.payments - other.payments
        return found


async def counters(url: str, schema: str) -> Counters:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(COUNTERS)
        assert row is not None
        values = {name: float(value or 0) for name, value in row.items() if name != "lsn"}
        values["wal_bytes"] = float(
            await conn.fetchval("SELECT pg_wal_lsn_diff($1, '0/0')", row["lsn"])
        )
        payments = await conn.fetchval(f"SELECT count(*) FROM {schema}.payments")
        return Counters(values, int(payments))
    finally:
        await conn.close()


SESSIONS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


async def sessions(url: str) -> set[int]:
    """The database's other sessions, by backend pid."""
    conn = await asyncpg.connect(url)
    try:
        return {row["pid"] for row in await conn.fetch(SESSIONS)}
    finally:
        await conn.close()


async def quiet(url: str, before: set[int], limit: float = 15.0) -> None:
    """Wait until no session is connected but those `before` (the others' counts are in)."""
    deadline = time.monotonic() + limit
    while await sessions(url) - before:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway's sessions did not end")
        await asyncio.sleep(0.05)


async def reset_statements(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")
        await conn.execute("SELECT public.pg_stat_statements_reset()")
    finally:
        await conn.close()


async def statements(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await conn.fetch(STATEMENTS)]
    finally:
        await conn.close()


# --- one measured run -----------------------------------------------------------------


@dataclass
class Sample:
    """One wrk run of creates and what it cost, per create."""

    label: str
    workers: int
    connections: int
    invoices: int
    run: Run
    gateway_cpu: float  # seconds over the run
    server_cpu: float
    counted: dict[str, float]  # the server's counters, warm-up excluded
    statements: list[dict[str, Any]] = field(default_factory=list)
    tenants: int = 1

    def per_run(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.run.requests)

    @property
    def gateway_ms(self) -> float:
        return self.per_run(self.gateway_cpu)

    @property
    def server_ms(self) -> float:
        return self.per_run(self.server_cpu)

    @property
    def generator_ms(self) -> float:
        return self.run.generator_ms_each

    def per_payment(self, name: str) -> float:
        return self.counted[name] / max(1.0, self.counted["payments"])


def tenants_config(count: int) -> dict[str, Any]:
    """The bench config with `count` tenants, each with its own Invoiless key (a
    credential routes a caller to one tenant, so they speak Invoiless only)."""
    template = bench_config()["tenants"]["bench"]
    tenants = {}
    for name in tenant_names(count):
        tenant = {key: copy.deepcopy(template[key]) for key in ("accounts", "default_account")}
        tenant["invoiless"] = {"keys": [{"key": f"{name}-key", "scopes": ["bench"]}]}
        tenants[name] = tenant
    return bench_config(tenants=tenants, database_pool_size=POOL)


def tenant_names(count: int) -> list[str]:
    return [f"bench{number}" for number in range(count)]


async def scenarios(base: str, label: str, tenants: int, invoices: int) -> list[Scenario]:
    """Invoiless creates of each tenant, spread over its share of `invoices`."""
    found = []
    for name in tenant_names(tenants):
        targets = await fixtures.invoices(base, label, max(1, invoices // tenants), name)
        scenario = fixtures.invoiless_create(base, targets)
        headers = {**(scenario.headers or {}), "api-key": f"{name}-key"}
        found.append(dataclasses.replace(scenario, headers=headers))
    return found


def measure(
    cluster: Cluster,
    label: str,
    *,
    workers: int,
    invoices: int,
    connections: int,
    seconds: float,
    workdir: Path,
    tenants: int = 1,
) -> Sample:
    """Warm up one gateway, stop it; with the server's counters read, measure a second.
    The `connections` are shared out among the `tenants` (a wrk each)."""
    schema = cluster.create()
    admin = cluster.url()
    config = {**tenants_config(tenants), "database": cluster.url(schema)}
    extra = ("--workers", str(workers))
    each = max(1, connections // tenants)
    try:
        others = asyncio.run(sessions(admin))
        with gateway_server(config, extra=extra) as (base, warm):
            load = asyncio.run(scenarios(base, label, tenants, invoices))
            run_together(load, connections=each, seconds=1, server_pid=warm.pid, workdir=workdir)
        asyncio.run(quiet(admin, others))
        asyncio.run(reset_statements(admin))
        before = asyncio.run(counters(admin, schema))
        with gateway_server(config, extra=extra) as (base, process):
            load = [dataclasses.replace(one, base=base) for one in load]
            server = server_cpu(cluster)
            done = run_together(
                load, connections=each, seconds=seconds, server_pid=process.pid, workdir=workdir
            )
            server = server_cpu(cluster) - server
        asyncio.run(quiet(admin, others))
        counted = asyncio.run(counters(admin, schema)) - before
        found = asyncio.run(statements(admin))
    finally:
        cluster.drop(schema)
    return Sample(
        label, workers, each * tenants, invoices, done, done.cpu_seconds, server, counted, found,
        tenants,
    )  # fmt: skip


# --- the disk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Disk:
    flushes_per_second: float  # 8 KB written and fdatasync'ed, one after another
    write_mb_per_second: float  # 32 MB written, then one fdatasync


def disk(directory: Path, seconds: float = 1.0) -> Disk:
    path = directory / "flush-probe"
    block = os.urandom(8192)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            count += 1
        flushes = count / (time.perf_counter() - started)
        chunk = os.urandom(1 << 20)
        started = time.perf_counter()
        for index in range(32):
            os.pwrite(fd, chunk, index << 20)
        os.fdatasync(fd)
        write = 32 / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return Disk(flushes, write)


# --- the report -----------------------------------------------------------------------


def table(samples: list[Sample]) -> str:
    lines = [
        "| run | processes | tenants | connections | invoices | creates/s | p99 | gateway CPU"
        " | server CPU | wrk CPU | WAL bytes | WAL flushes | commits | rows written | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for one in samples:
        rows = sum(one.per_payment(name) for name in ("inserted", "updated", "deleted"))
        lines.append(
            f"| {one.label} | {one.workers} | {one.tenants} | {one.connections} | {one.invoices}"
            f" | {one.run.rate:,.0f} | {one.run.p99_ms:.1f} ms | {one.gateway_ms:.3f} ms"
            f" | {one.server_ms:.3f} ms | {one.generator_ms:.3f} ms"
            f" | {one.per_payment('wal_bytes'):,.0f} | {one.per_payment('wal_flushes'):.3f}"
            f" | {one.per_payment('commits'):.2f} | {rows:.2f} | {one.run.failures} |"
        )
    return "\n".join(lines)


def statements_table(sample: Sample, top: int = 6) -> str:
    lines = [
        "| statement | top level | calls per create | mean time |",
        "|---|---|---|---|",
    ]
    payments = max(1.0, sample.counted["payments"])
    for row in sample.statements[:top]:
        query = row["query"].replace("|", "\\|")
        lines.append(
            f"| `{query}` | {'yes' if row['toplevel'] else 'no'}"
            f" | {row['calls'] / payments:.2f} | {row['total_exec_time'] / row['calls']:.3f} ms |"
        )
    return "\n".join(lines)


def model(spread: list[Sample], many: list[Sample], hot: Sample, found: Disk, cores: int) -> str:
    """The capacity model's inputs as this run measured them, and what they bound."""
    lines = [
        f"- cores on this machine: {cores}",
        f"- disk: {found.flushes_per_second:,.0f} flushes/s of 8 KB"
        f" ({1000 / found.flushes_per_second:.2f} ms each),"
        f" {found.write_mb_per_second:,.0f} MB/s written",
    ]
    for sample in [*spread, *many]:
        per_flush = sample.counted["payments"] / max(1.0, sample.counted["wal_flushes"])
        wal = sample.per_payment("wal_bytes")
        lines.append(
            f"- {sample.label}: a gateway core takes {1000 / sample.gateway_ms:,.0f} creates/s,"
            f" a server core {1000 / sample.server_ms:,.0f}/s; {per_flush:.2f} creates per"
            f" WAL flush, so the disk's flush rate allows"
            f" {found.flushes_per_second * per_flush:,.0f}/s at this concurrency, its write"
            f" rate {found.write_mb_per_second * 1e6 / wal:,.0f}/s"
        )
    one, two = many
    lines += [
        f"- CPU alone, {cores} cores shared by the gateway, the server and wrk:"
        f" {ceilings(one, cores)} with the one-process run's costs;"
        f" {ceilings(two, cores)} with the two-process run's (the target asks 1.7x;"
        f" reaching it needs server + wrk CPU per create at most {2 / 1.7 - 1:.2f}x"
        f" the gateway's: here {(one.server_ms + one.generator_ms) / one.gateway_ms:.2f}x"
        f" and {(two.server_ms + two.generator_ms) / two.gateway_ms:.2f}x)",
    ]
    for sample in (*spread, hot):
        flush_ms = sample.counted["flush_ms"] / max(1.0, sample.counted["wal_flushes"])
        lines.append(
            f"- {sample.label}: {sample.run.rate:,.0f} creates/s; writes that queue on one"
            f" row lock hold it {1000 / sample.run.rate:.2f} ms each, of which a WAL flush"
            f" takes {flush_ms:.2f} ms on average (`pg_stat_io`)"
        )
    return "\n".join(lines)


def ceilings(sample: Sample, cores: int) -> str:
    """Creates/s the CPU allows one gateway process (one core at most) and two, at the
    sample's costs per create, when everything shares `cores` cores."""
    machine = cores * 1000 / total_ms(sample)
    alone = min(1000 / sample.gateway_ms, machine)
    both = min(2000 / sample.gateway_ms, machine)
    return f"one process {alone:,.0f} creates/s, two {both:,.0f}/s ({both / alone:.2f}x)"


def total_ms(sample: Sample) -> float:
    return sample.gateway_ms + sample.server_ms + sample.generator_ms


@contextmanager
def cluster() -> Iterator[Cluster]:
    started = Cluster(durable=True, settings=SETTINGS).start()
    try:
        yield started
    finally:
        started.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="each wrk run's length")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=8, help="the runs spread over tenants")
    parser.add_argument("--hot-connections", type=int, default=64)
    args = parser.parse_args()
    ensure_tools()
    load = os.getloadavg()[0]
    with cluster() as server, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        found = disk(server.root)

        def measured(label: str, workers: int, **shape: int) -> Sample:
            sample = measure(
                server, label, workers=workers, seconds=args.seconds, workdir=workdir, **shape
            )
            print(f"{label}: {sample.run.rate:,.0f} creates/s", flush=True)
            return sample

        spread = [
            measured(f"one tenant w{w}", w, invoices=64, connections=args.connections)
            for w in (1, 2)
        ]
        many = [
            measured(
                f"{args.tenants} tenants w{w}",
                w,
                invoices=64,
                connections=args.connections,
                tenants=args.tenants,
            )  # fmt: skip
            for w in (1, 2)
        ]
        hot = measured("one invoice w1", 1, invoices=1, connections=args.hot_connections)
    print(
        f"\n<!-- python -m benchmarks.capacity --seconds {args.seconds:g}"
        f" --tenants {args.tenants}: load average {load:.1f} -> {os.getloadavg()[0]:.1f} -->"
    )
    print(table([*spread, *many, hot]))
    for sample in (*spread, *many, hot):
        print(f"\nStatements, {sample.label} (`pg_stat_statements`, by total time):\n")
        print(statements_table(sample))
    print()
    print(model(spread, many, hot, found, online_cores()))


if __name__ == "__main__":
    main()
