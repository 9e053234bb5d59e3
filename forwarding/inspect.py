"""What the proxy reads from a request body before forwarding it: model, stream.

The body is never parsed whole on the worker's event loop: a client may send up to
REQUEST_MAX_BYTES of JSON, and json.loads of 30 MB of small values holds the loop
(and the GIL, so a thread would not help) for about a second, stalling every stream
the worker relays. Instead a byte scan (`control.jsonbytes`) checks the body's JSON
and finds its top-level members, pausing every 256 KB so other streams go on, and
only the small top-level members (model, stream, max_tokens, thinking, metadata,
...) are parsed. The recorder process parses the whole body later, off this loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from control.jsonbytes import ObjectLayout, scan_object_async
from streaming.errors import ProxyError
from streaming.exchange import Exchange
from streaming.headers import get_header
from streaming.jsonbody import scrub_if_needed

# Top-level members up to this size are parsed for the proxy's own view of the body
# (`Exchange.request_json`); larger ones (messages, tools, system) are left as bytes.
SMALL_MEMBER_BYTES = 64 * 1024
# A Messages request has about 15; the proxy reads no more than this many.
MAX_MEMBERS = 1024
PAUSE_BYTES = 256 * 1024
# A body that is not an object is parsed only to name what it is in the 400.
_NAME_KIND_BYTES = 64 * 1024
# Members the Messages API checks here; too big to be valid, they are refused unread.
_CHECKED = {
    "model": "model: must be a string",
    "stream": "stream: must be a boolean",
    "max_tokens": "max_tokens: must be an integer",
}


async def inspect_body(exchange: Exchange, *, messages_api: bool) -> None:
    """Fill in `exchange.model`, `stream_requested`, `request_json` (the body's small
    top-level members) and `request_layout`, without changing the body.

    `messages_api`: the body must be a JSON object with a string `model`, a boolean
    `stream` and an integer `max_tokens` when present; otherwise ProxyError 400
    before it costs an upstream call. Other JSON bodies are read when they are
    objects and otherwise forwarded as they are.
    """
    body = exchange.request_body
    content_type = (get_header(exchange.request_headers, "content-type") or "").lower()
    if not body:
        if messages_api:
            raise ProxyError(400, "Request body must be a JSON object, got empty", "invalid_json")
        return
    if not (messages_api or "json" in content_type):
        return
    try:
        layout = await scan_object_async(body)
    except ValueError as exc:
        if messages_api:
            raise _refusal(body, exc) from None
        return
    if len(layout.members) > MAX_MEMBERS:
        if messages_api:
            message = f"Request body has more than {MAX_MEMBERS} top-level members"
            raise ProxyError(400, message, "invalid_json")
        return
    head = await _small_members(body, layout, messages_api=messages_api)
    if messages_api:
        _check(body, layout, head)
    exchange.request_layout = layout
    exchange.request_json = head
    model, stream = head.get("model"), head.get("stream", False)
    exchange.model = model if isinstance(model, str) else None
    exchange.stream_requested = stream is True


async def _small_members(
    body: bytes, layout: ObjectLayout, *, messages_api: bool
) -> dict[str, Any]:
    head: dict[str, Any] = {}
    parsed = 0
    for member in layout.members:  # a repeated key: the last one wins, as in json.loads
        size = member.value_end - member.value_start
        if size > SMALL_MEMBER_BYTES:
            head.pop(member.key, None)
            continue
        try:
            head[member.key] = json.loads(body[member.value_start : member.value_end])
        except RecursionError:
            # The scan allows MAX_DEPTH levels; the parser, called this deep in the
            # worker's stack, may give up a little sooner.
            if messages_api:
                message = "Request body is not valid JSON: nested too deeply"
                raise ProxyError(400, message, "invalid_json") from None
            head.pop(member.key, None)
            continue
        parsed += size
        if parsed >= PAUSE_BYTES:  # many members of tiny values: let other streams run
            parsed = 0
            await asyncio.sleep(0)
    return scrub_if_needed(body, head)


def _check(body: bytes, layout: ObjectLayout, head: dict[str, Any]) -> None:
    for key, message in _CHECKED.items():
        found = layout.find(key)
        if found and key not in head:  # present, but far too big to be valid
            raise ProxyError(
                400, f"{message} (a value of {_size(found[-1])} bytes)", "invalid_request"
            )
    model = head.get("model")
    if model is not None and not isinstance(model, str):
        raise ProxyError(400, _CHECKED["model"], "invalid_request")
    if not isinstance(head.get("stream", False), bool):
        raise ProxyError(400, _CHECKED["stream"], "invalid_request")
    max_tokens = head.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise ProxyError(400, _CHECKED["max_tokens"], "invalid_request")


def _size(member: Any) -> int:
    return int(member.value_end - member.value_start)


def _refusal(body: bytes, error: ValueError) -> ProxyError:
    if "not a JSON object" in str(error) and len(body) <= _NAME_KIND_BYTES:
        # Valid JSON of another kind (a list, a string, null) is named as such.
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            pass
        else:
            kind = f"a JSON {type(value).__name__}"
            return ProxyError(
                400, f"Request body must be a JSON object, got {kind}", "invalid_json"
            )
    return ProxyError(400, f"Request body is not valid JSON: {error}", "invalid_json")
