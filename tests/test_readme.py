"""The README, run as a newcomer runs it: every shell block, against a real gateway.

The README's shell blocks are taken from the file itself, in order, and run with bash
in a fresh directory (a copy of `config.yaml` and `examples/`, no `data/`) against a
gateway started there on free ports. Only the ports are rewritten: `127.0.0.1:8080`
and `127.0.0.1:8081` (and `--port 8081`) become the free ones; nothing else changes.

Each command's standard output is compared with the `# ->` comment under it (and the
comment lines that continue it, indented after the `#`). The matching rule:

- A shown answer that begins with a status (`201 Created, Location: /x`) needs the
  command to print its status line (`curl -i`): the status must be that one, and each
  `Name: value` after it (on the first line, split at `, `, or on lines of their own)
  must be a header of the answer with that value.
- Any other shown line is the body. The body shown must match the whole body printed,
  after whitespace outside double-quoted strings is dropped from both (and a leading
  XML declaration from the output). `...` stands for any text; `, ...` and `..., `
  stand for any further members, or none.

Blocks that cannot run here are listed in SKIPPED with the reason; every other block
runs, so a block added to the README is tested from then on.

The README must hold on any date: one run is on today's date with `python -m gateway`
as the README starts it; the others are on dates far from today, with the ledger's
clock injected through `create_app(clock=...)` into a gateway served in this process,
and run the blocks that ask that gateway (a command on its own reads no clock of it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from gateway.config import load, override
from gateway.ledger.idempotency import Clock
from gateway.serving.app import create_app

from .http.server import Server, free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARK = "@@readme-step-done@@"
RUN_TIMEOUT = 180.0  # bash's whole run; generous for a busy machine, never reached when well

# A block is known by its first line; each is left out for the reason given.
SKIPPED = {
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python -m gateway": (
        "Run it: installs the package; the test starts the same gateway on the same config"
    ),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && python -m pytest": (
        "Test it: the suite this test is part of"
    ),
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e .": (
        "PostgreSQL: installs the package, needs Debian's postgresql and a normal user, and"
        " runs a server of its own with initdb on fixed ports; gateway processes sharing one"
        " PostgreSQL are tested in tests/processes/test_shared_database.py on the tests' own cluster"
    ),
    "python -m gateway [serve] [--config config.yaml] [--host H] [--port 8080] [--database URL]": (
        "Command line: a synopsis with placeholders, not commands"
    ),
    "python -m benchmarks.bench_create --observed [--requests 4000] [--connections 16]": (
        "a load benchmark that runs its own gateways for minutes; figures in docs/performance.md"
    ),
}


# --- what the README shows ---------------------------------------------------------------


@dataclass
class Step:
    """Lines of a block up to a `# ->` comment, and what that comment shows."""

    code: str
    shown: str | None = None


@dataclass
class Shown:
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def runnable(text: str) -> list[str]:
    blocks = shell_blocks(text)
    firsts = [block.splitlines()[0] for block in blocks]
    for first in SKIPPED:
        assert firsts.count(first) == 1, f"SKIPPED names a block the README has not: {first}"
    return [block for block, first in zip(blocks, firsts, strict=True) if first not in SKIPPED]


def steps(block: str) -> list[Step]:
    found: list[Step] = []
    code: list[str] = []
    shown: list[str] | None = None
    for line in block.splitlines():
        if shown is not None and re.match(r"#\s{2,}\S", line):
            shown.append(line[1:].strip())
            continue
        if shown is not None:
            found.append(Step("\n".join(code), "\n".join(shown)))
            code, shown = [], None
        if line.startswith("# -> "):
            shown = [line[len("# -> ") :].strip()]
        else:
            code.append(line)
    found.append(Step("\n".join(code), None if shown is None else "\n".join(shown)))
    return found


_HEADER = r"[A-Za-z][A-Za-z0-9-]*: "


def parse_shown(text: str) -> Shown:
    lines = text.splitlines()
    status = re.match(r"(\d{3})(?: [A-Za-z ]+)?(?:, (.*))?$", lines[0])
    shown = Shown()
    if status is not None:
        shown.status = int(status[1])
        items = re.split(rf", (?={_HEADER})", status[2]) if status[2] else []
        lines = items + lines[1:]
    body = []
    for line in lines:
        if shown.status is not None and re.match(_HEADER, line):
            name, value = line.split(": ", 1)
            shown.headers.append((name, value))
        else:
            body.append(line)
    shown.body = "\n".join(body) if body else None
    return shown


def squeeze(text: str) -> str:
    """`text` without whitespace outside double-quoted strings."""
    kept: list[str] = []
    quoted = escaped = False
    for char in text:
        if quoted:
            kept.append(char)
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            kept.append(char)
            quoted = True
        elif not char.isspace():
            kept.append(char)
    return "".join(kept)


_WILDCARDS = {",...": "(?:,.*?)?", "...,": "(?:.*?,)?", "...": ".*?"}


def pattern(shown: str) -> re.Pattern[str]:
    parts = re.split(r"(,\.\.\.|\.\.\.,|\.\.\.)", shown)
    return re.compile(
        "".join(_WILDCARDS.get(part) or re.escape(part) for part in parts), flags=re.S
    )


def problems(shown_text: str, output: str) -> list[str]:
    """What in `output` differs from what the README shows; none: it holds."""
    shown = parse_shown(shown_text)
    found: list[str] = []
    body = output.strip()
    if shown.status is not None:
        head, _, body = output.strip().replace("\r\n", "\n").partition("\n\n")
        status = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", head)
        if status is None:
            return ["the README shows a status, but the command prints none (no curl -i)"]
        if int(status[1]) != shown.status:
            found.append(f"status {status[1]}, shown {shown.status}")
        headers = [line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line]
        for name, value in shown.headers:
            values = [v for n, v in headers if n.lower() == name.lower()]
            if not any(pattern(value).fullmatch(v) for v in values):
                found.append(f"header {name}: {values or 'absent'}, shown {value!r}")
    if shown.body is not None:
        printed = squeeze(re.sub(r"^<\?xml[^>]*\?>", "", body.strip()))
        if not pattern(squeeze(shown.body)).fullmatch(printed):
            found.append(f"body {body.strip()!r},\n  shown {shown.body!r}")
    return found


# --- running it ----------------------------------------------------------------------------


def workdir(directory: Path) -> Path:
    """A fresh directory as a clone has it: the shipped config and examples, no data."""
    shutil.copy(ROOT / "config.yaml", directory / "config.yaml")
    shutil.copytree(ROOT / "examples", directory / "examples")
    return directory


def localise(code: str, ports: dict[int, int]) -> str:
    for old, new in ports.items():
        code = re.sub(rf"\b127\.0\.0\.1:{old}\b", f"127.0.0.1:{new}", code)
        code = re.sub(rf"--port {old}\b", f"--port {new}", code)
    return code


@dataclass
class Outcome:
    failures: list[str]
    stderr: str


def run_readme(directory: Path, gateway_port: int, *, dated: bool = False) -> Outcome:
    """Every runnable block, in order, in one bash; each step's output checked.

    `dated`: only the blocks that ask the gateway on 8080, the one whose clock is set
    (a block that does not, a command on its own, reads no clock of the gateway's: the
    run on today's date checks it)."""
    ports = {8080: gateway_port, 8081: free_port()}
    blocks = [b for b in runnable(README.read_text()) if not dated or "127.0.0.1:8080" in b]
    all_steps = [step for block in blocks for step in steps(block)]
    script = "".join(
        f"{localise(step.code, ports)}\nprintf '\\n%s\\n' '{MARK}'\n" for step in all_steps
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "BACKEND_"))}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    printed, errors = directory / "readme.out", directory / "readme.err"
    with printed.open("w") as out, errors.open("w") as err:
        # Files, not pipes: what a block leaves running cannot hold the run open.
        shell = subprocess.Popen(
            ["bash", "-c", script],
            cwd=directory,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: what it left running is stopped
        )
        try:
            shell.wait(timeout=RUN_TIMEOUT)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
            shell.wait(timeout=10)
    stdout, stderr = printed.read_text(), errors.read_text()
    outputs = stdout.split(f"\n{MARK}\n")
    assert len(outputs) == len(all_steps) + 1, f"not every step ran:\n{stdout}\n{stderr}"
    failures = []
    for step, output in zip(all_steps, outputs, strict=False):
        if step.shown is not None and (found := problems(step.shown, output)):
            command = next(line for line in step.code.splitlines() if line[:1] not in "# ")
            failures.append(f"{command}\n  " + "\n  ".join(found))
    return Outcome(failures, stderr)


