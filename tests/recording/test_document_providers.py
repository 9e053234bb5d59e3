"""The document of a request answered by an OpenAI-format provider or after failovers:
format, attempts and failover count, the backend's request id, and the price of the
model the backend named (or the one it was asked for), never a made-up $0."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recording.document import build_document
from recording.priced import price_exchange
from storage.pricing import PriceTable
from streaming.exchange import Exchange, Outcome

PRICES = PriceTable.load()
USAGE = {
    "input_tokens": 1000,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 100,
}


def exchange_of(
    *,
    routed: str | None,
    backend: str | None,
    usage: dict[str, Any] = USAGE,
    fmt: str = "openai",
    attempts: list[dict[str, Any]] | None = None,
) -> Exchange:
    body = {"model": "claude-opus-4-5", "max_tokens": 9, "messages": []}
    exchange = Exchange("POST", "/v1/messages", "", [], json.dumps(body).encode())
    exchange.request_json = body
    exchange.model = "claude-opus-4-5"
    exchange.routed_model = routed
    exchange.provider, exchange.provider_format = "local", fmt
    exchange.backend_model = backend
    exchange.attempts = attempts or []
    message = {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": routed or "claude-opus-4-5",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    exchange.status = 200
    exchange.response_headers = [("x-request-id", "req_backend_1")]
    exchange.response_body = json.dumps(message).encode()
    exchange.finish(Outcome.COMPLETED)
    return exchange


@pytest.mark.parametrize(
    ("routed", "backend", "priced_as"),
    [
        # The backend's own name wins when the table knows it...
        ("qwen3-coder", "claude-haiku-4-5", "claude-haiku-4-5"),
        # ...else the model it was asked for.
        ("claude-sonnet-4-5", "sonnet-via-gateway", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", None, "claude-sonnet-4-5"),
    ],
)
def test_priced_by_the_backends_model_or_the_routed_one(
    routed: str, backend: str | None, priced_as: str
) -> None:
    priced = price_exchange(exchange_of(routed=routed, backend=backend), PRICES)
    assert priced.cost is not None and not priced.cost.unpriced
    assert priced.cost.document()["pricedAs"] == priced_as
    assert priced.served_model == (backend or routed)
    assert priced.model == routed  # counted under the model it was asked for


def test_unknown_names_are_unpriced_not_free() -> None:
    doc = build_document(exchange_of(routed="qwen3-coder", backend="qwen3-coder-30b"), PRICES)
    assert doc["unpriced"] is True and doc["cost"] is None
    assert doc["usage"]["input_tokens"] == 1000


def test_unreported_usage_has_no_cost() -> None:
    usage = {**USAGE, "input_tokens": 0, "output_tokens": 0, "usage_unreported": True}
    exchange = exchange_of(routed="claude-haiku-4-5", backend=None, usage=usage)
    doc = build_document(exchange, PRICES)
    assert doc["cost"] is None and doc["unpriced"] is False
    assert doc["usage"]["usage_unreported"] is True


def test_the_document_carries_format_attempts_and_failovers() -> None:
    attempts = [
        {"provider": "team", "format": "anthropic", "model": "claude-opus-4-5", "status": None,
         "outcome": "skipped", "error": "circuit breaker open (retry in 5s)", "ms": 0},
        {"provider": "local", "format": "openai", "model": "qwen3-coder", "status": 200,
         "outcome": "answered", "error": None, "ms": 812},
    ]  # fmt: skip
    doc = build_document(exchange_of(routed="qwen3-coder", backend=None, attempts=attempts), PRICES)
    assert doc["providerFormat"] == "openai"
    assert doc["attempts"] == attempts and doc["failovers"] == 1
    assert doc["upstreamRequestId"] == "req_backend_1"  # OpenAI's x-request-id
    plain = build_document(exchange_of(routed=None, backend=None, fmt="anthropic"), PRICES)
    assert plain["failovers"] == 0 and plain["upstreamRequestId"] is None
