"""What a dialect gives the test suites: its config samples, its small client, its error shape.

Each unit names a module (`DialectUnit.testing`) whose `SUPPORT` is a `Support`. The
suites run over the registry and ask it for everything dialect-specific, so a new
dialect's tests come with its package. Requests are plain data and answers plain
bytes, read with lxml and json rather than the gateway's own codecs, so a change in
a codec shows up as a failure; no web framework is imported here.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from lxml import etree

import dialects

from ..auth import basic_header

View = dict[str, Any]  # {"id", "amount", "notes", "paid_on"}: one payment, any dialect
XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """An answer as a test saw it: status, headers (case as sent), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body)


class Support:
    """A dialect's test client and samples; subclasses fill in their wire forms.

    Tenants in the suites get plain secrets named after them (`acme-<dialect>` ...), so
    no test pays for scrypt unless it hashes them (`hashed`).
    """

    name: ClassVar[str]
    # The canonical method this client's create sends (None: the dialect has none).
    method: ClassVar[str | None] = None
    # Status of a successful create.
    create_status: ClassVar[int] = 201
    # Status of a successful delete, or None if the dialect has no delete.
    deleted_status: ClassVar[int | None] = 200
    # Whether a delete answers with no body (Xero echoes the deleted payment).
    deleted_empty: ClassVar[bool] = True
    # Whether the list is a search (an unknown invoice then lists nothing: 200, no 404).
    lists_by_search: ClassVar[bool] = False
    # How a create naming an invoice that does not exist is refused: (status, error kind).
    unknown_invoice: ClassVar[tuple[int, str]] = (404, "not_found")
    # The most payments one list answers, where the vendor's protocol pages every list
    # (its clients page through them); None: a list is answered whole.
    page_limit: ClassVar[int | None] = None

    @property
    def codec(self) -> dialects.Dialect:
        return dialects.get(self.name)

    def wire_id(self, number: int) -> str:
        return str(self.codec.wire_id(number))

    # --- configuration -------------------------------------------------------------------

    def section(self, tenant: str) -> dict[str, Any]:
        """The dialect's config section for `tenant`, plain secrets."""
        raise NotImplementedError

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        """`section` with every secret replaced by `hash(secret)`."""
        raise NotImplementedError

    def backend(self, tenant: str) -> dict[str, Any]:
        """A `backend:` section's credentials, for a gateway holding `section(tenant)`."""
        raise NotImplementedError

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        """The `recorded_by` and `client_app` a gateway records for `backend(tenant)`."""
        raise NotImplementedError

    # --- a caller: paths take {tenant}, and {invoice} / {payment} in the dialect's id form ---

    list_path: ClassVar[str]
    create_path: ClassVar[str | None] = None  # None: the list path
    payment_path: ClassVar[str | None] = None  # get and delete; None: the dialect has none
    get_suffix: ClassVar[str] = ""
    list_headers: ClassVar[Mapping[str, str]] = {}
    content_type: ClassVar[str] = "application/json"
    # What a JSON create sends beside its Content-Type to be answered in JSON (a dialect
    # answering XML by default is asked with an Accept).
    json_headers: ClassVar[Mapping[str, str]] = {}

    def credentials(self, tenant: str) -> dict[str, str]:
        raise NotImplementedError

    def login(self, name: str, secret: str) -> Request:
        """A request presenting `name` and `secret` where the dialect takes a login: Basic
        on its list (invoice 1 of tenant acme; dialects whose callers log in elsewhere,
        at a token endpoint, say, override this)."""
        return Request("GET", self.listing("acme", 1).path, headers=basic_header(name, secret))

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        """A create's JSON fields but the amount (written last, an exact number)."""
        raise NotImplementedError

    def body(
        self, invoice: int, amount: str, paid_on: str, notes: str | None, extra: Mapping[str, str]
    ) -> bytes:
        data = self.fields(invoice, paid_on, notes)
        data.update({"amount": Decimal(amount), **{k: Decimal(v) for k, v in extra.items()}})
        return decimal_json(data)

    def _path(self, template: str, tenant: str, invoice: int, payment: int = 0) -> str:
        return template.format(
            tenant=tenant, invoice=self.wire_id(invoice), payment=self.wire_id(payment)
        )

    def create(
        self,
        tenant: str,
        invoice: int,
        amount: str,
        *,
        paid_on: str = "2026-11-20",
        notes: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Request:
        """A create in the dialect's own wire form; `extra` adds wire fields as given."""
        path = self._path(self.create_path or self.list_path, tenant, invoice)
        body = self.body(invoice, amount, paid_on, notes, extra or {})
        return Request("POST", path, body, {"Content-Type": self.content_type})

    def json_create(
        self, tenant: str, invoice: int, amount: str, *, paid_on: str = "2026-11-20"
    ) -> Request:
        """A create written as JSON from `fields`, asking for a JSON answer: a dialect whose
        own creates are XML takes this form too if it speaks JSON."""
        data = self.fields(invoice, paid_on, None)
        data[self.codec.wire_name("amount")] = Decimal(amount)
        path = self._path(self.create_path or self.list_path, tenant, invoice)
        headers = {"Content-Type": "application/json", **self.json_headers}
        return Request("POST", path, decimal_json(data), headers)

    def listing(self, tenant: str, invoice: int) -> Request:
        return Request("GET", self._path(self.list_path, tenant, invoice), None, self.list_headers)

    def batch(self, bodies: list[bytes]) -> bytes | None:
        """Create bodies (as `create` writes them) in one batch document, if the dialect has one."""
        return None

    def get(self, tenant: str, invoice: int, payment: int) -> Request | None:
        """The request for one payment, or None if the dialect has no get-one."""
        if self.payment_path is None:
            return None
        path = self._path(self.payment_path, tenant, invoice, payment)
        return Request("GET", path + self.get_suffix)

    def delete(self, tenant: str, invoice: int, payment: int) -> Request | None:
        if self.payment_path is None or self.deleted_status is None:
            return None
        return Request("DELETE", self._path(self.payment_path, tenant, invoice, payment))

    def location(self, invoice: int, payment: int) -> str | None:
        """The Location a create answers with: the payment's own path, if it has one."""
        if self.payment_path is None:
            return None
        return self._path(self.payment_path, "", invoice, payment)

    def created(self, answer: Answer) -> int:
        """The canonical id of the payment a create answered."""
        return self.view(answer.body)["id"]  # type: ignore[no-any-return]

    def view(self, body: bytes) -> View:
        raise NotImplementedError

    def views(self, body: bytes) -> list[View]:
        raise NotImplementedError

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        """Assert `answer` is the dialect's `kind` error of `status`; return its text."""
        raise NotImplementedError


class RailsSupport(Support):
    """A Rails dialect's readings: typed XML documents, `<errors>` on failure."""

    names: ClassVar[Mapping[str, str]]  # the view's keys by element name
    list_root: ClassVar[str]
    content_type = "application/xml"

    def view(self, body: bytes) -> View:
        """A payment as XML, or as JSON: `{"<root>": {...}}`, its keys underscored."""
        if body.lstrip().startswith(b"{"):
            (item,) = Answer(200, {}, body).json().values()
            names = {key: wire.replace("-", "_") for key, wire in self.names.items()}
            return {
                "id": int(item[names["id"]]),
                "amount": Decimal(str(item[names["amount"]])),
                "notes": item[names["notes"]],
                "paid_on": str(item[names["paid_on"]] or "")[:10],
            }
        return xml_view(Answer(200, {}, body).xml(), self.names)

    def views(self, body: bytes) -> list[View]:
        root = Answer(200, {}, body).xml()
        assert root.tag == self.list_root and root.get("type") == "array"
        return [xml_view(item, self.names) for item in root]

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        return rails_error(answer, status, fmt)


def support(name: str) -> Support:
    """The registered dialect's test support."""
    module = dialects.unit(name).testing
    assert module is not None, f"dialect {name!r} names no test support"
    found = importlib.import_module(module).SUPPORT
    assert isinstance(found, Support) and found.name == name, module
    return found


def supports() -> dict[str, Support]:
    return {name: support(name) for name in dialects.units()}


# --- shared wire mechanics -----------------------------------------------------------------


def xml_view(element: etree._Element, names: Mapping[str, str]) -> View:
    values = {child.tag: (None if child.get("nil") == "true" else child.text) for child in element}
    return {
        "id": int(values[names["id"]] or 0),
        "amount": Decimal(values[names["amount"]] or "0"),
        "notes": values[names["notes"]],
        "paid_on": (values[names["paid_on"]] or "")[:10],
    }


def rails_error(answer: Answer, status: int, fmt: str | None) -> str:
    """Rails `<errors><error>` (or `{"errors": [...]}`), with Basic's challenge on a 401."""
    assert answer.status == status, (answer.status, answer.body[:500])
    if (fmt or "xml") == "xml":
        assert answer.header("Content-Type") == XML, answer.headers
        assert answer.body.startswith(DECLARATION), answer.body[:200]
        root = answer.xml()
        assert root.tag == "errors" and len(root) >= 1
        assert all(child.tag == "error" and child.text for child in root)
        text = "; ".join(child.text or "" for child in root)
    else:
        assert answer.header("Content-Type") == JSON, answer.headers
        document = answer.json()
        assert set(document) == {"errors"} and document["errors"]
        assert all(isinstance(item, str) for item in document["errors"])
        text = "; ".join(document["errors"])
    if status == 401:
        assert (answer.header("WWW-Authenticate") or "").startswith('Basic realm="')
    if status == 400:
        assert answer.header("Hint"), "Rails dialects' 400s carry a Hint"
    return text


def error_object(answer: Answer, status: int) -> str:
    """`{"error": {"code", "message"[, "fields"]}}`, the canonical error object."""
    assert answer.status == status, (answer.status, answer.body[:500])
    assert answer.header("Content-Type") == JSON, answer.headers
    document = answer.json()
    assert set(document) == {"error"}
    error = document["error"]
    assert set(error) <= {"code", "message", "fields"}, error
    assert isinstance(error["message"], str) and error["message"]
    fields = error.get("fields", {})
    return str(error["message"]) + "".join(f"; {k} {v}" for k, v in fields.items())


def with_members(body: bytes, members: Mapping[str, object]) -> bytes:
    """`body` (one XML or JSON document) with `members` set: a dotted name is nested
    (`Invoice.Type`), an XML value is its text (flags as `true`/`false`), a JSON value is
    written as its type (Decimal as an exact number)."""
    if body.lstrip().startswith(b"<"):
        root = etree.fromstring(body)
        for name, value in members.items():
            element = root
            for part in name.split("."):
                child = element.find(part)
                element = child if child is not None else etree.SubElement(element, part)
            element.text = str(value).lower() if isinstance(value, bool) else str(value)
        return etree.tostring(root)
    document = json.loads(body, parse_float=Decimal)
    for name, value in members.items():
        *parents, last = name.split(".")
        target = document
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return decimal_json(document)


def decimal_json(fields: Mapping[str, Any]) -> bytes:
    """JSON text in which Decimal values are written as exact number literals."""
    numbers = {key: value for key, value in fields.items() if isinstance(value, Decimal)}
    plain = {key: value for key, value in fields.items() if key not in numbers}
    text = json.dumps(plain)
    extra = ", ".join(f"{json.dumps(key)}: {value}" for key, value in numbers.items())
    if extra:
        text = text[:-1] + (", " if plain else "") + extra + "}"
    return text.encode()
