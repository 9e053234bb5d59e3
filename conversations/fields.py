"""The conversation a logged Messages request belongs to, and what it adds to it (pure).

Computed once when the request is logged (`recording.document.build_document`) and
stored as the document's `conversation` sub-document, so listing, rebuilding and
searching conversations never re-parse request bodies:

- `id`: the Claude Code session (the `X-Claude-Code-Session-Id` header, else the
  session in `metadata.user_id`), else the hash of the first user message, so
  plain SDK traffic still groups.
- `thread`: `main`; `subagent` (the `X-Claude-Code-Agent-Id` header, or a
  sidechain recognised by its system prompt), grouped under the parent session
  with `agentId`/`parentAgentId`; or `auxiliary` (Claude Code's one-message,
  tool-less side calls: quota checks, titles, command-prefix checks).
- `projectPath`/`projectName`: the working directory Claude Code states in its
  system prompt or (2.1.3xx) in a `role: "system"` message of `messages`.
- `segment`: the hash of the first message (mid-conversation `role: "system"`
  messages never count). Every request resends the whole history, so requests
  sharing it are one linear history; compaction (or any rewrite of the start)
  begins a new segment.
- `start`, `turns`, `reply`, `error`: only what this request adds: the messages
  after the last assistant message it sends (the new user input, typically tool
  results, and any system message), the assistant message the API returned, or
  the error. The previous reply is not stored again: the previous request already
  holds it. At most the last `MAX_TURNS` messages are stored, `start` being the
  position of the first.
- `compactions`: keys of the `compaction` blocks in the reply; `resumes`: the key
  of the compaction block the history starts at, when the client dropped what came
  before it (the API ignores it anyway). The thread rebuild joins the two, so the
  history goes on where the compaction was returned.
- `servedModel`: the model that finished the reply (the last `fallback` block's
  target after a server-side fallback, else the response's `model`);
  `thinkingTokens`: `usage.output_tokens_details.thinking_tokens` of the reply.
- `prompt`: the user's first prompt (for lists); `words`: normalised search terms
  (at most `conversation_text.MAX_WORDS`), without system messages (instructions
  the client injects, like its `<system-reminder>`s).
"""

from __future__ import annotations

import hashlib
import json
import re
from itertools import islice
from typing import Any

from conversations.text import (
    Budget,
    collect_words,
    fingerprint,
    normalise_message,
    one_line,
    plain_text,
    search_texts,
)
from streaming.exchange import Exchange, Outcome
from streaming.headers import get_header

AGENT_HEADER = "x-claude-code-agent-id"
PARENT_AGENT_HEADER = "x-claude-code-parent-agent-id"
BILLING_HEADER = "x-anthropic-billing-header"
MESSAGES_PATH = "/v1/messages"
PROMPT_CHARS = 300
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CONTINUATION = "This session is being continued from a previous conversation"

MODEL_CHARS = 200
# `role: "system"` messages searched for the working directory: Claude Code 2.1.332
# states it in the first one (its environment, right after the first user turn).
WORKDIR_SYSTEM_MESSAGES = 4
MAX_COMPACTIONS = 16  # compaction keys kept per reply (one is usual)

# Messages one request stores: the newest ones. Claude Code adds a few per request;
# a client sending thousands at once (a ready-made history) gets the rest read back
# from its body like any gap in the log (see `conversations.thread`).
MAX_TURNS = 500

# Both wordings Claude Code has used: "<env>\nWorking directory: /p" (older) and
# "# Environment ... - Primary working directory: /p" (newer). A statement is a line
# of its own, so candidate lines are found by the literal and parsed with string
# methods: one regex over the whole line (`\S[^\r\n]*?[ \t]*$`) was quadratic in a
# long run of blanks, and the prompt is the client's to write.
_WORKDIR_HINT = re.compile(r"working directory:", re.IGNORECASE)
# Possessive: what precedes the label is blanks, an optional "-" bullet and an
# optional "primary", none of which can start another label, so nothing to retry.
_WORKDIR_LABEL = re.compile(
    r"[ \t]*+(?:-[ \t]*+)?(?:primary[ \t]++)?working directory:", re.IGNORECASE
)
_PATHLIKE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\)")
_DRIVE = re.compile(r"[A-Za-z]:")
_SIDECHAIN_PROMPT = "You are an agent for Claude Code"
_SUBAGENT_FLAG = re.compile(r"cc_is_subagent\s*+=\s*+true", re.IGNORECASE)


