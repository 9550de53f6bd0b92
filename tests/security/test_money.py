"""Hostile money: every amount that is not a plain, positive, exact, payable decimal.

Each is refused in every dialect's own wire form, and none is ever rounded into
acceptance: the ledger is exactly as it was. XML dialects get the value as element
text; JSON dialects as a JSON literal (a number where JSON can write it, else a string).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from xml.sax.saxutils import escape

import aiohttp
import pytest

import dialects
from dialects import testing

from ..registry import ALL
from .conftest import Catalogue
from .harness import (
    Answer,
    assert_error,
    credentials,
    hexid,
    ledger,
    new_invoice,
    pay,
    send,
    status_of,
    timed,
)


@dataclass(frozen=True)
class Money:
    name: str
    xml: str | None  # element text for dialects whose creates are XML; None: no XML form
    json: str | None  # JSON literal for dialects whose creates are JSON; None: no JSON form
    json_kind: str = "validation"  # "bad_request" where the literal is not JSON at all
    kind: str = "validation"
    currency: str = "EUR"


CASES = [
    Money("nan", "NaN", "NaN", json_kind="bad_request"),
    Money("nan-string", None, '"NaN"'),
    Money("infinity", "Infinity", "Infinity", json_kind="bad_request"),
    Money("minus-infinity", "-Infinity", "-Infinity", json_kind="bad_request"),
    Money("infinity-string", None, '"Infinity"'),
    Money("exponent", "1e3", "1e3"),
    Money("exponent-upper", "1E3", "1E3"),
    Money("exponent-fraction", "1.5e2", "1.5e2"),
    Money("exponent-string", None, '"1e3"'),
    Money("underscore", "1_000", "1_000", json_kind="bad_request"),
    Money("underscore-string", None, '"1_000"'),
    Money("spaces", " 5.00 ", '" 5.00 "'),
    Money("plus-sign", "+5.00", '"+5.00"'),
    Money("plus-sign-literal", None, "+5.00", json_kind="bad_request"),
    Money("trailing-dot", "5.", '"5."'),
    Money("leading-dot", ".5", '".5"'),
    Money("leading-zeros", "005.00", '"005.00"'),
    Money("negative", "-5.00", "-5.00"),
    Money("zero", "0", "0"),
    Money("zero-decimals", "0.00", "0.00"),
    Money("negative-zero", "-0.00", "-0.00"),
    Money("negative-zero-integer", "-0", "-0"),
    Money("three-decimals", "5.001", "5.001"),
    Money("three-decimals-string", None, '"5.001"'),
    Money("float-artifact", "0.30000000000000004", "0.30000000000000004"),
    Money("fifteen-digits", "1234567890123.45", "1234567890123.45"),
    Money("fifteen-integer-digits", "123456789012345", "123456789012345"),
    Money("hex", "0x10", '"0x10"'),
    Money("decimal-comma", "10,00", '"10,00"'),
    Money("arabic-indic-digits", "\u0661\u0660", '"\u0661\u0660"'),
    Money("fullwidth-digits", "\uff11\uff10", '"\uff11\uff10"'),
    Money("empty", "", '""'),
    Money("nil", None, "null"),
    Money("boolean", None, "true"),
    Money("array", None, "[5]"),
    Money("object", None, '{"value": 5}'),
    Money("jpy-decimals", "5.5", "5.5", currency="JPY"),
    Money("jpy-one-cent", "1.01", "1.01", currency="JPY"),
    Money("overpay", "1000.01", "1000.01", kind="ledger"),
    Money("overpay-huge", "99999999999.99", "99999999999.99", kind="ledger"),
]


# The amount a good create is written with, then replaced by the case's text.
SENTINEL = "31415.92"


def writes_xml(dialect: str) -> bool:
    """The dialect's test support writes its creates as XML (else as JSON)."""
    return "xml" in testing.support(dialect).content_type


def create(dialect: str, invoice: int, case: Money) -> tuple[str, dict[str, str], str]:
    """(path, headers, body) of the dialect's good create with the case's amount instead."""
    request = testing.support(dialect).create("acme", invoice, SENTINEL)
    body = (request.body or b"").decode()
    assert body.count(SENTINEL) == 1, body
    text = escape(case.xml) if writes_xml(dialect) and case.xml is not None else case.json
    assert text is not None
    return request.path, dict(request.headers), body.replace(SENTINEL, text)


PARAMS = [
    pytest.param(dialect, case, id=f"{case.name}-{dialect}")
    for case in CASES
    for dialect in ALL
    if (case.xml if writes_xml(dialect) else case.json) is not None
]


