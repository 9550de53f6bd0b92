"""The wrk suite: the gateway against a bare aiohttp app and nginx, in one run, as ratios.

    python -m benchmarks.suite            # median of three alternating 8 s runs (~10 min)
    python -m benchmarks.suite --quick    # one-second runs: a ~2-minute version
    python -m benchmarks.suite --against ../older-checkout   # A/B of the gateway's rows

Starts, each its own process on a free 127.0.0.1 port: the bare baseline
(`benchmarks.bare`), the floor of this design (`benchmarks.floor`: the least a ledger
built like this one must do per request), a ledger-mode gateway (SQLite, `synchronous=FULL`, access log on as
shipped), a second ledger gateway as a backend, a proxy-mode gateway in front of it
(Invoiless in front of Invoiless, so the hop is the only difference), nginx
`proxy_pass` over the same backend, and, where `python -m gateway --workers` exists, a
two-worker gateway. wrk (one thread, keep-alive) drives each scenario in turn, all of
them once per round; each figure is the median over the rounds. Server CPU is the
server processes' user+system time over the run. Prints the issue's table, in
markdown, with each ratio and its target, then the floor's ratios beside the same
targets.

`--against CHECKOUT` also starts a ledger gateway and a proxy (in front of the same
backend) from another source tree, and measures their rows in the same rounds, in
turn with this tree's: a refactoring's A/B in one sitting, printed as a third table.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import fixtures, idle
from benchmarks.harness import bench_config, free_port, gateway_server, server_process
from benchmarks.nginx import nginx_proxy
from benchmarks.report import Figures, floor_table, table
from benchmarks.wrk import Run, Scenario, ensure_tools, run, sequential


@dataclass(frozen=True)
class Measure:
    """One scenario on one server at one concurrency, measured once per round."""

    name: str
    scenario: Scenario
    connections: int
    pid: int
    one_by_one: bool = False  # heavy answers: a count of sequential requests, not wrk


def gateway_config(**extra: Any) -> dict[str, Any]:
    config = bench_config(sqlite_synchronous="FULL", **extra)
    config["server"] = {"access_log": True}
    return config


def proxy_config(backend: str) -> dict[str, Any]:
    config = gateway_config()
    config["tenants"]["bench"]["backend"] = {
        "dialect": "invoiless", "url": backend, "api_key": "bench-key",
        "timeout": 10, "retries": 0,
    }  # fmt: skip
    return config


def workers_arguments() -> list[str] | None:
    """How to ask this gateway for two worker processes, or None if it cannot."""
    for prefix in ([], ["serve"]):
        found = subprocess.run(
            [sys.executable, "-m", "gateway", *prefix, "--help"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if "--workers" in found.stdout:
            return [*prefix, "--workers", "2"]
    return None


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def raise_file_limit() -> None:
    """Room for the idle connections, in this process and the servers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--quick", action="store_true", help="1 s runs: about two minutes")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections for RSS")
    parser.add_argument("--no-workers", action="store_true", help="skip the --workers 2 row")
    parser.add_argument("--against", type=Path, help="another source tree: its rows beside")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    ensure_tools()
    raise_file_limit()
    workers = None if args.no_workers else workers_arguments()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare_port = free_port()
        bare = stack.enter_context(
            server_process(["-m", "benchmarks.bare", "--port", str(bare_port)], bare_port)
        )
        ledger, ledger_process = stack.enter_context(gateway_server(gateway_config()))
        backend, backend_process = stack.enter_context(gateway_server(gateway_config()))
        floor_port = free_port()
        floor_arguments = ["--port", str(floor_port), "--database", str(workdir / "floor.db")]
        floor = stack.enter_context(
            server_process(
                ["-m", "benchmarks.floor", *floor_arguments, "--backend", backend], floor_port
            )
        )
        proxy, proxy_process = stack.enter_context(gateway_server(proxy_config(backend)))
        nginx, nginx_pid = stack.enter_context(nginx_proxy(_port(backend)))
        multi = None
        if workers is not None:
            multi = stack.enter_context(gateway_server(gateway_config(), extra=workers))
        against = None
        if args.against is not None:
            other = args.against.resolve()
            against = (
                stack.enter_context(gateway_server(gateway_config(), checkout=other)),
                stack.enter_context(gateway_server(proxy_config(backend), checkout=other)),
            )
        print("preparing data", file=sys.stderr, flush=True)
        bare_base = f"http://127.0.0.1:{bare_port}"
        measures = asyncio.run(
            _measures(
                bare_base, bare.pid, (f"http://127.0.0.1:{floor_port}", floor.pid), (ledger, ledger_process.pid),
                (backend, backend_process.pid), (proxy, proxy_process.pid),
                (nginx, nginx_pid), multi and (multi[0], multi[1].pid),
            )
        )  # fmt: skip
        if against is not None:
            (other_ledger, other_pid), (other_proxy, other_proxy_pid) = (
                (base, process.pid) for base, process in against
            )
            measures += asyncio.run(
                _against(measures, (other_ledger, other_pid), (backend, backend_process.pid),
                         (other_proxy, other_proxy_pid))
            )  # fmt: skip
        medians = alternate(measures, seconds, args.rounds, workdir)
        memory = idle.rss_with_idle(ledger, ledger_process.pid, args.idle)
    figures = Figures(medians, memory, args.idle, workers is not None)
    mode = "quick" if args.quick else "full"
    print(f"\n<!-- python -m benchmarks.suite: {mode}, {args.rounds} x {seconds:g} s -->")
    print(table(figures))
    print()
    print(floor_table(figures.runs))
    if against is not None:
        print()
        print(against_table(medians, args.against))


