"""Any text, whatever its source, gives a well-formed XML answer in every XML dialect.

XML 1.0 cannot hold most C0 controls (ESC, BEL, NUL ...), lone surrogates, U+FFFE or
U+FFFF, even as character references: the shared writers replace them with U+FFFD.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dialects import DIALECTS, Dialect, listing
from dialects.errors import BadRequest, GatewayError, UpstreamError, ValidationFailed
from dialects.model import Payment

from ..examples import examples
from .test_roundtrip import payments

XML = sorted(name for name, dialect in DIALECTS.items() if "xml" in dialect.formats)
# Any Unicode text, heavy in what XML cannot hold.
ANY_TEXT = st.text(
    st.one_of(
        st.sampled_from(list("\x1b\x07\x00\x0b\x0c\x1f\ud800\udfff\ufffe\uffff\r&<>]]>")),
        st.characters(),
    ),
    max_size=60,
)
TEXT_FIELDS = ("notes", "reference", "recorded_by", "recorded_by_email", "client_app")
# A parser as strict as a client's: no recovery from a document that is not well-formed.
STRICT = etree.XMLParser(recover=False, resolve_entities=False)


def well_formed(body: bytes) -> etree._Element:
    return etree.fromstring(body, STRICT)


def texts_of(root: etree._Element) -> str:
    return "".join(str(part) for part in root.itertext())


@st.composite
def hostile_payments(draw: st.DrawFn, dialect: Dialect) -> Payment:
    payment = draw(payments(dialect))
    changes: dict[str, Any] = {name: draw(st.none() | ANY_TEXT) for name in TEXT_FIELDS}
    return payment.model_copy(update=changes)


@pytest.mark.parametrize("name", XML)
@examples(150)
@given(data=st.data())
def test_every_text_field_gives_a_well_formed_payment(name: str, data: st.DataObject) -> None:
    dialect = DIALECTS[name]
    sent = data.draw(st.lists(hostile_payments(dialect), min_size=1, max_size=3))

    well_formed(dialect.codecs["xml"].encode_payment(sent[0]))
    listed = dialect.codecs["xml"].encode_payments(sent)
    well_formed(listed)
    rows = listing.rows_of(sent, dialect.row_columns)
    assert dialect.codecs["xml"].encode_rows(rows) == listed  # the compiled rows escape alike


# ASCII text, heavy in the controls and markup a compiled row looks for as bytes.
ASCII_TEXT = st.text(
    st.one_of(st.sampled_from(list("\x00\x07\x0b\x0c\x1b\x1f\x7f\t\n\r&<>")),
              st.characters(max_codepoint=127)),
    max_size=60,
)  # fmt: skip


@pytest.mark.parametrize("name", XML)
@examples(150)
@given(data=st.data())
def test_ascii_rows_escape_as_every_other_writer(name: str, data: st.DataObject) -> None:
    dialect = DIALECTS[name]
    payment = data.draw(payments(dialect))
    sent = payment.model_copy(update={n: data.draw(ASCII_TEXT) for n in TEXT_FIELDS})

    listed = dialect.codecs["xml"].encode_payments([sent])
    well_formed(listed)
    rows = listing.rows_of([sent], dialect.row_columns)
    assert dialect.codecs["xml"].encode_rows(rows) == listed


@pytest.mark.parametrize("name", XML)
@examples(150)
@given(message=ANY_TEXT, problem=ANY_TEXT)
def test_every_error_message_gives_a_well_formed_error(
    name: str, message: str, problem: str
) -> None:
    dialect = DIALECTS[name]
    errors: list[GatewayError] = [
        BadRequest(message),
        UpstreamError(message),
        ValidationFailed(message, fields={"notes": problem}),
    ]
    roots = [well_formed(dialect.codecs["xml"].encode_error(error).body) for error in errors]

    if message.isprintable() and message.strip() == message:  # kept as it was
        assert message in texts_of(roots[0])


@pytest.mark.parametrize("name", XML)
@examples(100)
@given(notes=ANY_TEXT)
def test_a_request_to_a_backend_is_well_formed(name: str, notes: str) -> None:
    dialect = DIALECTS[name]
    body = dialect.codecs["xml"].encode_request({"amount": "1.00", "notes": notes, "invoice_id": 1})

    well_formed(body)


def test_what_xml_cannot_hold_is_replaced_visibly() -> None:
    dialect = DIALECTS[XML[0]]
    sent = Payment(id=1, invoice_id=1, notes="a\x1bb\x07c\ud800d")

    root = well_formed(dialect.codecs["xml"].encode_payment(sent))

    assert "a\ufffdb\ufffdc\ufffdd" in texts_of(root)
