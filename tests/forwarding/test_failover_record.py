"""What a routed, failed-over or skipped request leaves for the log: the exchange's
provider, format, models and attempts, and the document built from them.

The proxy runs in-process here (its upstreams are real sockets) so the test reads the
finished exchange the worker hands off; the document is built from it as the
recorder builds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from app import create_app
from control.routing_file import load_config
from recording.document import build_document
from recording.documents import build_record_document, fold
from recording.handoff import encode_exchange
from recording.journal_format import Position, Record
from runtime.settings import Settings
from storage.pricing import PriceTable
from streaming.exchange import Exchange
from tests.control.routing_helpers import write
from tests.fake_openai import FakeOpenAI
from tests.fake_upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def backend() -> FakeOpenAI:
    fake = FakeOpenAI()
    fake.start_in_thread()
    return fake


@pytest.fixture
def app(backend: FakeOpenAI, upstream: FakeUpstream, tmp_path: Path) -> Iterator[Sanic]:
    routing = load_config(
        write(
            tmp_path,
            f"""
providers:
  - name: team
    base_url: {upstream.url}
    fallback_provider: local
    fallback_models: {{"*": claude-haiku-4-5}}
    breaker: {{failures: 1, cooldown: 600}}
  - name: local
    format: openai
    base_url: {backend.url}
    breaker: off
rules:
  - match: {{model: "prefix:fake:"}}
    action: {{provider: local}}
  - match: {{model: claude-opus-4-5}}
    action: {{provider: team}}
""",
        ),
        explicit=True,
        environ={},
    )
    settings = Settings.from_env({"ANTHROPIC_FORWARD_URL": upstream.url, "REQUEST_LOG": "false"})
    app = create_app(settings, routing)
    seen: list[Exchange] = []

    @app.after_server_start
    async def tap(app: Sanic) -> None:
        app.ctx.forwarder.sinks.append(seen.append)
        # The ASGI test client starts the server per request, with fresh breakers:
        # a test that needs `team`'s open sets this.
        if app.ctx.open_team:
            breaker = app.ctx.forwarder.breakers.get("team")
            breaker.failed(breaker.admit())

    app.ctx.seen = seen
    app.ctx.open_team = False
    yield app


async def _post(app: Sanic, payload: dict[str, Any], fake: str = "") -> Exchange:
    headers = {"x-api-key": "sk-ant-client", "x-fake": fake} if fake else {}
    _, resp = await app.asgi_client.post("/v1/messages", json=payload, headers=headers)
    await asyncio.sleep(0)  # the sinks run just after the response
    exchange: Exchange = app.ctx.seen[-1]
    assert exchange.request_id == resp.headers["x-proxy-request-id"]
    return exchange


def _document(exchange: Exchange) -> dict[str, Any]:
    """As the recorder builds it: the stream folded, the JSON body joined."""
    fold(exchange)
    if not exchange.is_sse:
        exchange.response_body = b"".join(exchange.response_chunks)
    return build_document(exchange, PriceTable.load())


def _without_ms(attempts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for attempt in attempts:
        assert isinstance(attempt["ms"], int) and attempt["ms"] >= 0
    return [{k: v for k, v in a.items() if k != "ms"} for a in attempts]


async def test_a_translated_answer_is_recorded_with_its_provider_and_models(app: Sanic) -> None:
    payload = {"model": "fake:cached", "max_tokens": 9, "stream": True, "messages": MESSAGES}
    exchange = await _post(app, payload)
    assert (exchange.provider, exchange.provider_format, exchange.backend_model) == (
        "local",
        "openai",
        "fake-model",
    )
    assert _without_ms(exchange.attempts) == [
        {
            "provider": "local",
            "format": "openai",
            "model": "fake:cached",
            "status": 200,
            "outcome": "answered",
            "error": None,
        }
    ]
    doc = _document(exchange)
    assert doc["providerFormat"] == "openai" and doc["failovers"] == 0
    assert (doc["originalModel"], doc["routedModel"], doc["servedModel"]) == (
        "fake:cached",
        "fake:cached",
        "fake-model",
    )
    assert doc["upstreamRequestId"] == "req_fakeopenai0001"
    assert doc["usage"]["input_tokens"] == 1024 and doc["usage"]["cache_read_input_tokens"] == 1024
    assert doc["unpriced"] is True and doc["cost"] is None  # no price for either name
    assert doc["outcome"] == "completed" and doc["stopReason"] == "end_turn"


async def test_a_failover_is_recorded_attempt_by_attempt_and_priced_by_the_routed_model(
    app: Sanic,
) -> None:
    payload = {"model": "claude-opus-4-5", "max_tokens": 9, "messages": MESSAGES}
    exchange = await _post(app, payload, fake="status:529")
    assert _without_ms(exchange.attempts) == [
        {
            "provider": "team",
            "format": "anthropic",
            "model": "claude-opus-4-5",
            "status": 529,
            "outcome": "failover",
            "error": "upstream status 529",
        },
        {
            "provider": "local",
            "format": "openai",
            "model": "claude-haiku-4-5",
            "status": 200,
            "outcome": "answered",
            "error": None,
        },
    ]
    doc = _document(exchange)
    assert (doc["provider"], doc["routedModel"], doc["servedModel"]) == (
        "local",
        "claude-haiku-4-5",
        "fake-model",
    )
    assert doc["failovers"] == 1 and doc["statusCode"] == 200
    # The backend named a model the price table lacks: priced as the model asked for.
    assert doc["unpriced"] is False and doc["cost"]["pricedAs"] == "claude-haiku-4-5"

    # With the breaker open (as the failure above left it), `team` is skipped at once.
    app.ctx.open_team = True
    exchange = await _post(app, payload, fake="json:text_basic")
    assert [(a["provider"], a["outcome"], a["status"]) for a in exchange.attempts] == [
        ("team", "skipped", None),
        ("local", "answered", 200),
    ]
    assert "circuit breaker open" in exchange.attempts[0]["error"]
    assert _document(exchange)["failovers"] == 1


async def test_a_refusal_is_recorded_as_the_clients_error(app: Sanic) -> None:
    payload = {"model": "fake:text", "max_tokens": 9, "top_k": 3, "messages": MESSAGES}
    exchange = await _post(app, payload)
    assert exchange.status == 400 and exchange.outcome is not None
    assert [(a["outcome"], a["provider"]) for a in exchange.attempts] == [("refused", "local")]
    assert "`top_k`" in exchange.attempts[0]["error"]


async def test_the_journal_hand_off_keeps_the_attempts(app: Sanic) -> None:
    payload = {"model": "fake:text", "max_tokens": 9, "messages": MESSAGES}
    exchange = await _post(app, payload)
    position = Position(0, 0)
    record = Record(
        "w",
        position,
        position,
        encode_exchange(exchange),
        exchange.request_body,
        b"".join(exchange.response_chunks),
    )
    doc = build_record_document(record, PriceTable.load())
    assert doc["providerFormat"] == "openai"
    assert doc["servedModel"] == "fake-model"
    assert [a["outcome"] for a in doc["attempts"]] == ["answered"]
