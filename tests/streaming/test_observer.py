"""Observers fold what the relay saw, and never raise into the stream."""

from __future__ import annotations

import gzip
import json
import random

import pytest

import streaming.observer as observer_module
from streaming.exchange import Exchange
from streaming.observer import SSEObserver, decoded_body
from tests.fixtures import COMPLETE_STREAMS, error_bytes, message_bytes, stream_bytes


def _exchange() -> Exchange:
    return Exchange(
        method="POST", path="/v1/messages", query="", request_headers=[], request_body=b"{}"
    )


def _chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        step = rng.randint(1, 700)
        out.append(data[i : i + step])
        i += step
    return out


@pytest.mark.parametrize("name", COMPLETE_STREAMS)
def test_sse_observer_folds_the_stream(name: str) -> None:
    observer, exchange = SSEObserver(), _exchange()
    for chunk in _chunks(stream_bytes(name), seed=len(name)):
        observer.feed(chunk)
    observer.close(exchange)
    assert exchange.message == json.loads(message_bytes(name))
    assert exchange.stream_complete and exchange.stream_error is None
    assert exchange.observer_error is None


def test_sse_observer_decodes_gzip_on_the_side() -> None:
    observer, exchange = SSEObserver("gzip"), _exchange()
    for chunk in _chunks(gzip.compress(stream_bytes("tool_use")), seed=3):
        observer.feed(chunk)
    observer.close(exchange)
    assert exchange.message == json.loads(message_bytes("tool_use"))


def test_sse_observer_records_midstream_error() -> None:
    observer, exchange = SSEObserver(), _exchange()
    observer.feed(stream_bytes("overloaded_midstream"))
    observer.close(exchange)
    assert exchange.stream_error == json.loads(error_bytes("overloaded_midstream"))
    assert not exchange.stream_complete
    assert exchange.message is not None and exchange.message["content"]


def test_observer_failure_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(event: object, snapshot: object) -> object:
        raise RuntimeError("accumulator bug")

    monkeypatch.setattr(observer_module, "accumulate", broken)
    observer, exchange = SSEObserver(), _exchange()
    for chunk in _chunks(stream_bytes("text_basic"), seed=1):
        observer.feed(chunk)  # must not raise
    observer.close(exchange)
    assert exchange.observer_error == "RuntimeError: accumulator bug"


def test_undecodable_encoding_is_recorded_not_raised() -> None:
    observer, exchange = SSEObserver("br"), _exchange()
    observer.feed(b"\x00\x01garbage")
    observer.close(exchange)
    assert "br" in (exchange.observer_error or "")
    assert exchange.message is None


def test_garbage_bytes_never_raise() -> None:
    observer, exchange = SSEObserver(), _exchange()
    rng = random.Random(7)
    for _ in range(200):
        observer.feed(bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))))
    observer.feed(b'data: {not json}\n\ndata: [1,2]\n\ndata: {"type": 5}\n\n')
    observer.close(exchange)
    assert exchange.observer_error is None


def test_decoded_body() -> None:
    raw = gzip.compress(message_bytes("thinking"))
    exchange = _exchange()
    exchange.response_body, exchange.response_encoding = raw, "gzip"
    assert decoded_body(exchange) == message_bytes("thinking")
    exchange.response_body = b"not gzip"
    assert decoded_body(exchange) is None
