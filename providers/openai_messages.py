"""The system prompt and the turns of a Messages request as Chat Completions messages.

- System prompt (string or text blocks) → one `system` message; mid-conversation
  `role: "system"` messages → `system` messages in place. Their `output_config`
  (a per-message effort) is checked here and applied by `providers.effort`; a
  system message without text (an effort change alone) adds no message.
- User turns: text → text parts, images → `image_url` parts (base64 → a `data:` URL,
  URL sources as they are). A single text is sent as a plain string, several blocks as
  content parts, so block boundaries survive.
- `tool_result` blocks → one `role: "tool"` message each, in order, before the rest of
  that user turn; several blocks stay content parts. Chat Completions has no error
  flag, so an error result starts with `TOOL_ERROR_PREFIX`, which is how a model
  reads a failed tool call in that format.
- `tool_reference` blocks in a tool_result (a client-side tool search's answer: the
  API loads the named deferred tools' definitions into the model's context there)
  → the definitions as text, as Claude Code's ToolSearch writes them without tool
  references: `<functions>` with one `<function>{"description", "name",
  "parameters"}</function>` line per tool. The tools themselves are sent as
  functions anyway (see `providers.openai_request`); a name the request's tools
  lack is written with its name alone.
- Assistant turns: text → `content`, `tool_use` → `tool_calls` (input as JSON
  arguments). Within one assistant turn Chat Completions keeps text and tool calls
  apart, so text written between two tool calls is sent before them.

Ignored on purpose, documented as harmless: `cache_control` anywhere (OpenAI-format
backends cache prompts automatically or not at all; nothing the model reads changes)
and earlier `thinking` / `redacted_thinking` blocks (Chat Completions has no input
for a model's earlier reasoning; OpenAI's and the compatible servers' reasoning models
do not take it back either).

Refused: images inside a tool_result (tool messages hold text only), documents, file
or search-result blocks, server tool blocks, citations, compaction blocks, a block
type or block field this module does not know, content before a tool_result (the
Messages API refuses that too), a final assistant turn (prefill: Chat Completions
would answer after it instead of continuing it), and `output_config` on any message
but a system message, or with anything but `effort` (the API keeps the rest
top-level).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from providers.refusal import Malformed, Unsupported

TOOL_ERROR_PREFIX = "Error: "

# Fields a block may carry; cache_control is accepted and not sent (see above).
_TEXT_FIELDS = frozenset({"type", "text", "cache_control", "citations"})
_IMAGE_FIELDS = frozenset({"type", "source", "cache_control"})
_TOOL_USE_FIELDS = frozenset({"type", "id", "name", "input", "cache_control"})
_TOOL_RESULT_FIELDS = frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"})
_TOOL_REFERENCE_FIELDS = frozenset({"type", "tool_name", "cache_control"})
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_tool_id(value: str) -> str:
    """A tool call id both formats accept (Anthropic requires `[A-Za-z0-9_-]+`); the
    same id is used on both sides, so calls and results still pair up."""
    return _ID_UNSAFE.sub("_", value) or "_"


def translate_messages(
    system: Any, messages: Any, tools: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """`tools`: the request's translated functions by name (`function` objects), which
    `tool_reference` blocks are written out from."""
    functions = tools or {}
    out: list[dict[str, Any]] = []
    if system is not None:
        out.append({"role": "system", "content": _system_content(system, "`system`")})
    if not isinstance(messages, list):
        raise Malformed("`messages` must be a list")
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise Malformed(f"messages[{position}] must be an object")
        role, content = message.get("role"), message.get("content")
        extra = set(message) - {"role", "content"}
        if role == "system" and "output_config" in extra:
            _message_output_config(message["output_config"])
            extra.discard("output_config")
        if extra:
            raise Unsupported(f"`{sorted(extra)[0]}` on messages")
        if role == "user":
            out.extend(_user(content, position, functions))
        elif role == "assistant":
            if position == len(messages) - 1:
                raise Unsupported("a final assistant message (prefill)")
            out.append(_assistant(content, position))
        elif role == "system":
            text = _system_content(content, "system messages")
            if text:  # an effort change alone: nothing for the model to read
                out.append({"role": "system", "content": text})
        else:
            raise Malformed(f"messages[{position}].role must be user or assistant")
    return out


def _message_output_config(config: Any) -> None:
    """A system message's `output_config`: only `effort` belongs there (its value is
    judged with the request's thinking options, in `providers.effort`)."""
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise Malformed("a system message's `output_config` must be an object")
    extra = set(config) - {"effort"}
    if extra:
        raise Unsupported(f"`output_config.{sorted(extra)[0]}` on system messages")


def _blocks(content: Any, where: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, Mapping) for b in content):
        raise Malformed(f"{where} content must be a string or a list of blocks")
    return content


