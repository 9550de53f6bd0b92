"""Memory with many idle keep-alive connections: each has made one request and waits."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

from benchmarks.wrk import rss_mb

_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"


def rss_with_idle(base: str, pid: int, count: int) -> tuple[float, float]:
    """The server's RSS in MB before, and while `count` kept-alive connections sit idle.

    Each connection is opened, makes one request and reads its answer, then is left
    open; the measure is taken a second after the last one, well inside the server's
    keep-alive timeout.
    """
    host, port = base.removeprefix("http://").rsplit(":", 1)
    before = rss_mb(pid)
    with ExitStack() as stack:
        for _ in range(count):
            conn = stack.enter_context(socket.create_connection((host, int(port)), timeout=10))
            conn.sendall(_REQUEST)
            _read_answer(conn)
        time.sleep(1)
        during = rss_mb(pid)
    return before, during


def _read_answer(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise RuntimeError("the server closed an idle-test connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(4096)
