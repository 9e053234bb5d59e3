"""The Anthropic Messages API shapes the proxy forwards (the seed's `AnthropicRequest`,
`AnthropicMessage`, `SystemMessage`, `Tool`, `AnthropicResponse`, `ModelsResponse`).
Documentation only: the proxy forwards any body unchanged and checks just `model`,
`stream` and `max_tokens`; none of these schemas is closed, so every field the API
adds passes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sanic_ext import openapi

from openapi.components import AnthropicUsage


@openapi.component
@dataclass
class AnthropicMessage:
    role: str  # user | assistant; since 2026 also a mid-conversation `system`
    content: Any  # a string or a list of content blocks


@openapi.component
@dataclass
class SystemMessage:
    """A block of the system prompt (`type: "text"`), optionally a cache breakpoint
    (`cache_control: {"type": "ephemeral", "ttl"?}`)."""

    type: str
    text: str
    cache_control: dict[str, Any] | None = None


@openapi.component
@dataclass
class Tool:
    """A tool the model may call: a client tool's `name`, `description` and JSON
    Schema `input_schema`. Server tools (`type: "web_search_..."`, ...) and
    `cache_control` ride along unchanged."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None


@openapi.component
@dataclass
class AnthropicRequest:
    model: str
    messages: list[AnthropicMessage]
    max_tokens: int
    system: str | list[SystemMessage] | None = None  # a string or a list of text blocks
    stream: bool = False
    temperature: float | None = None
    tools: list[Tool] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


@openapi.component
@dataclass
class AnthropicResponse:
    id: str
    type: str  # message
    role: str  # assistant
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None
    usage: AnthropicUsage


@openapi.component
@dataclass
class TokenCount:
    """The upstream's count; on a route to an OpenAI-format provider, the proxy's own
    estimate, marked `estimated: true` (the backend has no such endpoint)."""

    input_tokens: int
    estimated: bool | None = None


@openapi.component
@dataclass
class ModelInfo:
    id: str
    type: str
    display_name: str
    created_at: str


@openapi.component
@dataclass
class ModelsResponse:
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
