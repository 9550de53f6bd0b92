"""The gateway as an operator runs it: version, options, start-up failures, HUP and TERM."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.__main__ import _parser

from ..http.server import ADMIN_TOKEN, Server, running, write_config
from .test_command_line import assert_clean_failure, gateway

JSON_LOGS = ("serve", "--log-format", "json")


def log_lines(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def events(server: Server, name: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(server) if line["event"] == name]


def test_version_names_the_package_and_its_version() -> None:
    result = gateway("--version")

    assert result.returncode == 0
    assert result.stdout.decode().strip() == "invoice-gateway 0.1.0"


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "9000", "--config", "c.yaml"],
        ["--port", "9000", "--config", "c.yaml"],
        ["--port", "9000", "serve", "--config", "c.yaml"],
        ["--config", "c.yaml", "--port", "1", "serve", "--port", "9000"],
    ],
)
def test_serve_options_may_come_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = _parser().parse_args(argv)

    assert (args.port, args.config, args.log_format) == (9000, "c.yaml", "text")


def test_server_options_after_the_subcommand_start_a_server(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log", JSON_LOGS) as server:
        server.wait_ready()
        assert events(server, "listening")[0]["address"] == server.url


def _clean_failure(*args: str, cwd: Path | None = None) -> str:
    stderr = assert_clean_failure(gateway(*args, cwd=cwd), 2)
    assert stderr.count("\n") == 1, stderr
    return stderr


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one", "workers"])
def test_a_port_in_use_is_one_line_naming_the_address(
    tmp_path: Path, workers: tuple[str, ...]
) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stderr = _clean_failure(
            "serve", "--config", str(config), "--port", str(port),
            "--database", f"sqlite:///{tmp_path / 'x.db'}", *workers,
        )  # fmt: skip

    assert stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_a_database_path_that_cannot_be_made_names_the_path(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "plain-file").write_text("not a directory")
    database = f"sqlite:///{tmp_path / 'plain-file' / 'x.db'}"

    stderr = _clean_failure("serve", "--config", str(config), "--port", "0", "--database", database)

    path = tmp_path / "plain-file" / "x.db"
    assert stderr.startswith(f"error: cannot open the database {path}: ")


def test_an_unsupported_database_url_is_refused_with_its_password_masked(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    stderr = _clean_failure(
        "serve", "--config", str(config), "--database", "mysql://gw:hunter2@db.example/pay"
    )

    assert "hunter2" not in stderr
    assert stderr.startswith("error: unsupported database URL 'mysql://gw:***@db.example/pay'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("admin_token: x\ntenants: {}\nserver: {port: abc}\n", "config.yaml: server.port: "),
        ("admin_token: x\ntenants: [\n", "config.yaml is not valid YAML: line 3, column 1: "),
        (
            "admin_token: x\ntenants: {t: {backend: {dialect: invoiless, api_key: k,"
            " url: 'ftp://u:pw@h'}}}\n",
            "tenants.t.backend.invoiless: Value error, url 'ftp://u:***@h' must be an http(s) URL",
        ),
    ],
)
def test_a_config_error_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")

    stderr = _clean_failure("serve", "--config", "config.yaml", cwd=tmp_path)

    assert expected in stderr
    assert ":pw@" not in stderr


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_server_header_names_no_versions(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log") as server:
        server.wait_ready()
        answered = _raw(
            server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        refused = _raw(server.port, b"NOT-HTTP\r\n\r\n")

    assert answered.startswith(b"HTTP/1.1 200 ") and refused.startswith(b"HTTP/1.0 400 ")
    for answer in (answered, refused):
        headers = answer.split(b"\r\n\r\n")[0].lower() + b"\r\n"
        assert b"\r\nserver: invoice-gateway\r\n" in headers, answer
        assert b"python" not in headers and b"aiohttp" not in headers


def _invoiless_status(connection: http.client.HTTPConnection, key: str) -> int:
    connection.request("GET", "/v1/invoices/1/payments", headers={"api-key": key})
    response = connection.getresponse()
    response.read()
    return response.status


def _rewrite(config: Path, key: str | None) -> None:
    if key is None:
        config.write_text("tenants: [\n", encoding="utf-8")
        return
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["tenants"]["acme"]["invoiless"]["keys"][0]["key"] = key
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")


def test_sighup_reloads_credentials_and_keeps_connections_open(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log", JSON_LOGS) as server:
        server.wait_ready()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert _invoiless_status(connection, "acme-invoiless") == 404
        sock = connection.sock

        _rewrite(config, "acme-invoiless-rotated")
        mark = len(server.output())
        server.process.send_signal(signal.SIGHUP)
        server.wait_for('"config_reloaded"', mark)

        assert _invoiless_status(connection, "acme-invoiless") == 401
        assert _invoiless_status(connection, "acme-invoiless-rotated") == 404
        assert connection.sock is sock  # the same kept-alive connection throughout
        connection.close()


def test_sighup_with_a_bad_file_keeps_the_old_config(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log", JSON_LOGS) as server:
        server.wait_ready()
        _rewrite(config, None)
        server.process.send_signal(signal.SIGHUP)
        server.wait_for('"config_reload_refused"')
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

        assert _invoiless_status(connection, "acme-invoiless") == 404
        refused = events(server, "config_reload_refused")[0]
        assert refused["level"] == "error"
        assert "is not valid YAML" in refused["reason"]
        connection.close()


def _in_flight(server: Server, count: int) -> None:
    """Wait (bounded) until the gateway's metrics show `count` requests being served."""
    request = urllib.request.Request(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        if f"gateway_requests_in_flight {float(count)}" in text:
            return
    raise AssertionError(f"never {count} requests in flight:\n{text}")


async def test_sigterm_drains_a_request_in_flight_and_logs_the_outcome(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    server = Server(config, tmp_path / "x.db", tmp_path / "x.log", args=JSON_LOGS)
    try:
        server.wait_ready()
        body = json.dumps(
            {"tenant": "acme", "number": "DRAIN-1", "currency": "EUR", "total": "10.00",
             "issued_on": "2026-01-01", "due_on": "2026-02-01"}
        ).encode()  # fmt: skip
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /gateway/v1/invoices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        await asyncio.to_thread(_in_flight, server, 2)  # the upload and the scrape asking

        server.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait_for, '"draining"')
        writer.write(body[10:])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()

        assert answer.startswith(b"HTTP/1.1 201 "), answer
        assert await asyncio.to_thread(server.process.wait, 10) == 0
        assert events(server, "draining")[0]["in_flight"] == 1
        assert events(server, "drained")[0]["finished"] == 1
    finally:
        server.stop()
