"""The translation playground: `POST /gateway/v1/translate`, and its page in a real browser."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

import dialects

from ..conftest import Client
from .server import Server, running, write_config
from .test_cli import HARVEST_PAYMENT, gateway

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; .ci/run installs it
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
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


# --- the page, in headless Chromium ---------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("playground")
    with running(write_config(directory), directory / "x.db", directory / "x.log") as server:
        yield server.wait_ready()


def chromium(path: str = CHROMIUM, environ: Mapping[str, str] = os.environ) -> str:
    """The browser the page tests drive. Where there is none they are skipped, with the
    reason, on a developer's machine; under CI (CI=true) its absence is a failure."""
    if os.access(path, os.X_OK):
        return path
    reason = f"no Chromium at {path} for the playground page tests (apt-get install chromium)"
    if environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def test_without_chromium_the_page_tests_skip_with_a_reason_except_under_ci() -> None:
    missing = "/nonexistent/chromium"

    with pytest.raises(pytest.skip.Exception, match="no Chromium at /nonexistent/chromium"):
        chromium(missing, environ={})
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium(missing, environ={"CI": "true"})
    assert chromium(CHROMIUM) == CHROMIUM  # here it is installed: the page tests run


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    executable = chromium()
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )  # fmt: skip
        yield context
        context.close()


def open_playground(browser: BrowserContext, server: Server) -> Page:
    page = browser.new_page()
    page.goto(f"{server.url}/gateway/playground")
    return page


def submit(page: Page, source: str, fmt: str, document: str) -> None:
    page.select_option("#source", source)
    page.select_option("#format", fmt)
    page.fill("#document", document)
    page.click("#translate")


def test_the_page_lists_every_dialect_and_the_formats_of_the_one_chosen(
    browser: BrowserContext, served: Server
) -> None:
    page = open_playground(browser, served)

    assert page.title() == "Translation playground · invoice payments gateway"
    sources = page.eval_on_selector_all("#source option", "options => options.map(o => o.value)")
    assert sources == list(dialects.DIALECTS)
    page.select_option("#source", "invoiless")
    formats = page.eval_on_selector_all("#format option", "options => options.map(o => o.value)")
    assert formats == list(dialects.get("invoiless").formats)


def test_pasting_a_payment_shows_it_in_every_other_dialect_with_warnings(
    browser: BrowserContext, served: Server
) -> None:
    page = open_playground(browser, served)

    submit(page, "fastbill", "xml", CREDIT_NOTE)
    page.wait_for_selector("#results .card")

    cards = page.query_selector_all("#results .card")
    shown = {(c.get_attribute("data-dialect"), c.get_attribute("data-format")) for c in cards}
    assert shown == every_other("fastbill", "xml")
    urlkey = '.card[data-dialect="urlkey"]'
    assert json.loads(page.inner_text(f"{urlkey} .document"))["amount"] == 12.34
    assert page.inner_text(f"{urlkey} .warnings") == (
        "method credit_note has no urlkey equivalent; sent as no method"
    )
    assert "read as fastbill xml" in page.inner_text("#status")


def test_an_invalid_document_shows_the_error_and_the_field(
    browser: BrowserContext, served: Server
) -> None:
    page = open_playground(browser, served)

    submit(page, "harvest", "xml", "<payment><amount>abc</amount></payment>")
    page.wait_for_selector("#problem:not([hidden])")

    assert "amount: is not a number" in page.inner_text("#problem")
    assert page.query_selector_all("#results .card") == []
