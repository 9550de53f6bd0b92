"""The command line: translate between dialects, hash a secret, refuse a bad config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

import dialects
from gateway.access import passwords

from ..logscan import OUTPUTS

HARVEST_PAYMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<payment>\n"
    b'  <amount type="decimal">52000.0</amount>\n'
    b'  <paid-at type="datetime">2008-02-14T00:00:00Z</paid-at>\n'
    b"  <notes>Finally.</notes>\n"
    b"</payment>\n"
)


def gateway(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        input=stdin,
        capture_output=True,
        timeout=30,
        cwd=cwd,
        check=False,
    )
    OUTPUTS.append(result.stderr.decode(errors="replace"))
    return result


def assert_clean_failure(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    """Exit `code`, nothing on stdout, one `error:` message on stderr and no traceback."""
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert result.stdout == b""
    assert "Traceback" not in stderr
    assert stderr.startswith("error: "), stderr
    return stderr


def test_translate_harvest_to_urlkey_keeps_amount_notes_and_date() -> None:
    result = gateway("translate", "--from", "harvest", "--to", "urlkey", stdin=HARVEST_PAYMENT)

    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert json.loads(result.stdout) == {
        "tds": 0,
        "transactionCharge": 0,
        "amount": 52000,
        "paymentDate": "2008-02-14T00:00:00.000Z",
        "paymentMethod": None,
        "notes": "Finally.",
        "refId": None,
        "business": None,
        "payerBusiness": None,
        "isApproved": True,
        "isRemoved": False,
        "appId": None,
        "_id": None,
    }


def test_translate_urlkey_to_harvest_writes_rails_xml() -> None:
    document = b'{"amount": 3000.5, "paymentDate": "2024-08-18T12:08:38.000Z", "notes": "n"}'

    result = gateway("translate", "--from", "urlkey", "--to", "harvest", stdin=document)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    root = etree.fromstring(result.stdout)
    values = {str(child.tag): (child.get("type"), child.text) for child in root}
    assert values["amount"] == ("decimal", "3000.5")
    assert values["paid-at"] == ("datetime", "2024-08-18T12:08:38Z")
    assert values["notes"] == (None, "n")


def test_translate_a_list_of_payments() -> None:
    document = (
        b'<payments type="array"><payment><amount>1.5</amount>'
        b"<paid-at>2008-02-14</paid-at></payment></payments>"
    )

    result = gateway("translate", "--from", "harvest", "--to", "invoiless", stdin=document)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "id": None,
            "invoice": None,
            "amount": 1.5,
            "method": None,
            "paidAt": "2008-02-14",
            "notes": None,
            "sendNotification": False,
        }
    ]


@pytest.mark.parametrize(
    ("source", "document", "method"),
    [
        (
            "fastbill",
            b"<invoice-payment><amount>12.34</amount><type>CREDIT_NOTE</type></invoice-payment>",
            "credit_note",
        ),
        (
            "fastbill",
            b"<invoice-payment><amount>12.34</amount><type>COUPON</type></invoice-payment>",
            "coupon",
        ),
        ("invoiless", b'{"amount": 12.34, "method": "Other"}', "other"),
    ],
)
def test_translate_a_method_urlkey_lacks_warns_on_stderr(
    source: str, document: bytes, method: str
) -> None:
    result = gateway("translate", "--from", source, "--to", "urlkey", stdin=document)

    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == (
        f"warning: method {method} has no urlkey equivalent; sent as no method\n"
    )
    translated = json.loads(result.stdout)
    assert (translated["amount"], translated["paymentMethod"]) == (12.34, None)


# Dialects with no place for a tax withheld or a fee (urlKey's tds, transactionCharge).
NO_MONEY_FIELDS = sorted(
    name for name, codec in dialects.DIALECTS.items() if "tax_withheld" not in codec.settable
)
URLKEY_PAYMENT = {"amount": 100, "paymentMethod": "UPI", "paymentDate": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize("target", NO_MONEY_FIELDS)
@pytest.mark.parametrize("money", ["tds", "transactionCharge"])
def test_translate_refuses_money_the_target_cannot_carry(target: str, money: str) -> None:
    document = json.dumps({**URLKEY_PAYMENT, money: 2.5}).encode()

    result = gateway("translate", "--from", "urlkey", "--to", target, stdin=document)

    assert_clean_failure(result, 1)
    assert result.stderr.decode() == (
        f"error: {target} cannot carry this money; refused so none is lost"
        f" ({money}: has no place in {target})\n"
    )


def test_translate_refuses_a_list_when_one_payment_would_lose_money() -> None:
    payments = [URLKEY_PAYMENT, {**URLKEY_PAYMENT, "tds": 1}]
    document = json.dumps({"payments": payments}).encode()

    result = gateway("translate", "--from", "urlkey", "--to", "harvest", stdin=document)

    stderr = assert_clean_failure(result, 1)
    assert "(tds: has no place in harvest)" in stderr


def test_translate_takes_zero_money_and_warns_of_other_fields_it_drops() -> None:
    document = json.dumps({**URLKEY_PAYMENT, "tds": 0, "refId": "R-1", "notes": "n"}).encode()

    result = gateway("translate", "--from", "urlkey", "--to", "harvest", stdin=document)

    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == "warning: refId has no place in harvest; dropped\n"
    assert etree.fromstring(result.stdout).findtext("notes") == "n"


def test_translate_into_fastbill_json_on_request() -> None:
    result = gateway(
        "translate", "--from", "invoiless", "--to", "fastbill", "--format", "json",
        stdin=b'{"amount": 7, "method": "Card", "paidAt": "2024-01-15"}',
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "invoice_payment": {
            "id": None,
            "created": None,
            "invoice_id": None,
            "date": "2024-01-15",
            "amount": 7.0,
            "comment": None,
            "type": "BANK_CARD",
        }
    }


@pytest.mark.parametrize(
    ("source", "document", "expected"),
    [
        ("harvest", b"not a payment", "Malformed JSON"),
        ("harvest", b"<payment><amount>1", "Malformed XML"),
        ("harvest", b"<invoice/>", "document, got <invoice>"),
        ("invoiless", b"<payment/>", "invoiless does not speak xml"),
        ("urlkey", b"[1, 2]", "Expected a JSON object for a payment"),
        ("harvest", b"", "Malformed JSON"),
    ],
)
def test_translate_invalid_input_fails_with_a_message_and_no_traceback(
    source: str, document: bytes, expected: str
) -> None:
    result = gateway("translate", "--from", source, "--to", "urlkey", stdin=document)

    stderr = assert_clean_failure(result, 2 if "does not speak" in expected else 1)
    assert expected in stderr


@pytest.mark.parametrize(
    ("source", "document", "expected"),
    [
        (
            "harvest",
            b"<payment><amount>abc</amount><paid-at>2008-02-14</paid-at></payment>",
            "amount: is not a number",
        ),
        (
            "fastbill",
            b"<invoice-payment><amount>1</amount><type>CHEQUE</type></invoice-payment>",
            "method: must be one of",
        ),
        (
            "invoiless",
            b'{"amount": 1.234, "method": "Cash"}',
            "amount: must have at most 2 decimal places",
        ),
        (
            "harvest",
            b'<payments type="array"><payment><amount>-1</amount></payment></payments>',
            "amount: must be greater than 0",
        ),
    ],
)
def test_translate_reports_the_field_that_is_wrong(
    source: str, document: bytes, expected: str
) -> None:
    result = gateway("translate", "--from", source, "--to", "urlkey", stdin=document)

    stderr = assert_clean_failure(result, 1)
    assert expected in stderr


def test_translate_with_an_unknown_dialect_is_a_usage_error() -> None:
    result = gateway("translate", "--from", "harvset", "--to", "urlkey", stdin=HARVEST_PAYMENT)

    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert b"invalid choice: 'harvset'" in result.stderr


async def test_hash_secret_prints_an_scrypt_hash_that_verifies() -> None:
    result = gateway("hash-secret", "--stdin", stdin=b"correct horse battery staple\n")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    stored = lines[0]
    assert stored.startswith("scrypt$16384$8$1$")
    assert await passwords.verify(stored, "correct horse battery staple")
    assert not await passwords.verify(stored, "correct horse battery stapler")


def test_hash_secret_refuses_an_empty_secret() -> None:
    result = gateway("hash-secret", "--stdin", stdin=b"\n")

    assert_clean_failure(result, 2)
    assert result.stderr == b"error: empty secret\n"


def test_missing_config_exits_2_with_an_error(tmp_path: Path) -> None:
    result = gateway("--config", "missing.yaml", cwd=tmp_path)

    assert_clean_failure(result, 2)
    assert result.stderr == b"error: cannot read missing.yaml: No such file or directory\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenants: [1, 2\n", "is not valid YAML"),
        ("- a list\n", "must be a mapping"),
        ("tenants: {}\n", "admin_token: Field required"),
        ("admin_token: x\ntenants: {}\nport: 1\n", "port: Extra inputs are not permitted"),
        (
            "admin_token: ${GATEWAY_TEST_UNSET_VARIABLE}\ntenants: {}\n",
            "config.yaml: admin_token: ${GATEWAY_TEST_UNSET_VARIABLE} is not set",
        ),
    ],
)
def test_bad_config_exits_2_with_an_error(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")

    result = gateway("--config", str(config))

    stderr = assert_clean_failure(result, 2)
    assert expected in stderr


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        (
            "--port",
            "70000",
            "command line: server.port: Input should be less than or equal to 65535",
        ),
        ("--port", "-1", "command line: server.port: Input should be greater than or equal to 0"),
    ],
)
def test_a_command_line_override_is_checked_as_the_config_file_is(
    tmp_path: Path, option: str, value: str, expected: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("admin_token: x\ntenants: {}\nserver: {port: 1}\n", encoding="utf-8")

    result = gateway("--config", str(config), option, value, cwd=tmp_path)

    stderr = assert_clean_failure(result, 2)
    assert stderr == f"error: {expected}\n"
