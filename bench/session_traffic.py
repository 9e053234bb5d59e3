"""Claude Code sessions for the dashboard benchmark's log (bench.stats_data.
dashboard_documents): what turns a stats document into a request of a session."""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from conversations.fields import CONTINUATION, conversation_fields
from recording.document import conversation_hash
from streaming.credentials import sanitize_headers
from streaming.exchange import Exchange, Outcome

# `dashboard_documents` yields the documents `documents` yields (the same draws,
# so the rollups mean the same) extended with what the dashboard reads: Claude
# Code sessions (an auxiliary title call first, a main thread of tool calls,
# subagents started by Task calls, client-side compaction), request and response
# bodies, headers, and the `conversation` fields computed by the recorder's own
# function. Texts come from a Zipf-distributed vocabulary, so a search meets
# common and rare words. Histories compact past COMPACT_AT_CHARS, so request
# bodies are ~13 KB (median): real Claude Code requests resend more (50-500 KB),
# which would not fit 1M requests on a small disk; LARGE_BODIES are the big ones.

SESSION_MEDIAN = 40  # requests of a session (log-normal)
ACTIVE_SESSIONS = 6  # sessions interleaved at any time
COMPACT_AT_CHARS = 12_000  # a history this long is compacted by the client
VOCABULARY = 6_000
PROJECTS = 40
LONG_CONVERSATION = 2_000  # requests of the one long session
# (share of the log, tool result characters): a Read of a large file, clipped on
# the detail page, and one whose body goes to GridFS (above 4 MiB).
LARGE_BODIES = ((0.9, 1_000_000), (0.95, 5_000_000))
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "sa", "do", "fu", "gre", "an")
_TOOLS = (
    ("Bash", "Executes a bash command in a persistent shell session.", ("command", "timeout")),
    ("Read", "Reads a file from the local filesystem.", ("file_path", "offset", "limit")),
    ("Edit", "Performs exact string replacements in files.", ("file_path", "old_string")),
    ("Grep", "Searches file contents with ripgrep.", ("pattern", "path", "glob")),
    ("Task", "Launch a new agent for complex, multi-step tasks.", ("description", "prompt")),
)
KEY_FINGERPRINT = "sha256:4f0c2b6e9d1a7c3b"
_INPUT = {"Bash": "command", "Read": "file_path", "Edit": "old_string", "Grep": "pattern"}
_GUIDE = "# Doing tasks\nRead code before changing it, run the tests after.\n" * 12


def _tool_definitions() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "description": f"{summary} " + "Read these usage notes before calling it. " * 6,
            "input_schema": {
                "type": "object",
                "properties": {p: {"type": "string", "description": p} for p in props},
                "required": [props[0]],
            },
        }
        for name, summary, props in _TOOLS
    ]


class Vocabulary:
    """Invented words, drawn with Zipf weights (rank r has weight 1/r)."""

    def __init__(self, rng: random.Random) -> None:
        self.words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
            for _ in range(VOCABULARY)
        ]
        total, self.cum = 0.0, []
        for rank in range(VOCABULARY):
            total += 1.0 / (rank + 1)
            self.cum.append(total)

    def text(self, rng: random.Random, count: int) -> str:
        return " ".join(rng.choices(self.words, cum_weights=self.cum, k=count))


