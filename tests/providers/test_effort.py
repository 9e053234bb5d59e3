"""The effort a reply is made at (top-level and per-message) and what each thinking mode
makes of it."""

from __future__ import annotations

from typing import Any

import pytest

from providers.effort import reasoning_effort, reply_effort
from providers.refusal import Unsupported

NEW = {"role": "user", "content": "next question"}
ANSWER = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
}
RESULTS = {
    "role": "user",
    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}],
}
REPLY = {"role": "assistant", "content": "done"}


def effort(level: str, content: Any = None) -> dict[str, Any]:
    """A system message carrying a per-message effort (alone, or with content)."""
    return {"role": "system", "content": content or [], "output_config": {"effort": level}}


# (top-level effort, messages, the effort the reply is made at)
PLACEMENTS: list[tuple[str | None, list[dict[str, Any]], str | None]] = [
    (None, [NEW], None),
    ("low", [NEW], "low"),
    # Right after a user turn with new input: that turn's reply already uses it.
    ("high", [NEW, effort("low")], "low"),
    # Claude Code's shape: its environment text and the effort in one system message.
    ("medium", [NEW, effort("low", "# Environment")], "low"),
    # Other system messages in between still count as "right after".
    ("high", [NEW, {"role": "system", "content": "reminder"}, effort("low")], "low"),
    # After a tool-results-only turn it waits for the next new input...
    ("high", [NEW, ANSWER, RESULTS, effort("low")], "high"),
    ("high", [NEW, ANSWER, RESULTS, effort("low"), REPLY, NEW], "low"),
    # ...and so it does between an assistant turn and the next user turn.
    ("high", [NEW, REPLY, effort("low")], "high"),
    ("high", [NEW, REPLY, effort("low"), NEW], "low"),
    # A tool-results-only turn does not start it either.
    ("high", [NEW, REPLY, effort("low"), ANSWER, RESULTS], "high"),
    # The level stays until a later change replaces it.
    ("high", [NEW, effort("low"), REPLY, NEW, ANSWER, RESULTS], "low"),
    ("high", [NEW, effort("low"), REPLY, NEW, effort("max")], "max"),
    ("high", [NEW, effort("low"), REPLY, effort("medium"), effort("max"), NEW], "max"),
]


@pytest.mark.parametrize(("top", "messages", "expected"), PLACEMENTS)
def test_the_reply_is_made_at_the_effort_in_force(
    top: str | None, messages: list[dict[str, Any]], expected: str | None
) -> None:
    assert reply_effort(top, messages) == expected


@pytest.mark.parametrize(
    ("top", "messages"),
    [
        ("extreme", [NEW]),
        (None, [NEW, effort("extreme")]),
        # Even where it no longer applies: the API refuses an unknown level anywhere.
        (None, [NEW, effort("turbo"), REPLY, NEW, effort("low")]),
        (None, [NEW, {"role": "system", "content": [], "output_config": {"effort": 3}}]),
    ],
)
def test_an_effort_the_api_does_not_define_is_refused(
    top: str | None, messages: list[dict[str, Any]]
) -> None:
    with pytest.raises(Unsupported, match="effort"):
        reply_effort(top, messages)


def body(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": messages, **fields}


@pytest.mark.parametrize(
    ("request_body", "sent"),
    [
        (body([NEW, effort("low")]), "low"),
        (body([NEW, effort("medium")], output_config={"effort": "low"}), "medium"),
        (body([NEW, effort("xhigh")]), "high"),
        (body([NEW, effort("max")]), "high"),
        # A per-message effort wins over a thinking budget, as the top-level one does.
        (body([NEW, effort("low")], thinking={"type": "enabled", "budget_tokens": 32000}), "low"),
        (body([NEW, REPLY, effort("low")], thinking={"type": "adaptive"}), None),
    ],
)
def test_reasoning_effort_mode_sends_the_effort_in_force(
    request_body: dict[str, Any], sent: str | None
) -> None:
    assert reasoning_effort(request_body, "reasoning_effort") == sent


@pytest.mark.parametrize(
    "request_body",
    [
        body([NEW, effort("low")]),
        body([NEW, effort("max")], output_config={"effort": "high"}),
        body([NEW], output_config={"effort": "medium"}),
        body([NEW, effort("high")], thinking={"type": "adaptive"}),
    ],
)
def test_refuse_mode_refuses_an_effort_the_backend_cannot_honour(
    request_body: dict[str, Any],
) -> None:
    with pytest.raises(Unsupported) as info:
        reasoning_effort(request_body, "refuse")
    assert "effort" in info.value.feature
    # The operator's declaration that the backend reasons on its own terms.
    assert reasoning_effort(request_body, "ignore") is None


@pytest.mark.parametrize(
    "request_body",
    [
        body([NEW]),
        # `high` is the API's default: asking for it asks for nothing.
        body([NEW], output_config={"effort": "high"}),
        body([NEW, effort("high")], output_config={"effort": "low"}),
        # A per-message change that does not apply to this reply does not count.
        body([NEW, REPLY, effort("low")], output_config={"effort": "high"}),
        body([NEW], thinking={"type": "disabled"}),
    ],
)
def test_refuse_mode_accepts_what_asks_for_nothing_and_sends_nothing(
    request_body: dict[str, Any],
) -> None:
    assert reasoning_effort(request_body, "refuse") is None


def test_ignore_mode_does_not_judge_effort_values() -> None:
    assert reasoning_effort(body([NEW, effort("turbo")]), "ignore") is None
