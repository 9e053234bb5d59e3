"""`/docs` without a browser: the page and every file it loads come from the proxy
(Swagger UI from the installed swagger-ui-py package, never a CDN), under a CSP
with no inline script or style, cached by content hash and ETag; sanic-ext's CDN
UI is gone; OPENAPI_DOCS=false still hides it all."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from sanic import Sanic

from app import create_app
from dashboard.assets import IMMUTABLE, REVALIDATE
from handlers import docs_ui
from handlers.docs_ui import (
    CONTENT_SECURITY_POLICY,
    OWN_FILES,
    OWN_STATIC,
    VENDOR_FILES,
    VENDOR_ICONS,
    DocsAssetsMissing,
    swagger_ui_dir,
)
from runtime.settings import Settings
from tests.conftest import ROOT

EXTERNAL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+", re.IGNORECASE)
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


def _app(**env: str) -> Sanic:
    return create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", **env}))


class _Page(HTMLParser):
    """Every tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(f"<{self._in}>{data.strip()[:80]}")


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _loaded_urls(page: _Page) -> list[str]:
    return [
        value
        for _, attrs in page.tags
        for key, value in attrs.items()
        if key in ("src", "href") and value is not None
    ]


async def test_the_page_loads_only_the_proxys_own_files() -> None:
    app = _app()
    _, resp = await app.asgi_client.get("/docs")
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "swagger-ui" in resp.text
    assert not EXTERNAL.search(resp.text), EXTERNAL.search(resp.text)
    page = _parse(resp.text)
    assert page.inline == [], "no inline script or style: the CSP refuses them"
    assert not [
        t for t, attrs in page.tags if "style" in attrs or any(k.startswith("on") for k in attrs)
    ]
    urls = _loaded_urls(page)
    expected = {*VENDOR_FILES, *VENDOR_ICONS, *OWN_FILES}
    assert len(urls) == len(expected)
    for url in urls:
        assert re.fullmatch(r"/docs/static/[A-Za-z0-9_-]+\.[0-9a-f]{10}\.(js|css|png)", url), url
    assert {re.sub(r"\.[0-9a-f]{10}\.", ".", u.rsplit("/", 1)[1]) for u in urls} == expected
    # Swagger UI is pointed at the proxy's own document.
    (root,) = [attrs for tag, attrs in page.tags if attrs.get("id") == "swagger-ui"]
    assert root["data-spec-url"] == "/openapi.json"
    assert f"<title>{app.config.API_TITLE}</title>" in resp.text


def test_the_csp_allows_this_origin_only_and_nothing_inline() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"  # checked in a browser: no 'unsafe-inline' needed
    assert directives["img-src"] == "'self' data:"  # the stylesheet's icons are data: URIs
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert not any("unsafe" in v or "*" in v or "http" in v for v in directives.values())


async def test_assets_are_served_under_content_hashes_with_validators() -> None:
    app = _app()
    _, page = await app.asgi_client.get("/docs")
    for url in _loaded_urls(_parse(page.text)):
        _, resp = await app.asgi_client.get(url)
        assert resp.status == 200, url
        digest = url.rsplit(".", 2)[1]
        assert hashlib.sha256(resp.body).hexdigest().startswith(digest), url
        assert resp.headers["content-type"] == CONTENT_TYPES[Path(url).suffix], url
        assert resp.headers["cache-control"] == IMMUTABLE, url
        assert resp.headers["etag"] == f'"{digest}"', url
        assert resp.headers["x-content-type-options"] == "nosniff", url
        _, again = await app.asgi_client.get(url, headers={"if-none-match": f'W/"{digest}"'})
        assert again.status == 304 and again.body == b"", url
        assert again.headers["etag"] == f'"{digest}"'


async def test_plain_and_stale_names_are_revalidated_and_unknown_ones_are_404() -> None:
    app = _app()
    _, plain = await app.asgi_client.get("/docs/static/swagger-init.js")
    assert plain.status == 200 and plain.headers["cache-control"] == REVALIDATE
    assert plain.body == (OWN_STATIC / "swagger-init.js").read_bytes()
    # A page from an older release during a rolling update names another hash: it
    # gets today's file, revalidated rather than kept for a year.
    _, stale = await app.asgi_client.get("/docs/static/swagger-init.0123456789.js")
    assert stale.status == 200 and stale.body == plain.body
    assert stale.headers["cache-control"] == REVALIDATE
    for name in (
        "swagger-editor-bundle.js",  # in the package, but not something the page loads
        "LICENSE",
        "nothing.js",
        "..%2F..%2Fcore.py",
        "%2E%2E%2Fdocs_ui.py",
    ):
        _, resp = await app.asgi_client.get(f"/docs/static/{name}")
        assert resp.status == 404, name
        assert resp.json["type"] == "error", name


