"""The fuzzer: generated malformed requests at every endpoint of every dialect.

Shared by tests/security/test_fuzz.py (a bounded run in CI) and
benchmarks/soak/fuzz_long.py (a longer one). Requests are raw bytes on a socket, so paths,
headers and bodies can be anything HTTP/1.1 framing allows: random bytes, valid
samples mutated, generated JSON and XML, junk credentials, odd content types and
codings, random path segments and queries. Every answer must be below 500 and carry
no traceback; the caller checks the ledger and the server's life afterwards.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import urllib.request
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisWarning

import dialects
from dialects import testing
from dialects.unit import ApiKeyAuth, Op

from .harness import ADMIN, blocking_exchange, hexid

TENANT = "fuzz"  # its only invoice is a draft: no request can record or delete anything


@dataclass(frozen=True)
class Endpoint:
    dialect: str  # or "admin"
    method: str
    path: str  # {inv}, {pay}, {hinv} (the dialect's id form) and {biz} are filled per example

    @property
    def id(self) -> str:
        return f"{self.dialect} {self.method} {self.path}"


def _endpoint(dialect: str, method: str, path: str, query: str) -> Endpoint:
    """A route's path with the fuzzer's fields: {hinv} the invoice in the dialect's id form."""
    path = path.replace("{invoice_id}", "{hinv}").replace("{payment_id}", "{pay}")
    path = re.sub(r"\{(?!hinv\}|pay\})[^}]*\}", "{biz}", path)
    return Endpoint(dialect, method, path + query)


def _endpoints() -> list[Endpoint]:
    """Every route and token endpoint of every registered dialect, and the admin API's."""
    found = []
    for name, unit in dialects.units().items():
        for route in unit.routes:
            query = (
                ""
                if "{invoice_id}" in route.path or route.op is not Op.LIST
                else "?invoice_id={inv}"
            )
            found.append(_endpoint(name, route.method, route.path, query))
        if unit.token_endpoint is not None:
            found.append(Endpoint(name, "POST", unit.token_endpoint.path))
    return found + [
        Endpoint("admin", "GET", "/gateway/v1/invoices/{inv}"),
        Endpoint("admin", "GET", "/gateway/v1/payments/{pay}"),
        Endpoint("admin", "GET", "/gateway/v1/ids/{dialect}/invoice/{inv}"),
    ]


ENDPOINTS = _endpoints()