async def _measures(
    bare: str,
    bare_pid: int,
    floor: tuple[str, int],
    ledger: tuple[str, int],
    backend: tuple[str, int],
    proxy: tuple[str, int],
    nginx: tuple[str, int],
    multi: tuple[str, int] | None,
) -> list[Measure]:
    own, backend_payment = await _measures_of(ledger, backend, proxy)
    upstream, upstream_pid = backend
    found = [
        Measure("bare POST", fixtures.bare_post(bare), 16, bare_pid),
        Measure("bare GET", fixtures.bare_get(bare), 16, bare_pid),
        Measure("floor POST", fixtures.floor_post(floor[0]), 16, floor[1]),
        Measure("floor GET", fixtures.floor_get(floor[0]), 16, floor[1]),
        *own,
        Measure(
            "direct get c1", fixtures.invoiless_get(upstream, backend_payment), 1, upstream_pid
        ),
        Measure("nginx get c1", fixtures.invoiless_get(nginx[0], backend_payment), 1, nginx[1]),
        Measure("nginx get c16", fixtures.invoiless_get(nginx[0], backend_payment), 16, nginx[1]),
        Measure("floor relay c1", fixtures.floor_relay(floor[0], backend_payment), 1, floor[1]),
        Measure("floor relay c16", fixtures.floor_relay(floor[0], backend_payment), 16, floor[1]),
    ]
    if multi is not None:
        targets = await fixtures.invoices(multi[0], "create", 64)
        found.append(
            Measure(
                "invoiless create w2", fixtures.invoiless_create(multi[0], targets), 16, multi[1]
            )
        )
        found.append(
            Measure("harvest create w2", fixtures.harvest_create(multi[0], targets), 16, multi[1])
        )
    return found


AGAINST = " (against)"


async def _against(
    measures: list[Measure],
    ledger: tuple[str, int],
    backend: tuple[str, int],
    proxy: tuple[str, int],
) -> list[Measure]:
    """The other tree's twin of each of this tree's ledger and proxy rows."""
    theirs = {m.name: m for m in (await _measures_of(ledger, backend, proxy, "hop-against"))[0]}
    return [
        Measure(
            m.name + AGAINST,
            theirs[m.name].scenario,
            m.connections,
            theirs[m.name].pid,
            m.one_by_one,
        )  # fmt: skip
        for m in measures
        if m.name in theirs
    ]


