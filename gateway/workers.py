"""Many processes on one port: a supervising parent forks workers that listen on it.

The parent takes the port (`Listener`) and forks N workers that each serve it with
their own event loop. On Linux each worker listens on a socket of its own bound with
SO_REUSEPORT, and the kernel hashes each new connection to one of them, whichever
worker wakes first; elsewhere the workers accept on the parent's one listening socket.
The parent then only watches: SIGTERM or SIGINT is passed on to every worker, which
stops accepting and finishes the requests in flight before it exits. The workers count their metrics in
one directory the parent makes, so a scrape of any worker covers them all. A worker that dies otherwise (a
crash, kill -9) is logged and replaced; if workers keep dying (more than twice N
times within a minute, e.g. a crash at start), the parent stops the rest and exits 1.
Nothing that must be shared lives in a worker's memory: see the README.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

from . import metrics

log = logging.getLogger("gateway")

_DEATH_WINDOW = 60.0
_PR_SET_PDEATHSIG = 1


_BACKLOG = 1024
# Linux balances new connections across the listening sockets of a SO_REUSEPORT group;
# other systems either lack the option or hand every connection to one socket.
BALANCED = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class Listener:
    """The port the workers serve: taken by the parent, listened on by each worker.

    Balanced (Linux), the parent binds a SO_REUSEPORT socket it never listens on: it
    resolves `--port 0`, fails fast on a port in use, and keeps the port while workers
    come and go, but a socket that does not listen gets no connections. Each worker
    then listens on a socket of its own (`socket()`), bound to the same address.
    Otherwise the parent listens, and every worker accepts on that one socket.
    """

    def __init__(self, host: str, port: int, balanced: bool = BALANCED) -> None:
        self.host = host
        self.balanced = balanced
        self.held = _bind(host, port, reuse_port=balanced)
        self.port: int = self.held.getsockname()[1]
        try:
            if balanced:
                _bind(host, self.port).close()  # refused while anyone listens on the port
            else:
                self.held.listen(_BACKLOG)
        except OSError:
            self.held.close()
            raise

    def socket(self) -> socket.socket:
        """The listening socket for the worker calling this."""
        if not self.balanced:
            return self.held
        sock = _bind(self.host, self.port, reuse_port=True)
        sock.listen(_BACKLOG)
        return sock


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    """Keeps `count` workers running `serve` until told to stop."""

    def __init__(self, count: int, serve: Callable[[], int]) -> None:
        self.count = count
        self.serve = serve
        self.workers: dict[int, int] = {}  # pid: slot
        self.deaths: list[float] = []
        self.stopping = False
        self.status = 0

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)
        shared = metrics.prepare_workers()
        try:
            for slot in range(self.count):
                self._spawn(slot)
            self._watch()
        finally:
            shutil.rmtree(shared, ignore_errors=True)
        log.info("all workers stopped")
        return self.status

    def _watch(self) -> None:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            metrics.worker_exited(pid)
            slot = self.workers.pop(pid, -1)
            if slot >= 0 and not self.stopping:
                self._replace(slot, pid, status)

    def _spawn(self, slot: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                _die_with(parent)
                code = self.serve()
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = slot
        log.info("worker %d started (pid %d)", slot, pid)

    def _replace(self, slot: int, pid: int, status: int) -> None:
        log.error("worker %d (pid %d) died: %s", slot, pid, _describe(status))
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < _DEATH_WINDOW] + [now]
        if len(self.deaths) > 2 * self.count:
            log.error("workers keep dying: stopping the gateway")
            self.status = 1
            self._stop(signal.SIGTERM, None)
            return
        self._spawn(slot)

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        """SIGHUP: each worker re-reads the configuration."""
        self._signal(signal.SIGHUP)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self._signal(signal.SIGTERM)

    def _signal(self, number: int) -> None:
        for pid in self.workers:
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _die_with(parent: int) -> None:
    """A worker outlives no parent (even one killed by SIGKILL): it is sent SIGTERM."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
