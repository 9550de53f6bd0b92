"""Shared XML mechanics: a hardened parser and Rails-style typed element documents."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from .errors import BadRequest

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_XINCLUDE = "{http://www.w3.org/2001/XInclude}"
_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!ELEMENT", b"<!ATTLIST")


@dataclass(frozen=True)
class Limits:
    """How much structure one XML document may have."""

    max_depth: int = 32
    max_elements: int = 10_000
    max_attributes: int = 16


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _parser()

# The limits `parse` applies when given none: the defaults, or what the gateway's config
# sets for the request being served. A context variable, so each request (one asyncio
# task) sees its own server's limits, for its body and for a proxied backend's answer.
DEFAULT_LIMITS = Limits()
LIMITS: ContextVar[Limits] = ContextVar("xml_limits", default=DEFAULT_LIMITS)


def parse(body: bytes, limits: Limits | None = None) -> etree._Element:
    """Parse an untrusted XML body, refusing any DTD, entity, XInclude or excess.

    Only UTF-8 (or its ASCII subset) is accepted; nothing is ever fetched.
    """
    limits = limits or LIMITS.get()
    head = body.lstrip()[:200]
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4]:
        raise BadRequest("XML must be encoded in UTF-8")
    declared = _ENCODING.match(head)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
        raise BadRequest("XML must be encoded in UTF-8")
    if any(marker in body for marker in _FORBIDDEN):
        raise BadRequest("XML with a DOCTYPE or entity declarations is not accepted")
    # Element count and attributes are bounded before parsing, so a megabyte of tiny
    # elements or of attributes is refused without libxml2 first building every node
    # (a quarter of a million elements, or some 25 MB of attribute nodes) for
    # _check_structure to count afterwards. Each `<` opens markup and each `</` closes an
    # element (one inside a comment counts on both sides): what is left bounds the
    # elements from above, exactly when no comment or CDATA holds a `<`.
    if body.count(b"<") - body.count(b"</") > limits.max_elements:
        raise BadRequest(f"XML has more than {limits.max_elements} elements")
    if _crowded_tag(limits.max_attributes).search(body):
        raise BadRequest(f"XML element has more than {limits.max_attributes} attributes")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise BadRequest(f"Malformed XML: {exc.msg}") from exc
    if root is None or root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise BadRequest("XML with a DOCTYPE or entity declarations is not accepted")
    _check_structure(root, limits)
    return root


@cache
def _crowded_tag(limit: int) -> re.Pattern[bytes]:
    """A start tag with more than `limit` attributes (also one inside a comment or CDATA).

    Linear: attribute values cannot hold `<`, so no attempt runs past the next tag, and
    the quantifiers are possessive, so a failed attempt does not backtrack.
    """
    attribute = rb"""\s++[^\s=<>/]++\s*+=\s*+(?:"[^"<]*+"|'[^'<]*+')"""
    return re.compile(rb"<[^\s<>/!?]++(?:%s){%d}" % (attribute, limit + 1))


def _check_structure(root: etree._Element, limits: Limits) -> None:
    count = 0
    for element in root.iter():
        count += 1
        if count > limits.max_elements:
            raise BadRequest(f"XML has more than {limits.max_elements} elements")
        if not isinstance(element.tag, str):
            raise BadRequest("XML entity references are not accepted")
        if element.tag.startswith(_XINCLUDE):
            raise BadRequest("XInclude is not accepted")
        if len(element.attrib) > limits.max_attributes:
            raise BadRequest(f"XML element has more than {limits.max_attributes} attributes")
    depth = _depth(root, limits.max_depth)
    if depth > limits.max_depth:
        raise BadRequest(f"XML nested deeper than {limits.max_depth} levels")


def _depth(root: etree._Element, limit: int) -> int:
    deepest, stack = 1, [(root, 1)]
    while stack:
        element, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            break
        stack.extend((child, level + 1) for child in element)
    return deepest


def local(tag: str) -> str:
    """An element name as a field key: namespace dropped, dashes made underscores."""
    return tag.rpartition("}")[2].replace("-", "_")


def record(element: etree._Element) -> dict[str, str | None]:
    """The scalar children of a record element; `nil="true"` reads as None."""
    fields: dict[str, str | None] = {}
    for child in element:
        if len(child):
            raise BadRequest(f"Element <{child.tag}> must hold a value, not elements")
        key = local(str(child.tag))
        if key in fields:
            raise BadRequest(f"Element <{child.tag}> appears twice")
        nil = child.get("nil") == "true"
        fields[key] = None if nil else (child.text or "")
    return fields


def records(root: etree._Element, item: str) -> list[dict[str, str | None]]:
    """The records of a `type="array"` list whose items are named `item`."""
    items = []
    for child in root:
        if local(str(child.tag)) != local(item):
            raise BadRequest(f"Unexpected <{child.tag}> in <{root.tag}>")
        items.append(record(child))
    return items


