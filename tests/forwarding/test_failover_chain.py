"""The provider chain's decisions, with scripted attempts (no sockets): which
failures hand over, what the breaker counts, what each attempt records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sanic.response import HTTPResponse

from control.plan import HeaderRuleSet, UpstreamPlan, plan_fallback, plan_upstream
from control.routing import RoutingConfig
from control.routing_file import load_config
from forwarding.breaker import BreakerBoard, BreakerState
from forwarding.failover import (
    Chain,
    Verdict,
    breaker_counts,
    failure_in_answer,
    failure_reason,
)
from streaming.errors import ProxyError
from streaming.exchange import Exchange
from tests.control.routing_helpers import write


@pytest.mark.parametrize(
    ("status", "own_key", "reason"),
    [
        (429, False, "rate_limited"),
        (402, True, "billing"),
        (402, False, None),
        (529, False, "overloaded"),
        (503, False, "overloaded"),
        (500, False, "server_error"),
        (504, False, "server_error"),
        (400, True, None),
        (404, True, None),
        (200, True, None),
    ],
)
def test_which_statuses_hand_over(status: int, own_key: bool, reason: str | None) -> None:
    assert failure_reason(status, own_key=own_key) == reason


def test_failures_inside_an_answer() -> None:
    assert failure_in_answer(504, own_key=False) == "timeout"
    assert failure_in_answer(502, own_key=False) == "broken"
    assert failure_in_answer(529, own_key=False) == "overloaded"
    assert failure_in_answer(400, own_key=False) is None


def test_a_clients_own_limits_do_not_count_against_the_provider() -> None:
    assert not breaker_counts("rate_limited", own_key=False)
    assert breaker_counts("rate_limited", own_key=True)
    assert breaker_counts("overloaded", own_key=False)


@pytest.fixture
def config(tmp_path: Path) -> RoutingConfig:
    text = """\
providers:
  - {name: a, base_url: "http://a", fallback_provider: b, breaker: {failures: 1, cooldown: 60}}
  - {name: b, format: openai, base_url: "http://b"}
rules:
  - action: {provider: a}
"""
    return load_config(write(tmp_path, text), explicit=True, environ={})


def _exchange() -> Exchange:
    body = {"model": "m", "max_tokens": 1, "messages": []}
    exchange = Exchange("POST", "/v1/messages", "", [], json.dumps(body).encode())
    exchange.request_json, exchange.model = body, "m"
    return exchange


def _chain(
    config: RoutingConfig,
    exchange: Exchange,
    board: BreakerBoard,
    script: dict[str, Verdict | BaseException],
) -> Chain:
    async def attempt(plan: UpstreamPlan) -> Verdict:
        action = script[plan.provider]
        if isinstance(action, BaseException):
            raise action
        return action

    def next_plan(failed: UpstreamPlan) -> UpstreamPlan | None:
        return plan_fallback(
            exchange,
            "/v1/messages",
            failed,
            routing=config,
            rules=HeaderRuleSet(),
            demote_enabled=False,
        )

    return Chain(exchange, board, attempt, next_plan, lambda plan: None)


def _first(config: RoutingConfig, exchange: Exchange) -> UpstreamPlan:
    return plan_upstream(
        exchange,
        "/v1/messages",
        default_base="http://default",
        routing=config,
        rules=HeaderRuleSet(),
        demote_enabled=False,
    )


def _answer(text: str) -> Verdict:
    async def deliver() -> HTTPResponse:
        return HTTPResponse(text)

    return Verdict(None, 200, None, deliver)


def _failure(reason: str, *, counts: bool = True) -> Verdict:
    async def deliver() -> HTTPResponse:
        return HTTPResponse("failed", status=529)

    return Verdict(reason, 529, "upstream status 529", deliver, counts_for_breaker=counts)


async def test_a_failure_that_the_breaker_must_not_count_still_hands_over(
    config: RoutingConfig,
) -> None:
    board = BreakerBoard(config.providers)
    exchange = _exchange()
    chain = _chain(
        config, exchange, board, {"a": _failure("rate_limited", counts=False), "b": _answer("b")}
    )
    response = await chain.run(_first(config, exchange))
    assert response is not None and response.body == b"b"
    assert [a["outcome"] for a in exchange.attempts] == ["failover", "answered"]
    assert board.get("a").state is BreakerState.CLOSED  # type: ignore[union-attr]


async def test_an_attempt_without_verdict_is_recorded_and_frees_the_breaker(
    config: RoutingConfig,
) -> None:
    board = BreakerBoard(config.providers)
    exchange = _exchange()
    chain = _chain(config, exchange, board, {"a": asyncio.CancelledError()})
    with pytest.raises(asyncio.CancelledError):
        await chain.run(_first(config, exchange))
    assert [(a["provider"], a["outcome"]) for a in exchange.attempts] == [("a", "client_closed")]
    exchange = _exchange()
    refused = ProxyError(400, "`top_k` cannot be sent", "invalid_request")
    chain = _chain(config, exchange, board, {"a": refused})
    with pytest.raises(ProxyError):
        await chain.run(_first(config, exchange))
    assert exchange.attempts[0]["outcome"] == "refused"
    assert exchange.attempts[0]["error"] == "`top_k` cannot be sent"
    assert board.get("a").state is BreakerState.CLOSED  # type: ignore[union-attr]


async def test_the_last_failure_is_delivered_when_nothing_is_left(config: RoutingConfig) -> None:
    board = BreakerBoard(config.providers)
    exchange = _exchange()
    chain = _chain(
        config, exchange, board, {"a": _failure("overloaded"), "b": _failure("overloaded")}
    )
    response = await chain.run(_first(config, exchange))
    assert response is not None and response.status == 529
    assert [a["outcome"] for a in exchange.attempts] == ["failover", "failed"]
    assert board.get("a").state is BreakerState.OPEN  # type: ignore[union-attr]
    # Open and skipped: the fallback answers; the skip is an attempt of its own.
    exchange = _exchange()
    chain = _chain(config, exchange, board, {"a": _answer("a"), "b": _answer("b")})
    response = await chain.run(_first(config, exchange))
    assert response is not None and response.body == b"b"
    assert [(a["provider"], a["outcome"], a["ms"]) for a in exchange.attempts] == [
        ("a", "skipped", 0),
        ("b", "answered", exchange.attempts[1]["ms"]),
    ]
