"""The request translation in place and in a child process give the same answers."""

from __future__ import annotations

import json
import sys

import pytest

from forwarding import openai_translate
from forwarding.openai_translate import estimate, openai_body
from providers import OpenAIOptions, RequestRefused, estimate_input_tokens, to_openai_request
from streaming.errors import ProxyError

OPTIONS = OpenAIOptions("max_completion_tokens", "reasoning_effort")
BODY = {
    "model": "claude-x",
    "max_tokens": 50,
    "stream": False,
    "system": "Be brief.",
    "thinking": {"type": "enabled", "budget_tokens": 3000},
    # A lone surrogate, as a client may escape one (`\ud800`): must stay valid JSON.
    "messages": [{"role": "user", "content": "café 🙂 \ud800"}],
}


@pytest.fixture(params=["inline", "child"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "child":
        monkeypatch.setattr(openai_translate, "INLINE_LIMIT", 0)
    return str(request.param)


async def test_the_translation_is_the_providers_wherever_it_runs(where: str) -> None:
    raw = json.dumps(BODY).encode()
    sent = json.loads(await openai_body(raw, model="qwen3", options=OPTIONS, stream=True))
    assert sent == to_openai_request({**BODY, "stream": True}, model="qwen3", options=OPTIONS)
    assert sent["reasoning_effort"] == "low" and sent["stream_options"] == {"include_usage": True}
    counted = json.loads(await estimate(raw, options=OPTIONS))
    assert counted == estimate_input_tokens(BODY, options=OPTIONS)


async def test_refusals_come_back_as_refusals(where: str) -> None:
    raw = json.dumps({**BODY, "top_k": 4}).encode()
    with pytest.raises(RequestRefused, match="`top_k`"):
        await openai_body(raw, model="qwen3", options=OPTIONS, stream=False)
    with pytest.raises(RequestRefused, match="nested too deeply"):
        await estimate(b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", options=OPTIONS)


async def test_a_child_that_fails_is_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_translate, "INLINE_LIMIT", 0)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(ProxyError) as caught:
        await openai_body(json.dumps(BODY).encode(), model="m", options=OPTIONS, stream=False)
    assert caught.value.status == 500 and caught.value.reason == "internal_error"
