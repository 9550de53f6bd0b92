"""QuickBooks Online's own Python client (python-quickbooks, with intuit-oauth's AuthClient)
against a real gateway process, on both stores, and a Harvest XML client beside it."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from intuitlib.client import AuthClient  # type: ignore[import-untyped]
from intuitlib.exceptions import AuthClientError  # type: ignore[import-untyped]
from lxml import etree
from quickbooks import QuickBooks  # type: ignore[import-untyped]
from quickbooks.exceptions import (  # type: ignore[import-untyped]
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    UnsupportedException,
    ValidationException,
)
from quickbooks.objects.base import LinkedTxn, MetaData, Ref  # type: ignore[import-untyped]
from quickbooks.objects.payment import Payment, PaymentLine  # type: ignore[import-untyped]

from dialects.testing.quickbooks import realm_id

from ..conftest import ENGINES
from ..http.server import ADMIN_TOKEN, Server, engine_database, write_config
from ..support import basic

HARVEST = basic("acme@example.com", "acme-harvest")
REALM = realm_id("acme")
CLIENT, SECRET, REFRESH = (
    "acme-quickbooks-client",
    "acme-quickbooks-secret",
    "acme-quickbooks-refresh",
)


@dataclass
class Live:
    server: Server
    invoices: int = 0


@pytest.fixture(scope="module", params=ENGINES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp(f"quickbooks-{request.param}")
    database = engine_database(request, directory, "quickbooks")
    server = Server(write_config(directory), database, directory / "qbo.log").wait_ready()
    try:
        yield Live(server)
        output = server.output()
        assert "unexpected error" not in output and "Traceback" not in output, output[-3000:]
    finally:
        server.stop()


@pytest.fixture
def qb(live: Live, monkeypatch: pytest.MonkeyPatch) -> QuickBooks:
    """The client as an app would make it: an AuthClient reading the gateway's discovery
    document, refreshing its token at the gateway's token endpoint (plain http allowed)."""
    monkeypatch.setitem(os.environ, "OAUTHLIB_INSECURE_TRANSPORT", "1")
    auth = AuthClient(
        CLIENT, SECRET, "http://127.0.0.1/callback",
        environment=f"{live.server.url}/.well-known/openid_configuration",
    )  # fmt: skip
    client = QuickBooks(auth_client=auth, refresh_token=REFRESH, company_id=REALM, minorversion=75)
    client.api_url_v3 = f"{live.server.url}/v3"
    return client