def _system_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts = []
    for block in _blocks(content, where):
        if block.get("type") != "text":
            raise Unsupported(f"`{block.get('type')}` blocks in {where}")
        parts.append(_text_part(block))
    return _collapse(parts)


def _user(
    content: Any, position: int, functions: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in _blocks(content, f"messages[{position}]"):
        kind = block.get("type")
        if kind == "tool_result":
            if parts:
                raise Unsupported("content before a tool_result in a user message")
            tool_messages.append(_tool_result(block, functions))
        elif kind == "text":
            parts.append(_text_part(block))
        elif kind == "image":
            parts.append(_image_part(block))
        else:
            raise Unsupported(f"`{kind}` content blocks")
    if parts or not tool_messages:
        tool_messages.append({"role": "user", "content": _collapse(parts)})
    return tool_messages


def _assistant(content: Any, position: int) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in _blocks(content, f"messages[{position}]"):
        kind = block.get("type")
        if kind == "text":
            parts.append(_text_part(block))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif kind in _DROPPED_BLOCKS:
            continue
        else:
            raise Unsupported(f"`{kind}` content blocks in assistant messages")
    message: dict[str, Any] = {"role": "assistant"}
    if calls:
        message["content"] = _collapse(parts) if parts else None
        message["tool_calls"] = calls
    else:
        message["content"] = _collapse(parts)
    return message


def _text_part(block: Mapping[str, Any]) -> dict[str, Any]:
    _check_fields(block, _TEXT_FIELDS, "text")
    text = block.get("text")
    if not isinstance(text, str):
        raise Malformed("a text block's `text` must be a string")
    if block.get("citations"):
        raise Unsupported("citations on text blocks")
    return {"type": "text", "text": text}


def _image_part(block: Mapping[str, Any]) -> dict[str, Any]:
    _check_fields(block, _IMAGE_FIELDS, "image")
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise Malformed("an image block needs a `source` object")
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise Malformed("a base64 image source needs `media_type` and `data` strings")
        url = f"data:{media};base64,{data}"
    elif kind == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise Malformed("a url image source needs a `url` string")
    else:
        raise Unsupported(f"`{kind}` image sources")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(
    block: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    _check_fields(block, _TOOL_RESULT_FIELDS, "tool_result")
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str):
        raise Malformed("a tool_result needs a `tool_use_id` string")
    content = block.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append({"type": "text", "text": content})
    elif content is not None:
        loaded: list[str] = []  # consecutive tool references, written as one block
        for inner in _blocks(content, "tool_result"):
            kind = inner.get("type")
            if kind == "tool_reference":
                loaded.append(_function_line(inner, functions))
                continue
            if loaded:
                parts.append(_functions_part(loaded))
                loaded = []
            if kind == "text":
                parts.append(_text_part(inner))
            elif kind == "image":
                raise Unsupported("images inside a tool_result")
            else:
                raise Unsupported(f"`{kind}` blocks inside a tool_result")
        if loaded:
            parts.append(_functions_part(loaded))
    if block.get("is_error") is True:
        if parts:
            parts[0] = {"type": "text", "text": TOOL_ERROR_PREFIX + parts[0]["text"]}
        else:
            parts.append({"type": "text", "text": TOOL_ERROR_PREFIX.rstrip(": ")})
    return {"role": "tool", "tool_call_id": safe_tool_id(tool_use_id), "content": _collapse(parts)}


def _function_line(block: Mapping[str, Any], functions: Mapping[str, Mapping[str, Any]]) -> str:
    _check_fields(block, _TOOL_REFERENCE_FIELDS, "tool_reference")
    name = block.get("tool_name")
    if not isinstance(name, str):
        raise Malformed("a tool_reference needs a `tool_name` string")
    function = functions.get(name)
    definition: dict[str, Any] = {}
    if function is not None and function.get("description") is not None:
        definition["description"] = function["description"]
    definition["name"] = name
    if function is not None:
        definition["parameters"] = function.get("parameters")
    return f"<function>{json.dumps(definition, ensure_ascii=False)}</function>"


def _functions_part(lines: Sequence[str]) -> dict[str, Any]:
    return {"type": "text", "text": "<functions>\n" + "\n".join(lines) + "\n</functions>"}


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    _check_fields(block, _TOOL_USE_FIELDS, "tool_use")
    call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise Malformed("a tool_use block needs `id` and `name` strings")
    if not isinstance(tool_input, Mapping):
        raise Malformed("a tool_use block's `input` must be an object")
    arguments = json.dumps(tool_input, ensure_ascii=False)
    return {
        "id": safe_tool_id(call_id),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _collapse(parts: Sequence[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part as a plain string (what every compatible server reads), anything
    else as the parts themselves."""
    if not parts:
        return ""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return list(parts)


def _check_fields(block: Mapping[str, Any], allowed: frozenset[str], kind: str) -> None:
    extra = set(block) - allowed
    if extra:
        raise Unsupported(f"`{sorted(extra)[0]}` on {kind} blocks")
