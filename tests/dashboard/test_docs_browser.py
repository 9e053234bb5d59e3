"""`/docs` in a real browser: Swagger UI renders the proxy's own OpenAPI document,
under its CSP, with no console error, and every request the page makes goes to the
proxy itself (the browser's resolver maps every other name to nothing, so a CDN
request would also fail loudly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from handlers.docs_ui import CONTENT_SECURITY_POLICY
from tests.dashboard.conftest import DashboardEnv, PageFactory

if TYPE_CHECKING:
    from playwright.sync_api import Page

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _open_docs(page: Page, env: DashboardEnv) -> list[str]:
    """Open /docs, recording the URL of every request the page makes."""
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    response = page.goto("/docs")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.locator(".swagger-ui .opblock").first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    return requested


def _assert_all_own_origin(requested: list[str], env: DashboardEnv) -> None:
    # data: URIs (the stylesheet's icons) are decoded in place, not fetched.
    fetched = [u for u in requested if not u.startswith("data:")]
    assert fetched, "the page made no request at all"
    elsewhere = [u for u in fetched if _origin(u) != _origin(env.url)]
    assert not elsewhere, f"requests that left the proxy: {elsewhere}"


def test_docs_renders_every_operation_from_the_proxy_alone(
    new_page: PageFactory, dashboard_env: DashboardEnv, screenshot: Callable[..., Path]
) -> None:
    spec = dashboard_env.get_json("/openapi.json")
    operations = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method in ops
        if method in HTTP_METHODS
    }
    page = new_page(credentials=False)
    requested = _open_docs(page, dashboard_env)

    assert page.title() == spec["info"]["title"]
    assert page.locator(".swagger-ui .info .title").inner_text().startswith(spec["info"]["title"])
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip().upper(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in page.locator(".swagger-ui .opblock").all()
    }
    assert shown == operations
    # The document came from /openapi.json, and the scripts and styles from /docs/static.
    paths = {urlsplit(u).path for u in requested}
    assert "/openapi.json" in paths
    assert any(p.startswith("/docs/static/swagger-ui-bundle.") for p in paths)
    assert any(p.startswith("/docs/static/swagger-init.") for p in paths)
    _assert_all_own_origin(requested, dashboard_env)
    screenshot(page, "docs", full_page=False)


def test_an_operation_opens_and_try_it_out_calls_the_proxy(
    new_page: PageFactory, dashboard_env: DashboardEnv
) -> None:
    """Expanding an operation renders its schemas and examples (syntax-highlighted
    code, which styles itself); Try it out fetches from the proxy: all within the
    CSP (a refused inline style or request would be a console error)."""
    page = new_page(credentials=False)
    requested = _open_docs(page, dashboard_env)

    block = page.locator(".swagger-ui .opblock", has=page.locator('[data-path="/livez"]'))
    block.locator(".opblock-summary").click()
    block.locator(".try-out__btn").click()
    block.locator(".execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(state="visible")
    assert status.inner_text().strip() == "200"
    assert '"status"' in block.locator(".live-responses-table .microlight").first.inner_text()
    page.wait_for_load_state("networkidle")

    # The largest schemas: the Messages request body, and the Schemas section.
    messages = page.locator(
        ".swagger-ui .opblock-post", has=page.locator('[data-path="/v1/messages"]')
    )
    messages.locator(".opblock-summary").click()
    messages.locator(
        ".opblock-body .body-param__example, .opblock-body .microlight"
    ).first.wait_for(state="visible")
    # The section starts open (Swagger UI's defaultModelsExpandDepth is 1).
    model = page.locator(".swagger-ui section.models .model-container").first
    model.locator(".model-box-control").first.click()
    model.locator(".model .property-row").first.wait_for(state="visible")
    # The Authorize dialog (the dashboard's Basic auth, the model API's keys).
    page.locator(".swagger-ui .auth-wrapper .authorize").click()
    dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
    dialog.wait_for(state="visible")
    assert "dashboardBasicAuth" in dialog.inner_text()
    dialog.locator(".close-modal").click()
    dialog.wait_for(state="hidden")
    page.wait_for_load_state("networkidle")

    assert any(urlsplit(u).path == "/livez" for u in requested)
    _assert_all_own_origin(requested, dashboard_env)
