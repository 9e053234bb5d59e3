"""Dashboard password, CORS on /api/* and the refusal of cross-site writes, through the
app's real middleware (and the same-origin rule on its own)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

import control.auth as auth_module
from app import create_app
from runtime.dashboard_guard import guarded_path, is_loopback, same_origin
from runtime.settings import Settings, SettingsError


def _app(**env: str) -> Sanic:
    app = create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", **env}))

    async def ping(request: Request) -> HTTPResponse:
        return json({"ok": True})

    app.add_route(ping, "/api/ping", methods=["GET", "OPTIONS"])
    return app


def _basic(password: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_password_required_on_api_and_accepted() -> None:
    app = _app(DASHBOARD_PASSWORD="s3cret")
    _, resp = await app.asgi_client.get("/api/ping")
    assert resp.status == 401
    assert resp.headers["www-authenticate"].startswith("Basic ")
    # /api/* speaks the seed's ErrorResponse; pages keep Anthropic's shape.
    assert resp.json == {
        "error": "Dashboard password required",
        "details": "Send HTTP Basic credentials: any username, the DASHBOARD_PASSWORD as password",
    }
    _, page = await app.asgi_client.get("/dashboard")
    assert page.status == 401 and page.json["error"]["type"] == "authentication_error"
    _, resp = await app.asgi_client.get("/api/ping", headers={"authorization": _basic("wrong")})
    assert resp.status == 401
    _, resp = await app.asgi_client.get("/api/ping", headers={"authorization": _basic("s3cret")})
    assert resp.status == 200 and resp.json == {"ok": True}


async def test_open_paths_stay_open() -> None:
    app = _app(DASHBOARD_PASSWORD="s3cret")
    for path in ("/health", "/livez", "/openapi.json", "/openapi.yaml"):
        _, resp = await app.asgi_client.get(path)
        assert resp.status == 200, path


async def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    app = _app(DASHBOARD_PASSWORD="s3cret")
    await app.asgi_client.get("/api/ping", headers={"authorization": _basic("guess")})
    assert calls == [(b"guess", b"s3cret")]


def _proxy_log(caplog: pytest.LogCaptureFixture, **env: str) -> list[logging.LogRecord]:
    logger = logging.getLogger("proxy")
    logger.addHandler(caplog.handler)
    try:
        _app(**env)
    finally:
        logger.removeHandler(caplog.handler)
    return list(caplog.records)


@pytest.mark.parametrize(
    "env",
    [
        {"HOST": "0.0.0.0"},
        {"HOST": "::"},
        {"HOST": "10.1.2.3", "DASHBOARD_OPEN": "false"},
        {"HOST": "proxy.internal", "DASHBOARD_PASSWORD": "   "},  # blank is unset
    ],
)
def test_no_password_on_public_host_refuses_to_build(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as refused:
        _app(**env)
    message = str(refused.value)
    assert f"HOST={env['HOST']}" in message
    assert "DASHBOARD_PASSWORD" in message and "DASHBOARD_OPEN=true" in message
    assert "\n" not in message  # one line at start-up


def test_open_dashboard_opt_out_builds_with_a_loud_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = _proxy_log(caplog, HOST="0.0.0.0", DASHBOARD_OPEN="true")
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert any("DASHBOARD_OPEN=true" in w and "prompt" in w for w in warnings), warnings


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_password_and_says_nothing(
    caplog: pytest.LogCaptureFixture, host: str
) -> None:
    records = _proxy_log(caplog, HOST=host)
    assert not [r for r in records if "DASHBOARD" in r.getMessage()]


def test_a_password_makes_any_host_fine_and_the_opt_out_moot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = _proxy_log(caplog, HOST="0.0.0.0", DASHBOARD_PASSWORD="s3cret", DASHBOARD_OPEN="1")
    assert not [r for r in records if r.levelno >= logging.WARNING]
    assert any("DASHBOARD_OPEN is ignored" in r.getMessage() for r in records)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),  # binds every address
        ("10.1.2.3", False),
        ("::ffff:10.1.2.3", False),
        ("localhost.example.com", False),
        ("my-host", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


async def test_cors_off_by_default_and_on_for_listed_origins() -> None:
    _, resp = await _app().asgi_client.get("/api/ping", headers={"origin": "https://g.example"})
    assert "access-control-allow-origin" not in resp.headers
    app = _app(CORS_ORIGINS="https://g.example")
    _, resp = await app.asgi_client.get("/api/ping", headers={"origin": "https://g.example"})
    assert resp.headers["access-control-allow-origin"] == "https://g.example"
    _, resp = await app.asgi_client.get("/api/ping", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in resp.headers
    _, resp = await app.asgi_client.get("/health", headers={"origin": "https://g.example"})
    assert "access-control-allow-origin" not in resp.headers


# ---- cross-site writes ---------------------------------------------------------------
OWN = "http://proxy.test:3001"


@pytest.mark.parametrize(
    ("headers", "allowed", "expected"),
    [
        ({}, (), True),  # curl, scripts, SDKs: neither header
        ({"sec-fetch-site": "same-origin"}, (), True),
        ({"sec-fetch-site": "none"}, (), True),  # typed URL, bookmark
        ({"sec-fetch-site": "same-origin", "origin": OWN}, (), True),
        ({"sec-fetch-site": "SAME-ORIGIN"}, (), True),
        ({"origin": OWN}, (), True),  # an older browser without Sec-Fetch-*
        ({"origin": OWN + "/"}, (), True),
        ({"origin": "HTTP://PROXY.TEST:3001"}, (), True),
        ({"sec-fetch-site": "cross-site"}, (), False),
        ({"sec-fetch-site": "same-site"}, (), False),  # a sibling subdomain is another origin
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, (), False),
        ({"sec-fetch-site": "cross-site", "origin": OWN}, (), False),  # the browser's word wins
        ({"origin": "https://evil.example"}, (), False),
        ({"origin": "http://proxy.test:3002"}, (), False),  # another port is another origin
        ({"origin": "https://proxy.test:3001"}, (), False),  # another scheme too
        ({"origin": "null"}, (), False),  # sandboxed frame, file:// page
        ({"origin": "null"}, ("*",), False),
        (
            {"sec-fetch-site": "cross-site", "origin": "https://g.example"},
            ("https://g.example",),
            True,
        ),
        ({"origin": "https://g.example"}, ("https://g.example",), True),
        ({"origin": "https://g.example"}, ("https://other.example",), False),
        ({"sec-fetch-site": "cross-site", "origin": "https://any.example"}, ("*",), True),
        ({"sec-fetch-site": "cross-site"}, ("*",), False),  # no Origin to match
    ],
)
def test_same_origin_rule(
    headers: dict[str, str], allowed: tuple[str, ...], expected: bool
) -> None:
    assert same_origin(headers, OWN, allowed) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/settings", True),
        ("/api", True),
        ("/API/settings", True),
        ("/dashboard", True),
        ("/dashboard/requests", True),
        ("/v1/../api/settings", True),
        ("/v1/%2e%2e/api/settings", True),
        ("/x/..%2fdashboard", True),
        ("/v1/messages", False),
        ("/health", False),
        ("/apiary", False),
        ("/dashboards", False),
    ],
)
def test_guarded_paths(path: str, expected: bool) -> None:
    assert guarded_path(path) is expected


CROSS = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
RULES = {"requestHeaderRules": [], "responseHeaderRules": []}


def _refused(resp: Any) -> bool:
    body = resp.json
    return (
        resp.status == 403
        and isinstance(body.get("error"), str)
        and "cross-site" in body["error"].lower()
        and isinstance(body.get("details"), str)
    )


async def test_cross_site_writes_are_refused_with_403() -> None:
    app = _app()
    client = app.asgi_client
    _, resp = await client.put("/api/settings", json=RULES, headers=CROSS)
    assert _refused(resp), (resp.status, resp.body)
    assert "PUT /api/settings" in resp.json["details"]
    _, resp = await client.delete("/api/requests", headers={"sec-fetch-site": "same-site"})
    assert _refused(resp)
    _, resp = await client.post("/api/ping", headers={"origin": "https://evil.example"})
    assert _refused(resp)  # also where no route takes the method: refused first
    _, resp = await client.post("/dashboard", headers=CROSS)
    assert _refused(resp)
    _, resp = await client.patch("/dashboard/anything", headers={"origin": "null"})
    assert _refused(resp)


async def test_same_origin_and_non_browser_writes_pass() -> None:
    app = _app()
    client = app.asgi_client
    _, resp = await client.put("/api/settings", json=RULES)  # curl: neither header
    assert resp.status == 200, resp.body
    _, resp = await client.put(
        "/api/settings", json=RULES, headers={"sec-fetch-site": "same-origin"}
    )
    assert resp.status == 200, resp.body
    # The Origin of this server as the client reached it (scheme://Host).
    _, resp = await client.put(
        "/api/settings",
        json=RULES,
        headers={"origin": "http://proxy.test:3001", "host": "proxy.test:3001"},
    )
    assert resp.status == 200, resp.body


async def test_reads_and_the_model_api_are_not_judged() -> None:
    app = _app()
    _, resp = await app.asgi_client.get("/api/settings", headers=CROSS)
    assert resp.status == 200
    _, resp = await app.asgi_client.get("/dashboard/static/app.css", headers=CROSS)
    assert resp.status == 200
    # /v1/* is the SDKs' (a browser app may call it cross-origin through CORS of its own).
    _, resp = await app.asgi_client.post("/v1/messages", content=b"[]", headers=CROSS)
    assert resp.status == 400 and resp.json["type"] == "error"


async def test_listed_origins_may_write() -> None:
    app = _app(CORS_ORIGINS="https://g.example")
    headers = {"sec-fetch-site": "cross-site", "origin": "https://g.example"}
    _, resp = await app.asgi_client.put("/api/settings", json=RULES, headers=headers)
    assert resp.status == 200, resp.body
    _, resp = await app.asgi_client.put("/api/settings", json=RULES, headers=CROSS)
    assert _refused(resp)


async def test_cross_site_is_refused_before_the_password_is_asked() -> None:
    app = _app(DASHBOARD_PASSWORD="s3cret")
    headers = {**CROSS, "authorization": _basic("s3cret")}
    _, resp = await app.asgi_client.put("/api/settings", json=RULES, headers=headers)
    assert _refused(resp)  # ambient credentials are exactly what the attack borrows
    _, resp = await app.asgi_client.put("/api/settings", json=RULES, headers=CROSS)
    assert _refused(resp)
    _, resp = await app.asgi_client.put("/api/settings", json=RULES)
    assert resp.status == 401
    _, resp = await app.asgi_client.put(
        "/api/settings", json=RULES, headers={"authorization": _basic("s3cret")}
    )
    assert resp.status == 200
