"""Idempotency keys of proxied writes: sent, then answered, or unknown.

A write under a key is marked sent before it goes out, so no retry sends it again;
answered, the key keeps the answer; sent but never answered (or answered with
something unreadable), its outcome is unknown and the key is held so (504) until it
expires or an operator resolves it. A write refused before or by the backend frees
its key for a retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence

from dialects.errors import Conflict, GatewayError, UpstreamTimeout
from dialects.model import Payment
from gateway.ledger.idempotency import OUTCOME_UNKNOWN
from gateway.proxy.upstream import Answer, unanswered
from gateway.store import KeyState, Seal, Store, Written


class KeyStates:
    """The key states of one tenant's proxied writes, kept in the store."""

    def __init__(self, store: Store, tenant: str, header: str | None) -> None:
        self.store = store
        self.tenant = tenant
        self.header = header  # the backend's own idempotency header, if it takes one

    def forwarded(self, key: str) -> dict[str, str]:
        """The key for a backend that takes one: derived from tenant and key, so tenants
        sharing one backend account never share a key there."""
        if self.header is None:
            return {}
        return {self.header: hashlib.sha256(f"{self.tenant}\0{key}".encode()).hexdigest()}

    async def send(
        self, seal: Seal | None, call: Callable[[str | None], Awaitable[Answer]]
    ) -> Answer:
        """`call` (given the key to forward, if any); with a key, marked sent first, and
        unknown if it went out and was never answered."""
        if seal is None:
            return await call(None)
        if not await self.store.set_key_state(seal.tenant, seal.key, seal.owner, KeyState.SENT):
            raise Conflict("The request's Idempotency-Key was taken over by a retry")
        try:
            return await call(seal.key)
        except GatewayError as exc:
            if not unanswered(exc):
                raise  # never sent, or refused by the backend: the key is freed for a retry
            raise await self.unknown(seal) from exc

    async def settle(
        self, seal: Seal | None, read: Awaitable[list[Payment]], warnings: tuple[str, ...]
    ) -> list[Payment]:
        """The backend's answer read back; with a key, stored as the key's answer."""
        if seal is None:
            return await read
        try:
            payments = await read
        except GatewayError as exc:  # the backend acted; what it did cannot be told
            raise await self.unknown(seal) from exc
        await self.keep(seal, payments[:1] or [None], warnings)
        return payments

    async def keep(
        self, seal: Seal, written: Sequence[Written], warnings: tuple[str, ...] = ()
    ) -> None:
        """Complete the key with the answer to what was written (or refused)."""
        seal.close(written, warnings)
        await self.store.complete_key(seal)

    async def unknown(self, seal: Seal) -> GatewayError:
        """Hold the key as unknown; the error the caller is answered."""
        await self.store.set_key_state(seal.tenant, seal.key, seal.owner, KeyState.UNKNOWN)
        return UpstreamTimeout(OUTCOME_UNKNOWN)