async def test_the_page_revalidates_by_etag() -> None:
    app = _app()
    _, first = await app.asgi_client.get("/docs")
    assert first.headers["cache-control"] == REVALIDATE
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    _, again = await app.asgi_client.get("/docs", headers={"if-none-match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # sanic-ext's old address of its Swagger UI serves the same page.
    _, alias = await app.asgi_client.get("/docs/swagger")
    assert alias.status == 200 and alias.text == first.text


def test_the_files_served_load_nothing_from_elsewhere() -> None:
    vendor = swagger_ui_dir()
    for name in ("swagger-ui.css", "index.css"):
        css = (vendor / name).read_text()
        assert "@import" not in css, name
        for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
            assert target.startswith("data:"), f"{name} loads {target[:60]}"
    init = (OWN_STATIC / "swagger-init.js").read_text()
    assert not EXTERNAL.search(init)
    # Swagger UI's own ways of reaching elsewhere are switched off: the validator
    # badge (an image from swagger.io) and `?url=` from the address bar.
    assert re.search(r"^\s*validatorUrl: null,$", init, re.MULTILINE)
    assert re.search(r"^\s*queryConfigEnabled: false,$", init, re.MULTILINE)
    assert 'layout: "BaseLayout"' in init  # no top bar offering to load another site's spec
    bundle = (vendor / "swagger-ui-bundle.js").read_text()
    for cdn in ("jsdelivr", "unpkg", "cdnjs", "googleapis"):
        assert cdn not in bundle, cdn


async def test_sanic_exts_cdn_ui_is_off_and_its_spec_route_stays() -> None:
    app = _app()
    assert app.config.OAS_UI_SWAGGER is False and app.config.OAS_UI_REDOC is False
    _, page = await app.asgi_client.get("/docs")
    assert "cdn" not in page.text.lower()
    # Its OAuth2 redirect route fetched a page from the CDN on the server.
    for path in ("/docs/oauth2-redirect.html", "/docs/swagger-config", "/docs/redoc"):
        _, resp = await app.asgi_client.get(path)
        assert resp.status == 404, path
    names = {route.name for route in app.router.routes}
    assert f"{app.name}.openapi.index" in names  # sanic-ext's banner builds its URL
    _, spec = await app.asgi_client.get("/docs/openapi.json")
    _, same = await app.asgi_client.get("/openapi.json")
    assert spec.status == 200 and spec.json == same.json
    assert not [p for p in same.json["paths"] if p == "/docs" or p.startswith("/docs/")]


async def test_openapi_docs_false_hides_the_page_and_its_files() -> None:
    on = _app()
    _, page = await on.asgi_client.get("/docs")
    urls = _loaded_urls(_parse(page.text))
    off = _app(OPENAPI_DOCS="false")
    for path in ("/docs", "/docs/swagger", "/docs/static/swagger-init.js", *urls):
        _, resp = await off.asgi_client.get(path)
        assert resp.status == 404, path
        assert resp.json["type"] == "error", path
    _, spec = await off.asgi_client.get("/openapi.json")
    assert spec.status == 200


async def test_the_docs_need_no_dashboard_password() -> None:
    app = _app(DASHBOARD_PASSWORD="secret")
    _, page = await app.asgi_client.get("/docs")
    assert page.status == 200
    for url in _loaded_urls(_parse(page.text)):
        _, resp = await app.asgi_client.get(url)
        assert resp.status == 200, url
    _, api = await app.asgi_client.get("/api/settings")
    assert api.status == 401  # guard on: /docs is open by rule, not by accident


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_ui.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DocsAssetsMissing, match="swagger-ui-py"):
        swagger_ui_dir()


def test_the_assets_come_with_a_runtime_dependency() -> None:
    """The image installs pyproject's [project].dependencies (Dockerfile): the
    package is one of them, and pip installed every file the page serves with it
    (RECORD), so the image has them too. Ours ship as package data."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {Requirement(r).name for r in project["dependencies"]}
    assert "swagger-ui-py" in runtime
    installed = {str(f) for f in importlib.metadata.files("swagger-ui-py") or []}
    for name in (*VENDOR_FILES, *VENDOR_ICONS):
        assert f"swagger_ui/static/{name}" in installed, name
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "docs_static/*" in data["package-data"]["handlers"]
    assert OWN_STATIC == ROOT / "handlers" / "docs_static"
