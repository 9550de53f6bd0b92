"""The media types of the formats dialects speak: what a body is labelled, and how a label is read."""

from __future__ import annotations

from dialects.base import Format

CONTENT_TYPES: dict[Format, str] = {
    "xml": "application/xml; charset=utf-8",
    "json": "application/json; charset=utf-8",
}
SUFFIXES: dict[str, Format] = {".xml": "xml", ".json": "json"}


def media_format(media_type: str) -> Format | None:
    """The format a media type names: XML for application/xml, text/xml, */*+xml."""
    base = media_type.split(";", 1)[0].strip().lower()
    if base in ("application/xml", "text/xml") or base.endswith("+xml"):
        return "xml"
    if base == "application/json" or base.endswith("+json"):
        return "json"
    return None
