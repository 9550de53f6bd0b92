"""Driving wrk: the tools it needs, one Lua script per scenario, results and server CPU."""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Debian packages that provide the load generator and the reference proxy.
TOOLS = {"wrk": "wrk", "nginx": "nginx-light"}
_MARK = "BENCH-RESULT "
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_SCRIPT = """
local paths = {%(paths)s}
local count = #paths
local index = 0
wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s
request = function()
  index = index + 1
  return wrk.format(nil, paths[(index %% count) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"micros":%%d,"p50":%%d,"p99":%%d,"bad_status":%%d,"errors":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def ensure_tools() -> None:
    """Install wrk and nginx from Debian's packages when they are absent (needs root)."""
    missing = [package for tool, package in TOOLS.items() if not _which(tool)]
    if not missing:
        return
    print(f"installing {', '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def nginx_binary() -> str:
    found = _which("nginx")
    if found is None:
        raise RuntimeError("nginx is not installed")
    return found


@dataclass(frozen=True)
class Scenario:
    """One kind of request, sent round-robin over `paths` on one server."""

    base: str
    paths: Sequence[str]
    method: str = "GET"
    body: bytes = b""
    headers: Mapping[str, str] | None = None

    def script(self) -> str:
        headers = "\n".join(
            f"wrk.headers[{_lua(name)}] = {_lua(value)}"
            for name, value in (self.headers or {}).items()
        )
        return _SCRIPT % {
            "paths": ", ".join(_lua(path) for path in self.paths),
            "method": _lua(self.method),
            "body": _lua(self.body.decode()) if self.body else "nil",
            "headers": headers,
            "mark": _MARK,
        }


def _lua(text: str) -> str:
    """A Lua string literal (JSON's escapes are a subset of Lua's)."""
    return json.dumps(text)


@dataclass(frozen=True)
class Run:
    """What one wrk run measured, and the CPU the server's processes spent meanwhile."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    cpu_seconds: float
    generator_cpu_seconds: float = 0.0  # wrk's own user plus system time

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_each(self) -> float:
        return self.cpu_seconds * 1000 / max(1, self.requests)

    @property
    def generator_ms_each(self) -> float:
        return self.generator_cpu_seconds * 1000 / max(1, self.requests)


def run(
    scenario: Scenario, *, connections: int, seconds: float, server_pid: int, workdir: Path
) -> Run:
    """One wrk run of `seconds` over `connections` keep-alive connections (one thread)."""
    return run_together(
        [scenario], connections=connections, seconds=seconds, server_pid=server_pid, workdir=workdir
    )


def run_together(
    scenarios: Sequence[Scenario],
    *,
    connections: int,
    seconds: float,
    server_pid: int,
    workdir: Path,
) -> Run:
    """One wrk per scenario (each one thread, `connections` connections), all at once:
    for requests one script cannot vary, such as each tenant's own credentials. The
    requests are summed; the latencies are the worst wrk's."""
    commands = []
    for scenario in scenarios:
        script = workdir / f"scenario-{abs(hash(scenario.script()))}.lua"
        script.write_text(scenario.script())
        commands.append([
            "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(script), scenario.base,
        ])  # fmt: skip
    before, generator = tree_cpu(server_pid), _children_cpu()
    started = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    outputs = [process.communicate(timeout=seconds + 60)[0] for process in started]
    cpu = tree_cpu(server_pid) - before
    generator = _children_cpu() - generator  # the wrks, reaped
    found = []
    for process, output in zip(started, outputs, strict=True):
        line = next((x for x in output.splitlines() if x.startswith(_MARK)), None)
        if process.returncode or line is None:
            raise RuntimeError(f"wrk printed no result: {output}")
        found.append(json.loads(line[len(_MARK) :]))
    return Run(
        requests=sum(one["requests"] for one in found),
        seconds=max(one["micros"] for one in found) / 1e6,
        p50_ms=max(one["p50"] for one in found) / 1000,
        p99_ms=max(one["p99"] for one in found) / 1000,
        failures=sum(one["bad_status"] + one["errors"] for one in found),
        cpu_seconds=cpu,
        generator_cpu_seconds=generator,
    )


def _children_cpu() -> float:
    """User plus system CPU seconds of this process's children that have been reaped."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def tree_cpu(pid: int) -> float:
    """User plus system CPU seconds of `pid` and every process under it."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(member, 0) for member in tree) / _CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of the process `pid`, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def sequential(scenario: Scenario, *, seconds: float, server_pid: int, least: int = 3) -> Run:
    """Requests one after another on one kept-alive connection, for heavy answers.

    wrk counts only the requests that finish inside its time; a call taking a large part
    of a second needs a count instead: at least `least` requests, and more while
    `seconds` last (never more than 1,000).
    """
    host, port = scenario.base.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    latencies: list[float] = []
    failures = 0
    before = tree_cpu(server_pid)
    started = time.perf_counter()
    try:
        while len(latencies) < 1000 and (
            len(latencies) < least or time.perf_counter() - started < seconds
        ):
            path = scenario.paths[len(latencies) % len(scenario.paths)]
            sent = time.perf_counter()
            conn.request(scenario.method, path, scenario.body or None, dict(scenario.headers or {}))
            answer = conn.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - sent)
            failures += answer.status >= 400
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Run(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] * 1000,
        failures=failures,
        cpu_seconds=tree_cpu(server_pid) - before,
    )
