"""Where a scenario's server CPU goes: py-spy samples the gateway under wrk load.

    pip install py-spy
    python -m benchmarks.profile invoiless-create [--seconds 10] [--workers 2]

Starts the servers the scenario needs (as `benchmarks.suite` does), drives it with wrk
while py-spy samples the serving gateway (the proxy, for `proxy-get`), and prints the
functions by inclusive and by self share of the samples. Proportions, unlike absolute
figures, hold on a loaded machine. With `--workers N` the gateway runs N worker
processes and py-spy samples one of them.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from benchmarks import fixtures
from benchmarks.harness import gateway_server
from benchmarks.suite import gateway_config, proxy_config, raise_file_limit
from benchmarks.wrk import Scenario, ensure_tools, run


async def _ledger(name: str, gateway: str) -> Scenario:
    if name.endswith("create"):
        targets = await fixtures.invoices(gateway, "create", 64)
        make = (
            fixtures.invoiless_create if name.startswith("invoiless") else fixtures.harvest_create
        )
        return make(gateway, targets)
    invoice = (await fixtures.invoices(gateway, "list", 1))[0]
    count = 2000 if name.endswith("2000") else 50
    payments = await fixtures.pay(gateway, invoice, count)
    if name == "invoiless-get":
        return fixtures.invoiless_get(gateway, payments[0])
    dialect = name.split("-")[0]
    token = await fixtures.urlkey_token(gateway) if dialect == "urlkey" else ""
    return fixtures.listing(gateway, dialect, invoice, token)


async def _proxied(backend: str, proxy: str) -> Scenario:
    invoice = (await fixtures.invoices(backend, "hop", 1))[0]
    payment = (await fixtures.pay(backend, invoice, 1))[0]
    return fixtures.invoiless_get(proxy, await fixtures.local_id(proxy, "payment", payment))


SCENARIOS = (
    "invoiless-create", "harvest-create", "invoiless-get", "invoiless-list50",
    "harvest-list50", "harvest-list2000", "fastbill-list2000", "invoiless-list2000",
    "urlkey-list2000", "proxy-get",
)  # fmt: skip


def summary(raw: Path, top: int, thread: int | None = None) -> str:
    """Inclusive and self shares per function from py-spy's collapsed stacks.

    `thread`: only the samples of the thread with this id (the event loop's is the
    process id)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        if thread is not None and not stack.startswith(f"thread ({thread})"):
            continue
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {n * 100 / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {n * 100 / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


_ROOT = f"{Path(__file__).resolve().parents[1]}/"  # the checkout: paths relative to it


def _short(frame: str) -> str:
    """`handler (gateway/routes.py:120)` -> `handler (gateway/routes.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", _ROOT):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument(
        "--loop-only", action="store_true", help="the event loop's thread alone, not the store's"
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    ensure_tools()
    raise_file_limit()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        extra = ("--workers", str(args.workers)) if args.workers > 1 else ()
        base, process = stack.enter_context(gateway_server(gateway_config(), extra=extra))
        if args.scenario == "proxy-get":
            proxy, process = stack.enter_context(gateway_server(proxy_config(base)))
            scenario = asyncio.run(_proxied(base, proxy))
        else:
            scenario = asyncio.run(_ledger(args.scenario, base))
        load = threading.Thread(
            target=run,
            args=(scenario,),
            kwargs={
                "connections": args.connections, "seconds": args.seconds + 2,
                "server_pid": process.pid, "workdir": workdir,
            },
        )  # fmt: skip
        load.start()
        raw = workdir / "profile.txt"
        sampled = _a_worker(process.pid) if args.workers > 1 else process.pid
        record = [spy, "record", "--pid", str(sampled), "--duration", f"{args.seconds:g}"]
        record += ["--rate", "200", "--nonblocking", "--threads"]
        subprocess.run([*record, "--format", "raw", "-o", str(raw)], check=True, timeout=120)
        load.join(timeout=args.seconds + 120)
        print(summary(raw, args.top, sampled if args.loop_only else None))


def _a_worker(supervisor: int) -> int:
    """The first worker process the `--workers` supervisor forked."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0])


if __name__ == "__main__":
    main()
