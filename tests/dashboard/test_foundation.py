"""The dashboard's foundation, without a browser: security headers, assets and
their caching, auth, the `/` redirect, the templates' hygiene, rendering helpers,
and the files the installed package ships."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from pymongo.errors import AutoReconnect
from sanic import Sanic

from app import create_app
from dashboard import formatting as fmt
from dashboard.assets import IMMUTABLE, REVALIDATE, STATIC_DIR, asset_url, catalogue, lookup
from dashboard.render import NAV_ITEMS, environment
from dashboard.security import CONTENT_SECURITY_POLICY
from runtime.settings import Settings
from tests.conftest import ROOT

TEMPLATES = ROOT / "dashboard" / "templates"
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def _app(**env: str) -> Sanic:
    return create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", **env}))


def _basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


def _security_headers_of(resp: Any) -> None:
    assert resp.headers["content-security-policy"] == EXPECTED_CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "same-origin"


# ---- pages and headers --------------------------------------------------------------
async def test_pages_carry_the_security_headers() -> None:
    assert CONTENT_SECURITY_POLICY == EXPECTED_CSP
    app = _app()
    for path in ("/dashboard", "/dashboard/overview", "/dashboard?range=bogus"):
        _, resp = await app.asgi_client.get(path)
        # No database under the test client: the page explains instead of failing.
        assert resp.status in (400, 503), (path, resp.status)
        assert resp.headers["content-type"].startswith("text/html")
        _security_headers_of(resp)
        assert resp.headers["cache-control"] == "private, no-cache"
        assert "<!doctype html>" in resp.text


async def test_a_log_that_is_off_is_explained_on_the_page() -> None:
    _, resp = await _app(REQUEST_LOG="false").asgi_client.get("/dashboard")
    assert resp.status == 503
    assert "REQUEST_LOG=false" in resp.text


class _DownStats:
    """A stats service whose database is gone: every read raises as pymongo does."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise AutoReconnect("connection refused")

        return fail


async def test_a_database_that_does_not_answer_is_explained_on_the_page() -> None:
    app = _app()

    @app.before_server_start
    async def broken_database(app: Sanic) -> None:
        app.ctx.stats = _DownStats()

    _, resp = await app.asgi_client.get("/dashboard?tz=UTC")
    assert resp.status == 503
    assert "The database did not answer: AutoReconnect" in resp.text
    _security_headers_of(resp)


async def test_root_redirects_get_but_answers_head_itself() -> None:
    app = _app()
    _, resp = await app.asgi_client.get("/", follow_redirects=False)
    assert resp.status == 302 and resp.headers["location"] == "/dashboard"
    # Claude Code's start-up probe: a fast 2xx, never a redirect.
    _, resp = await app.asgi_client.head("/", follow_redirects=False)
    assert resp.status == 200 and "location" not in resp.headers
    assert resp.body == b""


async def test_head_root_is_not_redirected_with_a_password_either() -> None:
    _, resp = await _app(DASHBOARD_PASSWORD="pw").asgi_client.head("/", follow_redirects=False)
    assert not 300 <= resp.status < 400 and "location" not in resp.headers


async def test_the_dashboard_needs_the_password() -> None:
    app = _app(DASHBOARD_PASSWORD="s3cret")
    hashed = asset_url("app.css")
    for path in ("/dashboard", "/dashboard/overview", "/dashboard/static/core.js", hashed):
        _, resp = await app.asgi_client.get(path)
        assert resp.status == 401, path
        assert resp.headers["www-authenticate"].startswith("Basic ")
        _, resp = await app.asgi_client.get(path, headers=_basic("wrong"))
        assert resp.status == 401, path
        _, resp = await app.asgi_client.get(path, headers=_basic("s3cret"))
        assert resp.status in (200, 503), path  # 503: no database under the test client
    # `/` itself holds nothing: it may be open (a redirect to the protected page).
    _, resp = await app.asgi_client.get("/", follow_redirects=False)
    assert resp.status == 401 or (resp.status == 302 and resp.headers["location"] == "/dashboard")


async def test_empty_log_says_where_to_point_claude_code(
    mongo_uri: str, database_name: str
) -> None:
    app = _app(MONGODB_URI=mongo_uri, MONGODB_DATABASE=database_name)
    _, resp = await app.asgi_client.get("/dashboard", headers={"host": "10.1.2.3:3999"})
    assert resp.status == 200, resp.text
    assert "No requests yet: point Claude Code at http://10.1.2.3:3999" in resp.text
    assert "export ANTHROPIC_BASE_URL=http://10.1.2.3:3999" in resp.text


