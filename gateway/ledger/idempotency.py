"""Idempotency keys: a keyed write's effect and answer happen once, across retries and processes.

A request carrying `Idempotency-Key` first claims the key in the store (a reservation
with an owner and a lease, visible to every process on the database); its write then
stores the answer with the effect, in one transaction. A retry with the same key and
the same request gets that answer again, byte for byte, with `Idempotent-Replayed:
true`; another request with the key is refused 422; one while the first still runs, 409.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from multidict import CIMultiDictProxy

from dialects import Reply
from dialects.errors import BadRequest, Conflict, GatewayError, KeyReused, UpstreamTimeout
from dialects.model import InvoiceFacts
from gateway.config import Idempotency
from gateway.ledger.contract import Principal
from gateway.store import KeyClaim, KeyRecord, KeyState, Seal, Store, Written

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
IN_FLIGHT = "A request with this Idempotency-Key is still in progress; retry later"
OUTCOME_UNKNOWN = (
    "The backend's outcome for this Idempotency-Key is unknown; it is held until it"
    " expires or an operator resolves it"
)

Clock = Callable[[], datetime]
Answer = Callable[[Sequence[Written], tuple[str, ...], Mapping[int, InvoiceFacts]], Reply]

log = logging.getLogger("gateway.idempotency")


def utc_now() -> datetime:
    return datetime.now(UTC)


def key_of(headers: CIMultiDictProxy[str]) -> str | None:
    """The request's key (None without the header); 400 if empty, over-long, repeated or
    not printable.

    The draft's Structured Field form (a quoted string) and a bare token are both taken.
    """
    values = headers.getall(HEADER, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"Send one {HEADER} header")
    key = values[0].strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise BadRequest(f"{HEADER} must not be empty")
    if len(key) > MAX_LENGTH:
        raise BadRequest(f"{HEADER} must be at most {MAX_LENGTH} characters")
    if not holdable(key):
        raise BadRequest(f"{HEADER} must be printable text")
    return key


def holdable(text: str) -> bool:
    """Whether a store can hold `text` as a key: printable (no NUL, control character or
    undecodable byte, which PostgreSQL's text refuses)."""
    return text.isprintable()


def fingerprint(who: Principal, method: str, path: str, body: bytes) -> str:
    """What makes two requests the same: tenant, credential, method, path and body."""
    digest = hashlib.sha256()
    for part in (who.tenant, who.dialect, who.credential, method, path):
        data = part.encode("utf-8", "surrogateescape")
        digest.update(len(data).to_bytes(4, "big") + data)
    digest.update(body)
    return digest.hexdigest()


def refusal(held: KeyRecord, claimed: str, now: datetime) -> GatewayError:
    """Why a key held by another request cannot be used by this one."""
    if held.fingerprint != claimed:
        return KeyReused(f"{HEADER} was already used for another request")
    if held.state is KeyState.UNKNOWN or (held.state is KeyState.SENT and held.lease_until <= now):
        return UpstreamTimeout(OUTCOME_UNKNOWN)
    return Conflict(IN_FLIGHT, retry_after=1)


class Keys:
    """Claims, releases and purges keys for one process; each request is its own owner."""

    def __init__(self, store: Store, settings: Idempotency, clock: Clock = utc_now) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._process = f"{socket.gethostname()}/{os.getpid()}/{os.urandom(4).hex()}"
        self._requests = itertools.count(1)

    async def hold(self, who: Principal, key: str, claimed: str, answer: Answer) -> Seal | Reply:
        """A seal for this request to complete, or the stored answer to replay."""
        now = self.clock()
        owner = f"{self._process}/{next(self._requests)}"
        claim = KeyClaim(
            tenant=who.tenant,
            key=key,
            fingerprint=claimed,
            owner=owner,
            now=now,
            lease_until=now + timedelta(seconds=self.settings.lease_seconds),
            expires_at=now + timedelta(seconds=self.settings.ttl_seconds),
        )
        held = await self.store.claim_key(claim)
        if held is None:
            return Seal(who.tenant, key, owner, answer)
        if held.state is KeyState.DONE and held.fingerprint == claimed:
            assert held.answer is not None
            return held.answer
        raise refusal(held, claimed, now)

    async def release(self, seal: Seal) -> None:
        """Free the key of a request that failed before any effect (best effort: if the
        store is unreachable, the lease runs out instead)."""
        try:
            await self.store.release_key(seal.tenant, seal.key, seal.owner)
        except Exception:
            log.warning("could not release Idempotency-Key of tenant %s", seal.tenant)

    async def purge(self) -> int:
        """Delete expired keys, one small batch (one short transaction) at a time."""
        total = 0
        while True:
            deleted = await self.store.purge_keys(self.clock(), self.settings.purge_batch)
            total += deleted
            if deleted < self.settings.purge_batch:
                return total
            await asyncio.sleep(0)  # requests queued meanwhile go first

    async def purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.purge_interval_seconds)
            try:
                await self.purge()
            except Exception:
                log.warning("purging expired Idempotency-Keys failed; trying again later")
