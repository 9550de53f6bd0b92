"""The translation playground's page in headless Chromium, against a real gateway process.

Apart from the endpoint's tests (test_playground_endpoint.py): sync Playwright keeps an event loop
running for as long as its browser is open, which no async test may share.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

import dialects

from ..http.server import Server, running, write_config
from .test_playground_endpoint import CREDIT_NOTE, every_other

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; .ci/run installs it
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


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
