"""Path traversal through ids and project names, and header injection through
settings. Ids and projects are matched as exact strings in MongoDB (never used as
file paths), so a traversal is just an id that does not exist.

CR/LF in rule values is refused by the validator
(tests/control/test_header_rules.py::test_invalid_rules_name_index_and_field) and
by PUT /api/settings (tests/control/test_settings_store.py::
test_invalid_rules_are_400_and_change_nothing); here it is checked once more on
the running process, together with the rules in force afterwards."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.conftest import ProxyProcess
from tests.hostile.conftest import assert_alive, assert_api_error, assert_error, raw_request

TRAVERSALS = [
    "/api/requests/..%2F..%2Fetc%2Fpasswd",
    "/api/requests/../../etc/passwd",
    "/api/requests/%2e%2e",
    "/api/conversations/../x",
    "/api/conversations/..%2F..%2Fetc",
    "/api/conversations/%00",
    "/v1/../api/settings",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_in_ids_is_a_plain_miss(hproxy: ProxyProcess, path: str) -> None:
    resp = await raw_request(
        hproxy.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1")
    )
    assert resp.status in (400, 404), (resp.status, resp.body)
    if path.startswith("/api/"):
        assert_api_error(resp, resp.status)
    else:  # routed as a /v1 path, whatever it resolves to: the model API's shape
        assert_error(
            resp, resp.status, "not_found_error" if resp.status == 404 else "invalid_request_error"
        )
    assert "root:" not in resp.body.decode("latin-1")


@pytest.mark.parametrize(
    "query",
    [
        "project=../../etc",
        "project=..%2F..%2Fetc%2Fpasswd",
        "project=%2Fetc%2Fpasswd%00",
    ],
)
async def test_traversal_in_project_names(hproxy: ProxyProcess, query: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hproxy.url}/api/conversations/project?{query}") as resp:
            payload = await resp.json()
    if resp.status == 200:
        assert payload["total"] == 0 and payload["conversations"] == []
    else:
        assert_api_error((resp.status, payload), 400)


async def test_crlf_in_settings_rules_is_refused_live(hproxy: ProxyProcess) -> None:
    rules = {"requestHeaderRules": [{"header": "x-a", "action": "set", "value": "v\r\nx-b: 1"}]}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hproxy.url}/api/settings") as resp:
            before = await resp.json()
        async with http.put(f"{hproxy.url}/api/settings", data=json.dumps(rules)) as resp:
            payload = await resp.json()
        assert_api_error((resp.status, payload), 400)
        assert "requestHeaderRules[0].value" in payload["details"]
        async with http.get(f"{hproxy.url}/api/settings") as resp:
            assert await resp.json() == before
    await assert_alive(hproxy)
