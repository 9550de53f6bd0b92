"""Identifiers that route a caller to a tenant are unique across tenants; stored hashes are sound."""

from __future__ import annotations

import copy
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import dialects
from dialects.unit import ApiKeyAuth, BasicAuth, BearerAuth
from gateway.config import ConfigError, hashes, parse

from ..http.server import running, write_config
from ..processes.test_command_line import assert_clean_failure, gateway
from ..registry import names
from ..support import tenant_config

UNITS = names()


def _two_tenants() -> dict[str, Any]:
    return {
        "admin_token": "token",
        "tenants": {"acme": tenant_config("acme"), "globex": tenant_config("globex")},
    }


def _get(node: Any, steps: list[str]) -> Any:
    for step in steps:
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def _set(node: Any, steps: list[str], value: Any) -> None:
    parent = _get(node, steps[:-1])
    parent[int(steps[-1]) if isinstance(parent, list) else steps[-1]] = value


def _rules() -> list[tuple[str, str, str]]:
    """Each (dialect, routing rule, concrete path) the test tenant's sections hold."""
    config = parse(_two_tenants())
    found = []
    for dialect, section in config.tenants["acme"].sections().items():
        for rule, path, _ in section.routing_values():
            found.append((dialect, rule, path))
    return found


def test_the_two_test_tenants_load() -> None:
    assert set(parse(_two_tenants()).tenants) == {"acme", "globex"}


@pytest.mark.parametrize(("dialect", "rule", "path"), _rules())
def test_a_routing_value_two_tenants_share_is_refused_naming_both(
    dialect: str, rule: str, path: str
) -> None:
    raw = _two_tenants()
    steps = path.split(".")
    shared = _get(raw["tenants"]["acme"][dialect], steps)
    _set(raw["tenants"]["globex"][dialect], steps, shared)

    with pytest.raises(ConfigError) as refused:
        parse(raw, source="config.yaml")

    assert str(refused.value) == (
        f"config.yaml: tenants.globex.{dialect}.{path} is the same as"
        f" tenants.acme.{dialect}.{path}: tenants acme and globex cannot share a value"
        " that routes a caller to its tenant"
    )
    assert str(shared) not in str(refused.value).replace(f"tenants.acme.{dialect}", "")


@pytest.mark.parametrize("dialect", UNITS)
def test_every_credential_value_that_routes_a_caller_is_declared(dialect: str) -> None:
    """The gateway routes Basic by login, api keys by the key, bearer tokens by app and
    scope: each of these a section's credentials carry is among its `routing` values."""
    section = parse(_two_tenants()).tenants["acme"].sections()[dialect]
    declared = {value for _, _, value in section.routing_values()}
    scheme = dialects.unit(dialect).caller_auth
    for credential in section.credentials():
        if isinstance(scheme, BasicAuth):
            routes = {credential.login}
        elif isinstance(scheme, ApiKeyAuth):
            routes = {credential.secret}
        else:
            assert isinstance(scheme, BearerAuth)
            routes = {credential.login, credential.scope}
        assert routes <= declared, (dialect, credential)


def test_one_hash_text_in_two_tenants_is_the_same_key() -> None:
    raw = _two_tenants()
    stored = hashes.make_hash("shared-key", salt=b"0123456789abcdef")
    for name in ("acme", "globex"):
        raw["tenants"][name]["invoiless"]["keys"][0]["key"] = stored

    with pytest.raises(ConfigError, match="tenants acme and globex cannot share"):
        parse(raw)


def test_one_tenant_may_repeat_its_own_values() -> None:
    raw = _two_tenants()
    urlkey = raw["tenants"]["acme"]["urlkey"]
    urlkey["apps"].append({**urlkey["apps"][0], "app_id": "second-app"})

    assert parse(raw).tenants["acme"].section("urlkey").business == urlkey["business"]


_GOOD = hashes.make_hash("secret", salt=b"0123456789abcdef")
_N, _R, _P, _SALT, _DIGEST = _GOOD.removeprefix("scrypt$").split("$")


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (_GOOD[:-1], "its hash is not base64"),
        (_GOOD.replace(_SALT, "not*base64"), "its salt is not base64"),
        (f"scrypt${_N}${_R}${_SALT}${_DIGEST}", "has 4 $-separated fields"),
        (_GOOD + "$x", "has 6 $-separated fields"),
        (f"scrypt$1000${_R}${_P}${_SALT}${_DIGEST}", "N must be a power of 2"),
        (f"scrypt$x${_R}${_P}${_SALT}${_DIGEST}", "N, r and p must be whole numbers"),
        (f"scrypt${_N}$0${_P}${_SALT}${_DIGEST}", "r and p must be at least 1"),
        (f"scrypt$1048576$8${_P}${_SALT}${_DIGEST}", "need more than 64 MiB"),
        (f"scrypt${_N}${_R}${_P}$${_DIGEST}", "its salt is empty"),
    ],
)
def test_a_damaged_hash_is_refused_naming_its_key(stored: str, problem: str) -> None:
    raw = _two_tenants()
    raw["tenants"]["globex"]["harvest"]["users"][0]["password"] = stored

    with pytest.raises(ConfigError) as refused:
        parse(raw, source="config.yaml")

    assert str(refused.value).startswith(
        "config.yaml: tenants.globex.harvest.users.0.password: the scrypt hash is damaged: "
    )
    assert problem in str(refused.value)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=24), st.sampled_from([2, 4, 1024, 16384]))
def test_every_hash_the_gateway_makes_is_sound(salt: bytes, cost: int) -> None:
    stored = hashes.make_hash("x", salt=salt).replace("scrypt$16384$", f"scrypt${cost}$")

    assert hashes.hash_problem(stored) is None


def test_start_up_with_shared_routing_values_is_one_line_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["tenants"]["zeta"] = copy.deepcopy(raw["tenants"]["acme"])
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = gateway("--config", "config.yaml", "--database", "sqlite://:memory:", cwd=tmp_path)

    stderr = assert_clean_failure(result, 2)
    assert stderr.count("\n") == 1
    assert "tenants acme and zeta cannot share a value that routes a caller" in stderr


@pytest.mark.parametrize("damage", ["shared", "hash"])
def test_sighup_refuses_shared_routing_values_or_a_damaged_hash(
    tmp_path: Path, damage: str
) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log", ("--log-format", "json")) as gw:
        gw.wait_ready()
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        if damage == "shared":
            raw["tenants"]["zeta"] = copy.deepcopy(raw["tenants"]["acme"])
            raw["tenants"]["zeta"]["invoiless"]["keys"][0]["key"] = "zeta-key"
            expected = "tenants acme and zeta cannot share"
        else:
            raw["tenants"]["acme"]["invoiless"]["keys"][0]["key"] = _GOOD[:-1]
            expected = "tenants.acme.invoiless.keys.0.key: the scrypt hash is damaged"
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        mark = len(gw.output())
        gw.process.send_signal(signal.SIGHUP)
        output = gw.wait_for('"config_reload_refused"', mark)
        status = _invoiless_status(gw.port, "acme-invoiless")

    assert expected in output
    assert status == 404  # the running config kept: the key still opens acme


def _invoiless_status(port: int, key: str) -> int:
    from ..http.server import send

    return send(port, "GET", "/v1/invoices/1/payments", headers={"api-key": key}).status
