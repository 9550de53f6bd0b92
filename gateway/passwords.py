"""Secrets at rest: scrypt hashes, made for config.yaml and checked in constant time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

from dialects.parsing import ascii_number

from . import metrics

PREFIX = "scrypt$"
_N, _R, _P = 2**14, 8, 1
# A check takes 128 * r * N bytes (16 MiB here) and tens of milliseconds of CPU, on
# purpose. At most this many run at once, on threads of their own, so a flood of wrong
# secrets (from many addresses; limits.py slows any one of them) waits its turn rather
# than taking 16 MiB for each of the default executor's up to 32 threads.
_CONCURRENT_CHECKS = 2
_CHECKS = ThreadPoolExecutor(max_workers=_CONCURRENT_CHECKS, thread_name_prefix="scrypt")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_hash(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, the form config files store secrets in."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{PREFIX}{_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def is_hash(stored: str) -> bool:
    return stored.startswith(PREFIX)


_MAX_MEMORY = 64 * 1024 * 1024  # what a check may take (`_check`); a hash needing more fails


def hash_problem(stored: str) -> str | None:
    """What makes a stored `scrypt$...` value unusable (no secret would ever match it), or None.

    Read once at start-up, so that a damaged hash is a config error, not a silent 401."""
    fields = stored[len(PREFIX) :].split("$")
    if len(fields) != 5:
        return f"has {len(fields)} $-separated fields after scrypt$, not 5 (N, r, p, salt, hash)"
    n, r, p, salt, digest = fields
    cost, block, parallel = (ascii_number(f) for f in (n, r, p))
    if cost is None or block is None or parallel is None:
        return "N, r and p must be whole numbers"
    if cost < 2 or cost & (cost - 1):
        return "N must be a power of 2 greater than 1"
    if block < 1 or parallel < 1 or block * parallel >= 2**30:
        return "r and p must be at least 1, and r * p less than 2^30"
    if 128 * block * cost > _MAX_MEMORY:
        return f"N and r need more than {_MAX_MEMORY // 2**20} MiB to check"
    for name, text in (("salt", salt), ("hash", digest)):
        try:
            if not base64.b64decode(text, validate=True):
                return f"its {name} is empty"
        except ValueError:
            return f"its {name} is not base64"
    return None


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
            maxmem=_MAX_MEMORY,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
