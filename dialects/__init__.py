"""Dialect codecs over one canonical payment model, found by name."""

from __future__ import annotations

import difflib

from .base import Decoded, Dialect, Format, Reply
from .fastbill import FastBill
from .harvest import Harvest
from .invoiless import Invoiless
from .urlkey import UrlKey

DIALECTS: dict[str, Dialect] = {d.name: d for d in (Harvest(), FastBill(), Invoiless(), UrlKey())}


class UnknownDialect(KeyError):
    pass


def get(name: str) -> Dialect:
    """The dialect called `name`; an unknown name fails with the closest one suggested."""
    try:
        return DIALECTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, DIALECTS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(DIALECTS)}"
        raise UnknownDialect(f"unknown dialect {name!r}{hint}") from None


__all__ = ["DIALECTS", "Decoded", "Dialect", "Format", "Reply", "UnknownDialect", "get"]
