"""`/docs`: Swagger UI served by the proxy itself, so it works offline and under a
strict Content-Security-Policy.

Swagger UI's files come from the `swagger-ui-py` package (its copy of Swagger UI's
`dist`, installed with the proxy and so inside the image), never from a CDN and
never copied into this repository. The page is ours: it loads the bundle and a
small initialiser (docs_static/swagger-init.js) from `/docs/static/`, under
content-hashed names kept for a year, and points Swagger UI at `/openapi.json`.

sanic-ext's own UI is turned off here: it loads Swagger UI from a public CDN, and
its OAuth2 redirect route even fetches a page from that CDN on the server. Its
`/docs/openapi.json` stays. Our routes take the names sanic-ext's would have had
(`openapi.index`, ...): its start-up banner builds the URL of `openapi.index`, and
the docs routes stay apart from the API's (the OpenAPI document skips the docs
prefix).
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from dashboard.assets import HASH_LENGTH, IMMUTABLE, REVALIDATE, etag_matches
from streaming.errors import error_body

SPEC_URL = "/openapi.json"
OWN_STATIC = Path(__file__).resolve().parent / "docs_static"
# Only what the page loads: the package also ships Swagger Editor and the ES-module
# builds, which nobody here needs to read or serve.
VENDOR_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "index.css")
VENDOR_ICONS = ("favicon-32x32.png", "favicon-16x16.png")
OWN_FILES = ("swagger-init.js",)

# Swagger UI renders with React, which sets styles through the DOM (allowed by
# `style-src 'self'`), and its stylesheet draws icons from data: URIs (img-src).
# Nothing inline, nothing from elsewhere; `connect-src 'self'` covers fetching
# /openapi.json and "Try it out" against this proxy.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_COMMON_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}
_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
_HASHED = re.compile(
    rf"^(?P<stem>[A-Za-z0-9_-]+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<suffix>\.[a-z]+)$"
)


class DocsAssetsMissing(RuntimeError):
    """The Swagger UI package is absent or lacks a file the page needs."""


@dataclass(frozen=True, slots=True)
class DocsAsset:
    name: str
    body: bytes
    digest: str  # HASH_LENGTH hex digits of the body's SHA-256
    content_type: str

    def url(self, prefix: str) -> str:
        path = Path(self.name)
        return f"{prefix}/static/{path.stem}.{self.digest}{path.suffix}"

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def swagger_ui_dir() -> Path:
    # find_spec, not an import: the package's __init__ loads its web-framework
    # adapters, and only its static folder is wanted.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise DocsAssetsMissing("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _read(path: Path) -> DocsAsset:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise DocsAssetsMissing(f"cannot read {path}: {exc}") from exc
    digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
    return DocsAsset(path.name, body, digest, _CONTENT_TYPES[path.suffix])


@cache
def catalogue() -> dict[str, DocsAsset]:
    """Every file the page loads, by name, read once per process (about 1.7 MB, on
    the first /docs request, not at start-up: most processes never serve it)."""
    vendor = swagger_ui_dir()
    paths = [vendor / n for n in (*VENDOR_FILES, *VENDOR_ICONS)]
    paths += [OWN_STATIC / n for n in OWN_FILES]
    return {path.name: _read(path) for path in paths}


def lookup(requested: str) -> tuple[DocsAsset, str] | None:
    """The asset a `/docs/static/<requested>` URL names and its Cache-Control, or
    None. Like the dashboard's: a current hash is immutable; another release's hash
    (a page from an older replica during a rolling update) gets today's file,
    revalidated; a plain name is revalidated."""
    files = catalogue()
    if requested in files:
        return files[requested], REVALIDATE
    match = _HASHED.fullmatch(requested)
    if match is None:
        return None
    found = files.get(match["stem"] + match["suffix"])
    if found is None:
        return None
    return found, IMMUTABLE if found.digest == match["hash"] else REVALIDATE


def render_page(prefix: str, title: str) -> str:
    files = catalogue()

    def url(name: str) -> str:
        return html.escape(files[name].url(prefix))

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{url("swagger-ui.css")}">
<link rel="stylesheet" href="{url("index.css")}">
<link rel="icon" type="image/png" sizes="32x32" href="{url("favicon-32x32.png")}">
<link rel="icon" type="image/png" sizes="16x16" href="{url("favicon-16x16.png")}">
</head>
<body>
<div id="swagger-ui" data-spec-url="{html.escape(SPEC_URL)}"></div>
<script src="{url("swagger-ui-bundle.js")}"></script>
<script src="{url("swagger-init.js")}"></script>
</body>
</html>
"""


def _headers(**extra: str) -> dict[str, str]:
    return {**_COMMON_HEADERS, **extra}


def install_docs_ui(app: Sanic) -> None:
    """Turn sanic-ext's CDN UI off and serve ours under `OAS_URL_PREFIX` (/docs).

    Must run before the app starts: sanic-ext builds its docs routes from this
    config at start-up."""
    app.config.update({"OAS_UI_SWAGGER": False, "OAS_UI_REDOC": False, "OAS_UI_DEFAULT": None})
    prefix = app.config.OAS_URL_PREFIX.rstrip("/")
    title = str(app.config.get("API_TITLE") or "API")

    @cache
    def page() -> tuple[str, str]:
        body = render_page(prefix, title)
        return body, f'"{hashlib.sha256(body.encode()).hexdigest()[:HASH_LENGTH]}"'

    async def index(request: Request) -> HTTPResponse:
        body, etag = page()
        # The page names the assets by hash: revalidated each time, so a new
        # release's page (and so its assets) is seen at once.
        headers = _headers(
            **{
                "content-security-policy": CONTENT_SECURITY_POLICY,
                "cache-control": REVALIDATE,
                "etag": etag,
            }
        )
        if etag_matches(request.headers.get("if-none-match"), etag):
            return HTTPResponse(status=304, headers=headers)
        return HTTPResponse(body, headers=headers, content_type="text/html; charset=utf-8")

    async def static(request: Request, name: str) -> HTTPResponse:
        found = lookup(name)
        if found is None:
            return HTTPResponse(
                error_body(404, f"no docs file {name[:80]!r}"),
                status=404,
                headers=_headers(),
                content_type="application/json",
            )
        asset, cache_control = found
        headers = _headers(**{"cache-control": cache_control, "etag": asset.etag})
        if etag_matches(request.headers.get("if-none-match"), asset.etag):
            return HTTPResponse(status=304, headers=headers)
        return HTTPResponse(asset.body, headers=headers, content_type=asset.content_type)

    app.add_route(index, prefix, methods=["GET"], name="openapi.index")
    # Where sanic-ext's Swagger UI lived: old links keep working.
    app.add_route(index, f"{prefix}/swagger", methods=["GET"], name="openapi.swagger")
    app.add_route(static, f"{prefix}/static/<name:str>", methods=["GET"], name="openapi.asset")
