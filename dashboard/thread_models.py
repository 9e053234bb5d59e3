"""What the thread view's templates render: plain data built by
dashboard.thread_blocks (content blocks, tool calls) and dashboard.thread_view
(turns, subagents, pages). Text stays text here (the templates escape it); the
only markup is `Markup` made by dashboard.markdown from escaped text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from dashboard.thread_diff import Diff


@dataclass(slots=True)
class ResultView:
    """A tool_result, shown with the call it answers."""

    text: str
    clipped: int | None  # the stored length when `text` was cut
    is_error: bool
    placeholders: list[str]  # images and documents, never loaded
    markdown: Markup | None  # results written as prose (a subagent's report)
    request_href: str | None  # the request that carried the result


@dataclass(slots=True)
class TodoItem:
    text: str
    status: str  # pending, in_progress, completed (or what the client sent)


@dataclass(slots=True)
class EditView:
    label: str | None
    diff: Diff
    replace_all: bool


@dataclass(slots=True)
class ToolView:
    id: str
    name: str
    kind: str  # edit, write, read, bash, search, todo, task, generic
    title: str  # the file, command description or pattern, one line
    code: str | None  # the command, the file written, or the input as JSON
    code_clipped: bool
    edits: list[EditView] = field(default_factory=list)
    todos: list[TodoItem] = field(default_factory=list)
    prompt: str | None = None  # a Task's prompt
    result: ResultView | None = None
    subagents: list[SubagentView] = field(default_factory=list)


@dataclass(slots=True)
class BlockView:
    """One content block. `kind`: text, reminder, thinking, hidden_thinking,
    redacted_thinking, tool, orphan_result, media, compaction, fallback,
    omitted, other."""

    kind: str
    html: Markup | None = None
    text: str = ""
    clipped: int | None = None
    tokens: int | None = None
    tool: ToolView | None = None
    result: ResultView | None = None


@dataclass(slots=True)
class Totals:
    requests: int
    tokens: int
    input: int
    output: int
    cache_write: int
    cache_read: int
    cost: float
    unpriced: int
    errors: int


@dataclass(slots=True)
class Facts:
    """What one request of an assistant or error turn cost and took."""

    model: str | None
    served_model: str | None
    status: int | None
    stop_reason: str | None
    tokens: int
    input: int | None
    output: int | None
    cache_write: int | None
    cache_read: int | None
    cost: float | None
    response_time: float | None
    ttfb: float | None
    thinking_tokens: int | None


@dataclass(slots=True)
class Fallback:
    source: str | None
    target: str | None
    trigger: str | None


@dataclass(slots=True)
class TurnView:
    """`kind`: user, assistant, system, error, compaction, new_history, gap."""

    kind: str
    anchor: str
    time: datetime | None = None
    request_id: str | None = None
    request_href: str | None = None
    blocks: list[BlockView] = field(default_factory=list)
    more_blocks: int = 0
    facts: Facts | None = None
    error: str | None = None
    fallbacks: list[Fallback] = field(default_factory=list)
    subagents: list[SubagentView] = field(default_factory=list)
    source: str | None = None  # a compaction's: server or client
    count: int = 0  # a gap's missing turns


@dataclass(slots=True)
class SubagentView:
    agent_id: str
    anchor: str
    parent_agent_id: str | None
    prompt: str | None
    start: datetime | None
    last: datetime | None
    totals: Totals
    subtree: Totals
    own_page: str = ""  # its thread alone, from the start
    turns: list[TurnView] = field(default_factory=list)
    total_turns: int = 0
    # The rest of its thread: a fragment for the page's script, a page without it.
    more_fragment: str | None = None
    more_page: str | None = None
    # Started by it, but with no call of its own to hang under.
    subagents: list[SubagentView] = field(default_factory=list)


@dataclass(slots=True)
class SideCall:
    """One of Claude Code's side calls (quota probe, title): listed apart."""

    request_href: str
    time: datetime | None
    prompt: str | None
    reply: str | None
    model: str | None
    tokens: int
    cost: float | None
    error: str | None


@dataclass(slots=True)
class ThreadPage:
    """One page of one thread (the main one, or a subagent's)."""

    turns: list[TurnView]
    start: int
    total: int  # turns in this window of the conversation
    next_from: int | None  # the next page of this window's turns, if any
    more_fragment: str | None
    more_page: str | None
    agent: SubagentView | None  # the subagent whose thread this is
    unplaced: list[SubagentView]  # subagents no call could be found for (first page)
    side_calls: list[SideCall]  # first page of the main thread
    side_call_count: int
