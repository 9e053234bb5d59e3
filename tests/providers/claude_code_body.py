"""Request bodies shaped like Claude Code 2.1.332's default ones (captured from the real
CLI through the proxy, tests/cli; long texts shortened, structure and every field kept).

What the translation and the log must cope with: the system prompt as blocks (the
billing header first) that no longer states the working directory; the environment
("Primary working directory: …") and the per-message effort in a `role: "system"`
message after the first user turn; a deferred-tool placeholder with `defer_loading`;
adaptive thinking, an effort, context management, metadata.user_id as a JSON string.
"""

from __future__ import annotations

import json
from typing import Any

WORKDIR = "/home/dev/acme-billing"
SESSION = "e1ec4128-ac1c-405e-93e9-42566607cfeb"
BILLING = "x-anthropic-billing-header: cc_version=2.1.332.342; cc_entrypoint=sdk-cli;"

ENVIRONMENT = (
    "# Environment\n"
    "You have been invoked in the following environment: \n"
    f" - Primary working directory: {WORKDIR}\n"
    " - Is a git repository: false\n"
    " - Platform: linux\n"
    " - Shell: bash\n"
    "\n"
    "You are powered by the model named Opus 5.5. The exact model ID is claude-opus-5-5.\n"
    "\n"
    "The following deferred tools are now available via ToolSearch. Their schemas are NOT "
    'loaded. Use ToolSearch with query "select:<name>[,<name>...]" to load tool schemas '
    "before calling them:\nCronList\nWebFetch\n"
)

READ = {
    "name": "Read",
    "description": "Reads a file from the local filesystem.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "file_path": {"description": "The absolute path", "type": "string"},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "exclusiveMinimum": 0},
        },
        "required": ["file_path"],
        "additionalProperties": False,
    },
}
TOOL_SEARCH = {
    "name": "ToolSearch",
    "description": "Fetches full schema definitions for deferred tools so they can be called.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "max_results": {"default": 5, "type": "number"},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
}
PLACEHOLDER = {
    "name": "DeferredToolPlaceholder",
    "description": (
        "Reserved placeholder that keeps deferred tool loading active; never call this tool."
    ),
    "input_schema": {"type": "object", "properties": {}},
    "defer_loading": True,
}


def claude_code_request(
    prompt: str = "What is the secret word in notes.txt?", *, effort: str = "medium"
) -> dict[str, Any]:
    """The first request of a turn (main agent or subagent alike)."""
    return {
        "model": "claude-opus-5-5",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>\nAttribution...\n</system-reminder>\n",
                    },
                    {"type": "text", "text": prompt},
                ],
            },
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": ENVIRONMENT, "cache_control": {"type": "ephemeral"}}
                ],
                "output_config": {"effort": effort},
            },
        ],
        "system": [
            {"type": "text", "text": BILLING},
            {
                "type": "text",
                "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "\nYou are an agent working with the user toward their goals.",
            },
        ],
        "tools": [READ, TOOL_SEARCH, PLACEHOLDER],
        "metadata": {
            "user_id": json.dumps(
                {"device_id": "ab88", "account_uuid": "", "session_id": SESSION},
                separators=(",", ":"),
            )
        },
        "max_tokens": 32000,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": effort},
        "stream": True,
    }


def after_tool_search(body: dict[str, Any]) -> dict[str, Any]:
    """The next request once the model called ToolSearch: the loaded tool among the
    tools (deferred), the result as tool references, Claude Code's own system message."""
    web_fetch = {
        "name": "WebFetch",
        "description": "Fetches a URL.",
        "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}},
        "defer_loading": True,
    }
    call = {
        "type": "tool_use",
        "id": "toolu_01",
        "name": "ToolSearch",
        "input": {"query": "select:WebFetch"},
    }
    return {
        **body,
        "tools": [*body["tools"], web_fetch],
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": [{"type": "text", "text": "Searching."}, call]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": [{"type": "tool_reference", "tool_name": "WebFetch"}],
                    },
                    {
                        "type": "text",
                        "text": "Tool loaded.",
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Available agent types for the Agent tool: …"}
                ],
            },
        ],
    }
