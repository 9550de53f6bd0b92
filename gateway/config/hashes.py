"""Secrets at rest: the scrypt hashes config.yaml stores, made and read (checked: access.passwords)."""

from __future__ import annotations

import base64
import hashlib
import os

from dialects.parsing import ascii_number

PREFIX = "scrypt$"
_N, _R, _P = 2**14, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_hash(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, the form config files store secrets in."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{PREFIX}{_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def is_hash(stored: str) -> bool:
    return stored.startswith(PREFIX)


MAX_MEMORY = 64 * 1024 * 1024  # what a check may take (access.passwords); a hash needing more fails


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
    if 128 * block * cost > MAX_MEMORY:
        return f"N and r need more than {MAX_MEMORY // 2**20} MiB to check"
    for name, text in (("salt", salt), ("hash", digest)):
        try:
            if not base64.b64decode(text, validate=True):
                return f"its {name} is empty"
        except ValueError:
            return f"its {name} is not base64"
    return None