@contextmanager
def served_with_clock(directory: Path, clock: Clock) -> Iterator[int]:
    """The shipped config's gateway on a free port, its ledger's clock `clock`, served by
    an event loop of its own in a thread of this process."""
    port = free_port()
    config = override(
        load(directory / "config.yaml"),
        {"database": f"sqlite:///{directory / 'data' / 'gateway.db'}", "server.port": port},
    )
    runner = web.AppRunner(create_app(config, clock=clock), access_log=None)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def fixed(moment: datetime) -> Clock:
    return lambda: moment


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.spread
def test_every_readme_command_gives_what_it_shows_today(tmp_path: Path) -> None:
    directory = workdir(tmp_path)
    server = Server(directory / "config.yaml", directory / "data" / "gateway.db", tmp_path / "log")
    try:
        server.wait_ready()
        outcome = run_readme(directory, server.port)
    finally:
        server.stop()

    assert not outcome.failures, "\n".join(outcome.failures) + f"\n{outcome.stderr}"


@pytest.mark.spread
@pytest.mark.parametrize(
    "today",
    [datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, 23, 59, tzinfo=UTC)],
    ids=["before-every-date-shown", "the-last-day-before-the-invoices-fall-due"],
)
def test_every_readme_command_gives_what_it_shows_on_any_date(
    tmp_path: Path, today: datetime
) -> None:
    directory = workdir(tmp_path)
    with served_with_clock(directory, fixed(today)) as port:
        outcome = run_readme(directory, port, dated=True)

    assert not outcome.failures, "\n".join(outcome.failures) + f"\n{outcome.stderr}"


