"""Exchange → document: usage, cost, rate limits, session, secrets (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recording.document import build_document, conversation_hash, session_id
from storage.pricing import PriceTable
from streaming.accumulator import accumulate, finalize
from streaming.credentials import fingerprint
from streaming.exchange import Exchange, Outcome
from streaming.sse import SSEDecoder
from tests.fake_upstream import RATE_LIMIT_HEADERS
from tests.fixtures import message_bytes, stream_bytes

PRICES = PriceTable.load()
API_KEY = "sk-ant-api03-SECRET-value-0123456789"
SESSION = "0f3c1f0e-8a51-4b4e-9d55-1b8c4d6f2a10"


def _exchange(
    model: str = "claude-sonnet-4-5-20250929",
    *,
    sse: str | None = "tool_use",
    body: dict | None = None,
    headers: list | None = None,
) -> Exchange:
    request = body or {
        "model": model,
        "max_tokens": 1024,
        "stream": sse is not None,
        "messages": [{"role": "user", "content": "  Fix the   failing test  "}],
        "metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "meta-session"})},
    }
    raw = json.dumps(request).encode()
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="beta=true",
        request_headers=headers
        or [
            ("x-api-key", API_KEY),
            ("user-agent", "claude-cli/2.1.3 (external, cli)"),
            ("content-type", "application/json"),
            ("X-Claude-Code-Session-Id", SESSION),
            ("cookie", "session=COOKIE-SECRET"),
        ],
        request_body=raw,
        request_json=request,
        model=model,
        stream_requested=sse is not None,
    )
    exchange.status = 200
    exchange.response_headers = [
        ("request-id", "req_011CVxyz"),
        ("content-type", "text/event-stream"),
        ("retry-after", "17"),
        ("set-cookie", "cf=SETCOOKIE-SECRET"),
        *RATE_LIMIT_HEADERS.items(),
    ]
    if sse:
        exchange.is_sse = True
        snapshot = None
        for event in SSEDecoder().decode(stream_bytes(sse)):
            snapshot = accumulate(json.loads(event.data), snapshot)
        exchange.message = finalize(snapshot)
        exchange.stream_complete = True
    else:
        exchange.response_body = message_bytes("tool_use")
    exchange.finish(Outcome.COMPLETED)
    exchange.ttfb_ms, exchange.duration_ms = 412.4, 5012.6
    return exchange


def test_usage_stop_reason_and_content() -> None:
    doc = build_document(_exchange(), PRICES)
    # The upstream's usage object whole (service_tier included), folded from the SSE.
    assert doc["usage"] == {
        "input_tokens": 3412,
        "cache_creation_input_tokens": 1830,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 1830, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 142,
        "service_tier": "standard",
    }
    assert doc["servedModel"] == "claude-sonnet-4-5-20250929"
    assert doc["stopReason"] == "tool_use"
    assert json.loads(doc["response"]["body"]) == json.loads(message_bytes("tool_use"))
    assert doc["tokens"] == 3412 + 142 + 1830
    assert doc["statusCode"] == 200 and doc["outcome"] == "completed"
    assert doc["responseTime"] == 5013 and doc["timeToFirstByte"] == 412
    assert doc["schemaVersion"] == 1 and doc["_id"] == doc["requestId"]
    assert doc["messageCount"] == 1 and doc["query"] == "beta=true"


def test_cost_is_exact() -> None:
    doc = build_document(_exchange(), PRICES)
    # Sonnet: $3/MTok in, $15 out, 5-minute cache writes 1.25 x input.
    expected = (3412 * 3 + 142 * 15 + 1830 * 3.75) / 1e6
    assert doc["cost"]["usd"] == pytest.approx(expected, abs=1e-12)
    assert doc["unpriced"] is False


def test_unknown_model_is_unpriced_never_zero() -> None:
    exchange = _exchange("mystery-model-9")
    assert exchange.message is not None
    exchange.message["model"] = "mystery-model-9"  # the model that answered prices it
    doc = build_document(exchange, PRICES)
    assert doc["cost"] is None and doc["unpriced"] is True
    assert doc["costIncomplete"] is False and doc["servedModel"] == "mystery-model-9"


def test_rate_limits_parsed() -> None:
    rate = build_document(_exchange(), PRICES)["response"]["rateLimit"]
    assert rate["organizationId"] == "org-fake-0001"
    assert rate["requestsLimit"] == 4000 and rate["requestsRemaining"] == 3999
    assert rate["tokensRemaining"] == 1990000 and rate["inputTokensLimit"] == 1600000
    assert rate["outputTokensReset"] == "2026-11-25T12:00:02Z"
    assert rate["unifiedStatus"] == "allowed"
    assert rate["unifiedUtilization5h"] == 0.42 and rate["unifiedUtilization7d"] == 0.13
    assert rate["unifiedReset5h"] == datetime.fromtimestamp(1795000000, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert rate["retryAfter"] == 17
    assert rate["raw"]["unified-7d-status"] == "allowed"


def test_secrets_never_stored_in_clear() -> None:
    doc = build_document(_exchange(), PRICES)
    text = json.dumps(doc, default=str)
    for secret in (API_KEY, "COOKIE-SECRET", "SETCOOKIE-SECRET"):
        assert secret not in text
    headers = dict((k.lower(), v) for k, v in doc["request"]["headers"])
    assert headers["x-api-key"] == fingerprint(API_KEY)
    assert doc["clientKeyFingerprint"] == fingerprint(API_KEY)


def test_session_and_organization() -> None:
    doc = build_document(_exchange(), PRICES)
    assert doc["sessionId"] == SESSION and doc["organizationId"] == "org-fake-0001"
    assert doc["upstreamRequestId"] == "req_011CVxyz"
    body = {"metadata": {"user_id": json.dumps({"session_id": "abc"})}}
    assert session_id([], body) == "abc"
    legacy = "user_1a2b_account_9f8e7d6c-0000-4000-8000-000000000000_session_" + SESSION
    assert session_id([], {"metadata": {"user_id": legacy}}) == SESSION
    assert session_id([], {"metadata": {"user_id": "plain"}}) is None


def test_conversation_hash_normalises_whitespace() -> None:
    a = {"messages": [{"role": "user", "content": "Fix  the\n test"}]}
    b = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Fix the test"}]},
            {"role": "assistant", "content": "ok"},
        ]
    }
    assert conversation_hash(a) == conversation_hash(b) is not None
    assert conversation_hash({"messages": []}) is None


def test_conversation_hash_skips_system_messages() -> None:
    plain = {"messages": [{"role": "user", "content": "Fix the test"}]}
    system_first = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Fix the test"},
        ]
    }
    system_between = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
            },
            {"role": "system", "content": [{"type": "text", "text": "Context was compacted."}]},
            {"role": "user", "content": "Fix the test"},
            {"role": "system", "content": "Later instructions."},
            {"role": "assistant", "content": "ok"},
        ]
    }
    expected = conversation_hash(plain)
    assert expected is not None
    assert conversation_hash(system_first) == expected
    assert conversation_hash(system_between) == expected
    assert conversation_hash({"messages": [{"role": "system", "content": "Only me"}]}) is None


def test_json_response_and_body_text_kept_exactly() -> None:
    exchange = _exchange(sse=None)
    doc = build_document(exchange, PRICES)
    assert doc["response"]["body"] == message_bytes("tool_use").decode()
    assert doc["request"]["body"] == exchange.request_body.decode()
    assert doc["stopReason"] == "tool_use" and doc["response"]["isStreaming"] is False


def test_client_closed_stream_keeps_what_arrived() -> None:
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="",
        request_headers=[],
        request_body=b'{"model":"claude-haiku-4-5"}',
        request_json={"model": "claude-haiku-4-5"},
        model="claude-haiku-4-5",
    )
    exchange.status, exchange.is_sse = 200, True
    snapshot = None
    for event in SSEDecoder().decode(stream_bytes("cut_before_stop")):
        snapshot = accumulate(json.loads(event.data), snapshot)
    exchange.message = finalize(snapshot)
    exchange.finish(Outcome.CLIENT_CLOSED, "client disconnected")
    doc = build_document(exchange, PRICES)
    assert doc["outcome"] == "client_closed"
    assert json.loads(doc["response"]["body"])["content"]
    assert doc["usage"]["input_tokens"] > 0


def test_invalid_utf8_body_is_kept_as_base64() -> None:
    exchange = Exchange(
        method="POST", path="/v1/messages", query="", request_headers=[], request_body=b"\xff\xfe{"
    )
    exchange.finish(Outcome.PROXY_ERROR, "invalid_json")
    doc = build_document(exchange, PRICES)
    assert doc["request"]["bodyEncoding"] == "base64"
