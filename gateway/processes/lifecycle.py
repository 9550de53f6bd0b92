"""The gateway as a process: start-up checks, signals (HUP reloads, TERM drains), exit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from gateway.config import Config, mask_url
from gateway.observability.logs import event
from gateway.processes.accept import Runner, Seat, SharedSite, WriteLimits
from gateway.processes.reload import reload
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY, TRAFFIC

DEMO_WARNING = """
************************************************************************
*  DEMO CREDENTIALS: this configuration uses the published demo        *
*  admin token and tenant secrets. Anyone can use them. Do not expose  *
*  this gateway beyond your own machine; set demo: false and your own  *
*  secrets (python -m gateway hash-secret) before real use.            *
************************************************************************"""


_DRAIN_POLL = 0.05
_CUT_GRACE = 1.0  # after the drain: how long a request still running has to be cut


class StartupError(Exception):
    """The gateway cannot start; the message is one line naming what and where."""


def _reason(exc: BaseException, secret: str | None) -> str:
    """One line saying why, with the database password (if it shows) masked."""
    if isinstance(exc, OSError) and exc.errno:
        text = os.strerror(exc.errno) + (f": {exc.filename}" if exc.filename else "")
    else:
        text = " ".join(str(exc).split()) or type(exc).__name__
    return text.replace(secret, "***") if secret else text


def database_failure(url: str, exc: BaseException) -> str:
    """Why the database at `url` cannot be used, on one line naming it (password masked)."""
    return f"database {mask_url(url)}: {_reason(exc, _password(url))}"


def listen_failure(host: str, port: int, exc: OSError) -> str:
    """Why the gateway cannot listen on host:port, on one line naming the address."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):  # its errno is a resolver code, not an OS error
        return (
            f"cannot listen on {where}: {host!r} is neither an address of this machine"
            f" nor a name it resolves ({exc.strerror})"
        )
    return f"cannot listen on {where}: {_reason(exc, None)}"


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


async def _start(config: Config, seat: Seat | None = None) -> tuple[web.AppRunner, web.BaseSite]:
    server = config.server
    try:  # with a delivery process of their own, the serving processes run no loop
        app = create_app(config, deliver=config.events.deliveries == "inline")
    except ValueError as exc:
        raise StartupError(database_failure(config.database, exc)) from None
    limits = WriteLimits(server.write_buffer_bytes, server.write_timeout_seconds)
    runner = Runner(app, limits, handle_signals=False, access_log=None, shutdown_timeout=_CUT_GRACE)
    try:
        await runner.setup()
    except Exception as exc:  # the store, whatever engine it is, cannot be opened
        raise StartupError(database_failure(config.database, exc)) from None
    site: web.BaseSite
    try:  # a --workers worker listens only now, once it can answer
        site = (
            SharedSite(runner, seat, server.accept_defer_seconds)
            if seat
            else web.TCPSite(runner, server.host, server.port)
        )
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(listen_failure(server.host, server.port, exc)) from None
    return runner, site


async def serve(
    reread: Callable[[], Config],
    path: str | Path,
    *,
    seat: Seat | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, reloading `path` on SIGHUP; then drain and stop.

    `reread` reads the config file (and applies the command line's overrides to it);
    `seat`: a --workers worker's share of the port (gateway.workers.Listener).
    """
    config = reread()
    runner, site = await _start(config, seat)
    gateway = runner.app[GATEWAY]
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def on_hangup() -> None:
        reloads.add(task := loop.create_task(reload(gateway, reread, path)))
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    event("listening", address=site.name, database=mask_url(config.database))
    if config.demo:
        logging.getLogger("gateway").warning(DEMO_WARNING)
    await stop.wait()
    await _drain(runner, site, config.server.drain_seconds)


async def _drain(runner: web.AppRunner, site: web.BaseSite, limit: float) -> None:
    """Stop listening, let requests in flight finish (bodies still arriving included),
    then close every connection; requests still running after `limit` seconds are cut."""
    traffic = runner.app[TRAFFIC]
    traffic.draining = True
    event("draining", in_flight=traffic.in_flight, limit_seconds=limit)
    started = time.monotonic()
    await site.stop()
    while traffic.in_flight and time.monotonic() - started < limit:
        await asyncio.sleep(_DRAIN_POLL)
    await runner.cleanup()
    seconds = round(time.monotonic() - started, 3)
    if traffic.cut:
        event("drain_incomplete", logging.WARNING, cut=traffic.cut, seconds=seconds)
    else:
        event("drained", finished=traffic.drained, seconds=seconds)
