"""Hostile JSON, to every dialect that takes JSON and to POST /authentication.

Deep nesting (past the limit, and deep enough to exhaust a recursive parser), huge
numbers, duplicate keys that disagree, bytes that are not UTF-8, lone surrogates, and
documents that are not a payment object at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp
import pytest

import dialects
from dialects import testing

from ..registry import names, speaks_json, writes_json
from .conftest import Catalogue
from .harness import (
    assert_error,
    credentials,
    ledger,
    new_invoice,
    send,
    timed,
)


def endpoint(dialect: str, invoice: int) -> tuple[str, dict[str, str], str]:
    """(path, headers, a good payment's members but its amount and notes, as JSON text):
    the members the dialect's test support writes for a JSON create."""
    support = testing.support(dialect)
    written = support.fields(invoice, "2026-11-20", None)
    notes = wire_name(dialect, "notes")  # the attacks write their own notes
    members = json.dumps({k: v for k, v in written.items() if k != notes})[1:-1]
    return support.create("acme", invoice, "10").path, dict(support.json_headers), members


def wire_name(dialect: str, attr: str) -> str:
    """The dialect's member name for a canonical attribute (its amount, its notes)."""
    return next(spec.wire for spec in dialects.get(dialect).fields if spec.attr == attr)


# Every JSON-speaking dialect whose test support writes its JSON members.
JSON_DIALECTS = names(speaks_json, writes_json)


@dataclass(frozen=True)
class Attack:
    name: str
    body: str  # FIELDS: a good payment's members but its amount; NOTES: its notes key
    kind: str
    message: str | None = None
    raw: bytes | None = None  # bytes to send instead of `body`, for encodings


DIGITS = "9" * 500_000
ATTACKS = [
    Attack("depth-33", '{FIELDS, "amount": 10, "NOTES": ' + "[" * 32 + "]" * 32 + "}",
           "bad_request", "nested too deeply"),
    Attack("depth-400k-arrays", '{FIELDS, "amount": 10, "NOTES": ' + "[" * 400_000 + "}",
           "bad_request", "nested too deeply"),
    Attack("depth-100k-objects", '{FIELDS, "amount": 10, "NOTES": ' + '{"a":' * 100_000 + "}",
           "bad_request", "nested too deeply"),
    Attack("huge-integer-amount", '{FIELDS, "amount": ' + DIGITS + "}", "validation"),
    Attack("huge-decimal-amount", '{FIELDS, "amount": 1.' + DIGITS + "}", "validation"),
    Attack("huge-exponent-amount", '{FIELDS, "amount": 1e999999999}', "validation"),
    Attack("huge-number-elsewhere", '{FIELDS, "amount": 10, "NOTES": ' + DIGITS + "}",
           "validation"),
    Attack("duplicate-amount-disagrees", '{FIELDS, "amount": 10, "amount": 999}',
           "bad_request", "Duplicate key"),
    Attack("latin1-byte", "", "bad_request", "UTF-8",
           raw=b'{"amount": 10, "notes": "caf\xe9"}'),
    Attack("overlong-utf8", "", "bad_request", "UTF-8",
           raw=b'{"amount": 10, "notes": "\xc0\xaf"}'),
    Attack("utf16", "", "bad_request", raw='{"amount": 10}'.encode("utf-16")),
    Attack("utf8-bom", "", "bad_request", raw=b'\xef\xbb\xbf{"amount": 10}'),
    Attack("lone-surrogate", '{FIELDS, "amount": 10, "NOTES": "\\ud800"}', "validation"),
    Attack("nul-in-text", '{FIELDS, "amount": 10, "NOTES": "a\\u0000b"}', "validation"),
    Attack("not-an-object", '[{FIELDS, "amount": 10}]', "bad_request"),
    Attack("bare-string", '"FIELDS"', "bad_request"),
    Attack("trailing-garbage", '{FIELDS, "amount": 10} {}', "bad_request"),
    Attack("empty", "", "bad_request", raw=b""),
]  # fmt: skip


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_hostile_json_is_refused(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str, attack: Attack
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    path, extra, fields = endpoint(dialect, invoice)
    notes, amount = wire_name(dialect, "notes"), wire_name(dialect, "amount")
    text = attack.body.replace("FIELDS", fields).replace("NOTES", notes)
    text = text.replace('"amount"', json.dumps(amount))
    body = attack.raw if attack.raw is not None else text.encode()
    assert len(body) <= 1024 * 1024
    headers = {**credentials(dialect), "Content-Type": "application/json", **extra}

    answer = await send(http, catalogue.url, "POST", path, headers=headers, body=body)

    assert_error(dialect, answer, attack.kind, fmt="json", message=attack.message)
    timed(f"json {attack.name} ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize("dialect", JSON_DIALECTS)
async def test_the_attacks_good_members_make_a_payment_that_is_served(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str
) -> None:
    """The members the attacks are written around are a good create, so each attack is
    refused for what it does, not for a payment that would be refused anyway."""
    invoice = await new_invoice(http, catalogue.url)
    path, extra, fields = endpoint(dialect, invoice)
    text = f"{{{fields}, {json.dumps(wire_name(dialect, 'amount'))}: 10}}"
    headers = {**credentials(dialect), "Content-Type": "application/json", **extra}

    answer = await send(http, catalogue.url, "POST", path, headers=headers, body=text.encode())

    assert answer.status == testing.support(dialect).create_status, answer.body
    assert answer.content_type.startswith("application/json"), answer.content_type
    due, _, payments = (await ledger(http, catalogue.url, invoice))[0]
    assert (due, len(payments)) == ("990.00", 1)


AUTHENTICATION = [
    Attack("depth-400k", '{"strategy": "app-secret", "x": ' + "[" * 400_000 + "}",
           "bad_request", "nested too deeply"),
    Attack("duplicate-secret-disagrees",
           '{"strategy": "app-secret", "appId": "acme-app", "appSecret": "acme-app-secret",'
           ' "appSecret": "guess"}', "bad_request", "Duplicate key"),
    Attack("huge-number", '{"strategy": "app-secret", "appId": ' + DIGITS + "}",
           "unauthenticated"),
    Attack("latin1", "", "bad_request", "UTF-8",
           raw=b'{"strategy": "app-secret", "appId": "acme-app", "appSecret": "\xe9"}'),
    Attack("secret-not-a-string",
           '{"strategy": "app-secret", "appId": "acme-app", "appSecret": ["acme-app-secret"]}',
           "unauthenticated"),
]  # fmt: skip


@pytest.mark.parametrize("attack", AUTHENTICATION, ids=[a.name for a in AUTHENTICATION])
async def test_hostile_json_to_authentication_is_refused(
    catalogue: Catalogue, http: aiohttp.ClientSession, attack: Attack
) -> None:
    body = attack.raw if attack.raw is not None else attack.body.encode()
    headers = {"Content-Type": "application/json"}

    answer = await send(http, catalogue.url, "POST", "/authentication", headers=headers,
                        body=body)  # fmt: skip

    assert_error("urlkey", answer, attack.kind, message=attack.message)
    assert "accessToken" not in answer.json()
    timed(f"json /authentication {attack.name}", answer)
