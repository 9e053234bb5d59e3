"""The OpenAPI document: complete (every route, with summary, tag, responses and
security), served identically as JSON and YAML, the UI switchable, and honest (every
status a dashboard or health operation documents is one it really answers)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import yaml
from sanic import Sanic

from app import create_app
from runtime.settings import Settings
from tests.openapi.conftest import AUTH, LiveApp
from tests.openapi.schemas import error_message, errors, json_schema

TAGS = {"proxy", "dashboard", "health"}
# /api/*: the seed's `{error, details}`; /v1/*: Anthropic's shape, which SDKs read.
API_ERROR_REF = "#/components/schemas/ErrorResponse"
V1_ERROR_REF = "#/components/schemas/AnthropicErrorResponse"
# Named like the seed's components where it has them.
SEED_COMPONENTS = {
    "ErrorResponse",
    "HealthResponse",
    "DrainingResponse",
    "LivezResponse",
    "AnthropicUsage",
    "RequestLog",
    "ResponseLog",
    "RateLimitInfo",
    "RequestSummary",
    "UsageStats",
    "DashboardStats",
    "HourlyStatsResponse",
    "ModelStatsResponse",
    "HeaderRule",
    "ProxySettings",
    "SystemMessage",
    "Tool",
    "AnthropicRequest",
    "AnthropicMessage",
    "AnthropicResponse",
    "ModelsResponse",
}


def _app(**env: str) -> Sanic:
    return create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", **env}),
    )


async def _spec(app: Sanic) -> dict[str, Any]:
    _, resp = await app.asgi_client.get("/openapi.json")
    assert resp.status == 200
    return resp.json


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }


def _spec_path(route_path: str) -> str:
    return "/" + re.sub(r"<(\w+)(?::[^>]*)?>", r"{\1}", route_path).strip("/")


# Pages, not API: the dashboard's HTML and assets, and `GET /`, which sends a
# browser there. They stay out of the document (openapi.exclude on their handlers).
def _is_page(method: str, path: str) -> bool:
    return path == "/dashboard" or path.startswith("/dashboard/") or (method, path) == ("GET", "/")


def _routes(app: Sanic) -> set[tuple[str, str]]:
    """(method, path) of every route the document must list: all but sanic-ext's own
    docs routes, the HEAD and OPTIONS routes sanic-ext adds by itself beside every
    route (marked `__auto_handler__`; they answer like the GET, or list the
    methods), and the dashboard's pages. A route that names HEAD or OPTIONS itself
    (the `/v1/*` passthrough, the `HEAD /` probe) is listed with them."""
    found = set()
    for route in app.router.routes:
        if route.name.startswith(f"{app.name}.openapi."):
            continue
        if getattr(route.handler, "__auto_handler__", False):
            continue
        for method in route.methods:
            if not _is_page(method, _spec_path(route.path)):
                found.add((method, _spec_path(route.path)))
    return found


async def test_every_route_is_in_the_spec_and_nothing_else() -> None:
    app = _app()
    spec = await _spec(app)
    routes = _routes(app)
    documented = set(_operations(spec))
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations without a route"
    # Guard the guard: the comparison saw the route groups it is meant to cover,
    # the explicit HEAD/OPTIONS routes, and left out pages only.
    paths = {p for _, p in routes}
    for path in ("/v1/messages", "/health", "/livez", "/metrics", "/openapi.yaml"):
        assert path in paths
    assert {("HEAD", "/"), ("HEAD", "/v1/{path}"), ("OPTIONS", "/v1/{path}")} <= routes
    assert {p.split("/")[2] for p in paths if p.startswith("/api/")} == {
        "requests",
        "stats",
        "conversations",
        "settings",
    }
    pages = {
        (method, _spec_path(route.path))
        for route in app.router.routes
        for method in route.methods
        if _is_page(method, _spec_path(route.path))
    }
    assert {("GET", "/"), ("GET", "/dashboard")} <= pages
    assert not pages & documented


async def test_every_operation_is_described() -> None:
    spec = await _spec(_app())
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header"}
    assert schemes["apiKey"]["name"] == "x-api-key"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["dashboardBasicAuth"]["scheme"] == "basic"
    assert SEED_COMPONENTS <= set(spec["components"]["schemas"])
    for (method, path), op in _operations(spec).items():
        where = f"{method} {path}"
        assert op.get("summary"), where
        assert len(op.get("tags", [])) == 1 and op["tags"][0] in TAGS, where
        assert op.get("responses"), where
        tag = op["tags"][0]
        expected_tag = (
            "proxy"
            if path.startswith("/v1/")
            else "dashboard"
            if path.startswith("/api/")
            else "health"
        )
        assert tag == expected_tag, where
        security = op.get("security")
        if tag == "proxy":
            assert sorted(map(str, security)) == sorted(
                [str({"apiKey": []}), str({"bearerAuth": []})]
            ), where
        elif tag == "dashboard":
            assert security == [{"dashboardBasicAuth": []}], where
            assert "401" in op["responses"], where
        else:
            assert not security, where
        for status, response in op["responses"].items():
            assert response.get("description"), f"{where} {status}"
            if (method, path, status) == ("GET", "/health", "503"):
                continue  # draining is a state report (the seed's DrainingResponse)
            if status == "default" or int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                expected = API_ERROR_REF if path.startswith("/api/") else V1_ERROR_REF
                assert schema == {"$ref": expected}, f"{where} {status}"
        for param in op.get("parameters", []):
            schema = param["schema"]
            assert schema.get("type") or schema.get("anyOf"), f"{where} {param['name']}"


async def test_json_yaml_and_docs_serve_one_document() -> None:
    app = _app()
    _, as_json = await app.asgi_client.get("/openapi.json")
    _, as_yaml = await app.asgi_client.get("/openapi.yaml")
    _, for_ui = await app.asgi_client.get("/docs/openapi.json")
    assert yaml.safe_load(as_yaml.body) == json.loads(as_json.body) == for_ui.json
    _, page = await app.asgi_client.get("/docs")
    assert page.status == 200 and "swagger" in page.text.lower()


async def test_openapi_docs_false_turns_the_ui_off_but_keeps_the_spec() -> None:
    assert Settings.from_env({}).openapi_docs is True
    app = _app(OPENAPI_DOCS="false")
    for path in ("/docs", "/docs/swagger", "/docs/redoc"):
        _, resp = await app.asgi_client.get(path)
        assert resp.status == 404, path
        assert resp.json["type"] == "error"
    _, as_json = await app.asgi_client.get("/openapi.json")
    _, as_yaml = await app.asgi_client.get("/openapi.yaml")
    assert as_json.status == as_yaml.status == 200
    assert "/api/requests" in as_json.json["paths"]
    assert yaml.safe_load(as_yaml.body) == as_json.json


# How to make each dashboard and health operation answer each status it documents.
# `live`: the live proxy with the password; `noauth`: the same without it;
# `crosssite`: with it, but from a browser on another site; `off`: an app with
# REQUEST_LOG=false; `draining`: an app that started draining. A status documented
# without a probe here fails, and so does a probe answering another status.
R, C = "{request_id}", "{conversation_id}"
_TODAY = datetime.now(UTC).date()
_T = f"start={_TODAY - timedelta(days=1)}&end={_TODAY + timedelta(days=1)}"
PROBES: dict[tuple[str, str], dict[str, tuple[str, str]]] = {
    ("HEAD", "/"): {"200": ("live", "/")},
    ("GET", "/health"): {"200": ("live", "/health"), "503": ("draining", "/health")},
    ("GET", "/livez"): {"200": ("live", "/livez")},
    ("GET", "/metrics"): {"200": ("live", "/metrics")},
    ("GET", "/openapi.json"): {"200": ("live", "/openapi.json")},
    ("GET", "/openapi.yaml"): {"200": ("live", "/openapi.yaml")},
    ("GET", "/api/requests"): {
        "200": ("live", "/api/requests"),
        "400": ("live", "/api/requests?page=0"),
        "401": ("noauth", "/api/requests"),
        "503": ("off", "/api/requests"),
    },
    ("DELETE", "/api/requests"): {
        "401": ("noauth", "/api/requests"),
        "403": ("crosssite", "/api/requests"),
        "503": ("off", "/api/requests"),
        "200": ("live", "/api/requests"),
    },
    ("GET", "/api/requests/summary"): {
        "200": ("live", "/api/requests/summary"),
        "400": ("live", "/api/requests/summary?start=yesterday"),
        "401": ("noauth", "/api/requests/summary"),
        "503": ("off", "/api/requests/summary"),
    },
    ("GET", "/api/requests/latest-date"): {
        "200": ("live", "/api/requests/latest-date"),
        "401": ("noauth", "/api/requests/latest-date"),
        "503": ("off", "/api/requests/latest-date"),
    },
    ("GET", "/api/requests/{request_id}"): {
        "200": ("live", f"/api/requests/{R}"),
        "400": ("live", "/api/requests/NOT-HEX"),
        "401": ("noauth", f"/api/requests/{R}"),
        "404": ("live", "/api/requests/ffffffffffffffffffffffffffffffff"),
        "503": ("off", "/api/requests/abcd"),
    },
    ("GET", "/api/settings"): {
        "200": ("live", "/api/settings"),
        "401": ("noauth", "/api/settings"),
    },
    ("PUT", "/api/settings"): {
        "200": ("live", "/api/settings"),
        "400": ("live", "/api/settings?bad-body"),
        "401": ("noauth", "/api/settings"),
        "403": ("crosssite", "/api/settings"),
    },
    **{
        ("GET", f"/api/stats{suffix}"): {
            "200": ("live", f"/api/stats{suffix}?{_T}"),
            "400": ("live", f"/api/stats{suffix}?start=2020-01-01&end=2019-01-01"),
            "401": ("noauth", f"/api/stats{suffix}?{_T}"),
            "503": ("off", f"/api/stats{suffix}?{_T}"),
        }
        for suffix in ("", "/dashboard", "/hourly", "/models", "/latency", "/ratelimits")
    },
    ("GET", "/api/stats/organizations"): {
        "200": ("live", "/api/stats/organizations"),
        "401": ("noauth", "/api/stats/organizations"),
        "503": ("off", "/api/stats/organizations"),
    },
    ("GET", "/api/conversations"): {
        "200": ("live", "/api/conversations"),
        "400": ("live", "/api/conversations?limit=0"),
        "401": ("noauth", "/api/conversations"),
        "503": ("off", "/api/conversations"),
    },
    ("GET", "/api/conversations/project"): {
        "200": ("live", "/api/conversations/project?project=/nowhere"),
        "400": ("live", "/api/conversations/project"),
        "401": ("noauth", "/api/conversations/project?project=/nowhere"),
        "503": ("off", "/api/conversations/project?project=/nowhere"),
    },
    ("GET", "/api/conversations/search"): {
        "200": ("live", "/api/conversations/search?q=hello"),
        "400": ("live", "/api/conversations/search"),
        "401": ("noauth", "/api/conversations/search?q=hello"),
        "503": ("off", "/api/conversations/search?q=hello"),
    },
    ("GET", "/api/conversations/{id}"): {
        "200": ("live", f"/api/conversations/{C}"),
        "400": ("live", "/api/conversations/bad%20id"),
        "401": ("noauth", f"/api/conversations/{C}"),
        "404": ("live", "/api/conversations/no-such-conversation"),
        "503": ("off", "/api/conversations/x"),
    },
}


async def _answer(
    mode: str, method: str, path: str, live: LiveApp, http: aiohttp.ClientSession
) -> tuple[int, Any]:
    """The status, and the JSON body of an error."""
    path = path.replace(R, live.request_id).replace(C, live.conversation_id)
    body: bytes | None = None
    if method == "PUT":
        body = b"{not json" if path.endswith("?bad-body") else b'{"requestHeaderRules": []}'
        path = path.removesuffix("?bad-body")
    if mode in ("live", "noauth", "crosssite"):
        headers = {} if mode == "noauth" else dict(AUTH)
        if mode == "crosssite":
            headers |= {"sec-fetch-site": "cross-site", "origin": "https://elsewhere.example"}
        async with http.request(method, live.url + path, data=body, headers=headers) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw) if resp.status >= 400 else None
    if mode not in _OFF_APP:
        _OFF_APP[mode] = _app(REQUEST_LOG="false")
    app = _OFF_APP[mode]
    if mode == "draining":
        app.ctx.live.start_draining()
    _, resp = await app.asgi_client.request(method, path, content=body)
    return resp.status, resp.json if resp.status >= 400 else None


_OFF_APP: dict[str, Sanic] = {}


async def test_documented_statuses_are_real(live: LiveApp, http: aiohttp.ClientSession) -> None:
    """Each documented status is answered, with a body matching its documented
    schema (for /api/*: the seed's ErrorResponse)."""
    async with http.get(live.url + "/openapi.json") as resp:
        spec = await resp.json()
    operations = {k: op for k, op in _operations(spec).items() if not k[1].startswith("/v1/")}
    assert set(PROBES) == set(operations), "every dashboard/health operation needs probes"
    wrong: list[str] = []
    # DELETE last: it clears the log the other probes read.
    for (method, path), op in sorted(operations.items(), key=lambda kv: kv[0][0] == "DELETE"):
        assert set(PROBES[(method, path)]) == set(op["responses"]), f"{method} {path}"
        for status, (mode, url) in PROBES[(method, path)].items():
            got, error = await _answer(mode, method, url, live, http)
            assert got == int(status), f"{method} {url} ({mode}): {got}, documented {status}"
            if error is None:
                continue
            name = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            problems = errors(json_schema(spec, name.rsplit("/", 1)[1]), error)
            if problems:
                wrong.append(f"{method} {url} ({mode}) {status}: {problems} in {error}")
    assert not wrong, "\n".join(wrong)


async def test_401_carries_a_basic_challenge(live: LiveApp, http: aiohttp.ClientSession) -> None:
    async with http.get(live.url + "/api/stats/organizations") as resp:
        assert resp.status == 401
        assert resp.headers["www-authenticate"].startswith("Basic ")


async def test_a_percent_encoded_conversation_id_is_decoded() -> None:
    # Found by Schemathesis: `/api/conversations/r8%3AU` (the id `r8:U`) answered 400.
    app = _app(REQUEST_LOG="false")
    _, resp = await app.asgi_client.get("/api/conversations/r8%3AU")
    assert resp.status == 503  # past the id check: only the missing log stops it
    _, resp = await app.asgi_client.get("/api/conversations/r8%2FU")
    assert resp.status == 400  # `r8/U` is not an id


async def test_integer_parameters_take_ascii_digits_only() -> None:
    # Documented as integers (or empty for the default): int() alone also took
    # "1_0", " 5" and other scripts' digits.
    app = _app(REQUEST_LOG="false")
    for bad in ("1_0", " 5", "\u0665", "5.0"):
        _, resp = await app.asgi_client.get("/api/requests", params={"page": bad})
        assert resp.status == 400, bad
        assert resp.json["details"].startswith("page: must be an integer"), resp.json
    for fine in ("", "7", "+7"):
        _, resp = await app.asgi_client.get("/api/requests", params={"page": fine})
        assert resp.status == 503, fine  # accepted: only the missing log stops it


async def test_ranges_at_the_calendar_edge_are_a_400(
    live: LiveApp, http: aiohttp.ClientSession
) -> None:
    # Found by Schemathesis: `end=0001-01-01` answered 500 (the default 30-day start
    # fell before year 1).
    for query in ("end=0001-01-01", "start=9999-12-30&end=9999-12-31T23:00:00Z"):
        async with http.get(f"{live.url}/api/stats/dashboard?{query}", headers=AUTH) as resp:
            assert resp.status == 400, query
            assert "start" in error_message(await resp.json()), query
