"""No secret in any log line: a gateway logging everything it can, given every kind of secret."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from ..http.server import ADMIN_TOKEN, free_port, running, write_config
from ..logscan import SECRETS, leaks
from ..processes.test_command_line import gateway

WRONG = "wrong-guess-of-a-secret"
BACKEND = {"api_key": "backend-api-key-secret", "url_password": "backend-url-password"}


def call(url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def test_no_secret_reaches_a_log_line_at_debug_level(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["server"]["access_log"] = True
    raw["tenants"]["relay"] = {
        "invoiless": {"keys": [{"key": "relay-caller-key"}]},
        "backend": {
            "dialect": "invoiless",
            "url": f"http://gw:{BACKEND['url_password']}@127.0.0.1:{free_port()}",
            "api_key": BACKEND["api_key"],
            "retries": 1,
            "breaker": {"failures": 1},
        },
    }
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    args = ("serve", "--log-format", "json", "--log-level", "debug")
    with running(config, tmp_path / "x.db", tmp_path / "x.log", args) as server:
        server.wait_ready()
        base = server.url
        for user, secret in (("acme@example.com", "acme-harvest"), ("acme@example.com", WRONG)):
            call(f"{base}/invoices/1/payments", basic(user, secret))
            call(f"{base}/api/invoice-payments?invoice_id=1", basic(user, secret))
        for key in ("acme-invoiless", WRONG, "relay-caller-key"):
            call(f"{base}/v1/invoices/1/payments", {"api-key": key})
        login = {"strategy": "app-secret", "appId": "acme-app", "appSecret": "acme-app-secret"}
        status, answer = call(
            f"{base}/authentication", {"Content-Type": "application/json"},
            json.dumps(login).encode(),
        )  # fmt: skip
        assert status == 201
        token = json.loads(answer)["accessToken"]
        call(
            f"{base}/businesses/acme-biz/invoices/1/payments", {"Authorization": f"Bearer {token}"}
        )
        lookup = f"{base}/gateway/v1/ids/invoiless/invoice/inv-1?tenant=relay"
        assert call(lookup, {"Authorization": f"Bearer {ADMIN_TOKEN}"})[0] == 503
        for admin in (ADMIN_TOKEN, WRONG):
            call(f"{base}/gateway/v1/invoices/1", {"Authorization": f"Bearer {admin}"})
            call(f"{base}/metrics", {"Authorization": f"Bearer {admin}"})
    failed_start = gateway(
        "serve", "--config", str(config),
        "--database", "mysql://gw:database-password-never-logged@127.0.0.1/pay",
    )  # fmt: skip

    output = server.output() + failed_start.stderr.decode()
    assert '"event":"breaker_open"' in output and '"path":"/metrics"' in output
    secrets = (*SECRETS, WRONG, token, "relay-caller-key", *BACKEND.values())
    found = [s for s in secrets if s in output]
    assert found == [], found
    assert leaks([output], []) == []
