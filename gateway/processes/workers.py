"""Many processes on one port: a supervising parent forks workers that serve it.

The parent takes the port (`Listener`: it binds and listens) and forks N workers that
each serve it with their own event loop, all accepting from that one socket by turns:
a worker takes a new connection while no other holds fewer open connections, as
counted in a table the parent shares with them (gateway.balance, gateway.accept).
The parent then only watches: SIGTERM or SIGINT is passed on to every worker, which
stops accepting and finishes the requests in flight before it exits. The workers
count their metrics in one directory the parent makes, so a scrape of any worker
covers them all. A worker that dies otherwise (a crash, kill -9) is logged, its slot
in the table cleared, and it is replaced; if workers keep dying (more than twice N
times within a minute, e.g. a crash at start), the parent stops the rest and exits 1.
Nothing that must be shared lives in a worker's memory: see the README.

With `events.deliveries: process` the parent also forks one delivery process
(gateway/processes/delivery.py) at a lower CPU priority, which runs every delivery and
relay loop while the workers only serve; it gets the same signals, is replaced the same
way when it dies, and counts towards the same limit of deaths.
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

from gateway.observability import metrics
from gateway.processes.accept import Seat
from gateway.processes.balance import Table

log = logging.getLogger("gateway")

_DEATH_WINDOW = 60.0
_PR_SET_PDEATHSIG = 1


_BACKLOG = 1024
# The delivery process's place among the children (the workers' slots are 0 to N-1).
DELIVERY = -1


class Listener:
    """The port the workers serve, and the table of who holds how many connections on it.

    The parent binds and listens before it forks (so `--port 0` is resolved and a port
    in use fails at start-up); connections queue there until a worker accepts them,
    and those queued when a worker stops accepting stay for the others.
    """

    def __init__(self, host: str, port: int, count: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(_BACKLOG)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)  # every worker accepts until the queue is empty
        self.port: int = self.sock.getsockname()[1]
        self.table = Table(count)

    def seat(self, slot: int) -> Seat:
        """What the worker in `slot` accepts with."""
        return Seat(self.sock, self.table, slot)


class Supervisor:
    """Keeps `count` workers running `serve` until told to stop."""

    def __init__(
        self,
        count: int,
        serve: Callable[[int], int],
        table: Table,
        deliver: Callable[[], int] | None = None,
        nice: int = 0,
    ) -> None:
        """`serve(slot)` runs in each worker; `table` is where the workers count;
        `deliver()`, if given, runs in one more process, at CPU priority `nice` (os.nice)."""
        self.count = count
        self.serve = serve
        self.table = table
        self.deliver = deliver
        self.nice = nice
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
            if self.deliver is not None:
                self._spawn(DELIVERY)
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
            slot = self.workers.pop(pid, None)
            if slot is not None and slot >= 0:
                self.table.clear(slot)
            if slot is not None and not self.stopping:
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
                if slot == DELIVERY and self.deliver is not None:
                    os.nice(self.nice)
                    code = self.deliver()
                else:
                    code = self.serve(slot)
            except BaseException:
                log.exception("%s failed", _name(slot))
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = slot
        log.info("%s started (pid %d)", _name(slot), pid)

    def _replace(self, slot: int, pid: int, status: int) -> None:
        log.error("%s (pid %d) died: %s", _name(slot), pid, _describe(status))
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < _DEATH_WINDOW] + [now]
        if len(self.deaths) > 2 * (self.count + (self.deliver is not None)):
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


def _name(slot: int) -> str:
    return "delivery process" if slot == DELIVERY else f"worker {slot}"


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
