"""Checking a presented secret against the one config.yaml stores, in constant time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

from gateway.config.hashes import MAX_MEMORY, PREFIX, is_hash
from gateway.observability import metrics

# A check takes 128 * r * N bytes (16 MiB here) and tens of milliseconds of CPU, on
# purpose. At most this many run at once, on threads of their own, so a flood of wrong
# secrets (from many addresses; limits.py slows any one of them) waits its turn rather
# than taking 16 MiB for each of the default executor's up to 32 threads.
_CONCURRENT_CHECKS = 2
_CHECKS = ThreadPoolExecutor(max_workers=_CONCURRENT_CHECKS, thread_name_prefix="scrypt")


async def verify(stored: str, presented: str) -> bool:
    """Whether `presented` matches `stored` (a hash, or a plain secret), in constant time.

    scrypt costs tens of milliseconds by design, so it runs off the event loop. Plain
    secrets are compared by their digests, so not even their lengths show in the time.
    Each check is counted by the form it took (`gateway_secret_checks_total`).
    """
    if not is_hash(stored):
        metrics.child(metrics.SECRET_CHECKS, "plain").inc()
        return hmac.compare_digest(_sha256(stored), _sha256(presented))
    metrics.child(metrics.SECRET_CHECKS, "scrypt").inc()
    return await asyncio.get_running_loop().run_in_executor(_CHECKS, _check, stored, presented)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _check(stored: str, presented: str) -> bool:
    try:
        n, r, p, salt, digest = stored[len(PREFIX) :].split("$")
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            presented.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=MAX_MEMORY,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
