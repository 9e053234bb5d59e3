"""Chat Completions answers as OpenAI streams them, for the fake backend and the tests.

Written from OpenAI's public API reference: `chat.completion.chunk` objects (one
choice, `delta.content` / `delta.refusal` / `delta.tool_calls[i]` fragments with the
id, type and name in a call's first fragment), the usage chunk `stream_options:
{"include_usage": true}` adds (empty `choices`), `data: [DONE]`, the non-streaming
`chat.completion` object, and the `{"error": {...}}` error body. Plus vLLM's
`choice.stop_reason` (the stop string that matched). `scenario_chunks` holds the named
answers `tests.fake_openai` serves; `completion_from_chunks` folds any chunk list into
its non-streaming equivalent, so a test can compare both translations of one answer.
"""

from __future__ import annotations

import json
from typing import Any

CREATED = 1_766_000_000
MODEL = "fake-model"

Chunk = dict[str, Any]


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **choice: Any) -> Chunk:
    """A `chat.completion.chunk` with one choice."""
    return {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish, **choice}
        ],
    }


def usage_chunk(prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0) -> Chunk:
    """The last chunk when include_usage is set: no choices, the usage."""
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    base = chunk()
    base["choices"] = []
    base["usage"] = usage
    return base


def call(index: int, arguments: str, *, id: str | None = None, name: str | None = None) -> Chunk:
    """A chunk carrying one tool call fragment."""
    fragment: dict[str, Any] = {"index": index}
    if id is not None:
        fragment.update(id=id, type="function")
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function = {"name": name, **function}
    fragment["function"] = function
    return chunk({"tool_calls": [fragment]})


def text_chunks(*pieces: str) -> list[Chunk]:
    return [chunk({"role": "assistant", "content": ""})] + [chunk({"content": p}) for p in pieces]


def scenario_chunks(name: str) -> list[Chunk]:
    """The chunks of a named scenario, usage chunk included."""
    if name == "text":
        return [
            *text_chunks("Hello", " wörld — ", "你好", " 🙂!"),
            chunk(finish="stop"),
            usage_chunk(12, 9),
        ]
    if name == "tools":
        return [
            *text_chunks("Let me", " look."),
            call(0, "", id="call_weather01", name="get_weather"),
            call(0, '{"loc'),
            call(0, 'ation": "Par'),
            call(0, 'is \\"centre\\" caf\\u00'),
            call(0, 'e9", "note": "a\\'),
            call(0, "\\b \\"),
            call(0, '"q\\" ✓"}'),
            call(1, "", id="call_time02", name="get_time"),
            call(1, "{}"),
            chunk(finish="tool_calls"),
            usage_chunk(310, 42),
        ]
    if name == "interleaved":
        return [
            chunk({"role": "assistant", "content": None}),
            call(0, '{"a": ', id="call_a", name="first"),
            call(1, '{"b": ', id="call_b", name="second"),
            call(0, "1}"),
            call(1, "[2]}"),
            chunk(finish="tool_calls"),
            usage_chunk(50, 20),
        ]
    if name == "forced":
        return [
            call(0, '{"city": "Oslo"}', id="call_forced", name="get_weather"),
            chunk(finish="stop"),
            usage_chunk(40, 10),
        ]
    if name == "cached":
        return [
            *text_chunks("Cached ", "answer."),
            chunk(finish="stop"),
            usage_chunk(2048, 5, cached=1024),
        ]
    if name == "reasoning":
        return [*text_chunks("Thought."), chunk(finish="stop"), usage_chunk(30, 90, reasoning=64)]
    if name == "length":
        return [*text_chunks("This answer is cut"), chunk(finish="length"), usage_chunk(20, 4)]
    if name == "content_filter":
        return [*text_chunks("I can"), chunk(finish="content_filter"), usage_chunk(20, 2)]
    if name == "refusal":
        return [
            chunk({"role": "assistant", "content": None, "refusal": ""}),
            chunk({"refusal": "I can't help "}),
            chunk({"refusal": "with that."}),
            chunk(finish="stop"),
            usage_chunk(25, 6),
        ]
    if name == "stop_sequence":
        return [
            *text_chunks("one two "),
            chunk(finish="stop", stop_reason="END"),
            usage_chunk(9, 3),
        ]
    if name == "bad-args":
        return [call(0, '{"a": 1,,}', id="call_bad", name="broken"), chunk(finish="tool_calls")]
    raise KeyError(name)


def sse_body(chunks: list[Chunk], *, done: bool = True) -> bytes:
    """The chunks as OpenAI streams them: `data: <json>` events, then `data: [DONE]`."""
    body = b"".join(
        b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n" for c in chunks
    )
    return body + (b"data: [DONE]\n\n" if done else b"")


def completion_from_chunks(chunks: list[Chunk]) -> dict[str, Any]:
    """The non-streaming `chat.completion` equivalent of a chunk list: content and
    refusal concatenated, tool calls by index (id, type, name from their first
    fragment, arguments concatenated), the last finish_reason, the usage."""
    content: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    extra: dict[str, Any] = {}
    usage = None
    for item in chunks:
        if item.get("usage") is not None:
            usage = item["usage"]
        for choice in item.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
            if delta.get("refusal"):
                refusal.append(delta["refusal"])
            for fragment in delta.get("tool_calls") or ():
                entry = calls.setdefault(
                    fragment["index"],
                    {"id": None, "type": "function", "function": {"name": None, "arguments": ""}},
                )
                entry["id"] = entry["id"] or fragment.get("id")
                function = fragment.get("function") or {}
                entry["function"]["name"] = entry["function"]["name"] or function.get("name")
                entry["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
                if "stop_reason" in choice:
                    extra["stop_reason"] = choice["stop_reason"]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(content) if content else None,
        "refusal": "".join(refusal) if refusal else None,
    }
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    body: dict[str, Any] = {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish, **extra}
        ],
        "system_fingerprint": "fp_fake",
    }
    if usage is not None:
        body["usage"] = usage
    return body


_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("invalid_request_error", "Invalid 'messages[0].content': expected a string.", None),
    401: ("invalid_request_error", "Incorrect API key provided: sk-fake.", "invalid_api_key"),
    403: ("invalid_request_error", "Country, region, or territory not supported.", None),
    404: ("invalid_request_error", "The model `nope` does not exist.", "model_not_found"),
    413: ("invalid_request_error", "Request too large.", None),
    429: (
        "requests",
        "Rate limit reached for requests per min (RPM): Limit 3.",
        "rate_limit_exceeded",
    ),
    500: ("server_error", "The server had an error while processing your request.", None),
    503: ("server_error", "The engine is currently overloaded, please try again later.", None),
}


def error_body(status: int, *, quota: bool = False) -> dict[str, Any]:
    kind, message, code = _ERRORS.get(status, ("server_error", f"Fake error {status}.", None))
    if quota:
        kind, code = "insufficient_quota", "insufficient_quota"
        message = "You exceeded your current quota, please check your plan and billing details."
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
