"""A dialect shipped as its own package: installed through its entry point, served, gridded.

The package is `tests/fixtures/tallybook` (its own pyproject, module, test support).
It is installed with pip into a temporary directory, never into the environment, and
that directory is put on the path of the processes that should see it: a gateway
process serving it, and a pytest run of the registry-driven record/read grid and the
proxy's caller x backend grid, which pick it up with no edit anywhere else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import dialects

from ..conftest import ENGINES
from ..http.server import Server
from ..security import test_json as hostile_json
from ..security import test_money as money
from ..support import basic, tenant_config

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tallybook"
ADMIN = {"Authorization": "Bearer plug-in-admin"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture package pip-installed into a directory of its own."""
    work = tmp_path_factory.mktemp("tallybook")
    source = shutil.copytree(FIXTURE, work / "source")  # the build leaves files behind
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert (target / "tallybook" / "__init__.py").exists()
    assert list(target.glob("tallybook_dialect-*.dist-info/entry_points.txt"))
    return target


def environment(site: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(site), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def request(url: str, method: str, path: str, headers: dict[str, str],
            body: Any = None) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            text = response.read()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read())


@pytest.fixture(scope="module")
def server(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("served")
    tenant = {**tenant_config("acme"), "tallybook": {"keys": [{"key": "acme-tally"}]}}
    config = directory / "config.yaml"
    raw = {"admin_token": "plug-in-admin", "server": {"access_log": False},
           "tenants": {"acme": tenant}}  # fmt: skip
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    process = Server(config, directory / "db.sqlite", directory / "log", environment(installed))
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def test_the_installed_dialect_is_served_at_its_own_paths(server: Server) -> None:
    invoice = {"tenant": "acme", "number": "TB-1", "currency": "EUR", "total": "100.00",
               "issued_on": "2026-01-01", "due_on": "2999-12-31"}  # fmt: skip
    status, _, created = request(server.url, "POST", "/gateway/v1/invoices", ADMIN, invoice)
    assert status == 201 and created["dialect_ids"]["tallybook"] == f"tb-{created['id']}"
    key = {"x-tally-key": "acme-tally", "Content-Type": "application/json"}
    path = f"/tallybook/invoices/tb-{created['id']}/entries"

    status, headers, entry = request(server.url, "POST", path, key,
                                     {"sum": 30, "day": "2026-11-20", "memo": "plug-in"})  # fmt: skip
    status_list, _, listed = request(server.url, "GET", path, key)

    assert status == 201, entry
    assert headers["Location"] == f"/tallybook/entries/{entry['entry']}"
    assert entry == {"entry": entry["entry"], "invoice": f"tb-{created['id']}", "sum": 30,
                     "day": "2026-11-20", "memo": "plug-in"}  # fmt: skip
    assert status_list == 200 and listed == {"entries": [entry]}
    harvest = {**basic("acme@example.com", "acme-harvest"), "Accept": "application/json"}
    status, _, seen = request(server.url, "GET", f"/invoices/{created['id']}/payments", harvest)
    assert status == 200 and [p["payment"]["notes"] for p in seen] == ["plug-in"]


def test_the_installed_dialect_refuses_in_its_own_error_shape(server: Server) -> None:
    status, _, refused = request(server.url, "GET", "/tallybook/entries/tb-1",
                                 {"x-tally-key": "wrong"})  # fmt: skip
    assert (status, refused) == (401, {"problem": "Invalid x-tally-key", "fields": {}})
    status, _, missing = request(server.url, "GET", "/tallybook/nowhere", {})
    assert (status, missing) == (404, {"problem": "Not found", "fields": {}})


def test_the_installed_dialects_own_endpoint_answers_its_authenticated_callers(
    server: Server,
) -> None:
    status, _, found = request(
        server.url, "GET", "/tallybook/whoami", {"x-tally-key": "acme-tally"}
    )
    refused, _, problem = request(server.url, "GET", "/tallybook/whoami", {})
    assert (status, found) == (200, {"book": "acme", "key": "tally key"})
    assert (refused, problem) == (401, {"problem": "Missing x-tally-key", "fields": {}})


# The grids the soak run below takes the installed dialect into, on every store engine,
# with the security catalogue besides: a second run of those grids, so the quick run
# leaves it to the soak run and keeps the check that every dialect list of the suite
# takes the dialect (the test after it), which is what puts it into these grids.
GRIDS = ("tests/serving/test_smoke.py", "tests/proxy/test_grid.py",
         "tests/access/test_every_dialect.py", "tests/proxy/test_id_map.py",
         "tests/security/test_money.py", "tests/security/test_json.py",
         "tests/security/test_mass_assignment.py",
         "tests/ledger/test_due_amounts_and_statuses.py")  # fmt: skip
CATALOGUE = ("tests/security/test_abuse.py", "tests/security/test_fuzz.py")


@pytest.mark.soak
@pytest.mark.spread
def test_the_registry_driven_grids_take_the_installed_dialect(installed: Path) -> None:
    """The record/read grid, the proxy's caller x backend grid and its ids, the error,
    auth and isolation rules every dialect keeps, hostile amounts, hostile JSON and mass
    assignment run with it installed, on every store engine, and the security
    catalogue's rate limits, failed-login limits, slow clients and fuzzer too."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "-k", "tallybook", *GRIDS, *CATALOGUE],
        cwd=ROOT, env=environment(installed), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", run.stdout)
    # With n dialects, tallybook is in 2n - 1 pairs of each grid (each run on every
    # store engine), and in 2n + 1 cases of the rules (its own three, and 2(n - 1) pairs
    # with foreign credentials); the security catalogue rate-limits and times it out,
    # and limits its failed logins per identity, directly and behind a proxy (4 cases),
    # and fuzzes its 4 routes. The proxy's ids take it in 2n - 1 caller x backend pairs
    # (on every engine); a JSON dialect, it is sent every amount that has a JSON form and
    # every JSON attack (and the good members they are written around), and its create
    # claims what the server owns once; its overpayments, updates past the due amount and
    # amounts finer than the currency are refused in its own shape (on every engine).
    n = len(dialects.units()) + 1
    amounts = sum(case.json is not None for case in money.CASES)
    engines = len(ENGINES)
    expected = (3 * (2 * n - 1) * engines + 2 * n + 1 + 4 + 4
                + amounts + len(hostile_json.ATTACKS) + 1 + 1 + 3 * engines)  # fmt: skip
    assert passed is not None and int(passed.group(1)) == expected, run.stdout[-500:]


def test_every_dialect_list_of_the_suite_takes_the_installed_dialect(installed: Path) -> None:
    """The suites' one dialect list (tests/registry.py) reads the registry, and a subset
    goes by what a dialect declares: tallybook, a JSON dialect with an api key and a
    delete, is in the lists of those and in no other, with no test edited (the grids
    that run on these lists take it: the test above)."""
    lists = subprocess.run(
        [sys.executable, "-c",
         "import json; from tests import registry as r; print(json.dumps({"
         "'all': r.ALL, 'api_key': r.names(r.api_key), 'json_only': r.names(r.json_only),"
         " 'deletes': r.names(r.deletes), 'basic': r.names(r.basic_auth),"
         " 'bearer': r.names(r.bearer), 'xml': r.names(r.speaks_xml), 'rails': r.names(r.rails),"
         " 'answers_xml': r.names(r.answers_xml)}))"],
        cwd=ROOT, env=environment(installed), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert lists.returncode == 0, lists.stderr
    found = {name for name, names in json.loads(lists.stdout).items() if "tallybook" in names}
    assert found == {"all", "api_key", "json_only", "deletes"}


def test_a_misspelt_section_stops_the_gateway_with_one_line(
    installed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    raw = {"admin_token": "t", "tenants": {"acme": {"tallybok": {"keys": []}}}}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "--config", str(config)],
        env=environment(installed), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1, run.stderr
    assert "tenants.acme.tallybok: Extra inputs are not permitted" in run.stderr
    assert "(unknown dialect 'tallybok'; did you mean 'tallybook'?)" in run.stderr
