"""An estimate for `POST /v1/messages/count_tokens` on a route to an OpenAI-format backend.

Chat Completions has no token-counting endpoint and the backend's tokenizer is unknown
to the proxy, so the answer says it is an estimate: `{"input_tokens": N,
"estimated": true}` (Anthropic clients read `input_tokens` and ignore the rest).

Method: the request is translated exactly as it would be sent (so whatever would be
refused is refused here too, with the same 400), then counted as

- every text (message contents, tool call names and arguments, tool results, the
  system prompt) at one token per 4 UTF-8 bytes, rounded up: OpenAI's rule of thumb
  for English ("a token is about 4 characters"), and bytes rather than characters
  so CJK text (3 bytes, about one token per character) is not undercounted fourfold;
- each message 4 tokens of role and delimiters, plus 3 priming the reply (OpenAI's
  published counting recipe for its chat formats);
- each image 1,600 tokens: the most an image costs Anthropic at its default size
  limits (about 1.15 megapixels at 750 pixels per token); the proxy does not decode
  images to size them;
- tool definitions and a response format as their JSON text, at the text rate.

Expect it within tens of percent of the backend's own count for prose and code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from providers.openai_request import DEFAULT_OPTIONS, OpenAIOptions, to_openai_request

BYTES_PER_TOKEN = 4
PER_MESSAGE = 4
REPLY_PRIMING = 3
PER_IMAGE = 1600


def estimate_input_tokens(
    body: Mapping[str, Any], *, options: OpenAIOptions = DEFAULT_OPTIONS
) -> dict[str, Any]:
    """The count_tokens answer for `body`; raises like `to_openai_request`."""
    request = to_openai_request(body, model="count", options=options)
    tokens = REPLY_PRIMING
    for message in request["messages"]:
        tokens += PER_MESSAGE + _content(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call["function"]
            tokens += _text(function["name"]) + _text(function["arguments"])
    for key in ("tools", "response_format"):
        if key in request:
            tokens += _text(json.dumps(request[key], ensure_ascii=False))
    return {"input_tokens": tokens, "estimated": True}


def _content(content: Any) -> int:
    if isinstance(content, str):
        return _text(content)
    tokens = 0
    for part in content or ():
        if part.get("type") == "image_url":
            tokens += PER_IMAGE
        else:
            tokens += _text(part.get("text") or "")
    return tokens


def _text(text: str) -> int:
    size = len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)