@dataclass
class _Thread:
    """A history being sent: the main thread's or a subagent's."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    agent: str | None = None
    left: int = 0  # a subagent's requests still to come
    task_id: str | None = None  # the Task call it answers


@dataclass
class _Session:
    id: str
    project: str
    length: int
    sent: int = 0
    main: _Thread = field(default_factory=_Thread)
    sub: _Thread | None = None
    titled: bool = False


class ConversationTraffic:
    """Extends `document(...)` records into Claude Code requests, session by
    session. After a run, `long_id` is the long conversation's id and
    `large_ids` the requests carrying LARGE_BODIES."""

    def __init__(self, seed: int, count: int) -> None:
        self.rng = random.Random(seed * 7919 + 13)
        self.vocab = Vocabulary(self.rng)
        self.tools = _tool_definitions()
        self.active: list[_Session] = []
        # The long session takes every `long_step`-th request from `long_from` on.
        self.long_step = max(2, count // (LONG_CONVERSATION * 4))
        self.long_from = count // 4
        self.long: _Session | None = None
        self.long_id: str | None = None
        self.pending_large = [(int(count * at), chars) for at, chars in LARGE_BODIES]
        self.large_ids: list[str] = []
        self._large_now = False

    def extend(self, n: int, doc: dict[str, Any]) -> dict[str, Any]:
        session = self._session_for(n)
        session.sent += 1
        ok = doc["statusCode"] == 200
        self._large_now = False
        body, thread, title = self._request(session, n)
        reply = self._reply(doc, thread, title) if ok else None
        message = reply or {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "Rate limited"},
        }
        headers = self._headers(session, thread)
        exchange = Exchange("POST", "/v1/messages", "beta=true", headers, b"", body)
        exchange.status = doc["statusCode"]
        exchange.outcome = Outcome.COMPLETED if ok else Outcome.UPSTREAM_ERROR
        raw = json.dumps(body, ensure_ascii=False)
        answer = json.dumps(message, ensure_ascii=False)
        doc.update(
            method="POST",
            query="beta=true",
            originalModel=doc["model"],
            routedModel=doc["model"],
            servedModel=doc["model"] if ok else None,
            provider="anthropic",
            providerFormat="anthropic",
            routeRule=None,
            attempts=[],
            failovers=0,
            userAgent="claude-cli/2.1.300 (external, cli)",
            contentType="application/json",
            demoted=False,
            clientKeyFingerprint=KEY_FINGERPRINT,
            upstreamRequestId=f"req_{n:024d}",
            costIncomplete=False,
            errorReason=None if ok else f"upstream answered {doc['statusCode']}",
            isStreaming=True,
            messageCount=len(body["messages"]),
            conversationHash=conversation_hash(body),
            sessionId=session.id,
            stopReason=reply["stop_reason"] if reply else None,
            request={
                "headers": sanitize_headers(headers),
                "body": raw,
                "bodyEncoding": "utf-8",
                "bodyBytes": len(raw),
            },
        )
        doc["response"].update(
            headers=[["content-type", "text/event-stream"], ["request-id", f"req_{n:024d}"]],
            body=answer,
            bodyEncoding="utf-8",
            bodyBytes=len(answer) * 3,  # the events it was folded from
            bodyClipped=False,
            isStreaming=True,
            responseTime=doc["responseTime"],
            timeToFirstByte=doc["timeToFirstByte"],
            completedAt=doc["timestamp"] + timedelta(milliseconds=doc["responseTime"]),
            streamComplete=ok,
            streamError=None,
            streamErrorBody=None,
            retryAfter=None if ok else 30,
            observerError=None,
        )
        doc["conversation"] = conversation_fields(
            exchange, body, message, session.id, doc["conversationHash"]
        )
        if reply is not None and not title:  # a failed request is sent again
            thread.messages.append({"role": "assistant", "content": reply["content"]})
            self._after_reply(session, thread, reply)
        if self._large_now:
            self.large_ids.append(doc["requestId"])
        return doc

    def _session_for(self, n: int) -> _Session:
        in_long = n >= self.long_from and (n - self.long_from) % self.long_step == 0
        if in_long and (self.long is None or self.long.sent < self.long.length):
            if self.long is None:
                self.long = self._new_session(LONG_CONVERSATION)
                self.long_id = self.long.id
            return self.long
        while len(self.active) < ACTIVE_SESSIONS:
            drawn = round(self.rng.lognormvariate(math.log(SESSION_MEDIAN), 1.0))
            self.active.append(self._new_session(max(2, min(600, drawn))))
        session = self.rng.choice(self.active)
        if session.sent + 1 >= session.length:
            self.active.remove(session)
        return session

    def _new_session(self, length: int) -> _Session:
        project = f"/home/dev/project-{min(int(self.rng.paretovariate(1.2)), PROJECTS)}"
        return _Session(str(uuid.UUID(int=self.rng.getrandbits(128))), project, length)

    # ---- the request ------------------------------------------------------------------
    def _request(self, session: _Session, n: int) -> tuple[dict[str, Any], _Thread, bool]:
        """The body, the history it extends, and whether it is the title call."""
        rng, vocab = self.rng, self.vocab
        if not session.titled:  # Claude Code's title call: one message, no tools
            session.titled = True
            prompt = vocab.text(rng, 30)
            session.main.messages.append({"role": "user", "content": prompt})
            title = _Thread([{"role": "user", "content": f"Write a 5-word title for: {prompt}"}])
            return self._body(session, title, tools=False), title, True
        thread = session.sub or session.main
        if thread.messages[-1]["role"] == "assistant":
            thread.messages.append({"role": "user", "content": self._user_input(thread, n)})
        return self._body(session, thread, tools=True), thread, False

    def _user_input(self, thread: _Thread, n: int) -> list[dict[str, Any]]:
        last = thread.messages[-1]["content"]
        calls = [b for b in last if b.get("type") == "tool_use"]
        if not calls:
            return [{"type": "text", "text": self.vocab.text(self.rng, self.rng.randint(5, 40))}]
        out = []
        for call in calls:
            content = self.vocab.text(self.rng, self.rng.randint(20, 120))
            if self.pending_large and n >= self.pending_large[0][0]:
                chars = self.pending_large.pop(0)[1]
                content = ((content + "\n") * (chars // len(content) + 2))[:chars]
                self._large_now = True
            out.append({"type": "tool_result", "tool_use_id": call["id"], "content": content})
        return out

    def _body(self, session: _Session, thread: _Thread, *, tools: bool) -> dict[str, Any]:
        agent = "an agent for " if thread.agent else ""
        system = [
            {"type": "text", "text": f"You are {agent}Claude Code, Anthropic's official CLI."},
            {
                "type": "text",
                "text": f"{_GUIDE}# Environment\n - Primary working directory: "
                f"{session.project}\n - Platform: linux\n",
            },
        ]
        body: dict[str, Any] = {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 32000,
            "stream": True,
            "system": system,
            "messages": thread.messages,
            "metadata": {"user_id": json.dumps({"session_id": session.id})},
        }
        if tools:
            body["tools"] = self.tools
        return body

    @staticmethod
    def _headers(session: _Session, thread: _Thread) -> list[tuple[str, str]]:
        headers = [
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
            ("user-agent", "claude-cli/2.1.300 (external, cli)"),
            ("x-api-key", "sk-ant-bench-000000000000"),
            ("x-claude-code-session-id", session.id),
        ]
        if thread.agent:
            headers.append(("x-claude-code-agent-id", thread.agent))
        return headers

    # ---- the reply ----------------------------------------------------------------------
    def _reply(self, doc: dict[str, Any], thread: _Thread, title: bool) -> dict[str, Any]:
        rng, vocab = self.rng, self.vocab
        content: list[dict[str, Any]] = []
        if not title and rng.random() < 0.3:
            content.append({"type": "thinking", "thinking": vocab.text(rng, rng.randint(10, 50))})
        content.append({"type": "text", "text": vocab.text(rng, rng.randint(5, 50))})
        stop, roll = "tool_use", rng.random()
        use_id = f"toolu_{rng.getrandbits(64):016x}"
        if title or roll >= 0.85:
            stop = "end_turn"
        elif thread.agent is None and roll < 0.03:
            task = {"description": vocab.text(rng, 3), "prompt": vocab.text(rng, 30)}
            content.append({"type": "tool_use", "id": use_id, "name": "Task", "input": task})
        else:
            name = rng.choice(tuple(_INPUT))
            value = vocab.text(rng, rng.randint(2, 30))
            content.append(
                {"type": "tool_use", "id": use_id, "name": name, "input": {_INPUT[name]: value}}
            )
        return {
            "id": f"msg_{rng.getrandbits(64):016x}",
            "type": "message",
            "role": "assistant",
            "model": doc["model"],
            "content": content,
            "stop_reason": stop,
            "usage": doc["usage"],
        }

    def _after_reply(self, session: _Session, thread: _Thread, reply: dict[str, Any]) -> None:
        if thread.agent is not None:
            thread.left -= 1
            if thread.left <= 0 or reply["stop_reason"] == "end_turn":
                # The subagent's answer is its Task call's result in the main thread.
                result = {
                    "type": "tool_result",
                    "tool_use_id": thread.task_id,
                    "content": self.vocab.text(self.rng, 60),
                }
                session.main.messages.append({"role": "user", "content": [result]})
                session.sub = None
            return
        task = next((b for b in reply["content"] if b.get("name") == "Task"), None)
        if task is not None:
            first = {"role": "user", "content": task["input"]["prompt"]}
            agent = f"agent-{self.rng.getrandbits(48):012x}"
            session.sub = _Thread([first], agent, self.rng.randint(3, 12), task["id"])
        elif (
            reply["stop_reason"] == "end_turn"
            and len(json.dumps(thread.messages)) > COMPACT_AT_CHARS
        ):
            # Claude Code's own compaction: the history restarts from a summary.
            summary = f"{CONTINUATION}. Summary: {self.vocab.text(self.rng, 80)}"
            thread.messages[:] = [{"role": "user", "content": summary}]
