"""The dialect registry: units found by entry point, clashes refused, the core naming none."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

import dialects
from dialects.invoiless import Invoiless
from dialects.registry import GROUP, RegistryError, check, owner_of
from dialects.unit import DialectUnit, Op, Route
from gateway.config import ConfigError, parse

ROOT = Path(__file__).resolve().parents[2]


class Clone(Invoiless):
    name = "clone"


def clone(**changes: object) -> DialectUnit:
    """The Invoiless unit under another name and prefix, with `changes` applied."""
    base = dialects.unit("invoiless")
    routes = tuple(replace(r, path=r.path.replace("/v1/", "/v9/")) for r in base.routes)
    fields = {"codec": Clone(), "prefixes": ("/v9/",), "routes": routes, **changes}
    return replace(base, **fields)  # type: ignore[arg-type]


def test_the_built_in_dialects_register_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    names = {point.name for point in entry_points(group=GROUP)}
    assert {"harvest", "fastbill", "invoiless", "urlkey"} <= names
    assert set(dialects.units()) == names
    for name, unit in dialects.units().items():
        assert unit.name == name and dialects.get(name) is unit.codec


def test_the_gateway_core_names_no_vendor() -> None:
    words = {w.lower() for unit in dialects.units().values() for w in (unit.name, *unit.vendor)}
    found = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        text = path.read_text(encoding="utf-8").lower()
        found += [f"{path.relative_to(ROOT)}: {w}" for w in sorted(words) if w in text]
    assert found == []


def test_dialect_units_import_no_web_framework() -> None:
    for path in sorted((ROOT / "dialects").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) (aiohttp|gateway)\b", text, re.M), path


def test_a_second_dialect_claiming_a_route_is_refused_naming_both() -> None:
    taken = Route("GET", "/v9/payments/{id}", Op.GET)
    units = {"invoiless": dialects.unit("invoiless"), "clone": clone(routes=(taken,))}
    with pytest.raises(RegistryError) as refused:
        check({**units, "clone": clone(routes=(Route("GET", "/v1/payments/{x}", Op.GET),))})
    assert str(refused.value) == (
        "dialects 'invoiless' and 'clone' both claim GET /v1/payments/{x}"
    )
    check(units)  # its own prefix, its own routes: served side by side


def test_a_second_dialect_claiming_a_prefix_is_refused() -> None:
    units = {"invoiless": dialects.unit("invoiless"), "clone": clone(prefixes=("/v1/",))}
    with pytest.raises(RegistryError, match="'invoiless' and 'clone' both claim the path prefix"):
        check(units)


def test_a_route_under_another_dialects_prefix_is_refused() -> None:
    stray = Route("GET", "/v1/elsewhere/{payment_id}", Op.GET)
    units = {"invoiless": dialects.unit("invoiless"), "clone": clone(routes=(stray,))}
    with pytest.raises(RegistryError, match="serves /v1/elsewhere/.* under 'invoiless'"):
        check(units)


def test_a_route_whose_capability_the_dialect_lacks_is_refused() -> None:
    search = Route("GET", "/v9/payments", Op.SEARCH)
    with pytest.raises(RegistryError, match="'clone' serves a search route but has no search"):
        check({"clone": clone(routes=(search,))})
    remove = Route("POST", "/v9/payments/{payment_id}", Op.REMOVE)
    with pytest.raises(RegistryError, match="removal route but its json codec has no removal"):
        check({"clone": clone(routes=(remove,))})


def test_errors_before_any_route_belong_to_the_longest_prefix() -> None:
    units = dialects.units()
    assert owner_of(units, "/v1/nowhere") is units["invoiless"]
    assert owner_of(units, "/authentication") is units["urlkey"]
    assert owner_of(units, "/gateway/v1/ids") is None


@pytest.mark.parametrize(
    "tenant,hint",
    [
        ({"harvset": {}}, "tenants.acme.harvset: Extra inputs are not permitted "
                          "(unknown dialect 'harvset'; did you mean 'harvest'?)"),
        ({"backend": {"dialect": "urlkye", "url": "http://b"}},
         "did you mean 'urlkey'?"),
    ],
)  # fmt: skip
def test_an_unknown_dialect_in_the_config_is_one_line_with_the_closest_name(
    tenant: dict[str, object], hint: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse({"admin_token": "t", "tenants": {"acme": tenant}}, {})
    assert hint in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_backend_is_read_by_its_own_dialects_model_only() -> None:
    """An Invoiless backend given urlKey's fields is refused, never read as urlKey."""
    raw = {"dialect": "invoiless", "url": "http://b", "business": "b", "app_id": "a"}
    with pytest.raises(ConfigError) as refused:
        parse({"admin_token": "t", "tenants": {"acme": {"backend": raw}}}, {})
    assert "backend.invoiless.business: Extra inputs are not permitted" in str(refused.value)
