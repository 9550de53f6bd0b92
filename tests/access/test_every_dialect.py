"""Error paths, authentication and tenant isolation, for every dialect in the registry.

Each dialect's requests, credentials and error shape come from its own test support
(`dialects.testing`), so a dialect installed as a package is held to the same rules
with no edit here. The built-in dialects' exact messages are pinned in serving/test_error_answers.py
and test_authentication.py.
"""

from __future__ import annotations

import io

import pytest

import dialects
from dialects import testing
from dialects.testing import Request

from ..conftest import Client
from ..registry import ALL
from ..support import new_invoice
from .helpers import NEVER_INVOICE, NEVER_PAYMENT, Answer, send

DIALECTS = ALL


async def call(
    client: Client, request: Request, headers: dict[str, str], body: bytes | None = None
) -> Answer:
    sent = body if body is not None else request.body
    return await send(client, request.method, request.path, headers=headers, body=sent)


async def oversized(client: Client, request: Request, headers: dict[str, str]) -> Answer:
    """The create with a body past the 1 MiB limit, streamed (aiohttp warns of raw bytes)."""
    body = io.BytesIO(b" " * (1024 * 1024 + 1))
    async with client.request(request.method, request.path, headers=headers, data=body) as r:
        return Answer(r.status, r.headers, await r.read())


def shaped(dialect: str, answer: Answer, status: int, kind: str) -> str:
    seen = testing.Answer(answer.status, dict(answer.headers), answer.body)
    return testing.support(dialect).error(seen, status, kind)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_own_credentials_record_and_read_and_no_credentials_are_401(
    client: Client, dialect: str
) -> None:
    support = testing.support(dialect)
    invoice = (await new_invoice(client))["id"]
    create = support.create("acme", invoice, "10.00")

    anonymous = await call(client, create, dict(create.headers))
    created = await call(client, create, {**support.credentials("acme"), **create.headers})

    shaped(dialect, anonymous, 401, "unauthenticated")
    assert created.status == support.create_status, created.body
    listed = await call(client, support.listing("acme", invoice), support.credentials("acme"))
    assert listed.status == 200
    assert [view["amount"] for view in support.views(listed.body)] == [10]


PAIRS = [(d, o) for d in DIALECTS for o in DIALECTS if d != o]


@pytest.mark.parametrize(("dialect", "other"), PAIRS, ids=[f"{d}+{o}" for d, o in PAIRS])
async def test_another_dialects_credentials_open_nothing(
    client: Client, dialect: str, other: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    request = testing.support(dialect).listing("acme", invoice)

    answer = await call(client, request, testing.support(other).credentials("acme"))

    assert answer.status in (401, 403), answer.body
    shaped(
        dialect, answer, answer.status, "unauthenticated" if answer.status == 401 else "forbidden"
    )


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_another_tenants_invoice_and_unknown_ids_are_404(
    client: Client, dialect: str
) -> None:
    support = testing.support(dialect)
    theirs = (await new_invoice(client, tenant="globex"))["id"]
    own = support.credentials("acme")

    for listing in (support.listing("acme", theirs), support.listing("acme", NEVER_INVOICE)):
        if support.lists_by_search:  # a search naming an unknown invoice finds nothing
            found = await call(client, listing, own)
            assert (found.status, support.views(found.body)) == (200, []), found.body
    for request in (
        *(() if support.lists_by_search else (support.listing("acme", theirs),)),
        *(() if support.lists_by_search else (support.listing("acme", NEVER_INVOICE),)),
        support.get("acme", theirs, NEVER_PAYMENT),
        support.delete("acme", theirs, NEVER_PAYMENT),
    ):
        if request is None:
            continue
        answer = await call(client, request, {**own, **request.headers})
        shaped(dialect, answer, 404, "not_found")
    create = support.create("acme", theirs, "10.00")
    refused = await call(client, create, {**own, **create.headers})
    shaped(dialect, refused, *support.unknown_invoice)
    state = await send(client, "GET", f"/gateway/v1/invoices/{theirs}",
                       headers={"Authorization": "Bearer test-admin-token"})  # fmt: skip
    assert state.json()["payments"] == []


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_refusals_before_the_handler_are_in_the_dialects_shape(
    client: Client, dialect: str
) -> None:
    support = testing.support(dialect)
    invoice = (await new_invoice(client))["id"]
    own = support.credentials("acme")
    create = support.create("acme", invoice, "10.00")
    prefix = dialects.unit(dialect).prefixes[0]

    unacceptable = await call(
        client, support.listing("acme", invoice), {**own, "Accept": "image/png"}
    )
    wrong_type = await call(client, create, {**own, "Content-Type": "image/png"})
    too_large = await oversized(client, create, {**own, **create.headers})
    nowhere = await send(client, "GET", prefix.rstrip("/") + "/no/such/path", headers=own)
    malformed = await call(client, create, {**own, **create.headers}, b"{<")

    shaped(dialect, unacceptable, 406, "not_acceptable")
    shaped(dialect, wrong_type, 415, "media_type")
    shaped(dialect, too_large, 413, "too_large")
    shaped(dialect, nowhere, 404, "not_found")
    assert malformed.status == 400, malformed.body
    shaped(dialect, malformed, 400, "bad_request")
