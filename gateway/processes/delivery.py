"""The delivery process (`events.deliveries: process`): every subscription's delivery and
relay loops, run off the processes that serve requests.

The supervisor (gateway/processes/workers.py) forks it beside the serving workers and
replaces it when it dies, as it replaces a worker; it runs at a lower CPU priority
(`events.delivery_nice`), so that a busy machine serves requests first and delivers
with the CPU left. The serving workers write the events (and answer the admin API's
reads of delivery state from the database) but run no loop. Everything a delivery needs
across processes is in the database already: a delivery claimed by a delivery process
that dies is sent again by the next one once its lease ends.

The events are committed by other processes, so the loops learn of them from the
database: on PostgreSQL from the workers' NOTIFY (the store listens); on SQLite by
reading `data_version` every `COMMIT_POLL_SECONDS`, a number that moves only when
another process commits, each move waking every loop once (a loop that finds nothing
owed only reads). SIGHUP rereads the configuration and restarts the loops over its
subscriptions; SIGTERM or SIGINT stops them (a delivery cut off in flight is sent again
once its lease ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from gateway.config import Config, ConfigError, mask_url
from gateway.events.webhooks import Deliveries
from gateway.observability.logs import event
from gateway.store import SQLiteStore, open_store

log = logging.getLogger("gateway")

# How often the SQLite delivery process looks for other processes' commits: the longest
# an event waits before its loops are woken (PostgreSQL's NOTIFY wakes them at once).
COMMIT_POLL_SECONDS = 0.05


async def deliver(reread: Callable[[], Config], path: str | Path) -> None:
    """Run every subscription's loops until SIGTERM or SIGINT, reloading on SIGHUP."""
    config = reread()
    store = open_store(
        config.database,
        synchronous=config.sqlite_synchronous,
        pool_size=config.database_pool_size,
        acquire_timeout=config.database_acquire_timeout_seconds,
        statement_cache_size=config.database_statement_cache_size,
    )
    await store.open()
    deliveries = Deliveries(store, config)
    following: asyncio.Task[None] | None = None
    try:
        await deliveries.open()
        deliveries.start()
        if isinstance(store, SQLiteStore):
            following = asyncio.create_task(_follow(store))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        reloads: set[asyncio.Task[None]] = set()

        def on_hangup() -> None:
            reloads.add(task := loop.create_task(_reload(deliveries, reread, path)))
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        event(
            "delivering",
            subscriptions=len(deliveries.hooks()),
            database=mask_url(config.database),
        )
        await stop.wait()
    finally:
        if following is not None:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
        await deliveries.close()
        await store.close()
    event("delivery_stopped")


async def _follow(store: SQLiteStore) -> None:
    """Wake every loop when another process has committed (new events, a replay, ...)."""
    seen = await store.data_version()
    while True:
        await asyncio.sleep(COMMIT_POLL_SECONDS)
        try:
            now = await store.data_version()
        except Exception:  # the database busy or away: the loops' own poll still runs
            log.debug("reading the database's data_version failed", exc_info=True)
            continue
        if now != seen:
            seen = now
            store.notices.tell_all()


async def _reload(deliveries: Deliveries, reread: Callable[[], Config], path: str | Path) -> None:
    """SIGHUP: the loops restart over the reread file's subscriptions (its database and
    where deliveries run wait for a restart); a file that cannot be used changes nothing."""
    try:
        config = reread()
    except (ConfigError, ValueError) as exc:
        event("config_reload_refused", logging.ERROR, path=str(path), reason=str(exc))
        return
    current = deliveries.config
    events = config.events.model_copy(
        update={
            "deliveries": current.events.deliveries,
            "delivery_nice": current.events.delivery_nice,
        }
    )
    config = config.model_copy(update={"database": current.database, "events": events})
    await deliveries.reconfigure(config)
    event("config_reloaded", path=str(path), tenants=len(config.tenants), process="delivery")
