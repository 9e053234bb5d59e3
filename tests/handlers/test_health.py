"""Health, live state, spec and error shape through Sanic's ASGI test client."""

from __future__ import annotations

import json

import pytest
import yaml
from sanic import Sanic

from app import create_app
from runtime.settings import Settings


@pytest.fixture
def app() -> Sanic:
    return create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9"}))


async def test_health_ok(app: Sanic) -> None:
    _, resp = await app.asgi_client.get("/health")
    assert resp.status == 200
    assert resp.json["status"] == "healthy"
    assert resp.json["timestamp"].endswith("Z")


async def test_health_draining_and_livez(app: Sanic) -> None:
    _, resp = await app.asgi_client.get("/livez")
    assert resp.json["in_flight"] == 0 and resp.json["draining"] is False
    app.ctx.live.enter()
    app.ctx.live.start_draining()
    _, resp = await app.asgi_client.get("/health")
    assert resp.status == 503
    assert resp.json["status"] == "draining" and resp.json["in_flight"] == 1
    _, resp = await app.asgi_client.get("/livez")
    assert resp.status == 200
    assert resp.json == {**resp.json, "status": "ok", "in_flight": 1, "draining": True}


async def test_health_routes_are_not_counted(app: Sanic) -> None:
    for path in ("/health", "/livez", "/openapi.json"):
        await app.asgi_client.get(path)
    assert app.ctx.live.in_flight == 0


async def test_openapi_json_and_yaml_are_the_same_document(app: Sanic) -> None:
    _, as_json = await app.asgi_client.get("/openapi.json")
    _, as_yaml = await app.asgi_client.get("/openapi.yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.body) == json.loads(as_json.body)
    paths = as_json.json["paths"]
    for path in (
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/chat/completions",
        "/health",
        "/livez",
        "/openapi.json",
        "/openapi.yaml",
    ):
        assert path in paths, path
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    schemas = as_json.json["components"]["schemas"]
    assert {"ErrorResponse", "HealthResponse", "DrainingResponse", "LivezResponse"} <= set(schemas)


async def test_unknown_route_in_anthropic_error_shape(app: Sanic) -> None:
    _, resp = await app.asgi_client.get("/nope")
    assert resp.status == 404
    assert resp.json["type"] == "error"
    assert resp.json["error"]["type"] == "not_found_error"