def conversation_fields(
    exchange: Exchange,
    body: dict[str, Any],
    message: dict[str, Any] | None,
    session: str | None,
    first_message_hash: str | None,
) -> dict[str, Any] | None:
    """The `conversation` sub-document, or None for anything that is not a
    Messages call carrying messages (count_tokens, models, unparsable bodies)."""
    messages = body.get("messages")
    if exchange.path != MESSAGES_PATH or not isinstance(messages, list) or not messages:
        return None
    budget = Budget()
    opener = messages[first_index(messages)]
    segment = fingerprint(normalise_message(opener))
    start = max(tail_start(messages), len(messages) - MAX_TURNS)
    turns = [normalise_message(m, budget) for m in messages[start:]]
    reply = _reply(exchange, message, budget)
    content = message.get("content") if reply is not None and message else None
    system = system_text(body.get("system"))
    agent_id, parent_id = _agent(exchange.request_headers, system, segment)
    if agent_id is not None:
        thread = "subagent"
    elif session is not None and len(messages) == 1 and not body.get("tools"):
        thread = "auxiliary"
    else:
        thread = "main"
    project = project_path(body, system)
    fields: dict[str, Any] = {
        "id": conversation_id(session, first_message_hash, segment),
        "grouping": "session" if session is not None else "firstMessage",
        "thread": thread,
        "agentId": agent_id,
        "parentAgentId": parent_id,
        "projectPath": project,
        "projectName": project_name(project),
        "segment": segment,
        "start": start,
        "turns": turns,
        "reply": reply,
        "error": _error(exchange, message),
        "compactions": compaction_keys(content),
        "resumes": next(iter(compaction_keys(_content_of(opener))), None),
        "servedModel": served_model(message, content),
        "thinkingTokens": thinking_tokens(message),
        "prompt": first_prompt(next((m for m in messages if _role(m) == "user"), None)),
        "words": [] if thread == "auxiliary" else _words(turns, reply),
    }
    return fields


def conversation_id(session: str | None, first_hash: str | None, segment: str) -> str:
    if session is not None:
        if SAFE_ID.match(session):
            return session
        return hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return first_hash or segment


def tail_start(messages: list[Any]) -> int:
    """Index of the first message this request adds: the one after the last
    assistant message (that one was the previous request's reply). A final
    assistant message is a prefill the client wrote, so it counts as new; so does
    one that opens the history (no request of it answered it: it is where a history
    restarts after compaction, or a client-written opener)."""
    for index in range(len(messages) - 2, -1, -1):
        if _role(messages[index]) == "assistant":
            return 0 if index == first_index(messages) else index + 1
    return 0


def first_index(messages: list[Any]) -> int:
    """Index of the first message that is not a mid-conversation system message
    (the API refuses one in first place, but a client may still send it)."""
    for index, item in enumerate(messages):
        if _role(item) != "system":
            return index
    return 0


def compaction_keys(content: object) -> list[str]:
    """Keys of the `compaction` blocks in raw content, computed from the summary as
    sent (the stored copy may be clipped), so a reply and the history that later
    starts at its block compare equal."""
    if not isinstance(content, list):
        return []
    blocks = (b for b in content if isinstance(b, dict) and b.get("type") == "compaction")
    return [fingerprint(["compaction", b.get("content")]) for b in islice(blocks, MAX_COMPACTIONS)]


def served_model(message: dict[str, Any] | None, content: object) -> str | None:
    """Who finished the reply: in a stream the API names the requested model in
    `message_start`, so after a mid-output fallback only the `fallback` block says
    which model took over."""
    switched = None
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "fallback":
                target = block.get("to")
                model = target.get("model") if isinstance(target, dict) else None
                switched = model if isinstance(model, str) else switched
    model = message.get("model") if message else None
    found = switched or (model if isinstance(model, str) else None)
    return found[:MODEL_CHARS] if found else None


def thinking_tokens(message: dict[str, Any] | None) -> int | None:
    usage = message.get("usage") if message else None
    details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
    count = details.get("thinking_tokens") if isinstance(details, dict) else None
    if isinstance(count, int) and not isinstance(count, bool) and 0 <= count < 2**63:
        return count
    return None


def _role(message: object) -> object:
    return message.get("role") if isinstance(message, dict) else None


def _content_of(message: object) -> object:
    return message.get("content") if isinstance(message, dict) else None


