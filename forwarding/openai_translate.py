"""A Messages request body → the Chat Completions body (or a count_tokens estimate).

The translation needs the whole body parsed, which the worker otherwise never does
on its event loop (forwarding/inspect.py): json.loads, the translation and
json.dumps together cost about 30 ms per MB here, holding the loop (and the GIL,
so a thread would not help) while every other stream of the worker waits. So a
body up to `INLINE_LIMIT` (a few ms) is translated in place, and a larger one in
a short-lived child process (`python -m forwarding.openai_translate`, the body on
its stdin), which costs the request ~50 ms of start-up and the loop nothing. At
most `MAX_CHILDREN` run at once per worker; more wait their turn.

`RequestRefused` (what the backend cannot express, or no Messages request at all)
comes back from the child as its message, and is raised here either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import weakref
from pathlib import Path
from typing import Any

from providers import Malformed, OpenAIOptions, RequestRefused, estimate_input_tokens
from providers import to_openai_request as translate
from streaming.errors import ProxyError

INLINE_LIMIT = 256 * 1024
MAX_CHILDREN = 2
_ROOT = Path(__file__).resolve().parent.parent
_OK, _REFUSED = b"ok\n", b"refused\n"
# One per event loop (a worker has one; tests run several in one process).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _job(params: dict[str, Any], body: bytes) -> bytes:
    """The work itself, pure: the answer's bytes; RequestRefused as raised."""
    try:
        parsed = json.loads(body)
    except RecursionError:
        raise Malformed("the request body is nested too deeply to translate") from None
    except ValueError as exc:
        raise Malformed(f"the request body is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise Malformed("the request body must be a JSON object")
    options = OpenAIOptions(params["max_tokens_field"], params["thinking"])
    if params["kind"] == "estimate":
        result = estimate_input_tokens(parsed, options=options)
    else:
        # The backend streams when the plan says so (demotion streams a stream:false call).
        parsed["stream"] = params["stream"]
        result = translate(parsed, model=params["model"], options=options)
    # ASCII escapes: a lone surrogate the client escaped (`\ud800`) stays valid JSON.
    return json.dumps(result, separators=(",", ":")).encode()


async def openai_body(body: bytes, *, model: str, options: OpenAIOptions, stream: bool) -> bytes:
    """The Chat Completions request for `body`, asking the backend for `model`."""
    params = {"kind": "translate", "model": model, "stream": stream}
    return await _run(params | _options(options), body)


async def estimate(body: bytes, *, options: OpenAIOptions) -> bytes:
    """The count_tokens answer (`{"input_tokens": N, "estimated": true}`) as JSON."""
    return await _run({"kind": "estimate"} | _options(options), body)


def _options(options: OpenAIOptions) -> dict[str, str]:
    return {"max_tokens_field": options.max_tokens_field, "thinking": options.thinking}


async def _run(params: dict[str, Any], body: bytes) -> bytes:
    if len(body) <= INLINE_LIMIT:
        return _job(params, body)
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_CHILDREN)
    async with slots:
        try:
            out = await _child(json.dumps(params).encode() + b"\n" + body)
        except OSError:  # no process could be started (fd or process limits)
            out = b""
    if out.startswith(_OK):
        return out[len(_OK) :]
    if out.startswith(_REFUSED):
        raise RequestRefused(out[len(_REFUSED) :].decode("utf-8", "replace"))
    raise ProxyError(
        500, "Translating the request for the OpenAI-format backend failed", "internal_error"
    )


async def _child(payload: bytes) -> bytes:
    env = dict(os.environ)
    # Importable from any working directory (tests start the proxy elsewhere).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "forwarding.openai_translate",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        out, _ = await proc.communicate(payload)
    except BaseException:  # the client left: the child's work is wasted, not kept
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return out if proc.returncode == 0 else b""


def main() -> None:
    data = sys.stdin.buffer.read()
    head, _, body = data.partition(b"\n")
    try:
        answer = _OK + _job(json.loads(head), body)
    except RequestRefused as refused:
        answer = _REFUSED + refused.message.encode()
    sys.stdout.buffer.write(answer)


if __name__ == "__main__":
    main()
