"""Start-up refusals as an operator meets them: one line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import SHIPPED_SECRETS, load, parse

from ..http.server import running, send, write_config
from .test_command_line import assert_clean_failure, gateway


def _one_line(result: subprocess.CompletedProcess[bytes], code: int = 2) -> str:
    stderr = assert_clean_failure(result, code)
    assert stderr.count("\n") == 1, stderr
    return stderr


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@127.0.0.1:99999/db", "postgresql://u:***@127.0.0.1:99999/db"),
        ("postgresql://u:pw@127.0.0.1:-1/db", "postgresql://u:***@127.0.0.1:-1/db"),
        ("postgresql://u:pw@[::1/db", "postgresql://***"),
    ],
)
def test_a_database_url_the_driver_cannot_use_is_one_line_with_the_password_masked(
    tmp_path: Path, url: str, masked: str
) -> None:
    config = write_config(tmp_path)

    stderr = _one_line(gateway("--config", str(config), "--database", url))

    assert stderr.startswith(f"error: database {masked}: "), stderr
    assert ":pw@" not in stderr


@pytest.mark.parametrize("host", ["999.1.1.1", "no-such-host.invalid"])
@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one", "workers"])
def test_an_address_that_is_no_address_says_so(
    tmp_path: Path, host: str, workers: tuple[str, ...]
) -> None:
    config = write_config(tmp_path)
    database = f"sqlite:///{tmp_path / 'x.db'}"

    stderr = _one_line(
        gateway("--config", str(config), "--host", host, "--database", database, *workers)
    )

    assert stderr.startswith(
        f"error: cannot listen on {host}:8080: {host!r} is neither an address of this machine"
        " nor a name it resolves ("
    ), stderr
    assert "Unknown error" not in stderr


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("--stdin",), b"", "error: empty secret\n"),
        (("--stdin",), b"\r\n", "error: empty secret\n"),
        ((), b"", "error: empty secret\n"),  # no terminal: stdin's first line
        (("--stdin",), b"\xff\xfe\n", "error: the secret is not UTF-8 text\n"),
    ],
)
def test_hash_secret_without_a_secret_is_one_line(
    args: tuple[str, ...], stdin: bytes, expected: str
) -> None:
    result = gateway("hash-secret", *args, stdin=stdin)

    assert _one_line(result) == expected


def test_hash_secret_reads_stdin_when_there_is_no_terminal() -> None:
    result = gateway("hash-secret", stdin=b"s3cret\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"scrypt$")


def test_an_unset_variable_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "admin_token: x\ntenants:\n  demo:\n    accounts:\n      - code: '1'\n"
        "      - code: ${GATEWAY_TEST_UNSET_CODE}\n",
        encoding="utf-8",
    )

    stderr = _one_line(gateway("--config", "config.yaml", cwd=tmp_path))

    assert stderr == (
        "error: config.yaml: tenants.demo.accounts.1.code: ${GATEWAY_TEST_UNSET_CODE} is not set\n"
    )


def test_ctrl_c_while_start_up_waits_for_the_database_exits_quietly(tmp_path: Path) -> None:
    """SIGINT at an observable point of start-up: the database connection is being opened."""
    config = write_config(tmp_path)
    with socket.socket() as database:  # a server that accepts and never answers
        database.bind(("127.0.0.1", 0))
        database.listen()
        database.settimeout(30)
        url = f"postgresql://u:pw@127.0.0.1:{database.getsockname()[1]}/db"
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--config", str(config), "--database", url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            connection, _ = database.accept()  # start-up is under way: it is connecting
            with connection:
                process.send_signal(signal.SIGINT)
                stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert process.returncode == 130, stderr
    assert (stdout, stderr) == (b"", b"")


ROOT = Path(__file__).resolve().parents[2]


def test_the_refused_values_are_the_ones_config_yaml_ships() -> None:
    shipped = load(ROOT / "config.yaml", environ={})

    assert {name: getattr(shipped, name) for name in SHIPPED_SECRETS} == SHIPPED_SECRETS


@pytest.mark.parametrize("name", sorted(SHIPPED_SECRETS))
def test_a_shipped_secret_outside_demo_mode_stops_start_up(tmp_path: Path, name: str) -> None:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw["demo"] = False
    own = {"admin_token": "own-admin-token", "token_secret": "own-token-secret"}
    raw.update({key: value for key, value in own.items() if key != name})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", "config.yaml"],
        cwd=tmp_path, env=env, capture_output=True, timeout=30, check=False,
    )  # fmt: skip

    assert _one_line(result) == (
        f"error: config.yaml: {name}: the value config.yaml ships, which anyone may read,"
        " is refused outside demo mode: set your own (or demo: true, for a gateway on your"
        " own machine)\n"
    )


def test_demo_mode_may_keep_the_shipped_secrets() -> None:
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw["demo"] = True
    raw.update(SHIPPED_SECRETS)

    assert parse(raw).admin_token == SHIPPED_SECRETS["admin_token"]


def test_a_crafted_path_writes_no_forged_line_in_the_text_log(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["server"]["access_log"] = True
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    forged = "/invoices/1%1b[2J%0d%0a2026-01-01T00:00:00.000Z%20INFO%20request%20status=200%07"
    with running(config, tmp_path / "x.db", tmp_path / "x.log") as server:
        server.wait_ready()
        assert send(server.port, "GET", forged).status in (401, 404)
        output = server.wait_for("2026-01-01T00:00:00.000Z")

    lines = output.splitlines()
    assert all(line.isprintable() for line in lines), lines
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in lines)
    assert (
        "path='/invoices/1\\x1b[2J\\r\\n2026-01-01T00:00:00.000Z INFO request status=200\\x07'"
        in (output)
    )