@dataclass
class Target:
    """The server under fuzz and the ids worth aiming at."""

    url: str
    port: int
    fuzz_invoice: int = 0  # the fuzz tenant's draft invoice
    acme_invoice: int = 0  # another tenant's invoice, with a payment
    acme_payment: int = 0
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    def prepare(self) -> None:
        self.fuzz_invoice = admin_call(self.url, "POST", "/gateway/v1/invoices",
                                       invoice_body(TENANT, draft=True))["id"]  # fmt: skip
        self.acme_invoice = admin_call(self.url, "POST", "/gateway/v1/invoices",
                                       invoice_body("acme"))["id"]  # fmt: skip
        request = urllib.request.Request(
            f"{self.url}/v1/invoices/{self.acme_invoice}/payments",
            data=b'{"amount": 10, "method": "Cash"}',
            headers={"api-key": "acme-invoiless", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            self.acme_payment = int(json.load(response)["id"])

    def ledger(self) -> list[Any]:
        found = []
        for number in (self.fuzz_invoice, self.acme_invoice):
            data = admin_call(self.url, "GET", f"/gateway/v1/invoices/{number}")
            found.append((data["due_amount"], data["status"], data["payments"]))
        return found

    def alive(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
            return bool(response.status == 200)


def invoice_body(tenant: str, *, draft: bool = False) -> dict[str, Any]:
    return {"tenant": tenant, "number": f"FUZZ-{tenant}", "currency": "EUR", "total": "100.00",
            "issued_on": "2026-01-01", "due_on": "2999-12-31", "draft": draft}  # fmt: skip


def admin_call(url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={**ADMIN, "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


# --- strategies --------------------------------------------------------------------------

FIELDS = [
    "amount", "paid-at", "paid_at", "notes", "id", "invoice-id", "invoice_id", "created-at",
    "recorded-by", "date", "comment", "type", "mark_invoice_as_paid", "method", "paidAt",
    "sendNotification", "invoice", "tds", "transactionCharge", "paymentDate", "paymentMethod",
    "refId", "business", "isRemoved", "appId", "_id", "payment", "invoice_payment",
    "strategy", "appId", "appSecret", "tenant", "total", "currency",
]  # fmt: skip
TOKENS = [
    b"<!DOCTYPE x>", b'<!ENTITY a "b">', b"&a;", b"&lol9;", b"<x>" * 40, b"]]>", b"<![CDATA[",
    b'<xi:include href="file:///etc/passwd"/>', b"NaN", b"Infinity", b"1e999", b"-0.00",
    b"0.30000000000000004", b"9" * 60, b'"amount": ', b'{"a":' * 40, b"[" * 40, b"\xff\xfe",
    b"\x00", b"\\ud800", b"\xc0\xaf", b'type="array"', b'nil="true"', b"\r\n", b"%00",
]  # fmt: skip
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO"]
CONTENT_TYPES = [
    "application/xml", "text/xml", "application/json", "application/vnd.api+json",
    "application/atom+xml", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/xml; charset=utf-16",
    "application/json; charset=latin-1", "*/*", "", "json", "application/",
]  # fmt: skip
ACCEPTS = [
    "application/json", "application/xml", "text/xml", "text/html", "*/*", "application/*",
    "application/json;q=0, application/xml;q=0", "image/png", "", ";;;", "*/*;q=abc",
]  # fmt: skip
CODINGS = ["gzip", "deflate", "identity", "br", "zstd", "compress", "gzip, gzip", "x-gzip"]

latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                    exclude_characters="\x7f"), max_size=60)  # fmt: skip
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True)


def samples(dialect: str, invoice: int) -> list[bytes]:
    """Good bodies for `dialect` (they would be refused only as the invoice is a draft)."""
    harvest = ('<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
               '<amount type="decimal">10.00</amount><notes>n</notes></payment>')  # fmt: skip
    fastbill = (f'<invoice-payment><invoice_id type="integer">{invoice}</invoice_id>'
                '<amount type="float">10.0</amount><type>CASH</type></invoice-payment>')  # fmt: skip
    found = {
        "harvest": [harvest, '{"payment": {"paid_at": "2026-11-20", "amount": "10.00"}}'],
        "fastbill": [fastbill, f'{{"invoice_id": {invoice}, "amount": 10.0}}'],
        "invoiless": ['{"amount": 10, "method": "Cash", "paidAt": "2026-11-20", "notes": "n"}'],
        "urlkey": ['{"amount": 10, "tds": 0, "paymentMethod": "CASH", "refId": "r"}',
                   '{"strategy": "app-secret", "appId": "fuzz-app", "appSecret": "fuzz-app-secret"}'],
        "xero": ['<Payment><Invoice><InvoiceID>00000000-0000-0000-0000-'
                 f'{invoice:012x}</InvoiceID></Invoice><Date>2026-11-20T00:00:00</Date>'
                 '<Amount>10.00</Amount></Payment>',
                 '{"Payments": [{"Invoice": {"InvoiceNumber": "X"}, "Amount": 10}]}',
                 '{"Status": "DELETED"}', "grant_type=client_credentials&client_id=fuzz-xero-client"
                 "&client_secret=fuzz-xero-secret"],
        "admin": ['{"tenant": "fuzz", "number": "X", "currency": "EUR", "total": "1"}'],
    }.get(dialect, [])  # fmt: skip
    if dialect != "admin":  # and the create the dialect's own test client sends
        found.append(
            (testing.support(dialect).create(TENANT, invoice, "10.00").body or b"").decode()
        )
    return [sample.encode() for sample in found]


@st.composite
def mutated(draw: st.DrawFn, sample: bytes) -> bytes:
    data = bytearray(sample)
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["delete", "insert", "token", "replace", "copy", "cut"]))
        if operation == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "token":
            data[where:where] = draw(st.sampled_from(TOKENS))
        elif operation == "replace" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif operation == "copy":
            end = draw(st.integers(where, len(data)))
            data[where:where] = data[where:end] * draw(st.integers(1, 20))
        elif operation == "cut":
            del data[where:]
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=6),
    max_leaves=16,
)  # fmt: skip
xml_names = st.sampled_from(FIELDS) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)


