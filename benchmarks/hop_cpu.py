"""The proxy's own Python per call, without the network: CPU per step, A/B across checkouts.

    python -m benchmarks.hop_cpu                        # this checkout
    python -m benchmarks.hop_cpu --against ../old-tree  # and another, alternately

Times, in one process per checkout and in CPU time (`time.process_time`, best of
`--rounds` runs of `--calls` calls, so a busy machine slows the figures but not
their ratio), what a proxied get-one does in Python around the two socket
operations: the backend's answer parsed from its bytes (`httpclient`; also a 64 KiB chunked
answer as it comes, in 4 KiB packets), decoded and given its caller's ids
(`ProxyService._payments`), and the request's bytes built. The checkouts run
alternately, round after round, and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
BODY = (
    b'{"id":"1","invoice":"1","amount":1.25,"method":"Card","paidAt":"2026-12-02",'
    b'"notes":"bench","sendNotification":false}'
)
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\nDate: Wed, 02 Dec 2026 06:43:21 GMT\r\n"
    b"Server: Python/3.11 aiohttp/3.9.5\r\n\r\n" % len(BODY)
)
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"1000\r\n" + b" " * 4096 + b"\r\n") * 16
    + b"0\r\n\r\n"
)
PACKETS = [CHUNKED[i : i + 4096] for i in range(0, len(CHUNKED), 4096)]  # 64 KiB, as it comes
STEPS = (
    "answer parsed (wire)",
    "64 KiB chunked answer parsed, 4 KiB packets (wire)",
    "answer decoded, ids given",
    "request bytes built",
)


def _cpu(step: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        step()
    return (time.process_time() - started) / calls * 1e6


def _done(coroutine: Any) -> Any:
    """A coroutine that never waits, run to its end."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the step awaited: it is not pure CPU")


async def _measure(calls: int) -> dict[str, float]:
    """One round in this process: microseconds of CPU per call, per step."""
    import dialects
    from gateway.config import parse
    from gateway.proxy import httpclient
    from gateway.proxy.service import ProxyService
    from gateway.proxy.upstream import Answer, UpstreamClient
    from gateway.store import open_store

    backend = {"dialect": "invoiless", "url": "http://127.0.0.1:9", "api_key": "k"}
    raw = {"admin_token": "t", "token_secret": "s", "tenants": {"bench": {"backend": backend}}}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/ids.db")
        await store.open()
        try:
            tenant = parse(raw).tenants["bench"].backend
            assert tenant is not None
            proxy = ProxyService("bench", UpstreamClient(tenant), store)
            caller = dialects.get("invoiless")
            answer = Answer(200, {"Content-Type": "application/json"}, BODY)
            origin = httpclient.Origin.parse(tenant.url)
            headers = {"Accept": "application/json", "api-key": "k", "X-Request-Id": "0" * 16}
            loop = asyncio.get_running_loop()
            connection = httpclient._Connection(1 << 20)

            def parsed(*packets: bytes) -> object:
                waiter = loop.create_future()  # no transport: the answer is fed by hand
                connection._reset()
                connection._waiter, connection._head_request = waiter, False
                for packet in packets:
                    connection.data_received(packet)
                return waiter.result()

            steps: dict[str, Callable[[], object]] = {
                STEPS[0]: lambda: parsed(HEAD + BODY),
                STEPS[1]: lambda: parsed(*PACKETS),
                STEPS[2]: lambda: _done(proxy._payments(caller, answer, None, None, single=True)),
                STEPS[3]: lambda: httpclient._request(
                    "GET", "/v1/payments/1", origin, headers, None
                ),
            }
            for step in steps.values():
                step()  # ids minted, caches warm
            return {name: _cpu(step, calls) for name, step in steps.items()}
        finally:
            await store.close()


def _round(checkout: Path, calls: int) -> dict[str, float]:
    """One round in a fresh process importing `checkout`'s packages."""
    code = (
        "import sys, asyncio, json, importlib.util as u; "
        f"sys.path.insert(0, {str(checkout)!r}); "
        f"spec = u.spec_from_file_location('hop_cpu', {__file__!r}); "
        "bench = u.module_from_spec(spec); spec.loader.exec_module(bench); "
        f"print(json.dumps(asyncio.run(bench._measure({calls}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=checkout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: {done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", action="append", default=[], help="another checkout")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    checkouts = [("this checkout", HERE)] + [(p, Path(p).resolve()) for p in args.against]
    best: dict[str, dict[str, float]] = {name: {} for name, _ in checkouts}
    for number in range(args.rounds):
        print(f"round {number + 1} of {args.rounds}", file=sys.stderr, flush=True)
        for name, checkout in checkouts:
            for step, micros in _round(checkout, args.calls).items():
                best[name][step] = min(micros, best[name].get(step, micros))
    print(f"\n<!-- python -m benchmarks.hop_cpu: best of {args.rounds} x {args.calls} calls -->")
    print("| step | " + " | ".join(name for name, _ in checkouts) + " |")
    print("|---|" + "---|" * len(checkouts))
    for step in STEPS:
        cells = " | ".join(f"{best[name][step]:.1f} us" for name, _ in checkouts)
        print(f"| {step} | {cells} |")


if __name__ == "__main__":
    main()
