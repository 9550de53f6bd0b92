"""Translating a payment document between dialects: the `translate` command and endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from dialects import Dialect, Format
from dialects.errors import BadRequest, GatewayError
from dialects.model import Payment


class NotSpoken(BadRequest):
    """The dialect has no such format (some speak JSON only)."""

    def __init__(self, dialect: Dialect, fmt: str) -> None:
        super().__init__(f"{dialect.name} does not speak {fmt}")


@dataclass(frozen=True)
class Document:
    """What a document held: one payment, or a list of them."""

    payments: tuple[Payment, ...]
    many: bool


def sniff(body: bytes) -> Format:
    """The format a document is written in: XML if it opens with `<`, else JSON."""
    return "xml" if body.lstrip().startswith(b"<") else "json"


def decode(source: Dialect, body: bytes, fmt: Format) -> Document:
    """Read one payment, or else a list of payments, as `source` writes them in `fmt`."""
    if fmt not in source.formats:
        raise NotSpoken(source, fmt)
    try:
        return Document((source.decode_payment(body, fmt).payment,), many=False)
    except GatewayError as single:
        try:
            return Document(tuple(source.decode_payments(body, fmt)), many=True)
        except GatewayError as many:
            # Report the reading that got further: a field problem, not "not a list".
            raise (many if isinstance(single, BadRequest) else single) from None


def encode(document: Document, target: Dialect, fmt: Format) -> tuple[bytes, list[str]]:
    """The document as `target` writes it in `fmt`, and what it could not carry."""
    if fmt not in target.formats:
        raise NotSpoken(target, fmt)
    warnings: list[str] = []
    if document.many:
        output = target.encode_payments(list(document.payments), fmt, warnings)
    else:
        output = target.encode_payment(document.payments[0], fmt, warnings)
    return output, warnings
