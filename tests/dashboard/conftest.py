"""The dashboard's browser-test harness: Playwright (its sync API) driving Debian's
Chromium against a real proxy process fed by real traffic.

- `chromium_path`: skips, naming what is missing, when Chromium or the playwright
  package is absent (under CI=true it fails instead: CI must run these tests).
- `browser`: Chromium, headless, with host-resolver rules so it never makes a
  lookup or connection beyond loopback. One per test module: while the sync API
  is alive it marks the thread's event loop as running, which would break any
  async test that ran meanwhile, so browser test modules hold sync tests only,
  and the browser is gone before the next module starts.
- `new_page`: a page in a fresh context (Basic credentials, colour scheme, zone)
  whose console errors, uncaught exceptions, failed requests and HTTP errors are
  recorded; the test fails if any occurred (pass `allow=` substrings for the ones
  a test provokes on purpose).
- `screenshot`: writes tests/dashboard/screenshots/<name>.png (git-ignored).
- `dashboard_env`: one proxy for the session (SecantusDB or $MONGODB_URI, the fake
  upstream, DASHBOARD_PASSWORD) and `send_traffic`, which sends real Messages
  requests through it and returns once they are recorded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy, wait_recorded
from tests.fake_upstream import FakeUpstream

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/lib/chromium/chromium")
# Chromium resolves names on its own (updates, accounts) even headless: map every
# name to nothing but loopback, so a test can never reach the network.
HOST_RESOLVER_RULES = (
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"
)
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PASSWORD = "dashboard-test-password"
API_KEY = "sk-ant-api03-dashboard-test-key"

# send_traffic kinds: name → (x-fake scenario of tests/fake_upstream.py, stream).
KINDS: dict[str, tuple[str, bool]] = {
    "stream": ("sse:text_basic", True),
    "json": ("json:text_basic", False),
    "tool_use": ("sse:tool_use", True),
    "thinking": ("sse:thinking", True),
    "midstream_error": ("sse:overloaded_midstream", True),
    "rate_limited": ("status:429", False),
    "overloaded": ("status:529", False),
    "server_error": ("status:500", False),
    "invalid": ("status:400", False),
}
# What `send_traffic(n)` cycles through: mostly streams, as Claude Code sends.
DEFAULT_MIX = ("stream", "json", "tool_use", "stream", "thinking", "rate_limited", "stream")
DEFAULT_MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-5", "claude-haiku-4-5")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make test installs the dev extra)"
    if not os.access(CHROMIUM, os.X_OK):
        return (
            f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium "
            "when run as root with apt-get; or: apt-get install -y chromium)"
        )
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = missing_browser()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but {reason}")
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, args=[HOST_RESOLVER_RULES], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


# ---- the proxy and its traffic ----------------------------------------------------
@dataclass(frozen=True)
class Sent:
    kind: str
    model: str
    status: int
    request_id: str | None  # x-proxy-request-id: the record's id in the log
    session: str


@dataclass
class DashboardEnv:
    proxy: ProxyProcess
    upstream: FakeUpstream
    password: str = PASSWORD
    sent: list[Sent] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def auth(self) -> dict[str, str]:
        token = base64.b64encode(f"tester:{self.password}".encode()).decode()
        return {"authorization": f"Basic {token}"}

    def get_json(self, path: str) -> Any:
        """GET an `/api` path with the password (sync: usable beside the browser)."""
        request = urllib.request.Request(self.url + path, headers=self.auth)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def send_traffic(
        self,
        n: int = 0,
        *,
        models: Sequence[str] = DEFAULT_MODELS,
        session: str | None = None,
        prompt: str = "Hello from the dashboard tests",
        headers: dict[str, str] | None = None,
        **kinds: int,
    ) -> list[Sent]:
        """Send `n` requests of the default mix plus `kinds` (e.g. `stream=2,
        rate_limited=1`; names in KINDS) through the proxy, models taken in turn,
        all in one Claude Code session (a new one unless given); return once the
        recorder has stored them and counted them into the rollups."""
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown traffic kinds {sorted(unknown)}; known: {sorted(KINDS)}")
        plan = [DEFAULT_MIX[i % len(DEFAULT_MIX)] for i in range(n)]
        for kind, count in kinds.items():
            plan += [kind] * count
        session = session or str(uuid.uuid4())
        work = self._send(plan, list(models), session, prompt, headers or {})
        # Its own thread and loop: the caller may be a sync browser test, whose
        # thread Playwright marks as running an event loop.
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(asyncio.run, work).result()
        self.sent += sent
        return sent

    async def _send(
        self,
        plan: list[str],
        models: list[str],
        session: str,
        prompt: str,
        extra: dict[str, str],
    ) -> list[Sent]:
        sent = []
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}/livez") as resp:
                before = ((await resp.json()).get("writer") or {}).get("written") or 0
            for i, kind in enumerate(plan):
                scenario, stream = KINDS[kind]
                model = models[i % len(models)]
                body = {
                    "model": model,
                    "max_tokens": 256,
                    "stream": stream,
                    "system": "You are Claude Code.\nWorking directory: /work/dashboard-demo",
                    "metadata": {"user_id": json.dumps({"session_id": session})},
                    "messages": [{"role": "user", "content": f"{prompt} #{i + 1}"}],
                }
                headers = {
                    "x-api-key": API_KEY,
                    "anthropic-version": "2023-06-01",
                    "x-claude-code-session-id": session,
                    "x-fake": scenario,
                    **extra,
                }
                async with http.post(
                    f"{self.url}/v1/messages?beta=true", json=body, headers=headers
                ) as resp:
                    await resp.read()
                    request_id = resp.headers.get("x-proxy-request-id")
                sent.append(Sent(kind, model, resp.status, request_id, session))
            await wait_recorded(http, self.proxy, before + len(plan))
        return sent


def start_dashboard_proxy(tmp: Path, upstream: FakeUpstream, mongo_uri: str) -> ProxyProcess:
    return start_proxy(
        tmp,
        {
            "MONGODB_URI": mongo_uri,
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DASHBOARD_PASSWORD": PASSWORD,
            "DATA_DIR": str(tmp / "data"),
            # Kolkata's local days rolled up too: the Overview in it reads them.
            "STATS_ZONES": "Asia/Kolkata",
        },
    )


@pytest.fixture(scope="session")
def dashboard_env(
    upstream: FakeUpstream, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DashboardEnv]:
    """The proxy every dashboard test shares; its database starts empty (its own
    name per proxy), and tests add traffic with `send_traffic`."""
    proxy = start_dashboard_proxy(tmp_path_factory.mktemp("dashboard"), upstream, mongo_uri)
    try:
        yield DashboardEnv(proxy, upstream)
    finally:
        proxy.stop()


# ---- pages ------------------------------------------------------------------------
@dataclass
class PageFactory:
    browser: Browser
    env: DashboardEnv
    _problems: dict[int, list[str]] = field(default_factory=dict)
    _contexts: list[Any] = field(default_factory=list)

    def __call__(
        self,
        *,
        base_url: str | None = None,
        credentials: bool = True,
        color_scheme: str = "light",
        timezone_id: str = "UTC",
        width: int = 1366,
        height: int = 900,
        allow: Sequence[str] = (),
    ) -> Page:
        """A page at `base_url` (default the shared proxy) in a context of its own."""
        options: dict[str, Any] = {
            "base_url": base_url or self.env.url,
            "color_scheme": color_scheme,
            "timezone_id": timezone_id,
            "viewport": {"width": width, "height": height},
            "locale": "en-GB",
        }
        if credentials:
            # Given on the server's 401 challenge, as a person would type them.
            options["http_credentials"] = {"username": "tester", "password": self.env.password}
        context = self.browser.new_context(**options)
        self._contexts.append(context)
        page = context.new_page()
        problems: list[str] = []
        self._problems[id(page)] = problems

        def record(text: str) -> None:
            if not any(a in text for a in allow):
                problems.append(text)

        page.on(
            "console",
            lambda msg: record(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: record(f"uncaught: {exc}"))
        # A navigation aborts what the page it leaves was still loading: not a fault.
        page.on(
            "requestfailed",
            lambda req: (
                None
                if (req.failure or "") == "net::ERR_ABORTED"
                else record(f"failed: {req.method} {req.url}: {req.failure}")
            ),
        )
        page.on(
            "response",
            lambda resp: (
                record(f"HTTP {resp.status}: {resp.request.method} {resp.url}")
                if resp.status >= 400
                else None
            ),
        )
        return page

    def problems(self, page: Page) -> list[str]:
        return self._problems[id(page)]

    def close(self) -> list[str]:
        for context in self._contexts:
            context.close()
        return [p for problems in self._problems.values() for p in problems]


@pytest.fixture
def new_page(browser: Browser, dashboard_env: DashboardEnv) -> Iterator[PageFactory]:
    factory = PageFactory(browser, dashboard_env)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("the page reported errors:\n" + "\n".join(problems))


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
