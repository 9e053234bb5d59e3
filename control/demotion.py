"""Non-streaming → streaming demotion (ANTHROPIC_DEMOTE_NONSTREAMING).

A long non-streaming call sends nothing until the whole message is ready, so a long
thinking request trips the response-header timeout (and idle timeouts of load
balancers on the way). Sent upstream with `stream: true` instead, the response
starts at once; the proxy folds the SSE back into the one JSON message the client
asked for.

Four pieces, all pure:
- `wants_non_streaming(body)`: is this a request to demote?
- `promote_body_to_stream(body)`: the body with only `stream` changed to `true`.
- `StreamToMessage`: the upstream SSE, fed chunk by chunk, folded with the same
  decoder and accumulator the request log uses, then `result()` → (status, body).
- `demoted_response_headers(headers)`: the upstream's headers for the JSON answer.

Only for a 200 `text/event-stream` upstream answer: an upstream error status arrives
as a JSON body before any streaming starts and is relayed as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from control.jsonbytes import ObjectLayout
from control.jsonedit import get_member, set_member, splice_member
from streaming.accumulator import StreamSnapshot, accumulate, finalize
from streaming.errors import error_body
from streaming.sse import SSEDecoder

# Anthropic's documented error types and the status the non-streaming API answers
# them with (https://platform.claude.com/docs/en/api/errors).
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
UNKNOWN_ERROR_STATUS = 500

# Headers that described the SSE body and are wrong for the JSON that replaces it.
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "etag"})


def wants_non_streaming(body: bytes, layout: ObjectLayout | None = None) -> bool:
    """True when `body` is a JSON object whose `stream` is absent or `false` (the
    API's default is non-streaming). With a repeated key the last one counts, as
    json.loads decides. Anything else (not an object, `stream: true`, an odd value
    such as `null` or `"false"`) is not demoted: the upstream judges it unchanged."""
    try:
        raw = get_member(body, "stream", layout)
    except ValueError:
        return False
    return raw is None or raw == b"false"


def promote_body_to_stream(body: bytes) -> bytes:
    """The client's body with only the top-level `stream` set to `true`.

    Every other byte is kept: key order, whitespace, number spellings, escapes,
    duplicate keys. Every top-level `stream` is set (parsers differ on which
    duplicate wins). An absent `stream` is appended as the last member, e.g.
    `{"model":"m","max_tokens":5}` → `{"model":"m","max_tokens":5,"stream":true}`,
    using the body's own separators. ValueError if `body` is not a JSON object.
    """
    return set_member(body, "stream", b"true")


def promote_body_at(body: bytes, layout: ObjectLayout | None) -> tuple[bytes, ObjectLayout]:
    """`promote_body_to_stream` using the body's scan when there is one."""
    return splice_member(body, "stream", b"true", layout)


def error_status(error_type: object) -> int:
    """HTTP status of an Anthropic error type; unknown types are server errors."""
    if isinstance(error_type, str):
        return ERROR_STATUS.get(error_type, UNKNOWN_ERROR_STATUS)
    return UNKNOWN_ERROR_STATUS


class StreamToMessage:
    """Fold an upstream Messages SSE stream into the non-streaming response.

    `feed(chunk)` takes raw (decompressed) bytes as they arrive, in any chunking;
    `result()` ends the stream and returns (status, body):
    - 200 and the message as compact JSON, byte-equal to what the API returns
      non-streaming (keys in the API's order, no ASCII escaping, every field and block
      the stream carried, unknown ones included). A message that stops on `refusal`
      or `compaction` is such a 200: the API answers both with 200 too;
    - an `event: error` before message_stop: the status its error type maps to
      (overloaded_error → 529, …) and the error body exactly as the upstream sent it;
    - a stream that ended without message_stop: 502 with an api_error body.
    An error after message_stop changes nothing: the message was complete.
    `snapshot` stays readable for the request log, so it need not fold twice.
    """

    __slots__ = ("_closed", "_decoder", "_error_data", "_result", "snapshot")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self.snapshot = StreamSnapshot()
        # Raw `data` of the first error event seen before message_stop.
        self._error_data: str | None = None
        self._closed = False
        self._result: tuple[int, bytes] | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise RuntimeError("feed() after result()")
        for event in self._decoder.decode(chunk):
            self._event(event.event, event.data)

    def result(self) -> tuple[int, bytes]:
        """End of stream; may be called again and returns the same answer."""
        if self._result is None:
            self._closed = True
            for event in self._decoder.flush():  # none by spec; kept for symmetry
                self._event(event.event, event.data)
            self._result = self._conclude()
        return self._result

    def _event(self, name: str | None, data: str) -> None:
        try:
            payload: Any = json.loads(data)
        except ValueError:
            payload = None
        is_error = name == "error" or (isinstance(payload, dict) and payload.get("type") == "error")
        if is_error and not self.snapshot.complete and self._error_data is None:
            self._error_data = data
        if isinstance(payload, dict):
            accumulate(payload, self.snapshot)

    def _conclude(self) -> tuple[int, bytes]:
        snapshot = self.snapshot
        if snapshot.complete:
            message = finalize(snapshot)
            return 200, json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        if self._error_data is not None:
            try:
                payload = json.loads(self._error_data)
            except ValueError:
                payload = None
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                return error_status(error.get("type")), self._error_data.encode()
            return 502, error_body(502, "upstream stream failed with an unreadable error event")
        if snapshot.message is None:
            reason = "upstream stream ended before message_start"
        else:
            reason = "upstream stream ended before message_stop"
        if self._decoder.pending_bytes:
            reason += " (cut inside an event)"
        return 502, error_body(502, reason)


def demoted_response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's streaming response headers for the demoted JSON answer: all of
    them (request-id, anthropic-ratelimit-*, …) except those describing the SSE body,
    plus `content-type: application/json`. Hop-by-hop filtering stays with
    streaming.headers.response_headers_for_client."""
    kept = [(name, value) for name, value in headers if name.lower() not in _BODY_HEADERS]
    kept.append(("content-type", "application/json"))
    return kept
