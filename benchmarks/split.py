"""How `--workers 2` shares long-lived connections: a burst of keep-alive connections, counted.

    python -m benchmarks.split [--connections 16] [--trials 20] [--defer S] [--against TREE]
    python -m benchmarks.split --load 5 [--trials 5] ...    # wrk creates instead

Starts a two-worker gateway (SQLite) and, trial after trial, opens `--connections`
keep-alive connections at once (as wrk does when it starts), sends one request on
each, then counts which worker holds each connection (Linux: the workers' open
sockets in /proc), closes them all and waits until the workers have seen them close.
`--defer` sets this tree's `server.accept_defer_seconds` (how long a worker ahead
leaves a new connection to the other).
`--load S`: each trial is instead an S-second wrk run of Invoiless creates over the
connections (as the suite's `--workers 2` row), the split read a second into it, and
each worker's CPU time over it: the busier worker's share of the two is 50% when both
worked alike. `--against TREE` starts the gateway of another source tree too (a worktree of an
older commit) and alternates the trials between the two: an A/B in one sitting.
Prints a markdown table: each tree's splits, how many were even (within one), the
mean difference, and under `--load` the busier worker's mean share of the CPU. A busy machine makes the splits worse, not better: a worker
not scheduled within the wait loses its turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import fixtures, wrk
from benchmarks.harness import gateway_server
from benchmarks.suite import gateway_config

_SETTLE = 3.0  # seconds for the second worker to open its store and start accepting
_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"


@dataclass
class Tree:
    """One gateway under test and the splits it made."""

    name: str
    base: str
    parent: int
    splits: list[tuple[int, ...]] = field(default_factory=list)
    busier: list[float] = field(default_factory=list)  # --load: the busier worker's CPU share

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    def row(self) -> str:
        even = sum(1 for split in self.splits if max(split) - min(split) <= 1)
        spread = sum(max(split) - min(split) for split in self.splits) / len(self.splits)
        shown = ", ".join("/".join(map(str, split)) for split in self.splits)
        share = f" {100 * sum(self.busier) / len(self.busier):.0f}% |" if self.busier else ""
        return f"| {self.name} | {shown} | {even} of {len(self.splits)} | {spread:.1f} |{share}"


def worker_pids(parent: int) -> list[int]:
    text = Path(f"/proc/{parent}/task/{parent}/children").read_text(encoding="ascii")
    return [int(child) for child in text.split()]


def established(port: int, pids: list[int]) -> list[int]:
    """How many established sockets on `port` each of `pids` holds."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return [len(inodes & _links(pid)) for pid in pids]


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of the process `pid` alone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _links(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except FileNotFoundError:
            pass
    return found


async def _held(port: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)
    return writer


async def trial(tree: Tree, connections: int) -> None:
    """One burst of connections: record the split, close them, wait for the workers."""
    pids = worker_pids(tree.parent)
    writers = await asyncio.gather(*(_held(tree.port) for _ in range(connections)))
    tree.splits.append(tuple(sorted(established(tree.port, pids), reverse=True)))
    for writer in writers:
        writer.close()
    deadline = time.monotonic() + 10
    while sum(established(tree.port, pids)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def loaded(tree: Tree, connections: int, seconds: float, scenario: wrk.Scenario) -> None:
    """One wrk run: the split a second into it, and each worker's CPU time over it."""
    pids = worker_pids(tree.parent)
    before = [process_cpu(pid) for pid in pids]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            wrk.run, scenario, connections=connections, seconds=seconds,
            server_pid=tree.parent, workdir=Path(tmp),
        )  # fmt: skip
        time.sleep(min(1.0, seconds / 2))
        split = established(tree.port, pids)
        running.result()
    spent = [process_cpu(pid) - start for pid, start in zip(pids, before, strict=True)]
    tree.splits.append(tuple(sorted(split, reverse=True)))
    tree.busier.append(max(spent) / max(sum(spent), 1e-9))


@contextmanager
def started(name: str, checkout: Path | None, defer: float | None = None) -> Iterator[Tree]:
    config = gateway_config()
    if defer is not None:
        config["server"]["accept_defer_seconds"] = defer
    with gateway_server(config, extra=("--workers", "2"), checkout=checkout) as run:
        base, process = run
        time.sleep(_SETTLE)
        yield Tree(name, base, process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--defer", type=float, help="this tree's accept_defer_seconds")
    parser.add_argument("--load", type=float, help="seconds of wrk creates per trial")
    parser.add_argument("--against", type=Path, help="also the gateway in this tree")
    args = parser.parse_args()
    with ExitStack() as stack:
        trees = [stack.enter_context(started("this tree", None, args.defer))]
        if args.against is not None:
            trees.append(stack.enter_context(started(args.against.name, args.against.resolve())))
        scenarios = {}
        if args.load:
            wrk.ensure_tools()
            for tree in trees:
                targets = asyncio.run(fixtures.invoices(tree.base, "split", 64))
                scenarios[tree.name] = fixtures.invoiless_create(tree.base, targets)
        for _ in range(args.trials):
            for tree in trees:
                if args.load:
                    loaded(tree, args.connections, args.load, scenarios[tree.name])
                else:
                    asyncio.run(trial(tree, args.connections))
    what = f"{args.load:g} s of wrk creates" if args.load else "bursts"
    print(
        f"\n<!-- python -m benchmarks.split: {args.trials} x {what}, {args.connections} conn. -->"
    )
    share = " busier worker's CPU |" if args.load else ""
    print(f"| tree | splits (larger first) | even | mean difference |{share}")
    print("|---|---|---|---|" + ("---|" if args.load else ""))
    print("\n".join(tree.row() for tree in trees))


if __name__ == "__main__":
    main()
