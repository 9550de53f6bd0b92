"""One small client per registered dialect, speaking its wire form through its test support.

Each dialect's requests and readings come from its own package (`dialects.testing`);
responses are read with plain lxml / json, not with the gateway's own codecs, and
turned into a common view ({id, amount, notes, paid_on}) to compare across dialects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from lxml import etree

import dialects
from dialects import testing
from dialects.testing import Answer, Request, Support, View

__all__ = ["CLIENTS", "DialectClient", "Reply", "View"]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body)

    def answer(self) -> Answer:
        return Answer(self.status, self.headers, self.body)


class DialectClient:
    """A tenant's client in one dialect: create, list, get, delete in its own wire form."""

    def __init__(
        self,
        support: Support,
        client: TestClient[web.Request, web.Application],
        tenant: str = "acme",
    ) -> None:
        self.support = support
        self.name = support.name
        self.client = client
        self.tenant = tenant

    def auth(self) -> dict[str, str]:
        return self.support.credentials(self.tenant)

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        all_headers = {**self.auth(), **(headers or {})}
        async with self.client.request(method, path, data=body, headers=all_headers) as response:
            return Reply(response.status, await response.read(), dict(response.headers))

    async def send(self, request: Request) -> Reply:
        return await self.call(request.method, request.path, request.body, request.headers)

    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        request = self.support.create(self.tenant, invoice, amount, paid_on=paid_on, notes=notes)
        reply = await self.send(request)
        ok = reply.status == self.support.create_status
        created = self.support.created(reply.answer()) if ok else None
        return reply, created

    async def list(self, invoice: int) -> list[View]:
        reply = await self.send(self.support.listing(self.tenant, invoice))
        assert reply.status == 200, reply.body
        return self.support.views(reply.body)

    async def get(self, invoice: int, payment: int) -> View | None:
        request = self.support.get(self.tenant, invoice, payment)
        if request is None:  # no get-one: the payment is found in its invoice's list
            found = [item for item in await self.list(invoice) if item["id"] == payment]
            return found[0] if found else None
        reply = await self.send(request)
        return self.support.view(reply.body) if reply.status == 200 else None

    async def delete(self, invoice: int, payment: int) -> Reply:
        request = self.support.delete(self.tenant, invoice, payment)
        if request is None:
            raise NotImplementedError(f"{self.name} has no delete")
        return await self.send(request)


Factory = Callable[..., DialectClient]


class _Clients(Mapping[str, Factory]):
    """The registry's dialects: `CLIENTS[name](client, tenant)` makes that dialect's client."""

    def __getitem__(self, name: str) -> Factory:
        support = testing.support(name)
        return lambda *args, **kwargs: DialectClient(support, *args, **kwargs)

    def __iter__(self) -> Iterator[str]:
        return iter(dialects.units())

    def __len__(self) -> int:
        return len(dialects.units())


CLIENTS: Mapping[str, Factory] = _Clients()
