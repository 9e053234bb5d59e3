"""A Chat Completions response as the Anthropic message the client asked for.

Shared by the non-streaming translation (`from_openai_response`) and the stream
translator, so both build the same message from the same answer:

- `id` is `msg_` + the proxy's request id (the backend's `chatcmpl-…` id is not a
  message id; the caller records it), `model` the name the caller chooses.
- `content`: the text (`content`, then `refusal`, as one text block when non-empty),
  then one `tool_use` block per tool call in order, `input` parsed from the JSON
  `arguments` (empty → `{}`). Arguments that are not a JSON object make the whole
  answer a `BackendFailure` (502 `api_error`): a tool call the client cannot run must
  not pass for a good one. A call without an id gets `toolu_<request id>_<index>`;
  ids are reduced to the characters Anthropic accepts. The reasoning text some
  compatible servers add (`reasoning_content`) is not turned into thinking blocks:
  Anthropic thinking blocks carry a signature the API checks when they are sent back,
  which a translation cannot make.
- `stop_reason` from `finish_reason`: stop → end_turn, length → max_tokens,
  tool_calls (and the legacy function_call) → tool_use, content_filter → refusal. A
  `refusal` text also means refusal, and tool calls with `stop` mean tool_use (OpenAI
  answers a forced tool choice with `stop`). Chat Completions does not say which stop
  sequence matched; vLLM does (`choice.stop_reason`), so when that names one of the
  request's `stop_sequences` the reason is stop_sequence with it. Any other value →
  end_turn.
- `usage`: `prompt_tokens` less `prompt_tokens_details.cached_tokens` →
  `input_tokens` (Anthropic's excludes cache reads), the cached ones →
  `cache_read_input_tokens`, `cache_creation_input_tokens` 0 (OpenAI-format backends
  bill no cache writes), `completion_tokens` → `output_tokens`,
  `completion_tokens_details.reasoning_tokens` → `output_tokens_details.
  thinking_tokens`. A backend that reported no usage gets zeros and
  `"usage_unreported": true`, so the log can tell "unknown" from a real zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from providers.openai_errors import BackendFailure, error_object_of, failure_from_error_object
from providers.openai_messages import safe_tool_id


def from_openai_response(
    body: Mapping[str, Any],
    *,
    model: str,
    request_id: str,
    stop_sequences: Sequence[str] = (),
) -> dict[str, Any]:
    """The Anthropic message for a non-streaming Chat Completions body; raises
    `BackendFailure` for an error object or a body that holds no usable answer."""
    error = error_object_of(body)
    if error is not None:
        raise failure_from_error_object(error)
    choice = _first_choice(body)
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise _unreadable("a choice without a message")
    content: list[dict[str, Any]] = []
    text = _text_of(message.get("content"))
    refusal = message.get("refusal")
    refused = isinstance(refusal, str) and bool(refusal)
    if refused:
        text += refusal
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise _unreadable("`tool_calls` that is not a list")
    for index, call in enumerate(calls or []):
        content.append(_tool_use(call, request_id, index))
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        content.append(_tool_use({"function": legacy}, request_id, len(calls or [])))
    has_calls = any(block["type"] == "tool_use" for block in content)
    stop_reason, stop_sequence = stop_reason_for(
        choice.get("finish_reason"),
        has_tool_calls=has_calls,
        refused=refused,
        matched=choice.get("stop_reason"),
        stop_sequences=stop_sequences,
    )
    return {
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(body.get("usage")),
    }


def parse_completion(raw: bytes) -> Mapping[str, Any]:
    """A non-streaming body as JSON; `BackendFailure` (502) when it is not an object."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, Mapping):
        shown = raw[:200].decode("utf-8", "replace")
        raise _unreadable(f"a body that is not a JSON object: {shown}")
    return parsed


def message_id(request_id: str) -> str:
    return f"msg_{safe_tool_id(request_id)}"


def tool_use_id(raw: object, request_id: str, index: int) -> str:
    if isinstance(raw, str) and raw:
        return safe_tool_id(raw)
    return f"toolu_{safe_tool_id(request_id)}_{index}"


def parse_arguments(raw: object, name: str) -> dict[str, Any]:
    """A tool call's `arguments` as the tool_use `input` object."""
    if isinstance(raw, Mapping):  # a few servers send the object itself
        return dict(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    shown = raw[:200] if isinstance(raw, str) else repr(raw)[:200]
    raise BackendFailure(
        502,
        "api_error",
        f"The OpenAI-format backend's arguments for tool `{name}` are not a JSON object: {shown}",
    )


def stop_reason_for(
    finish_reason: object,
    *,
    has_tool_calls: bool,
    refused: bool,
    matched: object = None,
    stop_sequences: Sequence[str] = (),
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for a choice's finish_reason."""
    if refused or finish_reason == "content_filter":
        return "refusal", None
    if finish_reason == "length":
        return "max_tokens", None
    if has_tool_calls:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    # stop, a tool_calls without any call, and values this module does not know.
    return "end_turn", None


def zero_usage() -> dict[str, Any]:
    """The usage message_start carries before the backend has counted anything; the
    same keys, in the same order, as `anthropic_usage`."""
    return {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def anthropic_usage(usage: object) -> dict[str, Any]:
    out = zero_usage()
    if not isinstance(usage, Mapping):
        out["usage_unreported"] = True
        return out
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    out["input_tokens"] = max(0, prompt - cached)
    out["cache_read_input_tokens"] = min(cached, prompt) if prompt else cached
    out["output_tokens"] = _count(usage.get("completion_tokens"))
    completion = usage.get("completion_tokens_details")
    if isinstance(completion, Mapping):
        reasoning = completion.get("reasoning_tokens")
        if _is_count(reasoning):
            out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


def _first_choice(body: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _unreadable("no choices")
    for choice in choices:  # we never ask for n > 1: choice 0 is the answer
        if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
            return choice
    raise _unreadable("no choice with index 0")


def _text_of(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, which a few servers answer with
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text":
                raise _unreadable("message content that is not text")
            texts.append(str(part.get("text") or ""))
        return "".join(texts)
    raise _unreadable("message content that is not text")


def _tool_use(call: object, request_id: str, index: int) -> dict[str, Any]:
    if not isinstance(call, Mapping):
        raise _unreadable("a tool call that is not an object")
    if call.get("type", "function") != "function":
        raise _unreadable(f"a tool call of type `{call.get('type')}`")
    function = call.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise _unreadable("a tool call without a function name")
    arguments = function.get("arguments") if isinstance(function, Mapping) else None
    return {
        "type": "tool_use",
        "id": tool_use_id(call.get("id"), request_id, index),
        "name": name,
        "input": parse_arguments(arguments, name),
    }


def _unreadable(what: str) -> BackendFailure:
    return BackendFailure(
        502, "api_error", f"The OpenAI-format backend answered with {what}; nothing to translate"
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: object) -> int:
    return value if _is_count(value) else 0  # type: ignore[return-value]
