"""The Anthropic Messages API shapes the proxy forwards (the seed's `AnthropicRequest`,
`AnthropicMessage`, `AnthropicResponse`, `ModelsResponse`). Documentation only: the
proxy forwards any body unchanged and checks just `model`, `stream` and `max_tokens`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sanic_ext import openapi

from openapi.components import AnthropicUsage


@openapi.component
@dataclass
class AnthropicMessage:
    role: str  # user | assistant
    content: Any  # a string or a list of content blocks


@openapi.component
@dataclass
class AnthropicRequest:
    model: str
    messages: list[AnthropicMessage]
    max_tokens: int
    system: Any = None  # a string or a list of text blocks
    stream: bool = False
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None
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
    input_tokens: int


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
