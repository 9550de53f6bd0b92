"""A backend's error message with characters XML cannot hold still gives the caller XML."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from lxml import etree

from dialects import testing

from ..clients import CLIENTS
from ..registry import names, speaks_xml
from .conftest import ProxyFactory
from .fake import FakeBackend, raw_answer
from .test_faults import proxied, shaped

pytestmark = pytest.mark.stores

HOSTILE = "bad \x1b[31mnotes\x07 here\x00"


@pytest.mark.parametrize("caller", names(speaks_xml))
async def test_a_backend_message_with_escape_and_bell_is_well_formed_xml(
    make_proxy: ProxyFactory, fake: FakeBackend, caller: str
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    error = {"error": {"code": "validation", "message": HOSTILE}}
    fake.answer = raw_answer(json.dumps(error).encode(), 400)

    listing = testing.support(caller).listing("acme", invoice)
    as_xml = replace(listing, headers={**listing.headers, "Accept": "application/xml"})
    reply = await CLIENTS[caller](proxy).send(as_xml)

    etree.fromstring(reply.body, etree.XMLParser(recover=False))  # well-formed
    status, message = shaped(caller, reply)
    assert status == 400
    assert "bad \ufffd[31mnotes\ufffd here\ufffd" in message
