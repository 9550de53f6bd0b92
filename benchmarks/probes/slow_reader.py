"""A slow reader's hold: how long the gateway keeps a connection whose client pipelines
requests and never reads an answer, and how many bytes of answers it queued for it.

One client on loopback sends `GET /gateway/v1/openapi/admin.json` (about 58 KB an
answer, no credentials needed) as fast as the server takes requests, and reads
nothing. Every 50 ms the script reads, from /proc/net/tcp, the server's end of that
connection: the bytes in its kernel send queue, and whether it still exists; the
client's own socket says how many answer bytes reached it unread. The hold ends when
the server's end is gone (the gateway aborted it) or at `--limit` seconds.

    python -m benchmarks.probes.slow_reader                       # this tree, default settings
    python -m benchmarks.probes.slow_reader --write-timeout 2
    python -m benchmarks.probes.slow_reader --checkout ../other --limit 120   # another tree
"""

from __future__ import annotations

import argparse
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import bench_config, gateway_server
from benchmarks.wrk import rss_mb
from tests.security.harness import server_end, unread

_REQUEST = b"GET /gateway/v1/openapi/admin.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
_SAMPLE = 0.05


@dataclass
class Hold:
    seconds: float
    released: bool  # the server closed its end (else the limit ended the run)
    requests_sent: int
    server_queued_peak: int  # bytes in the server's kernel send queue, at most
    client_unread: int  # answer bytes that reached the client's socket, unread
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float

    def lines(self, label: str) -> list[str]:
        held = f"{self.seconds:.1f} s" + ("" if self.released else " (still held: --limit)")
        return [
            f"{label}: held {held}; {self.requests_sent} requests pipelined, none read",
            f"  server kernel send queue, peak: {self.server_queued_peak / 1024:.0f} KiB; "
            f"answers unread in the client's socket: {self.client_unread / 1024:.0f} KiB",
            f"  server RSS: {self.rss_before_mb:.1f} MB before, peak {self.rss_peak_mb:.1f} MB, "
            f"{self.rss_after_mb:.1f} MB after",
        ]


def hold(port: int, pid: int, limit: float) -> Hold:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    client_port = sock.getsockname()[1]
    rss_before = rss_peak = rss_mb(pid)
    sent = queued_peak = client_unread = 0
    started = time.monotonic()
    released = False
    next_sample = started
    try:
        while time.monotonic() - started < limit:
            try:
                sock.send(_REQUEST)  # a whole request fits, or nothing is taken
                sent += 1
            except BlockingIOError:
                time.sleep(0.005)  # the server reads no more requests: it is writing
            except OSError:
                pass  # reset: the sample below sees the server's end gone
            if time.monotonic() >= next_sample:
                next_sample += _SAMPLE
                queued = server_end(port, client_port)
                rss_peak = max(rss_peak, rss_mb(pid))
                if queued is None:
                    released = True
                    break
                queued_peak = max(queued_peak, queued)
                try:
                    client_unread = max(client_unread, unread(sock))
                except OSError:
                    pass
        seconds = time.monotonic() - started
    finally:
        sock.close()
    time.sleep(0.5)
    return Hold(seconds, released, sent, queued_peak, client_unread, rss_before, rss_peak,
                rss_mb(pid))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-timeout", type=float, help="server.write_timeout_seconds")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds to watch at most")
    parser.add_argument("--checkout", type=Path, help="run the gateway of this source tree")
    args = parser.parse_args()
    server = {"access_log": False}
    if args.write_timeout is not None:
        server["write_timeout_seconds"] = args.write_timeout
    config = bench_config(server=server)
    with gateway_server(config, checkout=args.checkout) as (base, process):
        port = int(base.rsplit(":", 1)[1])
        found = hold(port, process.pid, args.limit)
    label = f"write_timeout_seconds={args.write_timeout or 'default'}"
    print("\n".join(found.lines(label)))


if __name__ == "__main__":
    main()