@st.composite
def xml_documents(draw: st.DrawFn) -> bytes:
    def text() -> str:
        value = draw(st.text(max_size=20) | st.sampled_from(["10.00", "NaN", "1e3", "-1", ""]))
        return escape(value) if draw(st.booleans()) else value

    children = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(xml_names)
        attributes = "".join(f' {draw(xml_names)}="{escape(draw(st.text(max_size=6)))}"'
                             for _ in range(draw(st.integers(0, 3))))  # fmt: skip
        children.append(f"<{name}{attributes}>{text()}</{name}>")
    root = draw(st.sampled_from(["payment", "invoice-payment", "payments", "errors"]) | xml_names)
    prolog = draw(st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>\n',
                                   '<?xml version="1.0"?>']))  # fmt: skip
    return f"{prolog}<{root}>{''.join(children)}</{root}>".encode("utf-8", "surrogatepass")


def bodies(endpoint: Endpoint, invoice: int) -> st.SearchStrategy[bytes]:
    base = samples(endpoint.dialect, invoice)
    return st.one_of(
        st.just(b""),
        st.binary(max_size=300),
        st.sampled_from(base).flatmap(mutated),
        json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
        xml_documents(),
    )


def good(dialect: str) -> list[tuple[str, str]]:
    """The fuzz tenant's credentials in a dialect (a fresh token each time where signed)."""
    if dialect == "admin":
        return list(ADMIN.items())
    return list(testing.support(dialect).credentials(TENANT).items())


def own(endpoint: Endpoint) -> list[tuple[str, str]]:
    return good(endpoint.dialect)


def credential(endpoint: Endpoint) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Wrong credentials: none, junk, another dialect's, a scope the key does not own."""
    junk_basic = st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode())
    others = [good(k) for k in [*dialects.units(), "admin"] if k != endpoint.dialect]
    api_keys = [n for n, u in dialects.units().items() if isinstance(u.caller_auth, ApiKeyAuth)]
    keyed = good(api_keys[0]) if api_keys else []
    return st.one_of(
        st.just([]),
        junk_basic.map(lambda v: [("Authorization", v)]),
        latin1_text.map(lambda v: [("Authorization", "Bearer " + v)]),
        latin1_text.map(lambda v: [("Authorization", v)]),
        latin1_text.map(lambda v: [("api-key", v), ("scope-id", v[:5])]),
        latin1_text.map(lambda v: [*keyed, ("scope-id", v)]),
        st.sampled_from(others),
    )


def wire(endpoint: Endpoint, number: int) -> str:
    """`number` in the endpoint's dialect's id form."""
    return (
        str(number)
        if endpoint.dialect == "admin"
        else testing.support(endpoint.dialect).wire_id(number)
    )


def segments(target: Target, kind: str) -> st.SearchStrategy[str]:
    """An id segment: half the time the fuzz tenant's own (so the body is reached)."""
    ours = target.fuzz_invoice if kind == "inv" else target.acme_payment + 1_000_000
    theirs = target.acme_invoice if kind == "inv" else target.acme_payment
    forms = [str(theirs), hexid(ours), hexid(theirs), f"{ours}.xml", f"{theirs}.json"]
    odd = ["0", "-1", "1.5", "9" * 30, "%00", "..", "%2e%2e", "%2F", "0x10", "1e3", "%ff", "%20"]
    random = st.text(max_size=12).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))
    return st.one_of(st.just(str(ours)), st.sampled_from(forms + odd) | random)


