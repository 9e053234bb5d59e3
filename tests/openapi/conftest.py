"""A live proxy (real process, test database, fake upstream, dashboard password) with a
few exchanges already logged, shared by the spec and schema-driven tests."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ProxyProcess, start_proxy
from tests.fake_upstream import FakeUpstream

PASSWORD = "openapi-test-password"
AUTH = {"authorization": "Basic " + base64.b64encode(f"me:{PASSWORD}".encode()).decode()}
SESSION = "0b6f3c1e-9d2a-4e57-8c41-7a3e5f2d9b10"


@dataclass
class LiveApp:
    proxy: ProxyProcess
    request_id: str
    conversation_id: str

    @property
    def url(self) -> str:
        return self.proxy.url


def _seed(url: str) -> None:
    headers = {"x-api-key": "sk-ant-test-openapi", "x-claude-code-session-id": SESSION}
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "hello from the openapi tests"}],
    }
    for extra, stream in (({}, True), ({}, False), ({"x-fake": "status:429"}, False)):
        resp = requests.post(
            f"{url}/v1/messages", json={**body, "stream": stream}, headers={**headers, **extra}
        )
        resp.content  # noqa: B018 -- read the whole stream so the exchange completes


def _wait_logged(url: str, count: int) -> tuple[str, str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logged = requests.get(f"{url}/api/requests", params={"limit": 100}, headers=AUTH).json()
        convs = requests.get(f"{url}/api/conversations", headers=AUTH).json()
        if logged["total"] >= count and convs["total"] >= 1:
            return logged["requests"][0]["requestId"], convs["conversations"][0]["id"]
        time.sleep(0.2)
    raise AssertionError("the seeded exchanges were not logged in time")


@pytest.fixture(scope="module")
def live(
    mongo_uri: str, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    proxy = start_proxy(
        tmp,
        {
            "MONGODB_URI": mongo_uri,
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DASHBOARD_PASSWORD": PASSWORD,
            "DATA_DIR": str(tmp / "data"),
        },
    )
    try:
        _seed(proxy.url)
        request_id, conversation_id = _wait_logged(proxy.url, 3)
        yield LiveApp(proxy, request_id, conversation_id)
    finally:
        proxy.stop()
