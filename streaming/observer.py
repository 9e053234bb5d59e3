"""Observers read a response body on the side: decode, fold, never raise.

The relay itself only captures chunks (forwarding.capture); the recorder process
feeds them to `SSEObserver` to fold a stream into its message. An observer
never raises: the first internal failure is remembered, observation stops, and
the record says so.
"""

from __future__ import annotations

import json
import zlib
from typing import Protocol

from streaming.accumulator import StreamSnapshot, accumulate, finalize
from streaming.exchange import Exchange
from streaming.sse import SSEDecoder


class BodyObserver(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def close(self, exchange: Exchange) -> None: ...


def make_inflater(content_encoding: str | None) -> zlib._Decompress | None:
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if coding == "deflate":
        # zlib-wrapped per RFC 9110; auto-detect also accepts a gzip header.
        return zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)
    raise ValueError(f"cannot decode content-encoding {content_encoding!r}")


class SSEObserver:
    """SSE decoder → accumulator: folds the stream into the final message."""

    __slots__ = ("_decoder", "_failure", "_inflater", "_snapshot")

    def __init__(self, content_encoding: str | None = None) -> None:
        self._decoder = SSEDecoder()
        self._snapshot: StreamSnapshot | None = None
        self._failure: str | None = None
        self._inflater: zlib._Decompress | None = None
        try:
            self._inflater = make_inflater(content_encoding)
        except ValueError as exc:
            self._failure = str(exc)

    def feed(self, chunk: bytes) -> None:
        if self._failure is not None:
            return
        try:
            if self._inflater is not None:
                chunk = self._inflater.decompress(chunk)
            for event in self._decoder.decode(chunk):
                self._on_event(event.data)
        except Exception as exc:  # an observer must never break the stream
            self._failure = f"{type(exc).__name__}: {exc}"

    def _on_event(self, data: str) -> None:
        if not data:
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return  # not JSON: relayed as is, nothing to fold
        if isinstance(payload, dict):
            self._snapshot = accumulate(payload, self._snapshot)

    def close(self, exchange: Exchange) -> None:
        try:
            if self._failure is None:
                for event in self._decoder.flush():
                    self._on_event(event.data)
            snapshot = self._snapshot
            exchange.message = finalize(snapshot)
            if snapshot is not None:
                exchange.stream_error = snapshot.error
                exchange.stream_complete = snapshot.complete
        except Exception as exc:
            self._failure = self._failure or f"{type(exc).__name__}: {exc}"
        exchange.observer_error = self._failure


def decoded_body(exchange: Exchange) -> bytes | None:
    """The response body with its content-encoding removed, or None if it can't be."""
    body = exchange.response_body
    if body is None:
        return None
    try:
        inflater = make_inflater(exchange.response_encoding)
        if inflater is None:
            return body
        return inflater.decompress(body) + inflater.flush()
    except (ValueError, zlib.error):
        return None
