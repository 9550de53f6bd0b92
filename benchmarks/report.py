"""The suite's figures as the issue's markdown table: each row, its ratio and its target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from benchmarks.fixtures import LIST_DIALECTS
from benchmarks.wrk import Run

LIST_CPU_TARGET_MS = 15.0
RSS_TARGET_MB = 100.0
HOP_TARGET_MS = 0.3


@dataclass(frozen=True)
class Figures:
    runs: Mapping[str, Run]
    memory: tuple[float, float]
    idle: int
    workers: bool


def _rate(run: Run) -> str:
    return f"{run.rate:,.0f} req/s"


def _cpu(run: Run) -> str:
    return f"{run.cpu_ms_each:.2f} ms CPU each"


def _met(ok: bool) -> str:
    return "**met**" if ok else "not met"


def _ratio_row(label: str, run: Run, base: Run, base_label: str, target: float) -> str:
    ratio = run.rate / base.rate
    return (
        f"| {label} | {_rate(run)} ({_cpu(run)}) | {base_label} {_rate(base)} "
        f"| {ratio:.2f}x | >= {target:.2f}x | {_met(ratio >= target)} |"
    )


def table(figures: Figures) -> str:
    runs = figures.runs
    post, get = runs["bare POST"], runs["bare GET"]
    lines = [
        "| path | gateway | compared with | ratio | target | |",
        "|---|---|---|---|---|---|",
        _ratio_row("Invoiless create, `synchronous=FULL`", runs["invoiless create"], post,
                   "bare POST", 0.30),
        _ratio_row("Harvest XML create", runs["harvest create"], post, "bare POST", 0.30),
    ]  # fmt: skip
    if figures.workers:
        for dialect in ("invoiless", "harvest"):
            one, two = runs[f"{dialect} create"], runs[f"{dialect} create w2"]
            lines.append(
                _ratio_row(f"{dialect} create, `--workers 2`", two, one, "one process", 1.6)
            )
    else:
        lines.append(
            "| creates, `--workers 2` | n/a: no `--workers` in this gateway | | | >= 1.6x | |"
        )
    lines += [
        _ratio_row("Invoiless get one", runs["invoiless get"], get, "bare GET", 0.5),
        _ratio_row("Invoiless list of 50", runs["invoiless list 50"], get, "bare GET", 0.25),
        _ratio_row("Harvest XML list of 50", runs["harvest list 50"], get, "bare GET", 0.15),
    ]
    for dialect in LIST_DIALECTS:
        run = runs[f"{dialect} list 2000"]
        ok = run.cpu_ms_each < LIST_CPU_TARGET_MS
        lines.append(
            f"| list of 2,000, {dialect} | {run.cpu_ms_each:.1f} ms server CPU each "
            f"({_rate(run)}, 1 conn.) | | | < {LIST_CPU_TARGET_MS:g} ms | {_met(ok)} |"
        )
    lines += [_hop_row(runs), _proxy_row(runs), _memory_row(figures)]
    return "\n".join(lines)


def _hop_row(runs: Mapping[str, Run]) -> str:
    direct, nginx, proxy = runs["direct get c1"], runs["nginx get c1"], runs["proxy get c1"]
    added = proxy.p50_ms - direct.p50_ms
    return (
        f"| proxy hop, get one, 1 connection | {added:+.2f} ms p50 over direct "
        f"({proxy.p50_ms:.2f} vs {direct.p50_ms:.2f} ms; {_cpu(proxy)}) "
        f"| nginx `proxy_pass` {nginx.p50_ms - direct.p50_ms:+.2f} ms | | "
        f"<= +{HOP_TARGET_MS} ms | {_met(added <= HOP_TARGET_MS)} |"
    )


def _proxy_row(runs: Mapping[str, Run]) -> str:
    return _ratio_row(
        "proxy at 16 connections", runs["proxy get c16"], runs["nginx get c16"], "nginx", 0.8
    )


def _memory_row(figures: Figures) -> str:
    before, during = figures.memory
    return (
        f"| RSS, {figures.idle:,} idle keep-alive connections | {during:.1f} MB "
        f"({before:.1f} MB before they opened) | | | <= {RSS_TARGET_MB:g} MB "
        f"| {_met(during <= RSS_TARGET_MB)} |"
    )


def floor_table(runs: Mapping[str, Run]) -> str:
    """What `benchmarks.floor` reaches on each path, beside the gateway and the target."""
    post, get = runs["bare POST"], runs["bare GET"]
    lines = [
        "| path | floor of this design | gateway | target |",
        "|---|---|---|---|",
    ]
    for label, floor, gateway, base, base_label, target in (
        ("durable create", runs["floor POST"], runs["invoiless create"], post, "bare POST", 0.3),
        ("get one", runs["floor GET"], runs["invoiless get"], get, "bare GET", 0.5),
    ):
        lines.append(
            f"| {label} | {floor.rate / base.rate:.2f}x {base_label} ({_rate(floor)}, "
            f"{_cpu(floor)}) | {gateway.rate / base.rate:.2f}x | >= {target:.2f}x |"
        )
    direct, relay, proxy = runs["direct get c1"], runs["floor relay c1"], runs["proxy get c1"]
    lines.append(
        f"| proxy hop, get one, 1 connection | {relay.p50_ms - direct.p50_ms:+.2f} ms p50 "
        f"({_cpu(relay)}) | {proxy.p50_ms - direct.p50_ms:+.2f} ms | <= +{HOP_TARGET_MS} ms |"
    )
    many, proxied, nginx = runs["floor relay c16"], runs["proxy get c16"], runs["nginx get c16"]
    lines.append(
        f"| proxy at 16 connections | {many.rate / nginx.rate:.2f}x nginx ({_rate(many)}, "
        f"{_cpu(many)}) | {proxied.rate / nginx.rate:.2f}x | >= 0.80x |"
    )
    return "\n".join(lines)
