"""Translating a payment document between dialects: the `translate` command and endpoint."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from dialects import Dialect, Format
from dialects.errors import BadRequest, GatewayError, LedgerRefused
from dialects.model import Payment
from gateway.ledger.losses import lost_fields, lost_money


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
        decoded = source.codecs[fmt].decode_payment(body)
        if not decoded.provided:  # no payment field: perhaps a list under a key
            with suppress(GatewayError):
                return Document(tuple(source.codecs[fmt].decode_payments(body)), many=True)
        return Document((decoded.payment,), many=False)
    except GatewayError as single:
        try:
            return Document(tuple(source.codecs[fmt].decode_payments(body)), many=True)
        except GatewayError as many:
            # Report the reading that got further: a field problem, not "not a list".
            raise (many if isinstance(single, BadRequest) else single) from None


def encode(
    document: Document, target: Dialect, fmt: Format, *, source: Dialect | None = None
) -> tuple[bytes, list[str]]:
    """The document as `target` writes it in `fmt`, and what it could not carry.

    Money `target` has no field for is refused, as proxy mode refuses it (422 with the
    fields, named as `source` writes them); other fields it drops are warned of.
    """
    if fmt not in target.formats:
        raise NotSpoken(target, fmt)
    warnings = losses(document, target, source)
    if document.many:
        output = target.codecs[fmt].encode_payments(list(document.payments), warnings)
    else:
        output = target.codecs[fmt].encode_payment(document.payments[0], warnings)
    return output, warnings


def losses(document: Document, target: Dialect, source: Dialect | None) -> list[str]:
    """Refuse the money `target` cannot carry; warn of the other fields it drops."""
    name = source.wire_name if source is not None else str
    lost: dict[str, str] = {}
    warnings: list[str] = []
    for payment in document.payments:
        values = dict(payment)
        for attr in lost_money(values, target):
            lost[name(attr)] = f"has no place in {target.name}"
        for attr in lost_fields(values, target):
            warnings.append(f"{name(attr)} has no place in {target.name}; dropped")
    if lost:
        message = f"{target.name} cannot carry this money; refused so none is lost"
        raise LedgerRefused(message, fields=lost)
    return list(dict.fromkeys(warnings))
