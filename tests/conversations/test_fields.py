"""What a logged request records about its conversation (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.fields import (
    WORKDIR_SYSTEM_MESSAGES,
    conversation_id,
    project_name,
    project_path,
    tail_start,
)
from conversations.text import (
    MAX_WORDS,
    SMALL_LIMIT,
    STRING_LIMIT,
    Budget,
    collect_words,
    normalise_message,
    words_of,
)
from recording.document import build_document
from streaming.exchange import Outcome
from tests.conversations.helpers import PRICES, documents_of, exchange_of
from tests.fixtures.conversations import exchanges
from tests.providers.claude_code_body import WORKDIR, claude_code_request

MAIN = "5d0c2f1a-7b9e-4c3d-8a61-2f4e9b7c1d03"
LEGACY = "b7e41f09-2c5d-4a86-9e13-6f0a8d2c4b75"


def _entry(messages: list[Any], *, headers: list[list[str]] | None = None, **body: Any) -> dict:
    return {
        "path": "/v1/messages",
        "headers": headers or [["content-type", "application/json"]],
        "body": {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 10,
            "messages": messages,
            **body,
        },
        "status": 200,
        "reply": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }


def _conv(entry: dict) -> dict[str, Any]:
    return build_document(exchange_of(entry), PRICES)["conversation"]


# ---- grouping -----------------------------------------------------------------------------
def test_grouping_by_header_metadata_and_first_message() -> None:
    main = documents_of(exchanges("main_session"))
    assert {d["conversation"]["id"] for d in main if d["conversation"]} == {MAIN}
    assert all(d["conversation"]["grouping"] == "session" for d in main if d["conversation"])
    # count_tokens is a Messages-family call, but not a turn of the conversation.
    counted = [d for d in main if d["endpoint"].endswith("count_tokens")]
    assert len(counted) == 1 and counted[0]["conversation"] is None

    legacy = documents_of(exchanges("legacy_session"))  # only `user_..._session_<uuid>`
    assert {d["conversation"]["id"] for d in legacy} == {LEGACY}

    sdk = documents_of(exchanges("sdk_conversation"))  # no session anywhere
    assert {d["conversation"]["id"] for d in sdk} == {sdk[0]["conversationHash"]}
    assert sdk[0]["conversation"]["grouping"] == "firstMessage"

    only_json = _entry(
        [{"role": "user", "content": "hi"}],
        metadata={"user_id": json.dumps({"device_id": "d", "session_id": "json-session-1"})},
        tools=[{"name": "Bash"}],
    )
    assert _conv(only_json)["id"] == "json-session-1"


def test_unsafe_session_ids_become_a_stable_hash() -> None:
    unsafe = conversation_id("../../etc/passwd x", None, "seg")
    assert len(unsafe) == 32 and unsafe == conversation_id("../../etc/passwd x", None, "seg")
    assert conversation_id(None, None, "segment-hash") == "segment-hash"


# ---- project ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (
            " - Primary working directory: /home/dev/app\n - Is a git repository: true",
            "/home/dev/app",
        ),
        (
            "<env>\nWorking directory: /Users/dana/src/web/\nPlatform: darwin\n</env>",
            "/Users/dana/src/web",
        ),
        ("Working directory: `/srv/with space/x`", "/srv/with space/x"),
        ("Primary working directory: C:\\Users\\me\\proj", "C:\\Users\\me\\proj"),
        ("Working directory: /", "/"),
        ("Working directory: (unknown)", None),
        (" - Additional working directories: /tmp", None),
        ("no statement at all", None),
    ],
)
def test_project_path_from_the_system_prompt(system: str, expected: str | None) -> None:
    assert project_path({"messages": []}, system) == expected


def test_project_path_fallbacks_and_name() -> None:
    assert project_path({"metadata": {"cwd": "/opt/svc/"}}, "") == "/opt/svc"
    user_id = json.dumps({"session_id": "s", "cwd": "/opt/other"})
    assert project_path({"metadata": {"user_id": user_id}}, "") == "/opt/other"
    stated = [{"role": "user", "content": "<env>\nWorking directory: /in/message\n</env> hi"}]
    assert project_path({"messages": stated}, "") == "/in/message"
    assert project_name("/home/dev/acme-billing") == "acme-billing"
    assert project_name("C:\\Users\\me\\proj") == "proj"
    assert project_name("/") == "/" and project_name(None) is None


def test_project_path_of_claude_code_2_1_332() -> None:
    """Its system prompt no longer states the directory: its environment, in a
    `role: "system"` message after the first user turn, does (the request logged
    as the proxy logs it)."""
    body = claude_code_request()
    assert WORKDIR not in json.dumps(body["system"])
    entry = {"path": "/v1/messages?beta=true", "headers": [], "body": body, "status": 200}
    entry["reply"] = {"type": "message", "role": "assistant", "content": [], "usage": {}}
    document = build_document(exchange_of(entry), PRICES)
    assert document["conversation"]["projectPath"] == WORKDIR
    assert document["conversation"]["projectName"] == "acme-billing"


def _system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": [{"type": "text", "text": text}]}


USER_TURN = {"role": "user", "content": "hi"}


def test_project_path_in_system_messages_is_found_in_the_first_few() -> None:
    stating = _system(" - Primary working directory: /srv/late")
    others = [_system("reminder"), USER_TURN, {"role": "system", "content": "more"}]
    assert project_path({"messages": [USER_TURN, *others, stating]}, "") == "/srv/late"
    # Bounded: past the first WORKDIR_SYSTEM_MESSAGES system messages nothing is read.
    filler = [_system(f"note {i}") for i in range(WORKDIR_SYSTEM_MESSAGES)]
    assert project_path({"messages": [USER_TURN, *filler, stating]}, "") is None
    # The system prompt's statement comes first, then these, then the metadata.
    assert project_path({"messages": [USER_TURN, stating]}, "Working directory: /a") == "/a"
    with_cwd = {"messages": [USER_TURN, stating], "metadata": {"cwd": "/from/metadata"}}
    assert project_path(with_cwd, "") == "/srv/late"
    # A user message saying it is not a system message: only the first user message counts.
    said = {"role": "user", "content": "Working directory: /said"}
    assert project_path({"messages": [USER_TURN, said]}, "") is None


# ---- threads ------------------------------------------------------------------------------
def test_main_subagent_and_auxiliary_threads() -> None:
    main = [d["conversation"] for d in documents_of(exchanges("main_session")) if d["conversation"]]
    assert [c["thread"] for c in main[:3]] == ["auxiliary", "main", "auxiliary"]
    assert all(c["words"] == [] for c in main if c["thread"] == "auxiliary")
    subagent = [c for c in main if c["thread"] == "subagent"]
    assert {c["agentId"] for c in subagent} == {"agent-7f3e2a91"}
    assert all(
        c["projectPath"] == "/home/dev/acme-billing" for c in main if c["thread"] != "auxiliary"
    )

    legacy = [d["conversation"] for d in documents_of(exchanges("legacy_session"))]
    assert [c["thread"] for c in legacy] == ["main", "subagent", "main"]
    assert legacy[1]["agentId"] == f"sidechain-{legacy[1]['segment']}"


@pytest.mark.parametrize(
    ("headers", "system", "agent", "parent"),
    [
        (
            [["X-Claude-Code-Agent-Id", "a2"], ["X-Claude-Code-Parent-Agent-Id", "a1"]],
            "",
            "a2",
            "a1",
        ),
        ([["x-claude-code-agent-id", "main"]], "", None, None),
        (
            [["x-anthropic-billing-header", "cc_version=2.1; CC_IS_SUBAGENT=true"]],
            "",
            "sidechain",
            None,
        ),
        ([], "x-anthropic-billing-header: cc_version=2.1; cc_is_subagent=true;", "sidechain", None),
        ([], "You are Claude Code.", None, None),
    ],
)
def test_subagent_signals(
    headers: list, system: str, agent: str | None, parent: str | None
) -> None:
    conv = _conv(
        _entry([{"role": "user", "content": "go"}], headers=headers, system=system, tools=[{}])
    )
    assert conv["parentAgentId"] == parent
    if agent == "sidechain":
        assert conv["thread"] == "subagent" and conv["agentId"].startswith("sidechain-")
    else:
        assert conv["agentId"] == agent
        assert conv["thread"] == ("subagent" if agent else "main")


# ---- what a request adds ----------------------------------------------------------------
def test_each_request_stores_only_what_it_adds() -> None:
    entries = exchanges("main_session")
    for entry, doc in zip(entries, documents_of(entries), strict=True):
        conv = doc["conversation"]
        if conv is None:
            continue
        messages = entry["body"]["messages"]
        last_assistant = max(
            (i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1
        )
        assert conv["start"] == last_assistant + 1
        assert len(conv["turns"]) == len(messages) - conv["start"]
        assert [t["role"] for t in conv["turns"]] == ["user"] * len(conv["turns"])
        if entry["reply"]:
            assert conv["reply"]["role"] == "assistant"
            assert [b["type"] for b in conv["reply"]["content"]] == [
                b["type"] for b in entry["reply"]["content"]
            ]
        stored = json.dumps(conv)
        assert "cache_control" not in stored and "signature" not in stored


def test_a_final_assistant_message_is_a_prefill_and_counts_as_new() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "{"},
    ]
    assert tail_start(messages) == 2
    assert tail_start(messages[:1]) == 0


def test_errors_and_interrupted_replies() -> None:
    entries = exchanges("main_session")
    overloaded = next(e for e in entries if e["status"] == 529)
    conv = _conv(overloaded)
    assert conv["reply"] is None
    assert conv["error"] == {"type": "overloaded_error", "message": "Overloaded"}

    closed = exchange_of(_entry([{"role": "user", "content": "long task"}], stream=True))
    closed.outcome = None
    closed.finish(Outcome.CLIENT_CLOSED, "client_closed")
    conv = build_document(closed, PRICES)["conversation"]
    assert conv["reply"]["content"] == [{"type": "text", "text": "ok"}]
    assert conv["error"]["type"] == "client_closed"

    midstream = exchange_of(_entry([{"role": "user", "content": "x"}], stream=True))
    midstream.stream_error = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert build_document(midstream, PRICES)["conversation"]["error"]["type"] == "overloaded_error"


def test_first_prompt_is_what_the_user_typed() -> None:
    docs = documents_of(exchanges("main_session"))
    assert (
        docs[1]["conversation"]["prompt"]
        == "test_parse_invoice fails with a KeyError, can you fix it?"
    )
    long = _conv(_entry([{"role": "user", "content": "word " * 200}]))
    assert len(long["prompt"]) == 300 and long["prompt"].endswith("…")


# ---- search words -------------------------------------------------------------------------
def test_words_cover_text_tool_names_inputs_and_results() -> None:
    docs = [d["conversation"] for d in documents_of(exchanges("main_session")) if d["conversation"]]
    first = docs[1]
    assert {"test_parse_invoice", "parse", "invoice", "keyerror", "read"} <= set(first["words"])
    # Words of injected context (CLAUDE.md inside a system reminder) are not the conversation.
    assert "claudemd" not in first["words"] and "cents" not in first["words"]
    subagent = next(c for c in docs if c["thread"] == "subagent")
    assert {"grep", "currency"} <= set(subagent["words"])


def test_word_normalisation() -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Currency")  # NFKC folds it to ASCII
    decomposed = "cafe\u0301"  # é as e + combining accent
    assert words_of(f"{fullwidth} KeyError {decomposed} CAFÉ x mcp__github__create_issue") == [
        "currency",
        "keyerror",
        "café",
        "mcp__github__create_issue",
        "mcp",
        "github",
        "create",
        "issue",
    ]
    many = " ".join(f"w{i}" for i in range(MAX_WORDS + 50))
    assert len(collect_words([many])) == MAX_WORDS


# ---- stored content -----------------------------------------------------------------------
def test_content_is_normalised_clipped_and_storable() -> None:
    budget = Budget(total=STRING_LIMIT)
    message = {
        "role": "user",
        "content": [
            {
                "type": "text",
                "text": "x" * (STRING_LIMIT + 5),
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "y" * (SMALL_LIMIT + 5)},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "A" * 4000},
            },
            {"type": "tool_result", "tool_use_id": "t1", "content": "out", "is_error": True},
            {"type": "tool_use", "id": "t2", "name": "Calc", "input": {"n": 2**70, "k\x00": 1}},
        ],
    }
    text, small, image, result, call = normalise_message(message, budget)["content"]
    assert len(text["text"]) == STRING_LIMIT and text["truncated"] == STRING_LIMIT + 5
    assert "cache_control" not in text
    assert len(small["text"]) == SMALL_LIMIT  # the budget is spent: later strings are cut short
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png"},
        "bytes": 3000,
    }
    assert result == {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "text", "text": "out"}],
        "is_error": True,
    }
    assert call["input"] == {"n": str(2**70), "k\ufffd": 1}


def test_a_huge_request_keeps_a_small_conversation_record() -> None:
    pasted = [{"type": "text", "text": "z" * 300_000} for _ in range(20)]  # 6 MB of text
    conv = _conv(_entry([{"role": "user", "content": pasted}]))
    assert len(json.dumps(conv)) < 1_200_000
