"""Shared schemas, registered as named OpenAPI components (names follow the seed).

Two error shapes: the dashboard API (`/api/*`) answers the seed's `ErrorResponse`
(`{"error": message, "details": detail}`); the model API (`/v1/*`) answers
Anthropic's own (`AnthropicErrorResponse`), so SDK clients parse and retry proxy
errors exactly like upstream ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sanic_ext import openapi


@openapi.component
@dataclass
class ErrorDetail:
    type: str
    message: str


@openapi.component
@dataclass
class ErrorResponse:
    """An error of the dashboard API (`/api/*`), the seed's shape."""

    error: str  # what went wrong
    details: str | None = None  # why, or what to change


@openapi.component
@dataclass
class AnthropicErrorResponse:
    """An error on `/v1/*`: the proxy's own (400, 408, 413, 502, 504) or the
    upstream's, relayed; `{"type": "error", "error": {"type", "message"}}`."""

    type: str  # always "error"
    error: ErrorDetail
    request_id: str | None = None


@openapi.component
@dataclass
class HealthResponse:
    status: str
    timestamp: str


@openapi.component
@dataclass
class DrainingResponse:
    status: str
    timestamp: str
    in_flight: int


@openapi.component
@dataclass
class LivezResponse:
    status: str
    in_flight: int
    worker_in_flight: int
    draining: bool
    timestamp: str
    writer: dict[str, Any] | None = None  # log writer queue and journal state; null: no log


@openapi.component
@dataclass
class HeaderRule:
    header: str
    action: str  # block | set | replace
    value: str | None = None
    find: str | None = None
    enabled: bool = True


@openapi.component
@dataclass
class ProxySettings:
    # PUT replaces the whole document: a missing list means no rules.
    requestHeaderRules: list[HeaderRule] = field(default_factory=list)
    responseHeaderRules: list[HeaderRule] = field(default_factory=list)


@openapi.component
@dataclass
class Conversation:
    """One conversation in a list: the seed's fields plus token and cost totals."""

    id: str
    requestCount: int
    startTime: str
    lastActivity: str
    duration: int  # ms
    firstMessage: str | None
    projectPath: str | None
    projectName: str | None
    model: str | None
    inputTokens: int
    outputTokens: int
    cacheCreationTokens: int
    cacheReadTokens: int
    totalTokens: int
    cost: float  # USD, priced requests only
    unpricedRequests: int
    errorCount: int
    subagentRequests: int


@openapi.component
@dataclass
class ConversationList:
    conversations: list[Conversation]
    hasMore: bool
    total: int
    page: int
    limit: int
    project: str | None = None


@openapi.component
@dataclass
class ConversationSearchHit(Conversation):
    matches: int = 0  # requests of the conversation holding every query word
    lastMatch: str = ""
    matchedRequestId: str = ""
    snippet: str | None = None


@openapi.component
@dataclass
class ConversationSearchResults:
    conversations: list[ConversationSearchHit]
    words: list[str]
    hasMore: bool
    total: int
    page: int
    limit: int


@openapi.component
@dataclass
class AnthropicUsage:
    """The upstream's usage object, every field kept as sent (`service_tier`,
    `speed`, `inference_geo`, `iterations`, `output_tokens_details`,
    `server_tool_use`, ... and any future one); the four counters are always
    present as integers."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: dict[str, int] | None = None
    service_tier: str | None = None


@openapi.component
@dataclass
class ContentBlock:
    """A message content block as sent or returned (`text`, `thinking`, `tool_use`,
    `tool_result`, `image`, `compaction`, `fallback`, ...), without cache markers,
    signatures, encrypted content or media bytes; `truncated` gives the original
    length of a clipped string. `content` is a tool result's blocks, or a
    compaction's summary (a string; null when the compaction failed). Thinking the
    API returned empty (`display: "omitted"`) is `{"type": "thinking", "hidden":
    true, "tokens"}` (tokens: the reply's thinking tokens when it is the reply's only
    thinking block, else null). A `fallback` block keeps `from`, `to` and `trigger`."""

    type: str
    text: str | None = None
    thinking: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: Any = None
    is_error: bool | None = None
    truncated: int | None = None
    hidden: bool | None = None
    tokens: int | None = None


@openapi.component
@dataclass
class ConversationTurn:
    """A message (user or assistant, with its content blocks), a `system` turn (a
    mid-conversation `role: "system"` message), an `error`, a `gap`, or a boundary:
    `compaction` (`source`: `server` where the API restarted the history at a
    compaction block, which the next turn holds; `client` where Claude Code
    restarted it from its own summary) or `new_history`. Assistant turns carry the
    usage, cost and timings of the request that produced them, `model` (requested),
    `servedModel`, `fallbacks` (each switch: `{"from", "to", "trigger"}`) and
    `thinkingTokens`, and the subagents spawned by their tool calls (`SubagentThread`,
    whose turns are ConversationTurns)."""

    type: str
    requestId: str | None = None
    timestamp: str | None = None
    index: int | None = None
    segment: int | None = None
    role: str | None = None
    content: list[ContentBlock] | None = None
    # request | response | history (filled from a body); server | client (compaction)
    source: str | None = None
    model: str | None = None
    servedModel: str | None = None  # the model that finished the reply
    fallbacks: list[dict[str, Any]] | None = None
    thinkingTokens: int | None = None  # usage.output_tokens_details.thinking_tokens
    statusCode: int | None = None
    stopReason: str | None = None
    usage: AnthropicUsage | None = None
    tokens: int | None = None
    cost: float | None = None
    responseTime: int | None = None
    timeToFirstByte: int | None = None
    error: ErrorDetail | None = None
    count: int | None = None  # gap: messages that could not be rebuilt
    subagents: list[dict[str, Any]] | None = None


@openapi.component
@dataclass
class SubagentTotals:
    requestCount: int
    inputTokens: int
    outputTokens: int
    cacheCreationTokens: int
    cacheReadTokens: int
    totalTokens: int
    cost: float  # USD, priced requests only
    unpricedRequests: int
    errorCount: int


@openapi.component
@dataclass
class SubagentThread:
    """A subagent's thread (`X-Claude-Code-Agent-Id`), nested under the turn whose
    Task/Agent call spawned it; one started by another subagent
    (`X-Claude-Code-Parent-Agent-Id`) nests in that one's thread, at any depth."""

    agentId: str
    parentAgentId: str | None
    requestCount: int
    startTime: str
    lastActivity: str
    prompt: str | None
    toolUseId: str | None  # the tool call that spawned it
    turns: list[dict[str, Any]]
    totals: SubagentTotals  # its own requests
    subtreeTotals: SubagentTotals  # its own and those of every subagent below it
    # Started by it, but no spawning call of its was found for them.
    subagents: list[dict[str, Any]] | None = None


@openapi.component
@dataclass
class AuxiliaryCall:
    """A side call of the session (quota probe, title, command-prefix check)."""

    requestId: str
    timestamp: str
    prompt: str | None
    reply: str | None
    error: ErrorDetail | None
    model: str | None
    statusCode: int | None
    usage: AnthropicUsage | None
    tokens: int
    cost: float | None


@openapi.component
@dataclass
class ConversationDetail(Conversation):
    turns: list[ConversationTurn] | None = None
    subagents: list[SubagentThread] | None = None  # no spawning call found for these
    auxiliary: list[AuxiliaryCall] | None = None
    incomplete: bool = False  # some history could not be rebuilt
