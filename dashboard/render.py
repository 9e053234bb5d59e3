"""Rendering a dashboard page: our own Jinja2 environment, autoescaping everything,
and the headers every page carries.

Every page extends `base.html` (blocks `title`, `content`, `scripts`) and names
its section with `{% set nav = "overview" %}`. Templates get:

- `asset(name)`: the content-hashed URL of a static file (dashboard/assets.py);
- `nav_items`: the sections, each `(key, label, href)`;
- `with_query(**changes)`: this page's URL with query parameters replaced
  (a value of None removes one), for filters, pages and sort links;
- `proxy_address`: this server's own `scheme://host:port` as the browser used it;
- the filters of dashboard/formatting.py.

No `|safe` on anything derived from recorded data: prompts, headers and model
names reach the browser escaped, whatever they contain.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sanic import Request
from sanic.response import HTTPResponse

from dashboard.assets import asset_url
from dashboard.formatting import FILTERS
from dashboard.security import PAGE_CACHE_CONTROL, security_headers

# The sections of the navigation bar, in order: (key, label, path).
NAV_ITEMS: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", "/dashboard"),
    ("requests", "Requests", "/dashboard/requests"),
    ("conversations", "Conversations", "/dashboard/conversations"),
    ("settings", "Settings", "/dashboard/settings"),
)


@cache
def environment() -> Environment:
    """One environment per process: templates are compiled once, on first use.
    PackageLoader reads them from wherever the package is installed."""
    env = Environment(
        loader=PackageLoader("dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        # A misspelt variable fails the render instead of showing nothing.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals["asset"] = asset_url
    env.globals["nav_items"] = NAV_ITEMS
    return env


def own_address(request: Request) -> str:
    """`scheme://host:port` as the browser reached this server."""
    return f"{request.scheme}://{request.host}"


def query_builder(request: Request) -> Callable[..., str]:
    """`with_query(page=2, model=None)` → this path with `page` set and `model`
    removed; the other parameters kept in their order."""
    current = [(k, v) for k, values in request.args.items() for v in values]

    def with_query(**changes: Any) -> str:
        kept = [(k, v) for k, v in current if k not in changes]
        added = [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
        query = urlencode(kept + added)
        return f"{request.path}?{query}" if query else request.path

    return with_query


def render_text(template: str, **context: Any) -> str:
    """The page's HTML alone (used by `render`, and by tests without a request)."""
    return environment().get_template(template).render(**context)


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTTPResponse:
    page = render_text(
        template,
        request_path=request.path,
        with_query=query_builder(request),
        proxy_address=own_address(request),
        **context,
    )
    headers = security_headers()
    headers["cache-control"] = PAGE_CACHE_CONTROL
    return HTTPResponse(
        page, status=status, headers=headers, content_type="text/html; charset=utf-8"
    )
