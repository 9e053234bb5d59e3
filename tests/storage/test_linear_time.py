"""What the log builds from a request takes time linear in it (pure; the bounds on
what it stores are in test_stored_caps.py).

Every parser that reads client- or upstream-controlled content while a document is
built gets adversarial input of 256 KB and 1 MB: the 1 MB run must finish well
within `BOUND`, and take less than `MAX_RATIO` times the 256 KB one (linear work
takes ~4x, quadratic ~16x). Each is timed as the best of three runs, so a busy
machine slows a run without failing the test. `assert_linear` is shared with the
streaming and control tests.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.fields import (
    conversation_fields,
    project_path,
)
from conversations.text import (
    one_line,
    snippet,
    strip_reminders,
    words_of,
)
from conversations.thread import rebuild
from storage.ratelimits import parse_rate_limits
from streaming.credentials import sanitize_headers
from streaming.exchange import Exchange
from streaming.headers import (
    get_header,
    negotiate_encoding,
    request_headers_for_upstream,
    response_headers_for_client,
)
from tests.conversations.helpers import T0

# Serial (make test's second phase): timings that must grow linearly (1 MB vs 256 KB).
pytestmark = pytest.mark.serial

SMALL = 256 * 1024
LARGE = 1024 * 1024
BOUND = 2.0  # seconds for the 1 MB input, on a slow CI machine
MAX_RATIO = 8.0  # 1 MB vs 256 KB: linear ~4, quadratic ~16
FLOOR = 0.005  # below 5 ms the timer's and the machine's noise would decide the ratio

Make = Callable[[int], Any]


def _timed(fn: Callable[[Any], object], arg: Any) -> float:
    gc.collect()
    gc.disable()  # a collection mid-run is noise, not the parser's cost
    try:
        started = time.perf_counter()
        fn(arg)
        return time.perf_counter() - started
    finally:
        gc.enable()


def _best_of(fn: Callable[[Any], object], small: Any, large: Any, runs: int) -> tuple[float, float]:
    # Interleaved, so a busy spell on the machine slows both sizes alike.
    best_small = best_large = float("inf")
    for _ in range(runs):
        best_small = min(best_small, _timed(fn, small))
        if best_small > BOUND:
            break  # one run over the bound is answer enough
        best_large = min(best_large, _timed(fn, large))
        if best_large > BOUND:
            break
    return best_small, best_large


def assert_linear(fn: Callable[[Any], object], make: Make, runs: int = 3) -> None:
    """`fn(make(n))` is fast at n = 1 MB and grows linearly from 256 KB to it, as the
    best of `runs` runs each. Numbers spoiled by a busy machine are measured again
    (twice at most); quadratic work fails every time, and far over the bound at once."""
    small_input, large_input = make(SMALL), make(LARGE)
    seen: list[str] = []
    for _ in range(3):
        small, large = _best_of(fn, small_input, large_input, runs)
        assert small < BOUND, f"{small:.2f}s already at 256 KB"
        ratio = large / max(small, FLOOR)
        if large < BOUND and ratio < MAX_RATIO:
            return
        seen.append(f"{large:.3f}s at 1 MB, {ratio:.1f}x the 256 KB time")
        if large > 2 * BOUND:
            break
    pytest.fail(f"not linear within {BOUND}s (linear: ~4x): {'; '.join(seen)}")


def _fill(unit: str, n: int, head: str = "", tail: str = "") -> str:
    return head + unit * max(1, (n - len(head) - len(tail)) // len(unit)) + tail


def _exchange(headers: list[tuple[str, str]] | None = None) -> Exchange:
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="",
        request_headers=headers or [],
        request_body=b"",
        started_at=T0,
    )
    exchange.status = 200
    return exchange


REPLY = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "text", "text": "ok"}],
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def fields_of(body: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    body = {"model": "claude-sonnet-4-5", "tools": [{"name": "Bash"}], **body}
    fields = conversation_fields(_exchange(headers), body, REPLY, "session-1", None)
    assert fields is not None
    return fields


def _with_text(text: str) -> dict[str, Any]:
    return fields_of({"messages": [{"role": "user", "content": text}]})


# ---- the working directory ----------------------------------------------------------------
WORKDIR_INPUTS: dict[str, Make] = {
    # The measured defect: a label, a value, a long blank run, no line end.
    "blank-run-after-value": lambda n: _fill(" \t", n, "working directory: x", "y"),
    "blank-run-before-value": lambda n: _fill(" ", n, "Working directory:", "/p"),
    "blank-run-before-label": lambda n: _fill(" \t", n, "", "working directory: /p"),
    "label-repeated-one-line": lambda n: _fill("working directory: ", n),
    "label-repeated-lines": lambda n: _fill("Working directory: (unknown)\n", n),
    "primary-repeated": lambda n: _fill("primary ", n, " - ", "working directory: x y"),
    "bullets-repeated": lambda n: _fill("- ", n, "", "working directory: x y"),
    "empty-lines": lambda n: _fill("\n", n, "", "working directory: /p"),
    "crs-in-value": lambda n: _fill("\r ", n, "working directory: /p", "q"),
}


@pytest.mark.parametrize("make", WORKDIR_INPUTS.values(), ids=WORKDIR_INPUTS.keys())
def test_working_directory_is_linear(make: Make) -> None:
    assert_linear(lambda system: project_path({"messages": []}, system), make)


def test_a_long_metadata_cwd_and_deep_user_id_are_cheap() -> None:
    assert_linear(lambda cwd: project_path({"metadata": {"cwd": cwd}}, ""), lambda n: "/" * n)
    deep = '{"cwd": ' + "[" * 100_000 + "]" * 100_000 + "}"  # json.loads recurses on it
    assert project_path({"metadata": {"user_id": deep}}, "") is None


# The regex `_workdir` used before it was made linear: the reference for its results.
_OLD_WORKDIR = re.compile(
    r"^[ \t]*(?:-[ \t]*)?(?:primary[ \t]+)?working directory:[ \t]*(\S[^\r\n]*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_OLD_PATHLIKE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\)")


def _old_project(text: str) -> str | None:
    for match in _OLD_WORKDIR.finditer(text):
        path = match.group(1).strip().strip("`'\"").strip()
        if not path or len(path) > 1024 or not _OLD_PATHLIKE.match(path):
            continue
        if any(ord(c) < 32 for c in path):
            continue
        while len(path) > 1 and path[-1] in "/\\" and not re.fullmatch(r"[A-Za-z]:[\\/]", path):
            path = path[:-1]
        if path:
            return path
    return None


_PIECES = [
    "working directory:",
    "Working Directory:",
    "primary ",
    "Primary\t",
    " - ",
    "-",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\u00a0",
    "/",
    "\\",
    "//",
    "C:",
    "~",
    "`",
    '"',
    "x",
    "(unknown)",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_working_directory_results_match_the_old_regex(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert project_path({"messages": []}, text) == _old_project(text)


@pytest.mark.parametrize(
    "system",
    [
        "You are Claude Code.\n<env>\nWorking directory: /Users/dana/src/legacy-app\n</env>",
        "# Environment\n - Primary working directory: /home/dev/acme-billing\n - Is a git",
        "Working directory: /x  \t\nWorking directory: /y",
        "  working directory:\t`/srv/a b/` ",
        "Primary working directory: C:\\\\",
        "Working directory: (unknown)\nWorking directory: /second",
        "Working directory: /p\r\nnext",
    ],
)
def test_real_statements_match_the_old_regex(system: str) -> None:
    assert project_path({"messages": []}, system) == _old_project(system)


# ---- conversation fields end to end --------------------------------------------------------
FIELD_INPUTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "system-blank-run": lambda n: {"system": _fill(" ", n, "working directory: x", "y")},
    "system-subagent-flag": lambda n: {"system": _fill(" ", n, "cc_is_subagent", "=")},
    "system-subagent-flags": lambda n: {"system": _fill("cc_is_subagent = ", n)},
    "system-blocks": lambda n: {"system": [{"type": "text", "text": "x"}] * (n // 30)},
}


@pytest.mark.parametrize("make", FIELD_INPUTS.values(), ids=FIELD_INPUTS.keys())
def test_conversation_fields_are_linear_in_the_system_prompt(
    make: Callable[[int], dict[str, Any]],
) -> None:
    def body(n: int) -> dict[str, Any]:
        return {**make(n), "messages": [{"role": "user", "content": "hi"}]}

    assert_linear(fields_of, body)


def test_conversation_fields_are_linear_in_headers() -> None:
    def headers(n: int) -> list[tuple[str, str]]:
        flag = _fill(" ", n, "cc_is_subagent", "= false")
        return [("x-anthropic-billing-header", flag), ("x-claude-code-agent-id", "a" * n)]

    assert_linear(
        lambda h: fields_of({"messages": [{"role": "user", "content": "hi"}]}, h), headers
    )


TEXT_INPUTS: dict[str, Make] = {
    "reminders-unclosed": lambda n: _fill("<system-reminder>", n),
    "reminder-open-no-close": lambda n: _fill("x", n, "<system-reminder>"),
    "reminder-closers": lambda n: _fill("</system-reminder>", n),
    "reminder-prefixes": lambda n: _fill("<system-reminder", n),
    "distinct-words": lambda n: " ".join(f"w{i}" for i in range(n // 8)),
    "underscores": lambda n: "_" * n,
    "identifier-parts": lambda n: _fill("ab_", n),
    "fullwidth": lambda n: _fill("".join(chr(ord(c) + 0xFEE0) for c in "Currency "), n),
    "whitespace": lambda n: _fill(" \t\n", n),
}


@pytest.mark.parametrize("make", TEXT_INPUTS.values(), ids=TEXT_INPUTS.keys())
def test_message_text_is_linear(make: Make) -> None:
    assert_linear(_with_text, make)


@pytest.mark.parametrize("make", TEXT_INPUTS.values(), ids=TEXT_INPUTS.keys())
def test_text_helpers_are_linear(make: Make) -> None:
    def helpers(text: str) -> None:
        strip_reminders(text)
        words_of(text)
        one_line(text, 300)
        snippet([{"type": "text", "text": text}], ["absent", "words"])

    assert_linear(helpers, make)


CONTENT_INPUTS: dict[str, Callable[[int], object]] = {
    "many-blocks": lambda n: [{"type": "text", "text": "x"}] * (n // 26),
    "many-tool-calls": lambda n: [
        {"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"c": "ls"}}
        for i in range(n // 60)
    ],
    "long-input-list": lambda n: [
        {"type": "tool_use", "id": "t", "name": "Bash", "input": {"xs": [0] * (n // 2)}}
    ],
    "deep-input": lambda n: [
        {"type": "tool_use", "id": "t", "name": "Bash", "input": nested_lists(n // 2)}
    ],
    "deep-tool-results": lambda n: nested_results(n // 40),
}


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def nested_results(depth: int) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "x"}]
    for i in range(depth):
        content = [{"type": "tool_result", "tool_use_id": f"t{i}", "content": content}]
    return content


@pytest.mark.parametrize("make", CONTENT_INPUTS.values(), ids=CONTENT_INPUTS.keys())
def test_message_content_is_linear(make: Callable[[int], object]) -> None:
    assert_linear(fields_of, lambda n: {"messages": [{"role": "user", "content": make(n)}]})


def test_many_messages_are_linear() -> None:
    def messages(n: int) -> dict[str, Any]:
        pair = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
        return {"messages": pair * (n // 64) + [{"role": "user", "content": "q"}]}

    assert_linear(fields_of, messages)


def test_rebuilding_a_long_history_is_linear() -> None:
    def docs(n: int) -> list[dict[str, Any]]:
        messages = [{"role": "user", "content": "q"}] * (n // 32)
        fields = fields_of({"messages": messages})
        return [{"requestId": "r", "timestamp": T0, "messageCount": 1, "conversation": fields}]

    assert_linear(rebuild, docs)


# ---- rate limits and headers ----------------------------------------------------------------
HEADER_INPUTS: dict[str, Callable[[int], list[tuple[str, str]]]] = {
    "many-ratelimit-headers": lambda n: [
        (f"anthropic-ratelimit-x{i}-limit", "1") for i in range(n // 32)
    ],
    "long-ratelimit-values": lambda n: [
        ("anthropic-ratelimit-requests-limit", "9" * n),
        ("anthropic-ratelimit-unified-reset", "9" * n),
        ("anthropic-ratelimit-unified-5h-utilization", "1" * n),
        ("retry-after", "7" * n),
    ],
    "long-names": lambda n: [("anthropic-ratelimit-" + "-" * n, "1"), ("X" * n, "y")],
    "many-plain-headers": lambda n: [("x-h", "v")] * (n // 8),
    "long-connection-list": lambda n: [("connection", _fill("a, ", n)), ("a", "1")],
    "long-accept-encoding": lambda n: [("accept-encoding", _fill("gzip;q=0.5, br, ", n))],
    "long-secrets": lambda n: [("authorization", "Bearer " + "k" * n), ("x-api-key", "k" * n)],
}


@pytest.mark.parametrize("make", HEADER_INPUTS.values(), ids=HEADER_INPUTS.keys())
def test_header_readers_are_linear(make: Callable[[int], list[tuple[str, str]]]) -> None:
    def read(headers: list[tuple[str, str]]) -> None:
        parse_rate_limits(headers, "org")
        sanitize_headers(headers)
        get_header(headers, "absent")
        request_headers_for_upstream(headers)
        response_headers_for_client(headers)
        negotiate_encoding(get_header(headers, "accept-encoding") or "")

    assert_linear(read, make)


def test_price_lookup_is_linear_in_the_model_id() -> None:
    from storage.pricing import PriceTable

    prices = PriceTable.load()
    assert_linear(lambda model: prices.price(model), lambda n: "[" * n)
    assert prices.price("claude-sonnet-4-5[1m]") is not None


def test_session_of_a_deeply_nested_user_id_is_none_not_an_error() -> None:
    from recording.document import session_id

    user_id = "[" * 100_000 + "]" * 100_000
    assert session_id([], {"metadata": {"user_id": "{" + user_id}}) is None
    assert session_id([], {"metadata": {"user_id": '{"a":' * 5000 + "1" + "}" * 5000}}) is None