# A field as it goes on the wire: (element name, value text or None for nil, type).
XmlField = tuple[str, str | None, str | None]


# Characters XML 1.0 cannot hold at all, not even as a character reference: the C0
# controls but tab, LF and CR, lone surrogates, U+FFFE and U+FFFF.
_UNFIT = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
UNFIT = re.compile(f"[{_UNFIT}]")
# What element text escapes: markup, a bare CR, and (replaced) what XML cannot hold.
SPECIAL = re.compile(f"[&<>\r{_UNFIT}]")
REPLACEMENT = "\ufffd"


def safe(value: str) -> str:
    """`value` with each character XML 1.0 cannot hold replaced by U+FFFD, visibly.

    Every text an XML answer carries passes here (through `text`, or lxml's writers):
    a payment's notes, a backend's error message, whatever its source."""
    return UNFIT.sub(REPLACEMENT, value)


def text(value: str) -> str:
    """Element text: markup escaped, a bare CR as `&#13;` (XML would read it as LF), and
    what XML cannot hold replaced (`safe`)."""
    if not SPECIAL.search(value):
        return value
    return escape(safe(value), {"\r": "&#13;"})


class Record:
    """One element of scalar children, its tags rendered once: only values vary per use."""

    def __init__(self, name: str, children: Sequence[tuple[str, str | None]], indent: str = ""):
        inner = indent + "  "
        typed = [(tag, f" type={quoteattr(kind)}" if kind else "") for tag, kind in children]
        self.head, self.tail = f"{indent}<{name}>", f"{indent}</{name}>"
        self.opens = [f"{inner}<{tag}{attr}>" for tag, attr in typed]
        self.closes = [f"</{tag}>" for tag, _ in typed]
        self.nils = [f'{inner}<{tag}{attr} nil="true"/>' for tag, attr in typed]

    def render(self, values: Iterable[str | None]) -> str:
        lines = [self.head]
        for start, end, nil, value in zip(self.opens, self.closes, self.nils, values, strict=True):
            lines.append(nil if value is None else start + text(value) + end)
        lines.append(self.tail)
        return "\n".join(lines)


def element(name: str, fields: Sequence[XmlField], indent: str = "") -> str:
    record = Record(name, [(tag, kind) for tag, _, kind in fields], indent)
    return record.render(value for _, value, _ in fields)


def document(name: str, fields: Sequence[XmlField]) -> bytes:
    return DECLARATION + element(name, fields).encode() + b"\n"


def array_of(name: str, items: Sequence[str]) -> bytes:
    """A `type="array"` document of items already rendered (at two spaces' indent)."""
    inner = "\n" + "\n".join(items) + "\n" if items else ""
    return DECLARATION + f'<{name} type="array">{inner}</{name}>\n'.encode()


def array_of_encoded(name: str, items: list[bytes]) -> bytes:
    """`array_of` items already rendered as UTF-8: the document joined once."""
    if not items:
        return array_of(name, [])
    opening = DECLARATION + f'<{name} type="array">'.encode()
    return b"\n".join([opening, *items, f"</{name}>\n".encode()])


def errors(messages: Iterable[str]) -> bytes:
    """Rails' validation error document."""
    body = "".join(f"\n  <error>{text(message)}</error>" for message in messages)
    return DECLARATION + f"<errors>{body}\n</errors>\n".encode()


# --- nested documents: elements within elements, attributes, no indentation ------------------


def value_text(value: object) -> str:
    """A value as element text before escaping: a flag as `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def attribute(value: str) -> str:
    """An attribute value, quoted: markup, quotes and white space other than a space as
    references, what XML cannot hold replaced (`safe`)."""
    return '"' + escape(safe(value), _ATTRIBUTE) + '"'


_ATTRIBUTE = {'"': "&quot;", "\n": "&#10;", "\t": "&#9;", "\r": "&#13;"}


def nested(name: str, document: Mapping[str, Any], attributes: Mapping[str, str] = {}) -> str:
    """Element `name` holding `document` in its order: a mapping's items as child
    elements (a mapping as an element of elements, a list as an element of the elements
    already rendered in it, anything else as text through `text`); empty as `<name/>`."""
    head = name + "".join(f" {key}={attribute(value)}" for key, value in attributes.items())
    children = [_child(key, value) for key, value in document.items()]
    if not children:
        return f"<{head}/>"
    return f"<{head}>{''.join(children)}</{name}>"


def _child(name: str, value: object) -> str:
    if isinstance(value, Mapping):
        return nested(name, value)
    if isinstance(value, list):
        return f"<{name}>{''.join(value)}</{name}>" if value else f"<{name}/>"
    return f"<{name}>{text(value_text(value))}</{name}>"


def nested_document(
    name: str, document: Mapping[str, Any], attributes: Mapping[str, str] = {}
) -> bytes:
    """`nested` as a document: the declaration, then the element, no newline after it."""
    return DECLARATION + nested(name, document, attributes).encode()
