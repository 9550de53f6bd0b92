"""Dialect codecs over one canonical payment model, found by name in the registry."""

from __future__ import annotations

from .base import Codec, Decoded, Dialect, Format, Reply
from .registry import Codecs, UnknownDialect, unit, units

DIALECTS: Codecs = Codecs()


def get(name: str) -> Dialect:
    """The dialect called `name`; an unknown name fails with the closest one suggested."""
    return unit(name).codec


__all__ = [
    "DIALECTS",
    "Codec",
    "Decoded",
    "Dialect",
    "Format",
    "Reply",
    "UnknownDialect",
    "get",
    "unit",
    "units",
]
