"""The seed's OpenAPI document (the Go proxy's `internal/handler/openapi.go`), the
contract this proxy keeps: its operationIds, its component names and their fields.

`seed_openapi.txt` is that spec as the seed's change log page shows it, verbatim but
with its indentation lost. What survives the flattening unambiguously is read from
it: each path, its methods and their operationIds. The components' top-level field
names cannot be told from nested ones any more, so they are transcribed below, and
`component_lines` lets a test check each transcribed name against the file.
"""

from __future__ import annotations

import re
from pathlib import Path

SEED_FILE = Path(__file__).with_name("seed_openapi.txt")
_METHODS = {"get", "post", "put", "delete", "patch", "head", "options"}
_PATH = re.compile(r"/\S*:")
_COMPONENT = re.compile(r"([A-Z][A-Za-z]*):")

# Top-level properties of each component of the seed, in the seed's order.
SEED_COMPONENTS: dict[str, tuple[str, ...]] = {
    "ErrorResponse": ("error", "details"),
    "HealthResponse": ("status", "timestamp"),
    "DrainingResponse": ("status", "timestamp", "in_flight"),
    "LivezResponse": ("status", "timestamp", "in_flight", "draining"),
    "AnthropicRequest": (
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "system",
        "stream",
        "tools",
        "tool_choice",
    ),
    "AnthropicMessage": ("role", "content"),
    "SystemMessage": ("type", "text", "cache_control"),
    "Tool": ("name", "description", "input_schema"),
    "AnthropicResponse": (
        "id",
        "type",
        "role",
        "model",
        "stop_reason",
        "stop_sequence",
        "content",
        "usage",
    ),
    "AnthropicUsage": (
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "service_tier",
    ),
    "ModelsResponse": ("object", "data"),
    "RequestLog": (
        "requestId",
        "timestamp",
        "method",
        "endpoint",
        "model",
        "originalModel",
        "routedModel",
        "userAgent",
        "contentType",
        "conversationHash",
        "messageCount",
        "organizationId",
        "response",
    ),
    "ResponseLog": (
        "statusCode",
        "responseTime",
        "isStreaming",
        "completedAt",
        "streamError",
        "rateLimit",
    ),
    "RateLimitInfo": (
        "organizationId",
        "requestsLimit",
        "requestsRemaining",
        "requestsReset",
        "tokensLimit",
        "tokensRemaining",
        "tokensReset",
        "unifiedStatus",
        "unifiedUtilization5h",
        "unifiedReset5h",
        "unifiedUtilization7d",
        "unifiedReset7d",
    ),
    "RequestSummary": (
        "requestId",
        "timestamp",
        "method",
        "endpoint",
        "model",
        "originalModel",
        "routedModel",
        "statusCode",
        "responseTime",
        "usage",
        "conversationHash",
        "messageCount",
        "stopReason",
    ),
    "UsageStats": (
        "total_requests",
        "total_input_tokens",
        "total_output_tokens",
        "total_cache_tokens",
        "requests_by_model",
        "start_date",
        "end_date",
    ),
    "DashboardStats": ("dailyStats",),
    "HourlyStatsResponse": ("hourlyStats", "todayTokens", "todayRequests", "avgResponseTime"),
    "ModelStatsResponse": ("modelStats",),
    "ProxySettings": ("requestHeaderRules", "responseHeaderRules"),
    "HeaderRule": ("header", "action", "value", "find", "enabled"),
}


def seed_lines() -> list[str]:
    return SEED_FILE.read_text(encoding="utf-8").splitlines()


def seed_operations() -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId, for every operation of the seed's `paths`."""
    found: dict[tuple[str, str], str] = {}
    path: str | None = None
    method: str | None = None
    in_paths = False
    for line in seed_lines():
        if line == "paths:":
            in_paths = True
        elif line == "components:":
            break
        elif not in_paths:
            continue
        elif _PATH.fullmatch(line):
            path, method = line[:-1], None
        elif line.endswith(":") and line[:-1] in _METHODS:
            method = line[:-1].upper()
        elif line.startswith("operationId:") and path and method:
            found[(method, path)] = line.split(":", 1)[1].strip()
    return found


def component_lines(name: str) -> list[str]:
    """The lines of one component of the seed's `components.schemas`, up to the
    next component (a transcribed name) or the end of the section."""
    lines = seed_lines()
    start = lines.index("schemas:")
    block: list[str] = []
    inside = False
    for line in lines[start + 1 :]:
        header = _COMPONENT.fullmatch(line)
        if header and header.group(1) in SEED_COMPONENTS:
            if inside:
                break
            inside = header.group(1) == name
        elif line.startswith("security:"):
            break
        elif inside:
            block.append(line)
    return block
