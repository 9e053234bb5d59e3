"""A Messages request as an OpenAI Chat Completions request (`POST {base_url}/chat/completions`).

Top-level fields (turns and the system prompt: `providers.openai_messages`):

- `model` → the routed model (`model=`), never the client's.
- `max_tokens` → `max_tokens` by default, the field the OpenAI-compatible servers
  (vLLM, Ollama, llama.cpp) read; `max_completion_tokens` with
  `OpenAIOptions(max_tokens_field="max_completion_tokens")`, which OpenAI's reasoning
  models require (OpenAI deprecated `max_tokens` for them).
- `temperature`, `top_p` → the same, unchanged (the same softmax settings; OpenAI
  merely allows temperatures above 1).
- `stop_sequences` → `stop`.
- `tools` (custom tools with a JSON schema) → `function` tools: `name`,
  `description`, `input_schema` → `parameters`, `strict`. A tool with
  `defer_loading: true` is sent as an ordinary function, from the first request
  on: on the API its definition enters the model's context only once a tool
  search (`tool_reference` blocks) loads it, and Chat Completions has no such
  loading, so the model sees it from the start instead of after the search;
  nothing the model could call is left out. (Claude Code's
  `DeferredToolPlaceholder`, sent with it to keep deferred loading on, is sent
  too: it tells the model never to call it.)
- `tool_choice` auto / any / tool / none → `"auto"` / `"required"` /
  `{"type": "function", "function": {"name"}}` / `"none"`;
  `disable_parallel_tool_use` → `parallel_tool_calls: false`. Without tools, auto
  and none are left out (OpenAI refuses a tool_choice without tools).
- `metadata.user_id` → `user`.
- `output_config.format` (`json_schema`), and the older `output_format` →
  `response_format: {"type": "json_schema", "json_schema": {"name": "output",
  "schema", "strict": true}}` (Anthropic's structured outputs are constrained
  decoding, hence strict).
- `stream: true` → `stream: true` + `stream_options: {"include_usage": true}`, so the
  usage arrives in a last chunk.

Thinking (`thinking`, `output_config.effort`, and a system message's per-message
effort) depends on the backend, so it is an option (`OpenAIOptions.thinking`:
`refuse`, the default, `reasoning_effort` or `ignore`); see `providers.effort`.

Ignored as harmless: `cache_control` (top level or on tools and blocks), `service_tier`
(a capacity preference; the backend has its own), `context_management` (server-side
context editing: the backend gets the full history, which is what the client sent),
`speed: "standard"`, and `eager_input_streaming` on tools (the translated stream
passes argument fragments on as they come anyway). Refused: `top_k`, server and
Anthropic-defined tools (any `type` but `custom`), `mcp_servers`, `container`,
`inference_geo` (a data-residency requirement), `fallbacks`, `speed: "fast"`,
unknown `metadata` or `output_config` fields, and any top-level field not listed
here (a null value counts as absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from providers.effort import ThinkingMode, reasoning_effort
from providers.openai_messages import translate_messages
from providers.refusal import Malformed, Unsupported


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """What the backend behind a route accepts (set per provider by configuration)."""

    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    thinking: ThinkingMode = "refuse"


DEFAULT_OPTIONS = OpenAIOptions()

_IGNORED = frozenset({"cache_control", "service_tier", "context_management"})
_HANDLED = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_config",
        "output_format",
        "stream",
        "speed",
    }
)
_TOOL_FIELDS = frozenset(
    {"type", "name", "description", "input_schema", "cache_control", "strict"}
    | {"eager_input_streaming", "defer_loading"}
)


def to_openai_request(
    body: Mapping[str, Any], *, model: str, options: OpenAIOptions = DEFAULT_OPTIONS
) -> dict[str, Any]:
    """The Chat Completions body for `body`; raises `Unsupported` naming what the
    backend cannot express, `Malformed` for what is not a Messages request."""
    for key, value in body.items():
        if key not in _HANDLED and key not in _IGNORED and value is not None:
            raise Unsupported(f"`{key}`")
    tools = body.get("tools")
    functions = _tools(tools) if tools else []
    by_name = {f["function"]["name"]: f["function"] for f in functions}
    out: dict[str, Any] = {
        "model": model,
        "messages": translate_messages(body.get("system"), body.get("messages"), by_name),
    }
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        out[options.max_tokens_field] = max_tokens
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise Malformed("`stop_sequences` must be a list of strings")
        out["stop"] = list(stop)
    if functions:
        out["tools"] = functions
    _tool_choice(body.get("tool_choice"), bool(tools), out)
    effort = reasoning_effort(body, options.thinking)
    if effort is not None:
        out["reasoning_effort"] = effort
    response_format = _response_format(body)
    if response_format is not None:
        out["response_format"] = response_format
    user = _user(body.get("metadata"))
    if user is not None:
        out["user"] = user
    if body.get("speed") not in (None, "standard"):
        raise Unsupported(f"`speed: {body.get('speed')}`")
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise Malformed("`tools` must be a list")
    out = []
    for tool in tools:
        if not isinstance(tool, Mapping):
            raise Malformed("each tool must be an object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise Unsupported(f"`{kind}` tools")
        extra = set(tool) - _TOOL_FIELDS
        if extra:
            raise Unsupported(f"`{sorted(extra)[0]}` on tools")
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not isinstance(schema, Mapping):
            raise Malformed("a tool needs a `name` string and an `input_schema` object")
        if tool.get("defer_loading") not in (None, True, False):
            raise Malformed("a tool's `defer_loading` must be a boolean")
        function: dict[str, Any] = {"name": name}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        function["parameters"] = dict(schema)
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, has_tools: bool, out: dict[str, Any]) -> None:
    if choice is None:
        return
    if not isinstance(choice, Mapping):
        raise Malformed("`tool_choice` must be an object")
    extra = set(choice) - {"type", "name", "disable_parallel_tool_use"}
    if extra:
        raise Unsupported(f"`{sorted(extra)[0]}` in tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        value: Any = "auto"
    elif kind == "any":
        value = "required"
    elif kind == "none":
        value = "none"
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise Malformed("`tool_choice` of type tool needs a `name`")
        value = {"type": "function", "function": {"name": name}}
    else:
        raise Unsupported(f"`tool_choice` of type `{kind}`")
    if not has_tools:
        if kind in ("auto", "none"):
            return  # means nothing without tools; OpenAI refuses it without them
        raise Malformed("`tool_choice` names a tool but the request has no tools")
    out["tool_choice"] = value
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    config = body.get("output_config")
    if config is not None and not isinstance(config, Mapping):
        raise Malformed("`output_config` must be an object")
    extra = set(config or {}) - {"effort", "format"}
    if extra:
        raise Unsupported(f"`output_config.{sorted(extra)[0]}`")
    fmt = (config or {}).get("format") or body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        kind = fmt.get("type") if isinstance(fmt, Mapping) else fmt
        raise Unsupported(f"output format `{kind}`")
    if set(fmt) - {"type", "schema"} or not isinstance(fmt.get("schema"), Mapping):
        raise Unsupported("an output format other than a plain JSON schema")
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": dict(fmt["schema"]), "strict": True},
    }


def _user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise Malformed("`metadata` must be an object")
    extra = set(metadata) - {"user_id"}
    if extra:
        raise Unsupported(f"`metadata.{sorted(extra)[0]}`")
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise Malformed("`metadata.user_id` must be a string")
    return user_id
