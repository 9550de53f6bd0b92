"""The application's typed state keys and the Gateway that holds what handlers share."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.access.auth import Authenticator
from gateway.access.limits import RateLimiter
from gateway.config import Config
from gateway.events.webhooks import Deliveries
from gateway.ledger.contract import PaymentService
from gateway.ledger.events import Feed
from gateway.ledger.idempotency import Keys
from gateway.ledger.rules import Ledger
from gateway.proxy.service import ProxyService
from gateway.store import Store


@dataclass
class Gateway:
    """Everything a request may need: config, auth, store, and each tenant's payment service."""

    config: Config
    auth: Authenticator
    store: Store
    ledger: Ledger
    limits: RateLimiter
    keys: Keys
    feed: Feed
    deliveries: Deliveries
    proxies: dict[str, ProxyService] = field(default_factory=dict)

    def service(self, tenant: str) -> PaymentService:
        """The tenant's system of record: its upstream in proxy mode, else the ledger."""
        return self.proxies.get(tenant) or self.ledger


@dataclass
class Traffic:
    """Requests being served, and, once a drain began, how the rest of them ended."""

    in_flight: int = 0
    draining: bool = False
    drained: int = 0
    cut: int = 0


GATEWAY = web.AppKey("gateway", Gateway)
TRAFFIC = web.AppKey("traffic", Traffic)
FORMAT = web.RequestKey("format", str)