async def _measures_of(
    ledger: tuple[str, int], backend: tuple[str, int], proxy: tuple[str, int], hop: str = "hop"
) -> tuple[list[Measure], str]:
    """A gateway's own rows (ledger and proxy), on data of their own; the backend payment
    the proxy rows read."""
    (gateway, pid), (upstream, _) = ledger, backend
    creates = await fixtures.invoices(gateway, "create", 64)
    fifty, two_thousand = await fixtures.invoices(gateway, "list", 2)
    payments = await fixtures.pay(gateway, fifty, 50)
    await fixtures.pay(gateway, two_thousand, 2000)
    token = await fixtures.urlkey_token(gateway)
    backend_invoice = (await fixtures.invoices(upstream, hop, 1))[0]  # its own number there
    backend_payment = (await fixtures.pay(upstream, backend_invoice, 1))[0]
    proxied = await fixtures.local_id(proxy[0], "payment", backend_payment)
    found = [
        Measure("invoiless create", fixtures.invoiless_create(gateway, creates), 16, pid),
        Measure("harvest create", fixtures.harvest_create(gateway, creates), 16, pid),
        Measure("invoiless get", fixtures.invoiless_get(gateway, payments[0]), 16, pid),
        Measure("invoiless list 50", fixtures.listing(gateway, "invoiless", fifty, token), 16, pid),
        Measure("harvest list 50", fixtures.listing(gateway, "harvest", fifty, token), 16, pid),
        Measure("proxy get c1", fixtures.invoiless_get(proxy[0], proxied), 1, proxy[1]),
        Measure("proxy get c16", fixtures.invoiless_get(proxy[0], proxied), 16, proxy[1]),
    ]
    for dialect in fixtures.LIST_DIALECTS:
        scenario = fixtures.listing(gateway, dialect, two_thousand, token)
        found.append(Measure(f"{dialect} list 2000", scenario, 1, pid, one_by_one=True))
    return found, backend_payment


def against_table(medians: dict[str, Run], other: Path) -> str:
    """Each row of both trees: requests/s and server CPU per request, and their ratios."""
    lines = [
        f"| row | this tree req/s | `{other.name}` req/s | ratio | CPU ms each | `{other.name}` | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for name, theirs in medians.items():
        if not name.endswith(AGAINST):
            continue
        ours = medians[name.removesuffix(AGAINST)]
        lines.append(
            f"| {name.removesuffix(AGAINST)} | {ours.rate:,.0f} | {theirs.rate:,.0f} "
            f"| {ours.rate / theirs.rate:.2f} | {ours.cpu_ms_each:.2f} | {theirs.cpu_ms_each:.2f} "
            f"| {ours.cpu_ms_each / max(theirs.cpu_ms_each, 1e-9):.2f} |"
        )
    return "\n".join(lines)


def alternate(
    measures: list[Measure], seconds: float, rounds: int, workdir: Path
) -> dict[str, Run]:
    """Every measure once per round, in turn (so load drifts hit all alike); medians."""

    def once(measure: Measure, length: float) -> Run:
        if measure.one_by_one:
            return sequential(measure.scenario, seconds=length, server_pid=measure.pid)
        return run(
            measure.scenario, connections=measure.connections, seconds=length,
            server_pid=measure.pid, workdir=workdir,
        )  # fmt: skip

    for measure in measures:  # warm-up: caches, connection pools, the JIT-less interpreter
        once(measure, min(1.0, seconds))
    runs: dict[str, list[Run]] = {m.name: [] for m in measures}
    for number in range(rounds):
        print(f"round {number + 1} of {rounds}", file=sys.stderr, flush=True)
        for measure in measures:
            result = once(measure, seconds)
            if result.failures:
                raise RuntimeError(f"{measure.name}: {result.failures} failed requests")
            runs[measure.name].append(result)
            print(
                f"  {measure.name:22s} {result.rate:9,.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                f"  {result.cpu_ms_each:6.2f} ms CPU each",
                file=sys.stderr,
                flush=True,
            )
    return {name: _median(found) for name, found in runs.items()}


def _median(runs: list[Run]) -> Run:
    def mid(get: Callable[[Run], float]) -> float:
        return statistics.median(get(r) for r in runs)

    requests = round(mid(lambda r: r.requests))
    return Run(
        requests=requests,
        seconds=requests / mid(lambda r: r.rate),
        p50_ms=mid(lambda r: r.p50_ms),
        p99_ms=mid(lambda r: r.p99_ms),
        failures=0,
        cpu_seconds=mid(lambda r: r.cpu_ms_each) * requests / 1000,
    )


if __name__ == "__main__":
    main()
