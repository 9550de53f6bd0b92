"""A longer fuzz run than CI's, against a real gateway process.

    python -m benchmarks.soak.fuzz_long --examples 20000 --seconds 600 [--seed N]

The same generated requests as tests/security/test_fuzz.py (tests/security/fuzz.py),
in rounds at endpoints picked at random, each round from a fresh seed, until either
bound is reached. Stops at the first answer of 500 or more, or with a traceback (the
failing request is printed, with the seed that reproduces it); then checks that the
ledger is unchanged, the server alive and its log free of unexpected errors. Prints
the examples run, the statuses seen and the server's peak memory.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.security.fuzz import ENDPOINTS, Target, run
from tests.security.harness import gateway, memory_kb
from tests.support import tenant_config

ROUND = 50  # examples per round, one endpoint and one seed each


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak.fuzz_long", description=__doc__
    )
    parser.add_argument("--examples", type=int, default=5000, help="at most this many requests")
    parser.add_argument("--seconds", type=float, default=300.0, help="and for at most this long")
    parser.add_argument("--seed", type=int, help="seed of the run (default: random)")
    args = parser.parse_args(argv)
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(run_seed)
    tenants = {name: tenant_config(name) for name in ("acme", "globex", "fuzz")}
    with tempfile.TemporaryDirectory() as directory:
        with gateway(
            Path(directory),
            "fuzz",
            tenants,
            auth_failures=None,
            auth_address_failures=None,
            auth_global_failures=None,
        ) as server:
            target = Target(server.url, server.port)
            target.prepare()
            before = target.ledger()
            baseline = memory_kb(server.process.pid)["VmRSS"]
            started = time.monotonic()
            failure: BaseException | None = None
            while target.examples < args.examples and time.monotonic() - started < args.seconds:
                endpoint = rng.choice(ENDPOINTS)
                at = rng.randrange(2**32)
                try:
                    run(target, endpoint, min(ROUND, args.examples - target.examples), at=at)
                except Exception as exc:  # a falsified property: report and stop
                    print(f"FAILED at {endpoint.id} with seed {at}: {exc}", file=sys.stderr)
                    failure = exc
                    break
            elapsed = time.monotonic() - started
            memory = memory_kb(server.process.pid)
            problems = []
            if target.ledger() != before:
                problems.append("the ledger changed")
            if not target.alive():
                problems.append("the server is not answering")
            if "unexpected error" in server.output():
                problems.append("the server logged unexpected errors")
    statuses = dict(sorted(target.statuses.items()))
    print(f"seed {run_seed}: {target.examples} examples in {elapsed:.1f} s, statuses {statuses}")
    print(f"server RSS {baseline / 1024:.1f} MB at start, peak {memory['VmHWM'] / 1024:.1f} MB")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if failure is not None or problems else 0


if __name__ == "__main__":
    sys.exit(main())
