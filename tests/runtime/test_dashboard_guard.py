"""Dashboard password and CORS on /api/*, through the app's real middleware."""

from __future__ import annotations

import base64
import logging

import pytest
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

import control.auth as auth_module
from app import create_app
from runtime.dashboard_guard import is_loopback
from runtime.settings import Settings


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
    assert resp.json["error"]["type"] == "authentication_error"
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


async def test_no_password_on_public_host_warns(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("proxy")
    logger.addHandler(caplog.handler)
    try:
        _app(HOST="0.0.0.0")
    finally:
        logger.removeHandler(caplog.handler)
    assert any("prompt" in r.getMessage() for r in caplog.records)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


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
