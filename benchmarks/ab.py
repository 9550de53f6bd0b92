"""Server CPU per request of two checkouts, side by side: A/B on a loaded machine.

    python -m benchmarks.ab invoiless-create invoiless-get --against ../older-checkout
    python -m benchmarks.ab invoiless-get --set server.access_log=false --set metrics.enabled=false

Starts one gateway (as `benchmarks.suite` does: SQLite, `synchronous=FULL`, access log
on) from this checkout and one from the other (this one again, if none is given:
`--set` then changes the other's config, to see what a feature costs), prepares the
same scenario on each,
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
from typing import Any

import yaml

from benchmarks.harness import gateway_server
from benchmarks.profile import SCENARIOS, _ledger
from benchmarks.suite import gateway_config, raise_file_limit
from benchmarks.wrk import Run, ensure_tools, run


def _line(name: str, label: str, runs: list[Run]) -> str:
    cpu = statistics.median(r.cpu_ms_each for r in runs)
    rate = statistics.median(r.rate for r in runs)
    return f"| {name} | {label} | {cpu:.3f} ms | {rate:,.0f} req/s |"


def _set(config: dict[str, Any], setting: str) -> None:
    """`a.b=value` into `config["a"]["b"]`, the value read as YAML (false, 3, text)."""
    key, _, value = setting.partition("=")
    *path, last = key.split(".")
    for part in path:
        config = config.setdefault(part, {})
    config[last] = yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", choices=SCENARIOS)
    parser.add_argument("--against", type=Path, default=Path.cwd(), help="the other checkout")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a setting of the other gateway's config, dotted (server.access_log=false)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--log-pipe", action="store_true", help="log lines into a pipe, not /dev/null"
    )
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
                config = gateway_config()
                if label == "other":
                    for setting in args.set:
                        _set(config, setting)
                started = gateway_server(config, checkout=checkout, log_pipe=args.log_pipe)
                base, process = stack.enter_context(started)
                servers[label] = (asyncio.run(_ledger(name, base)), process.pid)
            runs: dict[str, list[Run]] = {label: [] for label in servers}
            load = {"connections": args.connections, "seconds": args.seconds}
            for _ in range(args.rounds):
                for label, (scenario, pid) in servers.items():
                    runs[label].append(run(scenario, server_pid=pid, workdir=Path(tmp), **load))
            for label, found in runs.items():
                what = f"{label} ({checkouts[label].name})"
                if label == "other" and args.set:
                    what += f" {' '.join(args.set)}"
                print(_line(name, what, found), flush=True)


if __name__ == "__main__":
    main()
