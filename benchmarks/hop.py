"""The proxy hop alone, A/B: the backend direct, nginx, and proxies from other checkouts.

    python -m benchmarks.hop                         # this checkout's proxy
    python -m benchmarks.hop --against ../old-tree   # and a proxy from another checkout

Starts a ledger gateway as the backend (Invoiless), nginx `proxy_pass` in front of it,
and a proxy-mode gateway (Invoiless in front of Invoiless, as in `benchmarks.suite`)
from this checkout and from each `--against` checkout (a source tree of this project:
its `gateway` package is imported in place of this one's). wrk gets the same payment
through each of them in turn, at one and at 16 connections, round after round, so
load drifts hit all alike. Prints, per server, the median p50 latency and rate and
the server's CPU per call, and each proxy's hop over calling the backend directly.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks import fixtures
from benchmarks.harness import gateway_server
from benchmarks.nginx import nginx_proxy
from benchmarks.suite import gateway_config, proxy_config, raise_file_limit
from benchmarks.wrk import Run, Scenario, ensure_tools, run

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", action="append", default=[], help="another checkout")
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ensure_tools()
    raise_file_limit()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        backend, backend_process = stack.enter_context(gateway_server(gateway_config()))
        nginx, nginx_pid = stack.enter_context(nginx_proxy(int(backend.rsplit(":", 1)[1])))
        payment = asyncio.run(_payment(backend))
        servers = [
            ("direct", fixtures.invoiless_get(backend, payment), backend_process.pid),
            ("nginx", fixtures.invoiless_get(nginx, payment), nginx_pid),
        ]
        for name, checkout in [("proxy (this checkout)", HERE)] + [
            (f"proxy ({path})", Path(path).resolve()) for path in args.against
        ]:
            started = gateway_server(proxy_config(backend), root, checkout=checkout)
            url, process = stack.enter_context(started)
            pid = process.pid
            local = asyncio.run(fixtures.local_id(url, "payment", payment))
            servers.append((name, fixtures.invoiless_get(url, local), pid))
        medians = _rounds(servers, args.seconds, args.rounds, root)
    print(f"\n<!-- python -m benchmarks.hop: {args.rounds} x {args.seconds} s -->")
    print(table(medians))


async def _payment(backend: str) -> str:
    invoice = (await fixtures.invoices(backend, "hop", 1))[0]
    return (await fixtures.pay(backend, invoice, 1))[0]


Key = tuple[str, int]


def _rounds(
    servers: list[tuple[str, Scenario, int]], seconds: int, rounds: int, root: Path
) -> dict[Key, Run]:
    found: dict[Key, list[Run]] = {}
    for _, scenario, pid in servers:  # warm-up
        for connections in (1, 16):
            run(scenario, connections=connections, seconds=1, server_pid=pid, workdir=root)
    for number in range(rounds):
        print(f"round {number + 1} of {rounds}", file=sys.stderr, flush=True)
        for name, scenario, pid in servers:
            for connections in (1, 16):
                result = run(
                    scenario, connections=connections, seconds=seconds, server_pid=pid,
                    workdir=root,
                )  # fmt: skip
                if result.failures:
                    raise RuntimeError(f"{name}: {result.failures} failed requests")
                found.setdefault((name, connections), []).append(result)
                print(
                    f"  {name:30s} c{connections:<2d} {result.rate:8,.0f} req/s"
                    f"  p50 {result.p50_ms:6.2f} ms  {result.cpu_ms_each:5.2f} ms CPU each",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
    return {key: _median(runs) for key, runs in found.items()}


def _median(runs: list[Run]) -> Run:
    requests = round(statistics.median(r.requests for r in runs))
    return Run(
        requests=requests,
        seconds=requests / statistics.median(r.rate for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        failures=0,
        cpu_seconds=statistics.median(r.cpu_ms_each for r in runs) * requests / 1000,
    )


def table(medians: dict[Key, Run]) -> str:
    direct = medians[("direct", 1)].p50_ms
    nginx = medians[("nginx", 16)].rate
    lines = [
        "| server | p50, 1 conn. | hop over direct | CPU each, 1 conn. | req/s, 16 conn. "
        "| CPU each, 16 conn. | ratio to nginx at 16 |",
        "|---|---|---|---|---|---|---|",
    ]
    names = dict.fromkeys(name for name, _ in medians)
    for name in names:
        one, many = medians[(name, 1)], medians[(name, 16)]
        hop = "" if name == "direct" else f"+{one.p50_ms - direct:.2f} ms"
        lines.append(
            f"| {name} | {one.p50_ms:.2f} ms | {hop} | {one.cpu_ms_each:.2f} ms "
            f"| {many.rate:,.0f} | {many.cpu_ms_each:.2f} ms | {many.rate / nginx:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
