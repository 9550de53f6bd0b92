"""Server CPU per request of two checkouts, side by side: A/B on a loaded machine.

    python -m benchmarks.ab invoiless-create invoiless-get --against ../older-checkout

Starts one gateway (as `benchmarks.suite` does: SQLite, `synchronous=FULL`, access log
on) from this checkout and one from the other, prepares the same scenario on each,
then alternates short wrk runs between them and prints, per scenario, the median
server CPU per request and throughput of each. CPU per request holds up under the
load of other work on the machine far better than throughput does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks.harness import gateway_server
from benchmarks.profile import SCENARIOS, _ledger
from benchmarks.suite import gateway_config, raise_file_limit
from benchmarks.wrk import Run, ensure_tools, run


def _line(name: str, label: str, runs: list[Run]) -> str:
    cpu = statistics.median(r.cpu_ms_each for r in runs)
    rate = statistics.median(r.rate for r in runs)
    return f"| {name} | {label} | {cpu:.3f} ms | {rate:,.0f} req/s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", choices=SCENARIOS)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    ensure_tools()
    raise_file_limit()
    checkouts = {"this": Path.cwd(), "other": args.against.resolve()}
    print("| scenario | checkout | server CPU per request | throughput |")
    print("|---|---|---|---|")
    for name in args.scenarios:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
            servers = {}
            for label, checkout in checkouts.items():
                started = gateway_server(gateway_config(), checkout=checkout)
                base, process = stack.enter_context(started)
                servers[label] = (asyncio.run(_ledger(name, base)), process.pid)
            runs: dict[str, list[Run]] = {label: [] for label in servers}
            load = {"connections": args.connections, "seconds": args.seconds}
            for _ in range(args.rounds):
                for label, (scenario, pid) in servers.items():
                    runs[label].append(run(scenario, server_pid=pid, workdir=Path(tmp), **load))
            for label, found in runs.items():
                print(_line(name, f"{label} ({checkouts[label].name})", found), flush=True)


if __name__ == "__main__":
    main()
