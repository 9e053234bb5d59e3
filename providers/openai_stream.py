"""A Chat Completions stream as the Anthropic event stream, translated as it arrives.

`feed(bytes)` takes whatever the backend sent (any split: inside a UTF-8 character,
inside a `data:` line) and returns the Anthropic SSE bytes to flush at once;
`finish()` ends it. The backend's SSE is read by `streaming.sse.SSEDecoder`. The
events, each with its `event:` line:

- `message_start` at the first chunk: the message with no content, and usage zeros
  (Chat Completions counts only at the end; `message_delta` carries the real counts
  and Anthropic clients overwrite with them).
- text (`delta.content`, and `delta.refusal`) → a text block of `text_delta`s.
- each tool call (`delta.tool_calls[i]`, by `index`) → its own tool_use block,
  started once its name is known, its `arguments` fragments passed on as
  `input_json_delta`s as they come. Fragments of several calls may interleave: each
  goes to its own block. A block closes when the next one starts if its arguments are
  complete, else at the end (so a block is never closed before its last fragment); a
  text block closes when a tool call starts. Arguments are parsed when their block
  closes: not a JSON object → an error event, as in the non-streaming translation.
- `finish_reason` closes the open blocks; the `message_delta` (stop reason, usage from
  the final usage chunk) and `message_stop` follow at `[DONE]`, or at `finish()` when
  the backend closes without `[DONE]`, since the usage chunk comes after the finish.
- a backend error in the stream (`data: {"error": …}`), an unreadable chunk, or a
  stream that ends without a `finish_reason` (cut, or `[DONE]` too early) → one
  `event: error` in Anthropic's shape, and nothing after it.

The message it describes is exactly `from_openai_response` of the same answer sent
non-streaming (the stream tests fold it with `streaming.accumulator` and the
anthropic SDK). Work is linear in the input: each fragment is decoded, scanned and
written once, argument text is joined once per block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from providers.events import sse_event
from providers.json_balance import JsonBalance
from providers.openai_errors import BackendFailure, error_object_of, failure_from_error_object
from providers.openai_response import (
    anthropic_usage,
    message_id,
    parse_arguments,
    stop_reason_for,
    tool_use_id,
    zero_usage,
)
from streaming.sse import SSEDecoder


@dataclass(slots=True)
class _Call:
    """One backend tool call, by its stream `index`."""

    index: int
    id: str | None = None
    name: str | None = None
    # Argument fragments received before the block could start (no name yet), then
    # every fragment, for the parse at the block's stop.
    pieces: list[str] = field(default_factory=list)
    balance: JsonBalance = field(default_factory=JsonBalance)
    block: int | None = None  # Anthropic content index once started
    closed: bool = False


class OpenAIStreamTranslator:
    def __init__(self, *, model: str, request_id: str, stop_sequences: Sequence[str] = ()) -> None:
        self._model = model
        self._request_id = request_id
        self._stop_sequences = tuple(stop_sequences)
        self._decoder = SSEDecoder()
        self._next_block = 0
        self._text_block: int | None = None  # the open text block
        # Open tool_use blocks by content index (so in block order), those of them
        # whose arguments became complete, and calls still waiting for a name:
        # kept apart so no step scans every call (linear however many there are).
        self._open_calls: dict[int, _Call] = {}
        self._closable: dict[int, _Call] = {}
        self._unnamed: dict[int, _Call] = {}
        self._calls: dict[int, _Call] = {}
        self._started_calls = 0
        self._last_call: _Call | None = None
        self._refused = False
        self._finish_reason: str | None = None
        self._matched_stop: object = None
        self._usage: Mapping[str, Any] | None = None
        self.started = False  # message_start has been returned
        self.ended = False  # message_stop or an error has been returned
        # What ended the stream with an error event: a caller that has not flushed
        # anything yet may answer with `failure.response()` instead.
        self.failure: BackendFailure | None = None
        self.served_model: str | None = None  # the model the backend named
        self.backend_id: str | None = None  # the backend's chatcmpl id

    def feed(self, chunk: bytes) -> bytes:
        if self.ended:
            return b""
        out = bytearray()
        for event in self._decoder.decode(chunk):
            self._event(event.data, out)
            if self.ended:
                break
        return bytes(out)

    def finish(self) -> bytes:
        """End of the backend's body."""
        if self.ended:
            return b""
        self._decoder.flush()
        out = bytearray()
        if self._finish_reason is None:
            self._fail(_cut("before the response was complete"), out)
        else:
            self._complete(out)
        return bytes(out)

    # ---- events -------------------------------------------------------------------
    def _event(self, data: str, out: bytearray) -> None:
        if data.strip() == "[DONE]":
            if self._finish_reason is None:
                self._fail(_cut("with [DONE] before any finish_reason"), out)
            else:
                self._complete(out)
            return
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, Mapping):
            self._fail(_cut(f"an unreadable chunk: {data[:200]}", verb="sent"), out)
            return
        error = error_object_of(payload)
        if error is not None:
            self._fail(failure_from_error_object(error), out)
            return
        if isinstance(payload.get("model"), str):
            self.served_model = payload["model"]
        if isinstance(payload.get("id"), str):
            self.backend_id = payload["id"]
        if not self.started:
            self._start(out)
        if isinstance(payload.get("usage"), Mapping):
            self._usage = payload["usage"]  # cumulative: the last one counts
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                self._choice(choice, out)
                if self.ended:
                    return

    def _choice(self, choice: Mapping[str, Any], out: bytearray) -> None:
        delta = choice.get("delta")
        if isinstance(delta, Mapping):
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    self._refused |= key == "refusal"
                    self._text(text, out)
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, Mapping):
                    self._fragment(call, out)
                    if self.ended:
                        return
            legacy = delta.get("function_call")
            if isinstance(legacy, Mapping):
                self._fragment({"index": -1, "function": legacy}, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish_reason = finish
            if choice.get("stop_reason") is not None:
                self._matched_stop = choice.get("stop_reason")
            self._close_all(out)

    def _text(self, text: str, out: bytearray) -> None:
        if self._text_block is None:
            self._close_finished(out)
            if self.ended:
                return
            self._text_block = self._open_block({"type": "text", "text": ""}, out)
        delta = {"type": "text_delta", "text": text}
        out += sse_event({"type": "content_block_delta", "index": self._text_block, "delta": delta})

    def _fragment(self, raw: Mapping[str, Any], out: bytearray) -> None:
        index = raw.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            # No index (a few servers): a new id starts a call, else the last goes on.
            last = self._last_call
            index = last.index if last and raw.get("id") in (None, last.id) else len(self._calls)
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = self._unnamed[index] = _Call(index)
        self._last_call = call
        function = raw.get("function")
        function = function if isinstance(function, Mapping) else {}
        if call.id is None and isinstance(raw.get("id"), str):
            call.id = raw["id"]
        if call.name is None and isinstance(function.get("name"), str) and function["name"]:
            call.name = function["name"]
        arguments = function.get("arguments")
        piece = arguments if isinstance(arguments, str) else ""
        if call.closed:
            if piece.strip():
                self._fail(_bad_arguments(call, piece), out)
            return
        if piece:
            call.pieces.append(piece)
            call.balance.feed(piece)
        if call.block is None:
            if call.name is not None:
                self._start_call(call, out)
        elif piece:
            self._json_delta(call.block, piece, out)
            if call.balance.complete:
                self._closable[call.block] = call

    def _start_call(self, call: _Call, out: bytearray) -> None:
        self._close_finished(out)
        if self.ended:
            return
        assert call.name is not None
        block = {
            "type": "tool_use",
            "id": tool_use_id(call.id, self._request_id, self._started_calls),
            "name": call.name,
            "input": {},
        }
        self._started_calls += 1
        del self._unnamed[call.index]
        call.block = self._open_block(block, out)
        self._open_calls[call.block] = call
        if call.pieces:
            self._json_delta(call.block, "".join(call.pieces), out)
            if call.balance.complete:
                self._closable[call.block] = call

    # ---- blocks -------------------------------------------------------------------
    def _open_block(self, block: dict[str, Any], out: bytearray) -> int:
        index = self._next_block
        self._next_block += 1
        out += sse_event({"type": "content_block_start", "index": index, "content_block": block})
        return index

    def _json_delta(self, index: int, piece: str, out: bytearray) -> None:
        delta = {"type": "input_json_delta", "partial_json": piece}
        out += sse_event({"type": "content_block_delta", "index": index, "delta": delta})

    def _close_finished(self, out: bytearray) -> None:
        """Before a new block starts: close the text block, and tool blocks whose
        arguments are complete (an incomplete one may still receive fragments)."""
        if self._text_block is not None:
            out += sse_event({"type": "content_block_stop", "index": self._text_block})
            self._text_block = None
        closable = list(self._closable.values())
        self._closable.clear()
        for call in closable:
            if call.balance.complete:  # later fragments may have reopened it
                self._close_call(call, out)
                if self.ended:
                    return

    def _close_all(self, out: bytearray) -> None:
        if self._unnamed:
            self._fail(_cut("a tool call without a function name", verb="sent"), out)
            return
        # In block order, as a client that indexes content by position expects.
        pending: list[tuple[int, _Call | None]] = list(self._open_calls.items())
        if self._text_block is not None:
            pending.append((self._text_block, None))
        self._text_block = None
        for index, call in sorted(pending, key=lambda item: item[0]):
            if call is None:
                out += sse_event({"type": "content_block_stop", "index": index})
                continue
            self._close_call(call, out)
            if self.ended:
                return

    def _close_call(self, call: _Call, out: bytearray) -> None:
        assert call.block is not None
        del self._open_calls[call.block]
        self._closable.pop(call.block, None)
        call.closed = True
        raw = "".join(call.pieces)
        call.pieces = [raw]
        try:
            parse_arguments(raw, call.name or "")
        except BackendFailure as failure:
            self._fail(failure, out)
            return
        out += sse_event({"type": "content_block_stop", "index": call.block})

    # ---- message ------------------------------------------------------------------
    def _start(self, out: bytearray) -> None:
        self.started = True
        message = {
            "id": message_id(self._request_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": zero_usage(),
        }
        out += sse_event({"type": "message_start", "message": message})

    def _complete(self, out: bytearray) -> None:
        if not self.started:
            self._start(out)
        stop_reason, stop_sequence = stop_reason_for(
            self._finish_reason,
            has_tool_calls=bool(self._calls),
            refused=self._refused,
            matched=self._matched_stop,
            stop_sequences=self._stop_sequences,
        )
        out += sse_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": anthropic_usage(self._usage),
            }
        )
        out += sse_event({"type": "message_stop"})
        self.ended = True

    def _fail(self, failure: BackendFailure, out: bytearray) -> None:
        self.failure = failure
        self.ended = True
        out += failure.event()


def _cut(what: str, *, verb: str = "ended") -> BackendFailure:
    return BackendFailure(502, "api_error", f"The OpenAI-format backend's stream {verb} {what}")


def _bad_arguments(call: _Call, piece: str) -> BackendFailure:
    try:
        parse_arguments("".join(call.pieces) + piece, call.name or "")
    except BackendFailure as failure:
        return failure
    return _cut(f"more arguments for tool `{call.name}` after they were complete", verb="sent")
