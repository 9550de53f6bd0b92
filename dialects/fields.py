"""A dialect's field table: each field of its payment document, and how its value is read.

`listing` compiles lists from these tables and `base` decodes and encodes with them;
neither needs the other to know what a field is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .model import Payment


class Kind(Enum):
    """How a field's value is read and written."""

    ID = "id"
    INVOICE_ID = "invoice_id"
    AMOUNT = "amount"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    TEXT = "text"
    METHOD = "method"
    BOOL = "bool"
    CONST = "const"


@dataclass(frozen=True)
class Spec:
    """One field of a dialect's payment document.

    `attr` is the canonical Payment attribute (or a request option such as
    `mark_invoice_paid`); `server_owned=True` marks what the server owns: it is read
    from documents for translation but never taken from a request.
    """

    wire: str
    attr: str
    kind: Kind
    xml_type: str | None = None
    server_owned: bool = False
    value: Callable[[Payment], object] | None = None
    # The canonical attributes `value` reads (None: any), so a list made from stored
    # rows fetches only those and computes the value once per distinct combination.
    reads: tuple[str, ...] | None = None
