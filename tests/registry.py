"""The dialects under test, read from the registry: every suite's dialect list comes from here.

A dialect installed through its entry point, built in or shipped as its own package, is
in every list, so it is tested everywhere with no test edited. A list that is a subset
on purpose is chosen by what a dialect declares (its caller auth, its formats, its
routes), never by its name.
"""

from __future__ import annotations

from collections.abc import Callable

import dialects
from dialects import testing
from dialects.rails import RailsDialect
from dialects.unit import ApiKeyAuth, BasicAuth, BearerAuth, DialectUnit, Op

Where = Callable[[DialectUnit], bool]


def names(*where: Where) -> list[str]:
    """The registered dialects' names, sorted, that meet every condition in `where`."""
    return [n for n, unit in sorted(dialects.units().items()) if all(w(unit) for w in where)]


def basic_auth(unit: DialectUnit) -> bool:
    """Callers present a Basic `login:secret`."""
    return isinstance(unit.caller_auth, BasicAuth)


def api_key(unit: DialectUnit) -> bool:
    """Callers present a key in a header."""
    return isinstance(unit.caller_auth, ApiKeyAuth)


def bearer(unit: DialectUnit) -> bool:
    """Callers present a bearer token."""
    return isinstance(unit.caller_auth, BearerAuth)


def speaks_xml(unit: DialectUnit) -> bool:
    return "xml" in unit.codec.formats


def speaks_json(unit: DialectUnit) -> bool:
    return "json" in unit.codec.formats


def rails(unit: DialectUnit) -> bool:
    """Speaks the Rails family's documents: `<errors>`, a Basic challenge naming a realm."""
    return isinstance(unit.codec, RailsDialect)


def answers_xml(unit: DialectUnit) -> bool:
    """Answers in XML unless a caller asks otherwise (XML is its default format)."""
    return unit.codec.formats[0] == "xml"


def json_only(unit: DialectUnit) -> bool:
    return unit.codec.formats == ("json",)


def writes_json(unit: DialectUnit) -> bool:
    """Its test support writes a create's JSON members (`Support.fields`)."""
    support = testing.support(unit.codec.name)
    return type(support).fields is not testing.Support.fields


def has(*ops: Op) -> Where:
    """Serves every one of `ops`."""
    return lambda unit: all(unit.route(op) is not None for op in ops)


def lacks(op: Op) -> Where:
    """Serves no route for `op`."""
    return lambda unit: unit.route(op) is None


def deletes(unit: DialectUnit) -> bool:
    """A caller can delete a payment (a DELETE, a POST marking it removed, or a POST of a
    whole payment asking its deletion)."""
    return any(unit.route(op) is not None for op in (Op.DELETE, Op.REMOVE, Op.WRITE))


ALL: tuple[str, ...] = tuple(names())
