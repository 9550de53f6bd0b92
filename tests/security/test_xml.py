"""Hostile XML, to both XML dialects of the real server: refused fast, in shape, nothing lost.

Entity tricks (billion laughs, quadratic blowup, external and parameter entities,
external DTDs, any DOCTYPE), XInclude, documents past the structural limits, bodies
past max_body_bytes (declared, chunked, and gzip/deflate bombs that only grow once
inflated), and codings the gateway does not take.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from functools import cache

import aiohttp
import pytest

from dialects import testing

from ..registry import names, speaks_xml
from .conftest import Catalogue
from .harness import (
    BOUND_MS,
    assert_error,
    credentials,
    exchange,
    ledger,
    new_invoice,
    send,
    timed,
)

LIMIT = 1024 * 1024  # the catalogue server's max_body_bytes (the default)
XML_DIALECTS = names(speaks_xml)
NOTES = "\x00notes\x00"  # where a support-built document's notes go (no real notes hold it)


def document(dialect: str, invoice: int, notes: str = "paid", prolog: str = "",
             attributes: str = "", extra: str = "") -> bytes:  # fmt: skip
    """A payment document of `dialect` that would be accepted but for what is injected."""
    if dialect == "harvest":
        inner = (
            '<paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
            f'<amount type="decimal">10.00</amount><notes>{notes}</notes>{extra}'
        )
        return f"{prolog}<payment{attributes}>{inner}</payment>".encode()
    if dialect == "fastbill":
        inner = (
            f"<invoice_id>{invoice}</invoice_id><amount>10.00</amount><comment>{notes}</comment>"
        )
        return f"{prolog}<invoice-payment{attributes}>{inner}{extra}</invoice-payment>".encode()
    # Any other XML dialect: its own test support's create, the injections put in place.
    text = (
        testing.support(dialect).create("acme", invoice, "10.00", notes=NOTES).body or b""
    ).decode()
    root = re.match(r"<([^\s>/]+)", text)
    assert root is not None and text.endswith(f"</{root[1]}>"), text
    text = text.replace(NOTES, notes)
    text = f"<{root[1]}{attributes}" + text[len(root[0]) :]
    text = text[: -len(f"</{root[1]}>")] + f"{extra}</{root[1]}>"
    return (prolog + text).encode()


def path(dialect: str, invoice: int) -> str:
    return testing.support(dialect).create("acme", invoice, "10.00").path


LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
)
QUADRATIC = f'<!DOCTYPE payment [<!ENTITY a "{"a" * 50_000}">]>'
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing is fetched


@dataclass(frozen=True)
class Attack:
    name: str
    prolog: str = ""
    notes: str = "paid"
    attributes: str = ""
    extra: str = ""
    message: str | None = None  # what the refusal must say


DOCTYPE = "DOCTYPE or entity declarations"
ATTACKS = [
    Attack("billion-laughs", LAUGHS, "&lol9;", message=DOCTYPE),
    Attack("quadratic-blowup", QUADRATIC, "&a;" * 10_000, message=DOCTYPE),
    Attack("external-entity-file", '<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
           "&x;", message=DOCTYPE),
    Attack("external-entity-http", f'<!DOCTYPE p [<!ENTITY x SYSTEM "{NOWHERE}/x">]>', "&x;",
           message=DOCTYPE),
    Attack("parameter-entity",
           f'<!DOCTYPE p [<!ENTITY % ext SYSTEM "{NOWHERE}/evil.dtd"> %ext;]>',
           message=DOCTYPE),
    Attack("external-dtd", f'<!DOCTYPE payment SYSTEM "{NOWHERE}/payment.dtd">',
           message=DOCTYPE),
    Attack("public-dtd", f'<!DOCTYPE payment PUBLIC "-//X//DTD P//EN" "{NOWHERE}/p.dtd">',
           message=DOCTYPE),
    Attack("plain-doctype", "<!DOCTYPE payment>", message=DOCTYPE),
    Attack("doctype-after-comment", '<?xml version="1.0"?><!-- hi --><!DOCTYPE payment>',
           message=DOCTYPE),
    Attack("entity-in-attribute", '<!DOCTYPE p [<!ENTITY x "y">]>', attributes=' a="&x;"',
           message=DOCTYPE),
    Attack("undeclared-entity", notes="&xxe;"),
    Attack("xinclude", attributes=' xmlns:xi="http://www.w3.org/2001/XInclude"',
           notes='<xi:include href="file:///etc/passwd" parse="text"/>'),
    Attack("depth-33", extra="<a>" * 32 + "</a>" * 32, message="deeper than 32 levels"),
    Attack("depth-100k", extra="<a>" * 100_000 + "</a>" * 100_000),
    Attack("elements-10001", extra="<x/>" * 10_001, message="more than 10000 elements"),
    Attack("elements-in-1mb", extra="<x/>" * 250_000, message="more than 10000 elements"),
    Attack("attributes-17", attributes="".join(f' a{i}=""' for i in range(17)),
           message="more than 16 attributes"),
    Attack("attributes-in-1mb", attributes="".join(f' a{i}=""' for i in range(80_000))),
    Attack("latin1-declared", '<?xml version="1.0" encoding="ISO-8859-1"?>',
           message="UTF-8"),
    Attack("utf7-declared", '<?xml version="1.0" encoding="UTF-7"?>', message="UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize("dialect", XML_DIALECTS)
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
async def test_hostile_xml_is_refused(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str, attack: Attack
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    body = document(dialect, invoice, attack.notes, attack.prolog, attack.attributes, attack.extra)
    assert len(body) <= LIMIT, "the attack must get past the size limit to reach the parser"
    headers = {**credentials(dialect), "Content-Type": "application/xml"}

    answer = await send(http, catalogue.url, "POST", path(dialect, invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error(dialect, answer, "bad_request", message=attack.message)
    timed(f"xml {attack.name} ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize("attack", ATTACKS[:3] + ATTACKS[12:13], ids=lambda a: a.name)
async def test_hostile_xml_refusal_follows_accept_json(
    catalogue: Catalogue, http: aiohttp.ClientSession, attack: Attack
) -> None:
    """The same refusal, in Rails' JSON error shape when the client accepts JSON."""
    invoice = await new_invoice(http, catalogue.url)
    headers = {
        **credentials("harvest"),
        "Content-Type": "application/xml",
        "Accept": "application/json",
    }
    body = document("harvest", invoice, attack.notes, attack.prolog, attack.attributes,
                    attack.extra)  # fmt: skip

    answer = await send(http, catalogue.url, "POST", path("harvest", invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error("harvest", answer, "bad_request", fmt="json", message=attack.message)
    timed(f"xml {attack.name} (harvest, json errors)", answer)


async def test_utf16_body_cannot_smuggle_a_doctype(
    catalogue: Catalogue, http: aiohttp.ClientSession
) -> None:
    """A DOCTYPE in UTF-16 would dodge a byte scan for `<!DOCTYPE`: UTF-16 is refused."""
    invoice = await new_invoice(http, catalogue.url)
    text = '<?xml version="1.0" encoding="UTF-16"?>' + LAUGHS.split("\n", 1)[1]
    body = document("harvest", invoice, "&lol9;", text).decode().encode("utf-16")
    headers = {**credentials("harvest"), "Content-Type": "application/xml"}

    answer = await send(http, catalogue.url, "POST", path("harvest", invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error("harvest", answer, "bad_request", message="UTF-8")
    timed("xml utf16-doctype (harvest)", answer)


# --- size: declared, streamed, inflated ----------------------------------------------


@cache
def bomb(coding: str) -> bytes:
    """64 MiB of zeros (64 times the limit) in about 64 KiB."""
    zeros = b"\0" * (64 * 1024 * 1024)
    if coding == "gzip":
        return gzip.compress(zeros, compresslevel=9, mtime=0)
    if coding == "deflate":
        return zlib.compress(zeros, 9)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, no zlib header
    return compressor.compress(zeros) + compressor.flush()


def head(dialect: str, invoice: int, *headers: str) -> bytes:
    auth = [f"{name}: {value}" for name, value in credentials(dialect).items()]
    lines = [f"POST {path(dialect, invoice)} HTTP/1.1", "Host: 127.0.0.1",
             *auth, "Content-Type: application/xml", *headers]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("dialect", XML_DIALECTS)
@pytest.mark.parametrize("declared", [LIMIT + 1, 10 * 1024**3], ids=["limit+1", "10GiB"])
async def test_declared_oversize_body_is_413_before_it_is_sent(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str, declared: int
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)

    raw = await exchange(catalogue.port, [head(dialect, invoice, f"Content-Length: {declared}")])

    answer = raw.as_answer()
    assert_error(dialect, answer, "too_large", message=f"exceeds {LIMIT} bytes")
    timed(f"oversize declared {declared} ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize("dialect", XML_DIALECTS)
async def test_chunked_oversize_body_is_413_at_the_limit_not_at_its_end(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str
) -> None:
    """64 chunks of 64 KiB (4 MiB): the answer comes once 1 MiB has passed, not after all."""
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    chunk = b"%x\r\n%s\r\n" % (65536, b"<" * 65536)
    parts = [head(dialect, invoice, "Transfer-Encoding: chunked")] + [chunk] * 64 + [b"0\r\n\r\n"]

    raw = await exchange(catalogue.port, parts, pause=0.001)

    answer = raw.as_answer()
    assert_error(dialect, answer, "too_large")
    assert raw.parts_sent < len(parts), "refused before the body ended"
    assert raw.closed, "no keep-alive after a body that was not read"
    # The time includes the 1 ms pauses between the 17 or so chunks sent before the answer.
    timed(f"oversize chunked ({dialect})", answer, bound_ms=BOUND_MS + 64 * 1.5)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize("dialect", XML_DIALECTS)
@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_body_inflating_past_the_limit_is_413(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str, coding: str
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    body = bomb(coding)
    assert len(body) < LIMIT // 8
    encoding = "deflate" if coding == "raw-deflate" else coding
    headers = {
        **credentials(dialect),
        "Content-Type": "application/xml",
        "Content-Encoding": encoding,
    }

    answer = await send(http, catalogue.url, "POST", path(dialect, invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error(dialect, answer, "too_large", message=f"exceeds {LIMIT} bytes")
    timed(f"{coding} bomb ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before


@pytest.mark.parametrize("dialect", XML_DIALECTS)
async def test_gzipped_billion_laughs_is_refused_once_inflated(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    body = gzip.compress(document(dialect, invoice, "&lol9;", LAUGHS))
    headers = {**credentials(dialect), "Content-Type": "application/xml",
               "Content-Encoding": "gzip"}  # fmt: skip

    answer = await send(http, catalogue.url, "POST", path(dialect, invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error(dialect, answer, "bad_request", message=DOCTYPE)
    timed(f"gzip billion-laughs ({dialect})", answer)


@pytest.mark.parametrize("dialect", XML_DIALECTS)
@pytest.mark.parametrize(
    ("coding", "body", "kind"),
    [
        ("gzip", b"\x1f\x8b\x08\x00 this is not gzip", "bad_request"),
        ("deflate", b"\x78\x9c not deflate either", "bad_request"),
        ("compress", b"<payment/>", "media_type"),
        ("gzip, gzip", b"<payment/>", "media_type"),
    ],
    ids=["corrupt-gzip", "corrupt-deflate", "compress", "stacked-codings"],
)
async def test_undecodable_or_unknown_content_coding_is_refused(
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    dialect: str,
    coding: str,
    body: bytes,
    kind: str,
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    headers = {**credentials(dialect), "Content-Type": "application/xml",
               "Content-Encoding": coding}  # fmt: skip

    answer = await send(http, catalogue.url, "POST", path(dialect, invoice), headers=headers,
                        body=body)  # fmt: skip

    assert_error(dialect, answer, kind)
    timed(f"content-coding {coding!r} ({dialect})", answer)
    assert await ledger(http, catalogue.url, invoice) == before