def system_text(system: object) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(
            b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def project_path(body: dict[str, Any], system: str) -> str | None:
    """The working directory Claude Code states in its system prompt; else in one of
    the first `WORKDIR_SYSTEM_MESSAGES` `role: "system"` messages (where 2.1.332 moved
    its environment); else a `cwd` in the metadata; else a statement in the first
    user message. Linear in what it reads: one pass over the messages' roles, and
    each text read once."""
    found = _workdir(system) or _workdir_in_system_messages(body.get("messages"))
    if found:
        return found
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        cwd = metadata.get("cwd")
        user_id = metadata.get("user_id")
        if not isinstance(cwd, str) and isinstance(user_id, str) and user_id.startswith("{"):
            try:
                parsed = json.loads(user_id)
            except (ValueError, RecursionError):  # deep nesting is the client's choice
                parsed = None
            cwd = parsed.get("cwd") if isinstance(parsed, dict) else None
        if isinstance(cwd, str) and (path := _clean_path(cwd)):
            return path
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        first = normalise_message(messages[0])["content"]
        return _workdir("\n".join(b["text"] for b in first if b.get("type") == "text"))
    return None


def _workdir_in_system_messages(messages: object) -> str | None:
    if not isinstance(messages, list):
        return None
    system_messages = (m for m in messages if _role(m) == "system")
    for message in islice(system_messages, WORKDIR_SYSTEM_MESSAGES):
        found = _workdir(system_text(_content_of(message)))
        if found:
            return found
    return None


def _workdir(text: str) -> str | None:
    """The first usable path stated as `[- ][Primary ]Working directory: PATH` on a
    line of its own (case-insensitive; LF ends a line). Linear in `text`: each line
    holding the label is looked at once."""
    pos = 0
    while (hit := _WORKDIR_HINT.search(text, pos)) is not None:
        newline = text.rfind("\n", pos, hit.start())  # `pos` is always a line start
        start = pos if newline < 0 else newline + 1
        end = text.find("\n", hit.end())
        end = len(text) if end < 0 else end
        label = _WORKDIR_LABEL.match(text, start, end)
        if label is not None:
            path = _stated_path(text[label.end() : end])
            if path:
                return path
        pos = end + 1
    return None


def _stated_path(rest: str) -> str | None:
    # The value starts at the first non-blank and must start with a non-space;
    # a CR inside the line means it is not a statement (as the regex this replaced
    # decided: its value could not hold one).
    value = rest.lstrip(" \t")
    if not value or value[0].isspace() or "\r" in value:
        return None
    return _clean_path(value.rstrip(" \t"))


def _clean_path(raw: str) -> str | None:
    path = raw.strip().strip("`'\"").strip()
    if not path or len(path) > 1024 or not _PATHLIKE.match(path):
        return None
    if any(ord(c) < 32 for c in path):
        return None
    trimmed = path.rstrip("/\\")
    if not trimmed:
        return path[0]  # the root itself
    if _DRIVE.fullmatch(trimmed):
        return path[:3]  # a drive root keeps its separator: `C:\`
    return trimmed


def project_name(path: str | None) -> str | None:
    if not path:
        return None
    name = re.split(r"[\\/]", path.rstrip("/\\"))[-1]
    return name or path


def first_prompt(message: object) -> str | None:
    """What the user typed first, without the context Claude Code injects (called
    with the first `user` message: never a system message)."""
    if message is None:
        return None
    content = normalise_message(message, Budget(64_000))["content"]
    text = plain_text(content)
    return one_line(text, PROMPT_CHARS) if text else None


def _agent(
    headers: list[tuple[str, str]], system: str, segment: str
) -> tuple[str | None, str | None]:
    agent = (get_header(headers, AGENT_HEADER) or "").strip()[:128]
    parent = (get_header(headers, PARENT_AGENT_HEADER) or "").strip()[:128] or None
    if agent and agent != "main":
        return agent, parent
    billing = get_header(headers, BILLING_HEADER) or ""
    if (
        _SIDECHAIN_PROMPT in system
        or _SUBAGENT_FLAG.search(system)
        or _SUBAGENT_FLAG.search(billing)
    ):
        # An older client that does not name its subagents: each Task spawn starts
        # with its own prompt, so the first message identifies the sidechain.
        return f"sidechain-{segment}", parent
    return None, None


def _reply(
    exchange: Exchange, message: dict[str, Any] | None, budget: Budget
) -> dict[str, Any] | None:
    if not message or message.get("type") == "error" or (exchange.status or 0) >= 400:
        return None
    if not isinstance(message.get("content"), list) or not message["content"]:
        return None
    return normalise_message({"role": "assistant", "content": message["content"]}, budget)


def _error(exchange: Exchange, message: dict[str, Any] | None) -> dict[str, str] | None:
    inner: object = None
    if exchange.stream_error:
        inner = exchange.stream_error.get("error")
    elif (exchange.status or 0) >= 400:
        inner = message.get("error") if message else None
        if not isinstance(inner, dict):
            inner = {"type": "api_error", "message": f"HTTP {exchange.status}"}
    elif exchange.outcome == Outcome.CLIENT_CLOSED:
        inner = {"type": "client_closed", "message": "the client closed the stream"}
    elif exchange.outcome == Outcome.PROXY_ERROR:
        inner = {"type": exchange.error_reason or "proxy_error", "message": "forward failed"}
    if not isinstance(inner, dict):
        return None
    return {
        "type": str(inner.get("type") or "error")[:100],
        "message": str(inner.get("message") or "")[:500],
    }


def _words(turns: list[dict[str, Any]], reply: dict[str, Any] | None) -> list[str]:
    primary: list[str] = []
    secondary: list[str] = []
    said = [t for t in turns if t["role"] != "system"]
    for item in [*said, *([reply] if reply else [])]:
        first, second = search_texts(item["content"])
        primary += first
        secondary += second
    return collect_words(primary + secondary)
