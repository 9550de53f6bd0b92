"""The API documents: valid OpenAPI 3.1, one per registered dialect, and held to by the server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

import dialects
from dialects import testing
from gateway.serving import admin, openapi
from gateway.serving.openapi import path_of

from ..conftest import Client
from ..http.server import Server, running
from ..registry import ALL, json_only, names

JSON_DIALECTS = names(json_only)
ADMIN_TOKEN = "openapi-admin-token"


async def document(client: Client, name: str) -> Any:
    reply = await client.get(f"/gateway/v1/openapi/{name}.json")
    assert reply.status == 200, await reply.text()
    assert reply.headers["Content-Type"].startswith("application/json")
    return await reply.json()


@pytest.mark.parametrize("name", openapi.names())
async def test_each_document_is_valid_openapi_3_1(client: Client, name: str) -> None:
    found = await document(client, name)

    validate(found)
    assert found["openapi"] == "3.1.0"


@pytest.mark.parametrize("name", ALL)
async def test_a_dialect_document_has_every_route_and_its_success_status(
    client: Client, name: str
) -> None:
    unit = dialects.unit(name)
    found = await document(client, name)

    for route in unit.routes:
        operation = found["paths"][path_of(route.path)][route.method.lower()]
        assert str(route.status) in operation["responses"]
        assert "400" in operation["responses"] and "401" in operation["responses"]
    if unit.token_endpoint is not None:
        assert "post" in found["paths"][unit.token_endpoint.path]


async def test_a_document_names_what_a_dialect_tells_beside_its_payments(
    client: Client,
) -> None:
    """Xero's answers carry the invoice's summary and the account's name, where known."""
    found = await document(client, "xero")
    answer = found["paths"]["/api.xro/2.0/Payments/{payment_id}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]
    payment = schema["properties"]["Payments"]["items"]["properties"]
    invoice = payment["Invoice"]["properties"]
    assert {"InvoiceNumber", "AmountDue", "CurrencyCode", "Status"} <= set(invoice)
    assert "Name" in payment["Account"]["properties"]


async def test_the_admin_document_has_every_admin_route(client: Client) -> None:
    found = await document(client, "admin")

    for route in admin.ROUTES:
        assert route.method.lower() in found["paths"][path_of(route.path)], route.path


async def test_an_unknown_document_is_404_naming_those_there_are(client: Client) -> None:
    reply = await client.get("/gateway/v1/openapi/nope.json")

    assert reply.status == 404
    assert "admin" in (await reply.json())["error"]["message"]


# --- schemathesis against a real gateway ---------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("openapi")
    tenant = {name: support.section("acme") for name, support in testing.supports().items()}
    raw = {
        "admin_token": ADMIN_TOKEN,
        "token_secret": "openapi-token-secret",
        "server": {
            "access_log": False,
            "auth_failures": None,
            "auth_address_failures": None,
            "auth_global_failures": None,
        },
        "tenants": {"acme": tenant},
    }
    config = directory / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with running(config, directory / "x.db", directory / "x.log") as server:
        yield server.wait_ready()


def credentials(name: str) -> dict[str, str]:
    if name == openapi.ADMIN:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return testing.support(name).credentials("acme")


# The quick run: every case of the coverage phase and five fuzzed ones per operation, a
# fixed amount of work, however busy the machine. The soak run fuzzes for up to a minute.
QUICK = ("--max-examples=5",)
SOAK = ("--max-examples=100", "--max-time=60")


@pytest.mark.spread
@pytest.mark.parametrize("name", [*JSON_DIALECTS, openapi.ADMIN])
@pytest.mark.parametrize(
    "budget",
    [pytest.param(QUICK, id="quick"), pytest.param(SOAK, id="long", marks=pytest.mark.soak)],
)
def test_schemathesis_finds_no_5xx_and_no_answer_off_its_document(
    served: Server, name: str, budget: tuple[str, ...], tmp_path: Path
) -> None:
    headers = [f"--header={k}: {v}" for k, v in credentials(name).items()]
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run",
            f"{served.url}/gateway/v1/openapi/{name}.json", f"--url={served.url}", *headers,
            "--checks=not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--phases=examples,coverage,fuzzing", *budget,
            "--workers=1", "--seed=1", "--no-color", "--generation-database=none",
        ],
        capture_output=True, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip

    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output[-6000:] + result.stderr.decode(errors="replace")
    assert " passed" in output