@st.composite
def paths(draw: st.DrawFn, endpoint: Endpoint, target: Target) -> str:
    if draw(st.integers(0, 9)) == 0:  # anywhere under the dialect's prefix
        prefix = endpoint.path.split("/")[1]
        parts = draw(st.lists(segments(target, "inv"), max_size=5))
        return "/" + "/".join([prefix, *parts])
    invoice = draw(segments(target, "inv"))
    path = endpoint.path.format(
        inv=invoice, pay=draw(segments(target, "pay")), dialect=draw(xml_names),
        hinv=draw(st.one_of(st.just(wire(endpoint, target.fuzz_invoice)), segments(target, "inv"))),
        biz=draw(st.one_of(st.just("fuzz-biz"), st.sampled_from(["acme-biz", "nope"]),
                           segments(target, "inv"))),
    )  # fmt: skip
    suffix = draw(st.sampled_from(["", "", "", "", "", ".xml", ".json", ".html"]))
    query = draw(st.sampled_from(["", "", "?invoice_id=" + invoice, "?a=1&a=2"])
                 | st.text(max_size=16).map(lambda t: "?" + quote(t, safe="=&")))  # fmt: skip
    if "?" in path:
        path, _, given_query = path.partition("?")
        query = query or "?" + given_query
    return path + suffix + query


ASPECTS = ("method", "path", "credentials", "headers")


def valid_path(endpoint: Endpoint, target: Target) -> str:
    """The endpoint's path on the fuzz tenant's own (draft) invoice."""
    return endpoint.path.format(inv=target.fuzz_invoice, pay=target.acme_payment + 1_000_000,
                                hinv=wire(endpoint, target.fuzz_invoice), biz="fuzz-biz",
                                dialect=endpoint.dialect)  # fmt: skip


@st.composite
def requests(draw: st.DrawFn, endpoint: Endpoint, target: Target) -> bytes:
    """A request that is right but for its body and a few aspects chosen to be wrong.

    The body is always generated; of method, path, credentials and headers, a random
    subset is too (often none), so most requests get as far as the parsers.
    """
    wrong = draw(st.frozensets(st.sampled_from(ASPECTS), max_size=3))
    method = draw(st.sampled_from(METHODS)) if "method" in wrong else endpoint.method
    path = draw(paths(endpoint, target)) if "path" in wrong else valid_path(endpoint, target)
    body = draw(bodies(endpoint, target.fuzz_invoice))
    credentials = draw(credential(endpoint)) if "credentials" in wrong else own(endpoint)
    headers = [("Host", "127.0.0.1"), ("Connection", "close"), *credentials]
    own_type = (
        "application/xml" if endpoint.dialect in ("harvest", "fastbill") else "application/json"
    )
    if "headers" not in wrong:
        headers.append(("Content-Type", own_type))
    else:
        if draw(st.integers(0, 3)):
            content_type = st.sampled_from([own_type, "application/json"]) | st.sampled_from(
                CONTENT_TYPES
            )
            headers.append(("Content-Type", draw(content_type | latin1_text)))
        if draw(st.booleans()):
            headers.append(("Accept", draw(st.sampled_from(ACCEPTS) | latin1_text)))
        if draw(st.integers(0, 2)) == 0:
            coding = draw(st.sampled_from(CODINGS))
            if coding == "gzip" and draw(st.booleans()):
                body = gzip.compress(body)
            elif coding == "deflate" and draw(st.booleans()):
                body = zlib.compress(body)
            headers.append(("Content-Encoding", coding))
        headers += draw(st.lists(st.tuples(header_names, latin1_text), max_size=3))
    if draw(st.integers(0, 9)):
        headers.append(("Content-Length", str(len(body))))
    else:
        headers.append(("Transfer-Encoding", "chunked"))
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


# --- the property ---------------------------------------------------------------------------


def check(target: Target, data: bytes) -> None:
    """One generated request: an answer below 500, with no traceback in it."""
    status, body = blocking_exchange(target.port, data)
    target.examples += 1
    target.statuses[status] += 1
    assert 100 <= status < 500, (status, data[:300], body[:300])
    assert b"Traceback" not in body and b'File "' not in body, body[:300]


def run(target: Target, endpoint: Endpoint, examples: int, *, at: int | None = None) -> None:
    """`examples` generated requests at `endpoint`: derandomized, or from seed `at`."""
    options = settings(
        max_examples=examples,
        deadline=None,
        derandomize=at is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )

    @options
    @given(data=requests(endpoint, target))
    def fuzz(data: bytes) -> None:
        check(target, data)

    if at is not None:
        fuzz = seed(at)(fuzz)
    with warnings.catch_warnings():
        # Reporting a falsifying example may repr a large generated body: say so, once.
        warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
        fuzz()
