"""Content blocks of a rebuilt thread as the view shows them (pure).

Text is Markdown rendered safely (dashboard.markdown); Claude Code's
`<system-reminder>` context inside a user message is split off and shown
collapsed. Each `tool_use` is shown with the `tool_result` answering it (found
anywhere later in the same thread), by a renderer per tool: an Edit as a line
diff computed here, Read, Bash and search output as code, TodoWrite as a list,
Task/Agent with its prompt and the subagent it started; any other tool shows
its input as JSON. Images and documents are placeholders, never loaded. Every
text is cut at a bound (the full text stays in the request, linked).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dashboard.markdown import render_markdown
from dashboard.thread_diff import line_diff
from dashboard.thread_models import BlockView, EditView, ResultView, TodoItem, ToolView

TEXT_CHARS = 20_000  # of one text or thinking block
RESULT_CHARS = 20_000  # of one tool result
INPUT_CHARS = 10_000  # of a tool input shown as code
MAX_EDITS = 20  # of one MultiEdit
MAX_TODOS = 100
REMINDER_OPEN = "<system-reminder>"
REMINDER_CLOSE = "</system-reminder>"

EDIT_TOOLS = frozenset({"Edit", "MultiEdit"})
WRITE_TOOLS = frozenset({"Write", "NotebookEdit"})
READ_TOOLS = frozenset({"Read", "NotebookRead"})
SHELL_TOOLS = frozenset({"Bash", "BashOutput", "KillShell"})
SEARCH_TOOLS = frozenset({"Grep", "Glob", "LS"})
SPAWN_TOOLS = frozenset({"Task", "Agent"})

# A tool_result by the id of the call it answers: (block, the request that sent it).
Results = dict[str, tuple[dict[str, Any], str | None]]


def request_href(request_id: object) -> str | None:
    if not isinstance(request_id, str) or not request_id:
        return None
    return f"/dashboard/requests/{quote(request_id, safe='')}"


def clip(text: str, limit: int) -> tuple[str, int | None]:
    return (text, None) if len(text) <= limit else (text[:limit], len(text))


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def split_reminders(text: str) -> list[tuple[bool, str]]:
    """(is_reminder, part) pieces of a text, in order; an unclosed reminder runs
    to the end (linear: each find starts past the previous one)."""
    parts: list[tuple[bool, str]] = []
    at = 0
    while at < len(text):
        start = text.find(REMINDER_OPEN, at)
        if start < 0:
            parts.append((False, text[at:]))
            break
        if start > at:
            parts.append((False, text[at:start]))
        end = text.find(REMINDER_CLOSE, start + len(REMINDER_OPEN))
        stop = len(text) if end < 0 else end
        parts.append((True, text[start + len(REMINDER_OPEN) : stop]))
        at = len(text) if end < 0 else end + len(REMINDER_CLOSE)
    return [(reminder, part.strip()) for reminder, part in parts if part.strip()]


def text_views(text: str, *, markdown: bool = True) -> list[BlockView]:
    out = []
    for reminder, part in split_reminders(text):
        shown, cut = clip(part, TEXT_CHARS)
        if reminder:
            out.append(BlockView("reminder", text=shown, clipped=cut))
        elif markdown:
            out.append(BlockView("text", html=render_markdown(shown), text=shown, clipped=cut))
        else:
            out.append(BlockView("plain", text=shown, clipped=cut))
    return out


def media_label(block: dict[str, Any]) -> str:
    """`image (image/png, 12 KB)`: what the placeholder says."""
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    kind = _text(block.get("type")) or "media"
    details = [_text(source.get("media_type"))]
    size = block.get("bytes")
    if isinstance(size, int) and size >= 0:
        details.append(f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes")
    if source.get("type") == "url":
        details.append("from a URL")
    title = _text(block.get("title"))
    label = f"{kind} ({', '.join(d for d in details if d)})" if any(details) else kind
    return f"{label}: {title}" if title else label


def fallback_label(block: dict[str, Any]) -> str:
    """`claude-fable-5 → claude-opus-5-5 (refusal: cyber)`: a server-side switch."""

    def model(side: object) -> str:
        return _text(side.get("model")) if isinstance(side, dict) else ""

    trigger = block.get("trigger") if isinstance(block.get("trigger"), dict) else {}
    reason = ": ".join(p for p in (_text(trigger.get("type")), _text(trigger.get("category"))) if p)
    switch = f"{model(block.get('from')) or '?'} → {model(block.get('to')) or '?'}"
    return f"{switch} ({reason})" if reason else switch


def as_json(value: Any, limit: int = INPUT_CHARS) -> tuple[str, bool]:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return (text, False) if len(text) <= limit else (text[:limit] + "\n…", True)


def result_view(
    block: dict[str, Any], request_id: str | None, *, prose: bool = False
) -> ResultView:
    content = block.get("content")
    texts: list[str] = []
    placeholders: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for item in content:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "text":
                texts.append(_text(item.get("text")))
            elif item.get("type") in ("image", "document"):
                placeholders.append(media_label(item))
            else:
                texts.append(as_json(item)[0])
    text, cut = clip("\n".join(texts), RESULT_CHARS)
    markdown = render_markdown(text) if prose and text else None
    return ResultView(
        text, cut, bool(block.get("is_error")), placeholders, markdown, request_href(request_id)
    )


def _kind(name: str) -> str:
    if name in EDIT_TOOLS:
        return "edit"
    if name in WRITE_TOOLS:
        return "write"
    if name in READ_TOOLS:
        return "read"
    if name in SHELL_TOOLS:
        return "bash"
    if name in SEARCH_TOOLS:
        return "search"
    if name == "TodoWrite":
        return "todo"
    if name in SPAWN_TOOLS:
        return "task"
    return "generic"


def _edits(given: dict[str, Any]) -> list[EditView]:
    if isinstance(given.get("edits"), list):  # MultiEdit
        pairs = [e for e in given["edits"] if isinstance(e, dict)][:MAX_EDITS]
        labelled = [(f"edit {n + 1} of {len(given['edits'])}", e) for n, e in enumerate(pairs)]
    else:
        labelled = [(None, given)]
    return [
        EditView(
            label,
            line_diff(_text(edit.get("old_string")), _text(edit.get("new_string"))),
            bool(edit.get("replace_all")),
        )
        for label, edit in labelled
    ]


def _todos(given: dict[str, Any]) -> list[TodoItem]:
    items = given.get("todos") if isinstance(given.get("todos"), list) else []
    out = []
    for item in items[:MAX_TODOS]:
        if isinstance(item, dict):
            text = _text(item.get("content")) or _text(item.get("activeForm"))
            out.append(TodoItem(text, _text(item.get("status")) or "pending"))
    return out


def tool_view(block: dict[str, Any], found: tuple[dict[str, Any], str | None] | None) -> ToolView:
    name = _text(block.get("name")) or "tool"
    given = block.get("input") if isinstance(block.get("input"), dict) else {}
    kind = _kind(name)
    code: str | None = None
    clipped = False
    title = _text(given.get("file_path")) or _text(given.get("notebook_path"))
    view = ToolView(str(block.get("id") or ""), name, kind, title, None, False)
    if kind == "edit":
        view.edits = _edits(given)
    elif kind == "write":
        code, cut = clip(_text(given.get("content")) or _text(given.get("new_source")), INPUT_CHARS)
        clipped = cut is not None
    elif kind == "bash":
        view.title = _text(given.get("description"))
        code, cut = clip(_text(given.get("command")) or as_json(given)[0], INPUT_CHARS)
        clipped = cut is not None
    elif kind == "search":
        where = _text(given.get("path"))
        view.title = _text(given.get("pattern")) + (f"  in {where}" if where else "")
    elif kind == "todo":
        view.todos = _todos(given)
    elif kind == "task":
        agent_type = _text(given.get("subagent_type"))
        view.title = _text(given.get("description")) + (f" ({agent_type})" if agent_type else "")
        view.prompt = clip(_text(given.get("prompt")), TEXT_CHARS)[0] or None
    if kind in ("generic", "read") and (kind == "generic" or len(given) > 1):
        code, clipped = as_json(block.get("input"))
    view.code, view.code_clipped = code, clipped
    if found is not None:
        view.result = result_view(found[0], found[1], prose=kind == "task")
    return view


def block_views(
    content: list[dict[str, Any]],
    role: str,
    results: Results,
    calls: set[str],
    request_id: str | None = None,
) -> list[BlockView]:
    """The blocks of one message. A tool_result shown with its call (`calls`: the
    ids of the thread's tool_use blocks) is left out here; one whose call is not
    in the thread stays."""
    out: list[BlockView] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            out += text_views(_text(block.get("text")), markdown=role != "system")
        elif kind == "thinking":
            out.append(_thinking(block))
        elif kind == "redacted_thinking":
            out.append(BlockView("redacted_thinking"))
        elif kind in ("tool_use", "server_tool_use"):
            found = results.get(str(block.get("id") or ""))
            out.append(BlockView("tool", tool=tool_view(block, found)))
        elif kind == "tool_result":
            if str(block.get("tool_use_id") or "") not in calls:
                out.append(BlockView("orphan_result", result=result_view(block, request_id)))
        elif kind in ("image", "document"):
            out.append(BlockView("media", text=media_label(block)))
        elif kind == "compaction":
            summary = block.get("content")
            text, cut = clip(summary, TEXT_CHARS) if isinstance(summary, str) else ("", None)
            out.append(BlockView("compaction", text=text, clipped=cut))
        elif kind == "fallback":
            out.append(BlockView("fallback", text=fallback_label(block)))
        elif kind == "omitted":
            count = block.get("blocks")
            out.append(BlockView("omitted", tokens=count if isinstance(count, int) else None))
        else:
            text, cut = as_json(block)
            out.append(BlockView("other", text=text, clipped=len(text) if cut else None))
    return out


def _thinking(block: dict[str, Any]) -> BlockView:
    if block.get("hidden"):
        tokens = block.get("tokens")
        return BlockView("hidden_thinking", tokens=tokens if isinstance(tokens, int) else None)
    text, cut = clip(_text(block.get("thinking")), TEXT_CHARS)
    return BlockView("thinking", html=render_markdown(text), text=text, clipped=cut)
