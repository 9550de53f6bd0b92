"""The dialect registry: units found through an entry-point group, checked once for clashes.

Every dialect, built-in or shipped as its own package, registers the same way:

    [project.entry-points."invoice_gateway.dialects"]
    harvest = "dialects.harvest:UNIT"

The entry point names a DialectUnit (or a callable returning one). Two entry points
with one name, two dialects claiming one route or path prefix, or an entry point
whose name is not its dialect's, are refused with one line naming both sides.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from .base import Dialect
from .unit import BearerAuth, DialectUnit, Op, shape

GROUP = "invoice_gateway.dialects"


class RegistryError(ValueError):
    """The installed dialects cannot be served together; the message says why."""


class UnknownDialect(KeyError):
    """No dialect of that name is registered."""


def _load(point: EntryPoint) -> DialectUnit:
    try:
        found = point.load()
    except Exception as exc:  # a broken plug-in is reported by name, not as a traceback
        raise RegistryError(
            f"dialect {point.name!r} ({point.value}) failed to load: {exc}"
        ) from exc
    unit = found() if callable(found) and not isinstance(found, DialectUnit) else found
    if not isinstance(unit, DialectUnit):
        raise RegistryError(f"dialect {point.name!r} ({point.value}) is not a DialectUnit")
    if unit.name != point.name:
        raise RegistryError(
            f"entry point {point.name!r} ({point.value}) holds dialect {unit.name!r}"
        )
    return unit


def check(units: Mapping[str, DialectUnit]) -> None:
    """Refuse units that claim the same route or prefix, or routes under another's prefix."""
    routes: dict[tuple[str, str], str] = {}
    prefixes: dict[str, str] = {}
    for unit in units.values():
        for prefix in unit.prefixes:
            other = prefixes.setdefault(prefix, unit.name)
            if other != unit.name:
                raise RegistryError(
                    f"dialects {other!r} and {unit.name!r} both claim the path prefix {prefix}"
                )
        served = [(r.method, r.path) for r in unit.routes]
        extra = [(e.method, e.path) for e in unit.endpoints]
        extra += [(d.method, d.path) for d in unit.documents]
        for method, path in served + extra:
            key = (method, shape(path))
            other = routes.setdefault(key, unit.name)
            if other != unit.name:
                raise RegistryError(
                    f"dialects {other!r} and {unit.name!r} both claim {method} {path}"
                )
    for unit in units.values():
        lacking = missing_capability(unit)
        if lacking is not None:
            raise RegistryError(f"dialect {unit.name!r} serves {lacking}")
        if unit.token_endpoint is not None and not isinstance(unit.caller_auth, BearerAuth):
            raise RegistryError(f"dialect {unit.name!r} issues tokens but takes no bearer token")
        for path in unit.paths():
            owner = owner_of(units, path)
            if owner is not unit:
                held = owner.name if owner is not None else "no dialect"
                raise RegistryError(
                    f"dialect {unit.name!r} serves {path}, a path under {held!r}'s prefixes"
                )


def missing_capability(unit: DialectUnit) -> str | None:
    """What a unit's routes ask of its dialect that it lacks (None: nothing): a search
    route needs `Dialect.search`, a removal route `Codec.removal` in every format."""
    ops = {route.op for route in unit.routes}
    dialect = unit.codec
    if Op.SEARCH in ops and dialect.search is None:
        return "a search route but has no search (Dialect.search)"
    if Op.WRITE in ops and unit.groups is None:
        return "a write route but has no grouping (DialectUnit.groups)"
    for fmt, codec in dialect.codecs.items():
        if Op.REMOVE in ops and codec.removal is None:
            return f"a removal route but its {fmt} codec has no removal (Codec.removal)"
    return None


def owner_of(units: Mapping[str, DialectUnit], path: str) -> DialectUnit | None:
    """The unit whose longest prefix starts `path`."""
    best: tuple[int, DialectUnit] | None = None
    for unit in units.values():
        for prefix in unit.prefixes:
            if path.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), unit)
    return best[1] if best else None


@cache
def units() -> Mapping[str, DialectUnit]:
    """Every registered dialect by name, loaded and checked once."""
    found: dict[str, DialectUnit] = {}
    for point in sorted(entry_points(group=GROUP), key=lambda p: (p.name, p.value)):
        if point.name in found:
            raise RegistryError(f"two packages register a dialect named {point.name!r}")
        found[point.name] = _load(point)
    if not found:
        raise RegistryError(
            f"no dialect is registered under the entry-point group {GROUP!r}: "
            "install the package (pip install -e .)"
        )
    check(found)
    return found


def unit(name: str) -> DialectUnit:
    """The unit called `name`; an unknown name fails with the closest one suggested."""
    known = units()
    try:
        return known[name]
    except KeyError:
        raise UnknownDialect(unknown(name, known)) from None


def unknown(name: str, known: Mapping[str, object]) -> str:
    """`unknown dialect 'x'; did you mean 'y'?`, or the list of known names."""
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
    return f"unknown dialect {name!r}{hint}"


class Codecs(Mapping[str, Dialect]):
    """The registered dialects' codecs by name, loaded on first use."""

    def __getitem__(self, name: str) -> Dialect:
        return units()[name].codec

    def __iter__(self) -> Iterator[str]:
        return iter(units())

    def __len__(self) -> int:
        return len(units())
