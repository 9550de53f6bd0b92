"""Shared JSON mechanics: a strict, exact decoder and a Decimal-preserving encoder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import orjson

from ._values import BadNumber
from .errors import BadRequest

MAX_DEPTH = 32
_MAX_NUMBER_LENGTH = 40
# The nesting `loads` allows when given no limit: MAX_DEPTH, or the gateway's configured
# limit for the request being served (a context variable: one value per request task).
DEPTH: ContextVar[int] = ContextVar("json_max_depth", default=MAX_DEPTH)


def _number(literal: str) -> Decimal | BadNumber:
    if "e" in literal or "E" in literal or len(literal) > _MAX_NUMBER_LENGTH:
        return BadNumber(literal)
    return Decimal(literal)


def _integer(literal: str) -> int | BadNumber:
    if len(literal) > _MAX_NUMBER_LENGTH:
        return BadNumber(literal)
    return int(literal)


def _constant(name: str) -> object:
    raise BadRequest(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result and result[key] != value:
            raise BadRequest(f"Duplicate key {key!r} with different values")
        result[key] = value
    return result


def loads(body: bytes, *, max_depth: int | None = None) -> Any:
    """Parse a JSON body: UTF-8 only, numbers kept as their exact Decimal literal.

    Refuses NaN/Infinity, duplicate keys that disagree and nesting past `max_depth`.
    """
    max_depth = max_depth or DEPTH.get()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("Body is not valid UTF-8") from exc
    try:
        document = json.loads(
            text,
            parse_float=_number,
            parse_int=_integer,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except RecursionError as exc:
        raise BadRequest("JSON nested too deeply") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BadRequest(f"Malformed JSON: {exc.msg} at {where}") from exc
    if _depth(document, max_depth) > max_depth:
        raise BadRequest("JSON nested too deeply")
    return document


_NESTED = (dict, list)


def _depth(value: Any, limit: int, level: int = 1) -> int:
    """How deep `value` nests (a scalar at the top is 0), or past `limit` once it is."""
    if level > limit:
        return level
    children: Iterable[Any]
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return level - 1
    if not children:
        return level
    if level >= limit:  # its children, scalars too, sit past the limit
        return level + 1
    deepest = level
    for child in children:
        if isinstance(child, _NESTED):  # scalars sit at `level`: no call for them
            deepest = max(deepest, _depth(child, limit, level + 1))
            if deepest > limit:
                return deepest
    return deepest


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot encode {type(value).__name__}")


def jsonable(value: object) -> object:
    """`value` as `dumps` writes it: a Decimal as its number, ahead of time."""
    return _default(value) if isinstance(value, Decimal) else value


def dumps(document: Any) -> bytes:
    """Encode to JSON bytes; a Decimal becomes a JSON number with its exact digits."""
    return orjson.dumps(document, default=_default)
