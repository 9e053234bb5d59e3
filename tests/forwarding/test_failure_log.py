"""The `forward_failed` line, field by field as the seed wrote it: Go's `true`/`false`
and its `ctx_err`, then our `status`, `reason` and `error`."""

from __future__ import annotations

import json
import logging

import pytest

from forwarding.failure_log import context_error, log_forward_failure
from streaming.exchange import Exchange, Outcome

BODY = {"model": "claude-opus-4-6", "stream": True, "thinking": {"type": "adaptive"}}


@pytest.fixture(autouse=True)
def fixed_elapsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Exchange, "elapsed_ms", lambda self: 2500.0)


def _exchange(*, stream: bool = True, thinking: bool = True, query: str = "beta=true") -> Exchange:
    body = dict(BODY, stream=stream)
    if not thinking:
        del body["thinking"]
    raw = json.dumps(body).encode()
    return Exchange(
        method="POST",
        path="/v1/messages",
        query=query,
        request_headers=[("anthropic-beta", "b1,b2"), ("x-api-key", "sk-ant-secret")],
        request_body=raw,
        request_json=body,
        request_id="req0123",
        model="claude-opus-4-6",
        stream_requested=stream,
    )


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "proxy.forward"]


def test_the_exact_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="proxy.forward")
    exchange = _exchange()
    exchange.status = 502
    exchange.finish(Outcome.PROXY_ERROR, "upstream_unreachable")
    log_forward_failure(exchange, "Upstream unreachable: [Errno 111] refused")
    size = len(exchange.request_body)
    assert _lines(caplog) == [
        f"forward_failed request_id=req0123 model=claude-opus-4-6 stream=true body_bytes={size}"
        " has_thinking=true anthropic_beta=b1,b2 query=beta=true elapsed=2.500s ctx_err=<nil>"
        ' status=502 reason=upstream_unreachable error="Upstream unreachable: [Errno 111] refused"',
        "Forward of POST /v1/messages to upstream failed after 2.500s: "
        "Upstream unreachable: [Errno 111] refused",
    ]
    assert "sk-ant" not in " ".join(_lines(caplog))


def test_false_is_spelled_false_and_empty_values_are_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="proxy.forward")
    exchange = _exchange(stream=False, thinking=False, query="")
    exchange.finish(Outcome.UPSTREAM_ERROR, "upstream_stream_broken")
    log_forward_failure(exchange, 'said "no"\nthen left')
    line = _lines(caplog)[0]
    assert " stream=false " in line and " has_thinking=false " in line
    assert ' query="" ' in line and " status=0 " in line
    assert line.endswith(' error="said \\"no\\"\\nthen left"')
    assert "True" not in line and "False" not in line


@pytest.mark.parametrize(
    ("outcome", "reason", "ctx_err", "rendered"),
    [
        (Outcome.PROXY_ERROR, "upstream_header_timeout", None, "ctx_err=<nil>"),
        (Outcome.UPSTREAM_ERROR, "upstream_idle_timeout", None, "ctx_err=<nil>"),
        (
            Outcome.CLIENT_CLOSED,
            "client disconnected",
            "context canceled",
            'ctx_err="context canceled"',
        ),
        (
            Outcome.PROXY_ERROR,
            "models_deadline",
            "context deadline exceeded",
            'ctx_err="context deadline exceeded"',
        ),
    ],
)
def test_ctx_err_says_whether_the_client_side_ended_first(
    caplog: pytest.LogCaptureFixture,
    outcome: Outcome,
    reason: str,
    ctx_err: str | None,
    rendered: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="proxy.forward")
    exchange = _exchange()
    exchange.finish(outcome, reason)
    assert context_error(exchange) == ctx_err
    log_forward_failure(exchange, "x")
    assert f" elapsed=2.500s {rendered} status=" in _lines(caplog)[0]
