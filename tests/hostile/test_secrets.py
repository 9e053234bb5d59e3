"""Credentials never appear in clear anywhere the proxy writes: every stored
document (all collections, GridFS included), the journal, the process log and
/metrics. Fingerprints (`sha256:`) are what may appear instead.

Credentials are found by rule (streaming/credentials.py), so the table below mixes
the names everybody knows with those only the rule catches: other providers'
headers (`x-goog-api-key`, `api-key`, `x-auth-token`), mixed case, repeats, a key
under a name no rule knows, empty values, and query parameters (`?key=`, repeated,
mixed case, percent-encoded names), in the request and in the upstream's answer.
The non-secret headers the rule would catch (rate-limit token counts) stay in clear.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from bson import json_util
from pymongo import AsyncMongoClient

from tests.conftest import ProxyProcess, free_port
from tests.fake_upstream import FakeUpstream
from tests.fixtures import message_bytes
from tests.hostile.conftest import MESSAGE, hostile_proxy, raw_request, wait_record

SESSION_ID = "7b0e8a8c-1111-4000-8000-00000000c0de"
ANSWER = message_bytes("text_basic")

# (name, method, path, extra headers, body); `script` answers with secret headers.
SCENARIOS: list[tuple[str, str, str, dict[str, str], bytes]] = [
    ("json", "POST", "/v1/messages", {"x-fake": "script"}, json.dumps(MESSAGE).encode()),
    ("stream", "POST", "/v1/messages", {}, json.dumps({**MESSAGE, "stream": True}).encode()),
    (
        "upstream-error",
        "POST",
        "/v1/messages",
        {"x-fake": "status:429"},
        json.dumps(MESSAGE).encode(),
    ),
    ("proxy-error", "POST", "/v1/messages", {}, b'{"model": 5}'),  # request_rejected line
    ("count", "POST", "/v1/messages/count_tokens", {}, json.dumps(MESSAGE).encode()),
    ("forward-failed", "GET", "/v1/models", {"x-fake": "redirect:302"}, b""),  # forward_failed
]


@dataclass
class Sent:
    clear: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def value(self, scenario: str, label: str) -> str:
        """A fresh, unmistakable credential value, remembered as one to look for."""
        value = f"SECRET-{scenario}-{label}-{secrets.token_hex(8)}"
        self.clear.append(value)
        return value


def credential_request(sent: Sent, scenario: str) -> tuple[list[tuple[str, str]], str]:
    """Headers and a query carrying every kind of credential, each its own value."""

    def v(label: str) -> str:
        return sent.value(scenario, label)

    headers = [
        ("x-api-key", v("x-api-key")),
        ("authorization", f"Bearer {v('bearer')}"),
        ("proxy-authorization", f"Basic {v('proxy')}"),
        ("cookie", f"session={v('cookie')}; theme=dark"),
        ("x-goog-api-key", v("goog")),
        ("api-key", v("azure")),
        ("API-KEY", v("azure-again")),  # repeated, another case
        ("x-auth-token", v("auth-token")),
        ("X-Amz-Security-Token", v("amz")),
        ("x-upstream-hint", "sk-ant-api03-" + v("bare-key")),  # a key under any name
        ("x-session-token", ""),  # empty: nothing to hide
        ("x-claude-code-session-id", SESSION_ID),  # not a credential
    ]
    query = "&".join(
        [
            "beta=true",
            f"key={v('q-key')}",
            f"KEY={v('q-KEY')}",
            f"%6Bey={v('q-encoded-name')}",  # `key`, percent-encoded
            f"api_key={v('q-api_key')}",
            f"access_token={v('q-access_token')}",
            f"sig={v('q-sig')}",
            f"key={v('q-key-again')}",
            "token=",
        ]
    )
    return headers, query


async def send_all(proxy: ProxyProcess, upstream: FakeUpstream) -> Sent:
    """Every scenario with its own credentials, in the request and (`script`) in the
    upstream's response headers. Sent on a raw socket: an HTTP client would fold
    the repeated header into one and re-encode the percent-encoded name."""
    sent = Sent()
    for name, method, path, extra, body in SCENARIOS:
        headers, query = credential_request(sent, name)
        if extra.get("x-fake") == "script":
            key = f"secrets-{secrets.token_hex(4)}"
            secret_answer = {
                "content-type": "application/json",
                "set-cookie": f"sid={sent.value(name, 'set-cookie')}",
                "x-upstream-auth-token": sent.value(name, "resp-token"),
            }
            extra = {"x-fake": upstream.script(key, 200, secret_answer, ANSWER, sse=False)}
        lines = [f"{method} {path}?{query} HTTP/1.1", "Host: proxy.test", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in [*headers, *extra.items()]]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        resp = await raw_request(proxy.port, head + body)
        request_id = resp.header("x-proxy-request-id")
        assert request_id, (name, resp.status, resp.body[:200])
        sent.ids.append(request_id)
    return sent


def assert_absent(text: str, clear: list[str], where: str) -> None:
    leaked = [value for value in clear if value in text]
    assert not leaked, f"{where} holds credentials in clear: {leaked}"


async def dump_database(uri: str, name: str) -> str:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        db = client[name]
        parts = []
        for collection in await db.list_collection_names():
            async for doc in db[collection].find({}):
                parts.append(json_util.dumps(doc))
                for value in doc.values():  # GridFS chunks hold raw bytes
                    if isinstance(value, bytes):
                        parts.append(value.decode("utf-8", "replace"))
        return "\n".join(parts)
    finally:
        await client.close()


async def stored_document(uri: str, name: str, request_id: str) -> dict[str, Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        doc = await client[name]["requests"].find_one({"_id": request_id})
    finally:
        await client.close()
    assert doc is not None, request_id
    return doc


def pairs(headers: list[list[str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


async def test_no_secret_in_database_log_or_metrics(
    upstream: FakeUpstream, mongo_uri: str, tmp_path: Path
) -> None:
    proxy = hostile_proxy(tmp_path, upstream, mongo_uri)
    database = f"proxy_test_{proxy.port}"
    try:
        sent = await send_all(proxy, upstream)
        records = [await wait_record(proxy, request_id) for request_id in sent.ids]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proxy.url}/metrics") as resp:
                metrics = await resp.text()
            async with http.get(f"{proxy.url}/api/requests?limit=100") as resp:
                listing = await resp.text()
    finally:
        proxy.stop()
    log = proxy.log()
    assert {r["statusCode"] for r in records} >= {200, 429, 400, 502}

    # The records keep every header, credentials as fingerprints only.
    doc = await stored_document(mongo_uri, database, sent.ids[0])
    request_headers = doc["request"]["headers"]
    for name in ("x-api-key", "cookie", "x-goog-api-key", "x-auth-token", "x-upstream-hint"):
        (value,) = pairs(request_headers, name)
        assert value.startswith("sha256:"), (name, value)
    azure = pairs(request_headers, "api-key")
    assert len(azure) == 2 and all(v.startswith("sha256:") for v in azure)
    assert pairs(request_headers, "x-session-token") == [""]
    assert pairs(request_headers, "x-claude-code-session-id") == [SESSION_ID]
    assert doc["sessionId"] == SESSION_ID
    assert doc["query"].startswith("beta=true&key=sha256:")
    response_headers = doc["response"]["headers"]
    assert pairs(response_headers, "set-cookie")[0].startswith("sha256:")
    assert pairs(response_headers, "x-upstream-auth-token")[0].startswith("sha256:")
    # The rate-limit token counts the rule would catch are kept, and read.
    assert pairs(response_headers, "anthropic-ratelimit-tokens-remaining") == ["1990000"]
    assert pairs(response_headers, "anthropic-ratelimit-input-tokens-limit") == ["1600000"]
    assert doc["response"]["rateLimit"]["tokensRemaining"] == 1990000

    stored = await dump_database(mongo_uri, database)
    assert "sha256:" in stored
    assert_absent(stored, sent.clear, "the database")
    assert_absent(json.dumps(records) + listing, sent.clear, "the API")
    assert_absent(metrics, sent.clear, "/metrics")
    # The failure lines print the query (and the upstream URL): seen, and redacted.
    for line in ("request_rejected", "forward_failed"):
        printed = [row for row in log.splitlines() if line in row]
        assert printed and all("key=sha256:" in row for row in printed), (line, log)
    assert_absent(log, sent.clear, "the process log")


async def test_no_secret_in_the_journal(
    upstream: FakeUpstream, mongo_uri: str, tmp_path: Path
) -> None:
    """MongoDB unreachable: records wait in the hand-off journal, whose metadata
    carries fingerprints only (credentials are replaced before the disk)."""
    dead = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    proxy = hostile_proxy(tmp_path, upstream, mongo_uri, MONGODB_URI=dead, WRITER_FLUSH_TIMEOUT="1")
    try:
        sent = await send_all(proxy, upstream)
    finally:
        proxy.stop()
    segments = sorted((tmp_path / "data" / "journal").glob("*/*.seg"))
    assert segments, "nothing journaled"
    journal = b"".join(p.read_bytes() for p in segments)
    text = journal.decode("utf-8", "replace")
    assert all(request_id in text for request_id in sent.ids), "records missing from the journal"
    assert "sha256:" in text
    # What the journal keeps in clear: the rate-limit counts and the session id.
    assert "1990000" in text and SESSION_ID in text
    assert_absent(text, sent.clear, "the journal")
    assert_absent(proxy.log(), sent.clear, "the process log")