# ---- static files -----------------------------------------------------------------
def test_asset_urls_are_content_hashed() -> None:
    for name, asset in catalogue().items():
        url = asset_url(name)
        stem, suffix = name.rsplit(".", 1)
        assert re.fullmatch(rf"/dashboard/static/{re.escape(stem)}\.[0-9a-f]{{10}}\.{suffix}", url)
        assert asset.digest in url
    with pytest.raises(LookupError):
        asset_url("missing.js")


async def test_hashed_assets_are_immutable_and_plain_names_revalidate() -> None:
    app = _app()
    css = catalogue()["app.css"]
    _, resp = await app.asgi_client.get(asset_url("app.css"))
    assert resp.status == 200 and resp.body == css.body
    assert resp.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert resp.headers["content-type"].startswith("text/css")
    assert resp.headers["x-content-type-options"] == "nosniff"

    _, resp = await app.asgi_client.get("/dashboard/static/core.js")
    assert resp.status == 200
    assert resp.headers["cache-control"] == REVALIDATE
    assert resp.headers["content-type"].startswith("text/javascript")
    etag = resp.headers["etag"]
    _, again = await app.asgi_client.get(
        "/dashboard/static/core.js", headers={"if-none-match": etag}
    )
    assert again.status == 304 and again.body == b""
    _, weak = await app.asgi_client.get(
        "/dashboard/static/core.js", headers={"if-none-match": f'"x", W/{etag}'}
    )
    assert weak.status == 304
    _, other = await app.asgi_client.get(
        "/dashboard/static/core.js", headers={"if-none-match": '"0000000000"'}
    )
    assert other.status == 200

    # A page from another release names an older hash: the current file, revalidated.
    stale = "/dashboard/static/app.0123456789.css"
    _, resp = await app.asgi_client.get(stale)
    assert resp.status == 200 and resp.headers["cache-control"] == REVALIDATE


@pytest.mark.parametrize(
    "name", ["nothing.js", "..%2Fassets.py", "%2e%2e", ".hidden", "app.css%00", "a b.js"]
)
async def test_unknown_or_hostile_static_names_are_404(name: str) -> None:
    _, resp = await _app().asgi_client.get(f"/dashboard/static/{name}")
    assert resp.status == 404
    assert resp.json["type"] == "error"


def test_hostile_static_names_resolve_to_nothing() -> None:
    for name in ("../render.py", "..", "static/app.css", "/etc/passwd", "app.css/", ""):
        assert lookup(name) is None, name


async def test_the_favicon_is_linked_and_served() -> None:
    app = _app()
    _, page = await app.asgi_client.get("/dashboard")
    icon = re.search(r'<link rel="icon"[^>]*href="([^"]+)"', page.text)
    assert icon is not None
    _, resp = await app.asgi_client.get(icon.group(1))
    assert resp.status == 200 and resp.headers["content-type"] == "image/svg+xml"


# ---- what the templates and scripts may contain -------------------------------------
def _shipped_text() -> dict[str, str]:
    files = {p: p.read_text() for p in TEMPLATES.glob("*.html")}
    files |= {p: p.read_text() for p in STATIC_DIR.iterdir() if p.suffix in (".js", ".css", ".svg")}
    assert len(files) >= 6  # the scan saw the files it guards
    return {str(p.relative_to(ROOT)): text for p, text in files.items()}


def test_no_inline_script_or_style_and_no_safe_filter() -> None:
    for name, text in _shipped_text().items():
        if not name.endswith(".html"):
            continue
        for tag in re.findall(r"<script\b[^>]*>.*?</script>", text, flags=re.S | re.I):
            assert re.search(r"\bsrc=", tag) and re.search(r">\s*</script>$", tag), (name, tag)
        assert not re.search(r"<style\b", text, flags=re.I), name
        assert not re.search(r"\sstyle\s*=", text, flags=re.I), name
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), name  # onclick=, onerror=
        assert not re.search(r"\|\s*safe\b", text), name
        assert "autoescape false" not in text, name
        assert "javascript:" not in text.lower(), name


def test_scripts_never_build_html_from_strings() -> None:
    for name, text in _shipped_text().items():
        if name.endswith(".js"):
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in text, (name, sink)


def test_nothing_is_loaded_from_another_origin() -> None:
    # The SVG namespace is an identifier, never fetched.
    allowed = {"http://www.w3.org/2000/svg"}
    for name, text in _shipped_text().items():
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"')]*", text))
        assert urls <= allowed, (name, urls - allowed)
        assert "@import" not in text and "fonts.googleapis" not in text, name


