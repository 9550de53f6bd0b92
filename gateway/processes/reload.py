"""Reloading tenants, credentials and limits from the config file into a running gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from gateway.access.auth import Authenticator
from gateway.access.limits import per_tenant
from gateway.config import Config, ConfigError
from gateway.observability.logs import event
from gateway.proxy.service import ProxyService
from gateway.proxy.upstream import UpstreamClient
from gateway.serving.state import Gateway

# What a reload cannot change: the listening socket, the store, the request limits the
# application was built with. Changed in the file, they wait for a restart.
_RESTART_ONLY = ("database", "sqlite_synchronous")


async def reload(gateway: Gateway, reread: Callable[[], Config], path: str | Path) -> bool:
    """Apply what `reread` reads from `path`; a file that cannot be used changes nothing.

    Requests in flight finish with what they started with; the next ones see the new
    tenants, credentials and limits. Connections stay open.
    """
    try:
        config = reread()
        auth = Authenticator(config, previous=gateway.auth)
    except (ConfigError, ValueError) as exc:
        event("config_reload_refused", logging.ERROR, path=str(path), reason=str(exc))
        return False
    current = gateway.config
    pending = [name for name in _RESTART_ONLY if getattr(config, name) != getattr(current, name)]
    limits = ("auth_failures", "auth_address_failures", "auth_global_failures", "translate_rate")
    server = current.server.model_copy(update={n: getattr(config.server, n) for n in limits})
    if server != config.server:
        pending.append("server")
    config = config.model_copy(update={**{n: getattr(current, n) for n in _RESTART_ONLY}})
    placed = {n: getattr(current.events, n) for n in ("deliveries", "delivery_nice")}
    if placed != {n: getattr(config.events, n) for n in placed}:  # where deliveries run
        pending.append("events.deliveries")
        config = config.model_copy(update={"events": config.events.model_copy(update=placed)})
    config = config.model_copy(update={"server": server})
    proxies, retired = await _proxies(gateway, config)
    gateway.config, gateway.auth, gateway.proxies = config, auth, proxies
    await gateway.deliveries.reconfigure(config)
    gateway.limits.reconfigure(
        per_tenant(config),
        server.auth_failures,
        server.auth_address_failures,
        server.auth_global_failures,
        server.translate_rate,
    )
    event("config_reloaded", path=str(path), tenants=len(config.tenants))
    if pending:
        event("config_needs_restart", logging.WARNING, path=str(path), sections=",".join(pending))
    _close_later(retired)
    return True


async def _proxies(
    gateway: Gateway, config: Config
) -> tuple[dict[str, ProxyService], list[ProxyService]]:
    """Each proxy tenant's backend: kept when its settings did not change, else new."""
    proxies: dict[str, ProxyService] = {}
    for name, tenant in config.tenants.items():
        if tenant.backend is None:
            continue
        old = gateway.proxies.get(name)
        if old is not None and old.client.config == tenant.backend:
            proxies[name] = old
            continue
        proxy = ProxyService(name, UpstreamClient(tenant.backend), gateway.store)
        await proxy.client.open()
        proxies[name] = proxy
    kept = {id(p) for p in proxies.values()}
    return proxies, [p for p in gateway.proxies.values() if id(p) not in kept]


def _close_later(retired: list[ProxyService]) -> None:
    """Close replaced backends' sessions once the calls they may still carry are over."""
    if not retired:
        return
    grace = max(p.client.config.timeout * (p.client.config.retries + 1) for p in retired)

    async def close() -> None:
        await asyncio.sleep(grace)
        for proxy in retired:
            await proxy.client.close()

    _CLOSING.add(task := asyncio.get_running_loop().create_task(close()))
    task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()
