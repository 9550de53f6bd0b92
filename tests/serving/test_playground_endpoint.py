"""The translation playground's endpoint, `POST /gateway/v1/translate` (its page in a real
browser: test_playground_browser.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import dialects

from ..conftest import Client
from ..processes.test_command_line import HARVEST_PAYMENT, gateway

CREDIT_NOTE = "<invoice-payment><amount>12.34</amount><type>CREDIT_NOTE</type></invoice-payment>"


async def translate(client: Client, **request: Any) -> tuple[int, Any]:
    reply = await client.post("/gateway/v1/translate", json=request)
    return reply.status, await reply.json()


def every_other(source: str, fmt: str) -> set[tuple[str, str]]:
    """Each (dialect, format) the registry has, but the one translated from."""
    pairs = {(d.name, str(f)) for d in dialects.DIALECTS.values() for f in d.formats}
    return pairs - {(source, fmt)}


async def test_a_payment_comes_back_in_every_other_dialect_and_format(client: Client) -> None:
    status, answer = await translate(
        client, document=HARVEST_PAYMENT.decode(), **{"from": "harvest"}
    )

    assert status == 200
    assert (answer["from"], answer["format"], answer["count"], answer["many"]) == (
        "harvest", "xml", 1, False,
    )  # fmt: skip
    results = {(r["dialect"], r["format"]): r for r in answer["translations"]}
    assert set(results) == every_other("harvest", "xml")
    invoiless = json.loads(results["invoiless", "json"]["document"])
    assert (invoiless["amount"], invoiless["paidAt"], invoiless["notes"]) == (
        52000, "2008-02-14", "Finally.",
    )  # fmt: skip
    assert all(r["error"] is None for r in results.values())


async def test_what_a_target_cannot_carry_is_a_warning_beside_its_document(
    client: Client,
) -> None:
    status, answer = await translate(client, document=CREDIT_NOTE, **{"from": "fastbill"})

    assert status == 200
    results = {(r["dialect"], r["format"]): r for r in answer["translations"]}
    assert results["urlkey", "json"]["warnings"] == [
        "method credit_note has no urlkey equivalent; sent as no method"
    ]
    assert json.loads(results["urlkey", "json"]["document"])["amount"] == 12.34
    assert results["fastbill", "json"]["warnings"] == []


async def test_the_endpoint_translates_exactly_as_the_command_line_does(client: Client) -> None:
    status, answer = await translate(client, document=CREDIT_NOTE, **{"from": "fastbill"})
    command = gateway(
        "translate", "--from", "fastbill", "--to", "urlkey", stdin=CREDIT_NOTE.encode()
    )

    [urlkey] = [r for r in answer["translations"] if r["dialect"] == "urlkey"]
    assert status == 200 and command.returncode == 0
    assert json.loads(urlkey["document"]) == json.loads(command.stdout)
    assert command.stderr.decode() == "".join(f"warning: {w}\n" for w in urlkey["warnings"])


async def test_a_list_of_payments_stays_a_list(client: Client) -> None:
    document = (
        '<payments type="array"><payment><amount>1.5</amount><paid-at>2008-02-14</paid-at>'
        "</payment><payment><amount>2</amount></payment></payments>"
    )

    status, answer = await translate(client, document=document, **{"from": "harvest"})

    assert (status, answer["count"], answer["many"]) == (200, 2, True)
    [invoiless] = [r for r in answer["translations"] if r["dialect"] == "invoiless"]
    assert [p["amount"] for p in json.loads(invoiless["document"])] == [1.5, 2]


@pytest.mark.parametrize(
    ("request_body", "status", "fields", "message"),
    [
        (
            {"from": "harvest", "document": "<payment><amount>abc</amount></payment>"},
            422, {"amount": "is not a number"}, None,
        ),
        ({"from": "invoiless", "format": "xml", "document": "<a/>"}, 400, None,
         "invoiless does not speak xml"),
        ({"from": "harvset", "document": "{}"}, 422, {"from": "must be one of"}, None),
        ({"from": "harvest", "document": ""}, 422, {"document": "must be a non-empty string"},
         None),
        ({"from": "harvest", "document": "{}", "format": "yaml"}, 422,
         {"format": "must be xml or json"}, None),
        ({"from": "harvest", "document": "<payment><amount>1"}, 400, None, "Malformed XML"),
    ],
)  # fmt: skip
async def test_what_cannot_be_read_is_an_error_naming_the_field(
    client: Client,
    request_body: dict[str, Any],
    status: int,
    fields: dict[str, str] | None,
    message: str | None,
) -> None:
    reply = await client.post("/gateway/v1/translate", json=request_body)

    error = (await reply.json())["error"]
    assert reply.status == status, error
    for name, text in (fields or {}).items():
        assert text in error["fields"][name]
    if message is not None:
        assert message in error["message"]


async def test_a_body_that_is_not_an_object_is_refused(client: Client) -> None:
    reply = await client.post("/gateway/v1/translate", data=b"[1, 2]")

    assert reply.status == 400
    assert (await reply.json())["error"]["message"] == "Expected a JSON object"