def call(live: Live, method: str, path: str, body: Any = None, headers: Any = None) -> Any:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(
        live.server.url + path, data=data, method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def admin(live: Live, method: str, path: str, body: Any = None) -> Any:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return json.loads(call(live, method, path, body, auth)[1])


def invoice(live: Live, total: str, customer: str | None = "58") -> int:
    live.invoices += 1
    body: dict[str, Any] = {
        "tenant": "acme", "number": f"QB-{live.invoices}", "currency": "USD", "total": total,
        "issued_on": "2026-01-01", "due_on": "2999-12-31",
    }  # fmt: skip
    if customer is not None:
        body["customer"] = customer
    return int(admin(live, "POST", "/gateway/v1/invoices", body)["id"])


def due(live: Live, invoice_id: int) -> Decimal:
    return Decimal(admin(live, "GET", f"/gateway/v1/invoices/{invoice_id}")["due_amount"])


def payment(lines: list[tuple[int, str]], *, customer: str = "58", total: str | None = None,
            date: str = "2026-11-20", note: str | None = None) -> Payment:  # fmt: skip
    made = Payment()
    made.TxnDate = date
    made.CustomerRef = Ref()
    made.CustomerRef.value = customer
    made.TotalAmt = float(total or sum(Decimal(a) for _, a in lines))
    made.PrivateNote = note
    for invoice_id, amount in lines:
        line = PaymentLine()
        line.Amount = float(amount)
        link = LinkedTxn()
        link.TxnId = str(invoice_id)
        link.TxnType = "Invoice"
        line.LinkedTxn.append(link)
        made.Line.append(line)
    return made


def harvest_list(live: Live, invoice_id: int) -> list[dict[str, str | None]]:
    _, body = call(live, "GET", f"/invoices/{invoice_id}/payments", None,
                   {**HARVEST, "Accept": "application/xml"})  # fmt: skip
    root = etree.fromstring(body)
    return [{child.tag: child.text for child in item} for item in root]


# --- the library's own flows ----------------------------------------------------------------


def test_one_invoice_created_and_read_back(live: Live, qb: QuickBooks) -> None:
    first = invoice(live, "500.00")
    made = payment([(first, "120.50")], note="cheque 1001").save(qb=qb)
    assert (made.SyncToken, made.TotalAmt, made.UnappliedAmt) == ("0", 120.5, 0)
    assert made.CustomerRef.value == "58" and made.PrivateNote == "cheque 1001"
    read = Payment.get(made.Id, qb=qb)
    assert read.Id == made.Id and read.TxnDate == "2026-11-20"
    assert [(line.Amount, line.LinkedTxn[0].TxnId) for line in read.Line] == [(120.5, str(first))]
    assert due(live, first) == Decimal("379.50")


def test_two_invoices_one_payment(live: Live, qb: QuickBooks) -> None:
    first, second = invoice(live, "300.00"), invoice(live, "200.00")
    made = payment([(first, "100.00"), (second, "30.00")]).save(qb=qb)
    read = Payment.get(made.Id, qb=qb)
    assert read.TotalAmt == 130.0 and read.UnappliedAmt == 0
    links = [(line.Amount, line.LinkedTxn[0].TxnId) for line in read.Line]
    assert links == [(100.0, str(first)), (30.0, str(second))]
    assert (due(live, first), due(live, second)) == (Decimal("200.00"), Decimal("170.00"))


def test_query_by_date_and_by_customer(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "900.00", customer="77")
    early = payment([(target, "10.00")], customer="77", date="2026-03-01").save(qb=qb)
    late = payment([(target, "20.00")], customer="77", date="2026-03-09").save(qb=qb)
    by_date = Payment.filter(TxnDate="2026-03-09", qb=qb)
    assert late.Id in [p.Id for p in by_date] and early.Id not in [p.Id for p in by_date]
    mine = Payment.where("CustomerRef = '77'", order_by="TxnDate DESC", qb=qb)
    assert [p.Id for p in mine] == [late.Id, early.Id]
    window = Payment.where("TxnDate >= '2026-03-01' AND TxnDate < '2026-03-05' AND CustomerRef IN ('77')",
                           qb=qb)  # fmt: skip
    assert [p.Id for p in window] == [early.Id]
    assert Payment.count("CustomerRef = '77'", qb=qb) == 2
    paged = Payment.where("CustomerRef = '77'", order_by="Id", start_position=2, max_results=1,
                          qb=qb)  # fmt: skip
    assert [p.Id for p in paged] == [late.Id]


def test_sparse_update_with_the_right_and_a_stale_sync_token(live: Live, qb: QuickBooks) -> None:
    made = payment([(invoice(live, "100.00"), "40.00")], note="first").save(qb=qb)
    change = Payment()
    change.Id, change.SyncToken, change.sparse = made.Id, made.SyncToken, True
    change.PrivateNote = "second"
    change.Line, change.TotalAmt = made.Line, made.TotalAmt
    updated = change.save(qb=qb)
    assert (updated.SyncToken, updated.PrivateNote, updated.TotalAmt) == ("1", "second", 40.0)
    with pytest.raises(QuickbooksException) as stale:
        change.save(qb=qb)  # still SyncToken 0
    assert stale.value.error_code == 5010 and "Stale Object Error" in stale.value.message


def test_delete_then_the_payment_is_gone(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "100.00")
    made = payment([(target, "60.00")]).save(qb=qb)
    made.delete(qb=qb)
    with pytest.raises(ObjectNotFoundException) as gone:
        Payment.get(made.Id, qb=qb)
    assert gone.value.error_code == 610
    assert due(live, target) == Decimal("100.00")


def test_void_keeps_the_payment_with_nothing_applied(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "100.00")
    made = payment([(target, "60.00")], note="oops").save(qb=qb)
    made.void(qb=qb)
    voided = Payment.get(made.Id, qb=qb)
    assert voided.TotalAmt == 0 and voided.Line == [] and "Voided" in voided.PrivateNote
    assert voided.SyncToken == "1"
    assert due(live, target) == Decimal("100.00")
    assert harvest_list(live, target) == []


def test_a_replayed_requestid_answers_the_first_answer(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "100.00")
    first = payment([(target, "25.00")]).save(qb=qb, request_id="qbo-replay-1")
    again = payment([(target, "25.00")]).save(qb=qb, request_id="qbo-replay-1")
    assert again.Id == first.Id and due(live, target) == Decimal("75.00")


# --- faults, through the library's own exception classes --------------------------------------


def test_faults_in_the_librarys_exception_classes(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "50.00")
    missing = payment([(target, "10.00")])
    missing.CustomerRef = None
    with pytest.raises(ValidationException) as required:
        missing.save(qb=qb)
    assert required.value.error_code == 2020 and "CustomerRef" in required.value.detail
    with pytest.raises(QuickbooksException) as over:
        payment([(target, "60.00")]).save(qb=qb)
    assert over.value.error_code == 6000 and "Business Validation Error" in over.value.detail
    with pytest.raises(QuickbooksException) as stranger:
        payment([(target, "10.00")], customer="99").save(qb=qb)
    assert stranger.value.error_code == 6000
    with pytest.raises(QuickbooksException) as unapplied:
        payment([(target, "10.00")], total="15.00").save(qb=qb)
    assert unapplied.value.error_code == 6000
    with pytest.raises(ObjectNotFoundException):
        Payment.get(999999, qb=qb)
    with pytest.raises(ValidationException) as unparsed:
        Payment.query("SELECT * FROM Payment WHERE", qb=qb)
    assert unparsed.value.error_code == 4000
    with pytest.raises(ValidationException) as invalid:
        Payment.where("Nonsense = '1'", qb=qb)
    assert invalid.value.error_code == 4001
    with pytest.raises(UnsupportedException):
        qb.get(f"{qb.api_url}/company/{REALM}/customer/1")
    assert due(live, target) == Decimal("50.00")


def test_a_wrong_token_and_a_wrong_refresh_token(
    live: Live, qb: QuickBooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    qb.session.token = {"access_token": "not-a-token", "token_type": "bearer"}
    with pytest.raises(AuthorizationException) as refused:
        Payment.get(1, qb=qb)
    assert refused.value.error_code == 401
    auth = AuthClient(CLIENT, SECRET, "http://127.0.0.1/callback",
                      environment=f"{live.server.url}/.well-known/openid_configuration")  # fmt: skip
    with pytest.raises(AuthClientError) as grant:
        auth.refresh(refresh_token="someone-elses")
    assert grant.value.status_code == 400 and "invalid_grant" in grant.value.content.decode()


# --- a Harvest XML client beside it ---------------------------------------------------------------


def test_harvest_sees_each_allocation_and_deleting_one_shrinks_the_payment(
    live: Live, qb: QuickBooks
) -> None:
    first, second = invoice(live, "300.00"), invoice(live, "300.00")
    made = payment([(first, "100.00"), (second, "50.00")]).save(qb=qb)
    [on_first], [on_second] = harvest_list(live, first), harvest_list(live, second)
    assert (on_first["amount"], on_second["amount"]) == ("100.0", "50.0")
    assert on_first["id"] == made.Id  # the payment's id is its first allocation's
    status, _ = call(
        live, "DELETE", f"/invoices/{second}/payments/{on_second['id']}", None, HARVEST
    )
    assert status == 200
    shrunk = Payment.get(made.Id, qb=qb)
    assert shrunk.TotalAmt == 100.0 and shrunk.SyncToken == "1"
    assert [line.LinkedTxn[0].TxnId for line in shrunk.Line] == [str(first)]
    assert (due(live, first), due(live, second)) == (Decimal("200.00"), Decimal("300.00"))


def test_quickbooks_sees_a_harvest_payment(live: Live, qb: QuickBooks) -> None:
    target = invoice(live, "300.00")
    body = (b'<payment><paid-at type="datetime">2026-07-04T00:00:00Z</paid-at>'
            b'<amount type="decimal">42.0</amount><notes>from harvest</notes></payment>')  # fmt: skip
    status, _ = call(live, "POST", f"/invoices/{target}/payments", body,
                     {**HARVEST, "Content-Type": "application/xml"})  # fmt: skip
    assert status == 201
    [found] = Payment.where(f"Line.LinkedTxn.TxnId = '{target}'", qb=qb)
    assert (found.TotalAmt, found.PrivateNote, found.TxnDate) == (
        42.0,
        "from harvest",
        "2026-07-04",
    )
    assert found.CustomerRef.value == "58"  # the invoice's customer


def test_xml_and_gzip_requests(live: Live) -> None:
    import gzip

    from dialects.testing.quickbooks import app_token

    target = invoice(live, "100.00")
    token = {"Authorization": f"Bearer {app_token(CLIENT)}"}
    body = (f'<Payment xmlns="http://schema.intuit.com/finance/v3"><TxnDate>2026-11-20</TxnDate>'
            f"<Line><Amount>5.00</Amount><LinkedTxn><TxnId>{target}</TxnId><TxnType>Invoice</TxnType>"
            f"</LinkedTxn></Line><CustomerRef>58</CustomerRef><TotalAmt>5.00</TotalAmt></Payment>")  # fmt: skip
    headers = {**token, "Content-Type": "application/xml", "Accept": "application/xml",
               "Content-Encoding": "gzip"}  # fmt: skip
    status, answer = call(live, "POST", f"/v3/company/{REALM}/payment?minorversion=75",
                          gzip.compress(body.encode()), headers)  # fmt: skip
    root = etree.fromstring(answer)
    ns = {"q": "http://schema.intuit.com/finance/v3"}
    assert status == 200 and root.findtext("q:Payment/q:TotalAmt", namespaces=ns) == "5.00"
    try:
        call(live, "POST", f"/v3/company/{REALM}/payment", b"<Payment><TotalAmt>1</TotalAmt></Payment>",
             {**token, "Content-Type": "application/xml", "Accept": "application/xml"})  # fmt: skip
    except urllib.error.HTTPError as refused:
        fault = etree.fromstring(refused.read())
        assert refused.code == 400
        kind, error = fault.find("q:Fault", ns), fault.find("q:Fault/q:Error", ns)
        assert kind is not None and kind.get("type") == "ValidationFault"
        assert error is not None and error.get("code") == "2020"
    else:
        raise AssertionError("a payment without CustomerRef was taken")


def test_server_owned_fields_in_a_create_change_nothing(live: Live, qb: QuickBooks) -> None:
    """What the server owns (SyncToken, MetaData, UnappliedAmt) is read from no create."""
    target = invoice(live, "100.00")
    claimed = payment([(target, "10.00")])
    claimed.SyncToken, claimed.UnappliedAmt = 7, 90
    claimed.MetaData = MetaData()
    claimed.MetaData.CreateTime = claimed.MetaData.LastUpdatedTime = "2000-01-01T00:00:00-08:00"
    made = claimed.save(qb=qb)
    assert (made.SyncToken, made.UnappliedAmt, made.TotalAmt) == ("0", 0, 10.0)
    assert made.MetaData.CreateTime[:4] != "2000" and due(live, target) == Decimal("90.00")


def test_a_requestid_replay_is_the_first_answer_byte_for_byte(live: Live) -> None:
    from dialects.testing.quickbooks import app_token

    target = invoice(live, "100.00")
    token = {"Authorization": f"Bearer {app_token(CLIENT)}", "Accept": "application/json"}
    body = {"CustomerRef": {"value": "58"}, "TotalAmt": 5,
            "Line": [{"Amount": 5, "LinkedTxn": [{"TxnId": str(target), "TxnType": "Invoice"}]}]}  # fmt: skip
    path = f"/v3/company/{REALM}/payment?minorversion=75&requestid=raw-replay-1"
    first = urllib.request.urlopen(urllib.request.Request(
        live.server.url + path, json.dumps(body).encode(), {**token, "Content-Type": "application/json"},
        method="POST"), timeout=10)  # fmt: skip
    again = urllib.request.urlopen(urllib.request.Request(
        live.server.url + path, json.dumps(body).encode(), {**token, "Content-Type": "application/json"},
        method="POST"), timeout=10)  # fmt: skip
    assert again.read() == first.read()
    assert again.headers["Idempotent-Replayed"] == "true" and due(live, target) == Decimal("95.00")


@pytest.mark.parametrize(
    "spelling", ["operation=void", "include=void", "operation=update&include=void"]
)
def test_every_void_spelling_voids(live: Live, spelling: str) -> None:
    from dialects.testing.quickbooks import app_token

    target = invoice(live, "100.00")
    headers = {"Authorization": f"Bearer {app_token(CLIENT)}", "Accept": "application/json"}
    line = {"Amount": 7, "LinkedTxn": [{"TxnId": str(target), "TxnType": "Invoice"}]}
    made = call(live, "POST", f"/v3/company/{REALM}/payment",
                {"CustomerRef": {"value": "58"}, "TotalAmt": 7, "Line": [line]}, headers)  # fmt: skip
    created = json.loads(made[1])["Payment"]
    voiding = {"Id": created["Id"], "SyncToken": created["SyncToken"], "sparse": True}
    status, body = call(live, "POST", f"/v3/company/{REALM}/payment?{spelling}", voiding, headers)
    voided = json.loads(body)["Payment"]
    assert status == 200 and (voided["TotalAmt"], voided["Line"]) == (0, [])
    assert voided["SyncToken"] == "1" and voided["PrivateNote"] == "Voided"
    assert due(live, target) == Decimal("100.00")