@pytest.mark.parametrize(("dialect", "case"), PARAMS)
async def test_hostile_amount_is_refused_never_rounded(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str, case: Money
) -> None:
    invoice = await new_invoice(http, catalogue.url, currency=case.currency)
    before = await ledger(http, catalogue.url, invoice)
    path, headers, body = create(dialect, invoice, case)

    answer = await send(http, catalogue.url, "POST", path,
                        headers={**credentials(dialect), **headers}, body=body)  # fmt: skip

    kind = case.kind
    if not writes_xml(dialect) and case.kind == "validation":
        kind = case.json_kind
    text = assert_error(dialect, answer, kind)
    if kind != "bad_request":  # the refusal names the amount, in the dialect's word or not
        words = {"amount", dialects.get(dialect).wire_name("amount").lower()}
        assert any(word in text.lower() for word in words), "the refusal names the amount"
    timed(f"money {case.name} ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before


URLKEY_EXTRAS = [
    ("tds-negative", '"amount": 10, "tds": -1', "validation"),
    ("tds-three-decimals", '"amount": 10, "tds": 0.001', "validation"),
    ("tds-exponent", '"amount": 10, "tds": 1e1', "validation"),
    ("fee-nan-string", '"amount": 10, "transactionCharge": "NaN"', "validation"),
    ("fee-tips-it-over-the-total", '"amount": 1000, "transactionCharge": 0.01',
     "ledger"),
    ("tds-overpays", '"amount": 990, "tds": 10.01', "ledger"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "members", "kind"), URLKEY_EXTRAS, ids=[c[0] for c in URLKEY_EXTRAS]
)
async def test_urlkey_tax_and_fee_are_money_too(
    catalogue: Catalogue, http: aiohttp.ClientSession, name: str, members: str, kind: str
) -> None:
    """What is settled is amount + tds + transactionCharge: each is held to the same rules."""
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    path = f"/businesses/acme-biz/invoices/{hexid(invoice)}/payments"
    headers = {**credentials("urlkey"), "Content-Type": "application/json"}

    answer = await send(http, catalogue.url, "POST", path, headers=headers,
                        body=f'{{{members}, "paymentMethod": "CASH"}}')  # fmt: skip

    assert_error("urlkey", answer, kind)
    timed(f"money urlkey {name}", answer)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize(
    ("method", "body", "kind"),
    [
        ("PATCH", '{"amount": -1}', "validation"),
        ("PATCH", '{"amount": 1e2}', "validation"),
        ("PATCH", '{"amount": 10.005}', "validation"),
        ("PATCH", '{"amount": 995.01}', "ledger"),
        ("PUT", '{"amount": 995.01, "method": "Cash"}', "ledger"),
        ("PUT", '{"amount": "0.00", "method": "Cash"}', "validation"),
    ],
    ids=["patch-negative", "patch-exponent", "patch-decimals", "patch-overpay", "put-overpay",
         "put-zero"],
)  # fmt: skip
async def test_changing_a_payment_is_held_to_the_same_rules(
    catalogue: Catalogue, http: aiohttp.ClientSession, method: str, body: str, kind: str
) -> None:
    """A 10.00 payment on a 1000.00 invoice may become at most 1000.00, never 1000.01."""
    invoice = await new_invoice(http, catalogue.url)
    payment = await pay(http, catalogue.url, invoice, "10.00")
    await pay(http, catalogue.url, invoice, "5.00")
    before = await ledger(http, catalogue.url, invoice)
    headers = {**credentials("invoiless"), "Content-Type": "application/json"}

    answer = await send(http, catalogue.url, method, f"/v1/payments/{payment}",
                        headers=headers, body=body)  # fmt: skip

    assert_error("invoiless", answer, kind)
    timed(f"money invoiless {method} {body}", answer)
    assert await ledger(http, catalogue.url, invoice) == before


async def test_payments_racing_to_overpay_settle_at_most_the_total(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    """Twelve concurrent payments of 100.00 in turn from every dialect on 1000.00:
    exactly ten land."""
    invoice = await new_invoice(http, catalogue.url)
    calls, senders = [], [ALL[index % len(ALL)] for index in range(12)]
    for dialect in senders:
        request = testing.support(dialect).create("acme", invoice, "100.00")
        calls.append(send(http, catalogue.url, "POST", request.path,
                          headers={**credentials(dialect), **request.headers},
                          body=(request.body or b"").decode()))  # fmt: skip

    answers: list[Answer] = list(await asyncio.gather(*calls))

    landed = [testing.support(d).create_status for d in senders]
    refused = [status_of("ledger", d) for d in senders]
    outcomes = [
        "landed" if a.status == ok else "refused" if a.status == no else a.status
        for a, ok, no in zip(answers, landed, refused, strict=True)
    ]
    assert sorted(outcomes, key=str) == ["landed"] * 10 + ["refused"] * 2
    due, status, payments = (await ledger(http, catalogue.url, invoice))[0]
    assert (due, status, len(payments)) == ("0.00", "paid", 10)
