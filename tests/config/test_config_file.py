"""The configuration file: `${VAR}` / `${VAR:-default}` expansion, strictness, shipped files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import dialects
from gateway.config import Config, ConfigError, expand, hashes, load, parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def minimal(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"admin_token": "token", "tenants": {"acme": {}}}
    raw.update(overrides)
    return raw


def write(tmp_path: Path, raw: object, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw, encoding="utf-8")
    return path


# --- expansion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,environ,expected",
    [
        ("${VAR}", {"VAR": "set"}, "set"),
        ("${VAR}", {"VAR": ""}, ""),
        ("${VAR:-fallback}", {"VAR": "set"}, "set"),
        ("${VAR:-fallback}", {}, "fallback"),
        ("${VAR:-fallback}", {"VAR": ""}, "fallback"),
        ("${VAR:-}", {}, ""),
        ("${VAR:-a default with spaces: and colons}", {}, "a default with spaces: and colons"),
        ("sqlite:///${DIR:-data}/${NAME}.db", {"NAME": "ledger"}, "sqlite:///data/ledger.db"),
        ("${A}${B}", {"A": "x", "B": "y"}, "xy"),
        ("no references here", {}, "no references here"),
        ("$VAR and $ {VAR} are literal", {"VAR": "set"}, "$VAR and $ {VAR} are literal"),
        ("${VAR}", {"VAR": "${OTHER}"}, "${OTHER}"),  # a value is not expanded again
        ("${lower_case9}", {"lower_case9": "ok"}, "ok"),
    ],
)
def test_expand_substitutes_variables_and_defaults(
    text: str, environ: dict[str, str], expected: str
) -> None:
    assert expand(text, environ) == expected


def test_expand_walks_nested_mappings_and_lists_and_keeps_other_types() -> None:
    tree = {
        "a": ["${X}", {"b": "${Y:-why}"}, 3, None, True],
        "n": 8080,
        "${X}": "keys are not expanded",
    }
    assert expand(tree, {"X": "ex"}) == {
        "a": ["ex", {"b": "why"}, 3, None, True],
        "n": 8080,
        "${X}": "keys are not expanded",
    }


@pytest.mark.parametrize("text", ["${MISSING_VAR}", "prefix-${MISSING_VAR}-suffix"])
def test_unset_variable_without_default_is_a_config_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigError, match="MISSING_VAR"):
        expand(text, {"OTHER": "x"})


def test_expand_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TEST_VALUE", "from-env")
    monkeypatch.delenv("GATEWAY_TEST_UNSET", raising=False)
    assert expand("${GATEWAY_TEST_VALUE}") == "from-env"
    assert expand("${GATEWAY_TEST_UNSET:-dflt}") == "dflt"
    with pytest.raises(ConfigError, match="GATEWAY_TEST_UNSET"):
        expand("${GATEWAY_TEST_UNSET}")


def test_parse_expands_before_validating_typed_fields() -> None:
    raw = minimal(
        server={"port": "${PORT:-9090}", "access_log": "${LOG:-false}", "max_body_bytes": "${MAX}"},
        admin_token="${ADMIN}",
    )
    config = parse(raw, {"MAX": "2048", "ADMIN": "secret"})
    assert config.server.port == 9090
    assert config.server.access_log is False
    assert config.server.max_body_bytes == 2048
    assert config.admin_token == "secret"


def test_parse_with_an_unset_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_ADMIN_SECRET"):
        parse(minimal(admin_token="${GATEWAY_ADMIN_SECRET}"), {})


def test_load_with_an_unset_variable_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(database="sqlite:///${LEDGER_FILE}"))
    with pytest.raises(ConfigError, match="LEDGER_FILE"):
        load(path, environ={})
    assert load(path, environ={"LEDGER_FILE": "x.db"}).database == "sqlite:///x.db"


def test_an_empty_variable_makes_a_required_value_invalid_not_defaulted() -> None:
    """`${VAR}` set but empty expands to ""; a constrained field then refuses it."""
    with pytest.raises(ConfigError, match="server.port"):
        parse(minimal(server={"port": "${PORT}"}), {"PORT": ""})


# --- strictness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,where",
    [
        (minimal(unknown_key=1), "unknown_key"),
        (minimal(server={"hostname": "x"}), "server.hostname"),
        (minimal(tenants={"acme": {"stripe": {}}}), "tenants.acme.stripe"),
        (
            minimal(tenants={"acme": {"harvest": {"users": [{"email": "a", "passwd": "b"}]}}}),
            "tenants.acme.harvest.users.0",
        ),
        (
            minimal(tenants={"acme": {"invoiless": {"keys": [{"key": "k", "scope": ["s"]}]}}}),
            "tenants.acme.invoiless.keys.0.scope",
        ),
        (
            minimal(
                tenants={
                    "acme": {"urlkey": {"business": "b", "apps": [{"app_id": "a", "secrt": "s"}]}}
                }
            ),
            "tenants.acme.urlkey.apps.0.secrt",
        ),
        (
            minimal(tenants={"acme": {"rate_limit": {"per_second": 1, "burst": 2, "window": 3}}}),
            "tenants.acme.rate_limit.window",
        ),
    ],
)
def test_unknown_keys_are_refused_with_their_location(raw: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(raw, {})
    assert where in str(refused.value)
    assert "Extra inputs are not permitted" in str(refused.value)


@pytest.mark.parametrize(
    "raw,where",
    [
        ({"tenants": {"acme": {}}}, "admin_token"),
        ({"admin_token": "x"}, "tenants"),
        (minimal(server={"port": 70000}), "server.port"),
        (minimal(server={"max_body_bytes": 0}), "server.max_body_bytes"),
        (minimal(token_lifetime_seconds=86401), "token_lifetime_seconds"),
        (minimal(sqlite_synchronous="OFF"), "sqlite_synchronous"),
        (minimal(tenants={"acme": {"rate_limit": {"per_second": 0, "burst": 1}}}), "per_second"),
        (minimal(tenants={"no spaces": {}}), "tenants"),
        (minimal(tenants={"acme": {"urlkey": {"apps": []}}}), "tenants.acme.urlkey.business"),
    ],
)
def test_invalid_values_are_config_errors_with_their_location(
    raw: dict[str, Any], where: str
) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse(raw, {})


def test_a_public_key_that_is_not_p256_is_refused_when_the_app_starts(tmp_path: Path) -> None:
    from gateway.access.auth import Authenticator

    config = parse(
        minimal(
            tenants={
                "acme": {
                    "urlkey": {
                        "business": "b",
                        "apps": [{"app_id": "a", "public_key": "not a pem"}],
                    }
                }
            }
        ),
        {},
    )
    with pytest.raises(ValueError):
        Authenticator(config)


@pytest.mark.parametrize(
    "text,problem",
    [
        ("- just\n- a list\n", "must be a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
        ("", "mapping"),
    ],
)
def test_files_that_are_not_a_config_mapping_are_config_errors(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(write(tmp_path, text), environ={})


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.yaml", environ={})


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    text = "admin_token: !!python/object/apply:os.getcwd []\ntenants: {acme: {}}\n"
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(write(tmp_path, text), environ={})


# --- shipped files --------------------------------------------------------------------------


def test_shipped_config_yaml_loads_with_its_defaults() -> None:
    config = load(ROOT / "config.yaml", environ={})
    assert isinstance(config, Config)
    assert config.demo is True
    assert config.server.host == "127.0.0.1"
    assert config.database == "sqlite:///data/gateway.db"
    assert config.admin_token == "demo-admin-token"
    assert set(config.tenants) == {"demo"}
    demo = config.tenants["demo"]
    urlkey = demo.section("urlkey")
    assert urlkey is not None and urlkey.business == "demo"
    secrets = [
        demo.section("harvest").users[0].password,
        demo.section("fastbill").users[0].api_key,
        demo.section("invoiless").keys[0].key,
        urlkey.apps[0].secret or "",
    ]
    assert all(hashes.is_hash(secret) for secret in secrets)


def test_shipped_config_yaml_takes_its_settings_from_the_environment() -> None:
    environ = {
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_DATABASE": "sqlite:////srv/ledger.db",
        "GATEWAY_ADMIN_TOKEN": "from-env",
        "GATEWAY_TOKEN_SECRET": "also-from-env-and-long-enough-000",
    }
    config = load(ROOT / "config.yaml", environ=environ)
    assert config.server.host == "0.0.0.0"
    assert config.database == "sqlite:////srv/ledger.db"
    assert config.admin_token == "from-env"
    assert config.token_secret == "also-from-env-and-long-enough-000"


def _example_files() -> list[Path]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml"))


def test_every_example_config_loads_with_only_the_backend_url_set() -> None:
    environ = {"BACKEND_URL": "http://127.0.0.1:9"}
    loaded = {path.stem: load(path, environ=environ) for path in _example_files()}
    assert sorted(loaded) == [f"proxy-to-{name}" for name in sorted(dialects.DIALECTS)]
    for stem, config in loaded.items():
        backend = config.tenants["demo"].backend
        assert backend is not None and f"proxy-to-{backend.dialect}" == stem
        assert backend.url == "http://127.0.0.1:9"


def test_an_example_without_its_backend_url_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BACKEND_URL"):
        load(EXAMPLES / "proxy-to-invoiless.yaml", environ={})


def test_a_backend_private_key_that_is_not_an_es256_key_is_refused_at_load() -> None:
    raw = {
        "admin_token": "t",
        "tenants": {
            "acme": {
                "backend": {
                    "dialect": "urlkey",
                    "url": "http://127.0.0.1:9",
                    "business": "b",
                    "app_id": "a",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----",
                }
            }
        },
    }
    with pytest.raises(ConfigError, match="private_key is not a readable PEM private key"):
        parse(raw)