# ---- rendering helpers ----------------------------------------------------------------
@pytest.mark.parametrize("section", [key for key, _, _ in NAV_ITEMS])
def test_pages_declare_their_nav_section(section: str) -> None:
    page = environment().from_string(
        '{% extends "base.html" %}{% set nav = "' + section + '" %}'
        "{% block content %}<p>body</p>{% endblock %}"
    )
    html = page.render(request_path="/x", with_query=lambda **_: "", proxy_address="")
    current = re.findall(r'<a href="([^"]+)"[^>]*aria-current="page"', html)
    expected = next(href for key, _, href in NAV_ITEMS if key == section)
    assert current == [expected]
    assert "<p>body</p>" in html


def test_a_misspelt_variable_fails_the_render() -> None:
    with pytest.raises(UndefinedError):
        environment().from_string("{{ nope.deeper }}").render()


def test_autoescape_is_on_for_every_template() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    html = environment().from_string("{{ value }}").render(value=hostile)
    assert html == "&lt;img src=x onerror=alert(1)&gt;"


async def test_with_query_replaces_and_removes_parameters() -> None:
    from dashboard.render import query_builder

    app = _app()
    seen: dict[str, str] = {}

    @app.get("/dashboard/__probe")
    async def probe(request: Any) -> Any:
        from sanic.response import text

        build = query_builder(request)
        seen["set"] = build(page=2)
        seen["drop"] = build(model=None)
        seen["both"] = build(model="claude x&y", tz=None)
        return text("ok")

    await app.asgi_client.get("/dashboard/__probe?model=a&tz=Europe%2FParis&page=1")
    assert seen["set"] == "/dashboard/__probe?model=a&tz=Europe%2FParis&page=2"
    assert seen["drop"] == "/dashboard/__probe?tz=Europe%2FParis&page=1"
    assert seen["both"] == "/dashboard/__probe?page=1&model=claude+x%26y"


@pytest.mark.parametrize(
    ("value", "number", "compact"),
    [
        (0, "0", "0"),
        (999, "999", "999"),
        (1234, "1,234", "1.2k"),
        (2_500_000, "2,500,000", "2.5M"),
        (123_456_789, "123,456,789", "123M"),
        (None, fmt.MISSING, fmt.MISSING),
        (1.5, "1.50", "1.5"),
    ],
)
def test_number_formats(value: float | None, number: str, compact: str) -> None:
    assert fmt.number(value) == number
    assert fmt.compact(value) == compact


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "$0.00"),
        (12.345, "$12.35"),
        (1234.5, "$1,234.50"),
        (0.42, "$0.42"),
        (0.0031, "$0.0031"),
        (0.05, "$0.05"),
        (0.099, "$0.099"),
        (0.000012, "$0.000012"),
        (None, fmt.MISSING),
    ],
)
def test_dollars_never_round_a_small_cost_to_zero(value: float | None, text: str) -> None:
    assert fmt.usd(value) == text


def test_percent_and_milliseconds() -> None:
    assert fmt.percent(0.4215) == "42 %" and fmt.percent(0.4215, 1) == "42.1 %"
    assert fmt.percent(None) == fmt.MISSING
    assert fmt.milliseconds(842.3) == "842 ms" and fmt.milliseconds(15300) == "15.3 s"


# ---- the installed package ------------------------------------------------------------
def test_the_built_package_ships_and_serves_every_template_and_asset(tmp_path: Path) -> None:
    """A wheel built from the project holds every file of dashboard/templates and
    dashboard/static (package data), and the dashboard renders from that copy alone."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "wheel"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    expected = {
        p.relative_to(ROOT).as_posix()
        for folder in (TEMPLATES, STATIC_DIR)
        for p in folder.iterdir()
        if p.is_file()
    }
    assert expected and not expected - shipped, sorted(expected - shipped)
    check = (
        "import sys, dashboard, dashboard.render as r, dashboard.assets as a\n"
        "assert dashboard.__file__.startswith(sys.argv[1]), dashboard.__file__\n"
        "html = r.render_text('base.html', request_path='/', with_query=None, proxy_address='')\n"
        "for name in a.catalogue():\n"
        "    assert a.lookup(name) is not None, name\n"
        "assert a.asset_url('app.css') in html and a.asset_url('app.js') in html\n"
        "print(len(a.catalogue()))\n"
    )
    site = str(tmp_path / "site")
    run = subprocess.run(
        [sys.executable, "-c", check, site], cwd=site, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert int(run.stdout) == len(catalogue())