@pytest.mark.spread
def test_past_the_due_date_the_readme_would_be_wrong_and_the_run_says_where(
    tmp_path: Path,
) -> None:
    """The injected clock is the ledger's, and the comparison catches a wrong status."""
    directory = workdir(tmp_path)
    with served_with_clock(directory, fixed(datetime(3000, 1, 1, tzinfo=UTC))) as port:
        outcome = run_readme(directory, port, dated=True)

    [opened, partial] = outcome.failures
    assert '"status":"overdue"' in opened and '"status": "open"' in opened
    assert '"status":"overdue"' in partial and '"status": "partial"' in partial


# --- the matching rule, on its own -----------------------------------------------------------


@pytest.mark.parametrize(
    ("shown", "output"),
    [
        ('{"id": 1, ..., "status": "open", ...}', '{"id":1,"a":2,"status":"open","b":[3]}'),
        ('{"id": 1, ..., "status": "open", ...}', '{"id":1,"status":"open"}'),
        ('{"code": "090", ...}', '{"code":"090"}'),
        ('[{"notes": "Wire transfer", ...}]', '[{"notes":"Wire transfer","x":null}]'),
        ("<payment><amount>5</amount> ... </payment>", '<?xml version="1.0"?>\n<payment>\n'
         "  <amount>5</amount>\n  <id>1</id>\n</payment>\n"),
        ("201 Created, Location: /p/3, Replayed: true", "HTTP/1.1 201 Created\r\nLocation: /p/3"
         "\r\nReplayed: true\r\n\r\n<x/>"),
        ("201 Created, Location: /p/...\nX-Warn: a; b", "HTTP/1.1 201 Created\r\n"
         "Location: /p/9\r\nX-Warn: a; b\r\n\r\n"),
        ("scrypt$16384$...", "scrypt$16384$8$1$abc==$def=\n"),
    ],
)  # fmt: skip
def test_what_is_shown_matches_what_is_printed(shown: str, output: str) -> None:
    assert problems(shown, output) == []


@pytest.mark.parametrize(
    ("shown", "output", "problem"),
    [
        ('{"status": "open", ...}', '{"status":"overdue","id":1}', "body"),
        ('{"id": 1, "status": "open"}', '{"id":1,"status":"open","more":2}', "body"),
        ('{"notes": "Wire transfer"}', '{"notes":"Wiretransfer"}', "body"),
        ("201 Created, Location: /p/2", "HTTP/1.1 201 Created\r\nLocation: /p/3\r\n\r\n",
         "header Location"),
        ("201 Created, Replayed: true", "HTTP/1.1 201 Created\r\n\r\n", "header Replayed"),
        ("201 Created", "HTTP/1.1 200 OK\r\n\r\n", "status 200"),
        ("201 Created", '{"id":1}', "prints none"),
    ],
)  # fmt: skip
def test_what_differs_from_what_is_shown_is_named(shown: str, output: str, problem: str) -> None:
    [found] = problems(shown, output)
    assert problem in found
