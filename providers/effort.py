"""Thinking and effort (`thinking`, `output_config.effort`, and the per-message effort
of `role: "system"` messages) → Chat Completions' `reasoning_effort`, as the
provider's `OpenAIOptions.thinking` says.

The effort that counts is the one the reply is made at. A per-message effort (a
`role: "system"` message with `output_config.effort`, the API's
`mid-conversation-output-config` beta) overrides the top-level one from where the
API applies it: placed right after a user turn with new input (system messages in
between count as one run), that turn's reply is made at it; anywhere else, from the
next user turn with new input. A user turn of tool results alone is not new input
(it continues the turn before it). A later change replaces an earlier one.

Modes:

- `"refuse"` (default): thinking `enabled`/`adaptive`, and an effort other than
  `high`, are refused: a backend without reasoning controls would silently answer
  without them. `high` is accepted and nothing is sent: the API documents it as the
  same as leaving effort out, so it asks for nothing a backend cannot do.
- `"reasoning_effort"`: OpenAI's equivalent. low/medium/high → the same,
  `xhigh`/`max` → `high` (the highest OpenAI names for all its reasoning models);
  without an effort, a `budget_tokens` of ≤ 4096 → `low`, ≤ 16384 → `medium`, more
  → `high`; `adaptive` alone sends none (the backend's default: the model decides).
- `"ignore"`: the operator declares that the backend reasons on its own terms;
  thinking and every effort are accepted and not sent.

In `refuse` and `reasoning_effort` an effort value the API does not define is refused
wherever it is (the API would refuse it too); `thinking: {"type": "disabled"}` needs
nothing in any mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from providers.refusal import Malformed, Unsupported

ThinkingMode = Literal["refuse", "reasoning_effort", "ignore"]

# The API's effort levels → OpenAI's `reasoning_effort`.
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# What the API does when no effort is given.
DEFAULT_EFFORT = "high"


def reasoning_effort(body: Mapping[str, Any], mode: ThinkingMode) -> str | None:
    """The `reasoning_effort` to send for `body` (None: send none); raises
    `Unsupported` when the mode cannot honour what the request asks for."""
    thinking = body.get("thinking")
    if thinking is not None and not isinstance(thinking, Mapping):
        raise Malformed("`thinking` must be an object")
    kind = thinking.get("type") if thinking is not None else None
    if kind not in (None, "disabled", "enabled", "adaptive"):
        raise Unsupported(f"thinking of type `{kind}`")
    if mode == "ignore":
        return None
    config = body.get("output_config")
    top = config.get("effort") if isinstance(config, Mapping) else None
    effort = reply_effort(top, body.get("messages"))
    if mode == "refuse":
        if kind in ("enabled", "adaptive") or effort not in (None, DEFAULT_EFFORT):
            raise Unsupported("extended thinking and effort (`thinking`, `output_config.effort`)")
        return None
    if effort is not None:
        return EFFORTS[effort]
    if kind == "enabled":
        budget = thinking.get("budget_tokens") if thinking is not None else None
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise Malformed("`thinking.budget_tokens` must be an integer")
        return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
    return None


def reply_effort(top: Any, messages: Any) -> str | None:
    """The effort the reply is made at: the top-level one unless a per-message effort
    applies (see the module's docstring). Every effort seen must be one the API
    defines. One pass over the messages."""
    level = _known(top)
    pending: str | None = None
    # Whether the last message that was not a system message is a user turn with new
    # input: a per-message effort right after it applies to that turn's reply.
    after_new_input = False
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, Mapping):
            continue  # the message translation refuses it
        role = message.get("role")
        if role == "system":
            config = message.get("output_config")
            effort = _known(config.get("effort") if isinstance(config, Mapping) else None)
            if effort is None:
                continue
            if after_new_input:
                level, pending = effort, None
            else:
                pending = effort
        elif role == "user":
            after_new_input = _new_input(message.get("content"))
            if after_new_input and pending is not None:
                level, pending = pending, None
        else:
            after_new_input = False
    return level


def _known(effort: Any) -> str | None:
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise Unsupported(f"effort `{effort}`")
    return effort


def _new_input(content: Any) -> bool:
    """A user turn brings new input unless it holds tool results alone."""
    if not isinstance(content, list):
        return True
    return not content or any(
        not isinstance(b, Mapping) or b.get("type") != "tool_result" for b in content
    )
