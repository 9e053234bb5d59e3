"""A fake OpenAI-compatible Chat Completions backend on a real socket, for tests.

Written from OpenAI's public API reference (Chat Completions: the request, the
`chat.completion` object, `chat.completion.chunk` streaming with `delta.tool_calls[i]`
argument fragments, `stream_options.include_usage` and its final usage chunk with empty
`choices`, `data: [DONE]`, and the `{"error": {"message", "type", "param", "code"}}`
error shape), plus the vLLM extension `choice.stop_reason` (the stop string that
matched). Every answer is a scenario's list of chunks (tests.providers.openai_chunks,
which also has the chunk builders): streamed as SSE, one `data:` event per chunk, or
folded by `completion_from_chunks` into the equivalent non-streaming body, so the two
forms of an answer always agree.

`POST …/chat/completions` (any prefix, so `base_url` may or may not end in `/v1`)
answers by the `x-fake-openai` header, else by a request `model` of the form
`fake:SCENARIO`, else `auto`:

    auto                with tools and a user turn last: "Calling NAME." and a call to
                        `auto_tool` (name, arguments) when the request offers it, else
                        to its first tool with `{}`; after a tool result: "Tool said:
                        " + the result's first 200 characters; without tools: "Echo: "
                        + the last user text. Usage from the request's size.
    text                text in four deltas with multi-byte characters (é, 你好, 🙂)
    tools               text, then get_weather (arguments split inside a `\\"` and a
                        `\\u00e9` escape, and after a lone backslash) and get_time
                        (arguments "" then "{}"); finish_reason tool_calls
    interleaved         two tool calls whose argument fragments alternate by index
    forced              a tool call answered with finish_reason "stop" (what OpenAI
                        does for a forced tool_choice)
    cached              text; usage with 1024 of 2048 prompt tokens cached
    reasoning           text; usage with completion_tokens_details.reasoning_tokens
    length              text cut by finish_reason "length"
    content_filter      text, then finish_reason "content_filter"
    refusal             `delta.refusal` fragments, finish_reason "stop"
    stop_sequence       text; finish "stop" with vLLM's `stop_reason: "END"`
    no-usage            never sends the usage chunk, even when asked
    no-done             finish and usage chunks, then the body ends without [DONE]
    cut:N               the first N chunks of `tools`, then the connection is closed
    error-mid:N         the first N chunks of `tools`, then `data: {"error": …}`
                        (type server_error) and the end of the body
    bad-json            one chunk, then a `data:` line that is not JSON
    bad-args            a tool call whose arguments are not JSON
    status:CODE[:quota] HTTP CODE with OpenAI's error body for it (429: `retry-after:
                        7` and `x-ratelimit-*` headers; `:quota` makes it
                        insufficient_quota; 502 answers an HTML page, as gateways do)
    slow:SECS           waits SECS before the response headers, then `text`
    stall:N:SECS        the first N chunks of `text`, SECS of silence, then the rest
    script:KEY          the chunks a test registered with `script(KEY, chunks)`

A request without `stream: true` gets the same answer as one `chat.completion` body
(its usage included), except: `error-mid` answers a 500, `bad-json` a truncated JSON
body, `cut` part of the body before the connection is closed.

The usage chunk is sent only when the request asked for it (`stream_options:
{"include_usage": true}`), as OpenAI does. `x-fake-openai-split: BYTES` writes the SSE
body in BYTES-sized pieces, cutting inside UTF-8 characters and `data:` lines;
`x-fake-openai-delay-ms` spaces the writes. With `api_key` set, a request without
`Authorization: Bearer <api_key>` gets a 401. `GET …/models` lists `fake-model`.
Every request is kept in `received` (path, headers with lower-case names, parsed JSON
body).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.providers.openai_chunks import (
    CREATED,
    MODEL,
    Chunk,
    call,
    chunk,
    completion_from_chunks,
    error_body,
    scenario_chunks,
    sse_body,
    text_chunks,
    usage_chunk,
)

__all__ = [
    "FakeOpenAI",
    "Received",
    "completion_from_chunks",
    "error_body",
    "scenario_chunks",
    "sse_body",
]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


@dataclass
class FakeOpenAI:
    received: list[Received] = field(default_factory=list)
    port: int = 0
    api_key: str | None = None
    # `auto` calls this tool (name, arguments) when the request offers it.
    auto_tool: tuple[str, dict[str, Any]] | None = None
    scripts: dict[str, list[Chunk]] = field(default_factory=dict)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def start_in_thread(self) -> int:
        """Serve on its own loop in a daemon thread; returns the port."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        async def boot() -> None:
            runner = web.AppRunner(self.make_app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(boot())
            loop.run_forever()

        threading.Thread(target=run, name="fake-openai", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI backend did not start")
        return self.port

    @property
    def url(self) -> str:
        """A base_url in the usual form, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, key: str, chunks: list[Chunk]) -> str:
        """Register chunks for `script:KEY`; returns the header value that picks them."""
        self.scripts[key] = chunks
        return f"script:{key}"

    # ---- handling ------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.received.append(
            Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        if self.api_key is not None and request.headers.get("authorization") != (
            f"Bearer {self.api_key}"
        ):
            return self._error(401)
        if request.method == "GET" and request.path.endswith("/models"):
            model = {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "fake"}
            return web.json_response({"object": "list", "data": [model]})
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            return self._error(404)
        if not isinstance(body, dict):
            return self._error(400)
        scenario = request.headers.get("x-fake-openai") or _from_model(body.get("model"))
        kind, _, arg = scenario.partition(":")
        if kind == "status":
            code, _, flavour = arg.partition(":")
            return self._error(int(code), quota=flavour == "quota")
        if kind == "slow":
            await asyncio.sleep(float(arg))
            kind = "text"
        chunks, tail, done, pause = self._answer(kind, arg, body)
        if not body.get("stream"):
            return await self._whole(request, kind, chunks)
        return await self._stream(request, body, chunks, tail, done, pause)

    async def _whole(
        self, request: web.Request, kind: str, chunks: list[Chunk]
    ) -> web.StreamResponse:
        if kind == "error-mid":
            return self._error(500)
        if kind == "bad-json":
            return web.Response(body=b'{"choices": [', content_type="application/json")
        if kind == "cut":
            response = web.StreamResponse(headers={"content-type": "application/json"})
            response.content_length = 4096
            await response.prepare(request)
            await response.write(json.dumps(completion_from_chunks(chunks)).encode()[:100])
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return response
        return web.json_response(completion_from_chunks(chunks), headers=_ids())

    def _answer(
        self, kind: str, arg: str, body: dict[str, Any]
    ) -> tuple[list[Chunk], bytes | None, bool, tuple[int, float] | None]:
        """(chunks, raw bytes after them or None to close, whether [DONE] follows,
        (chunk count, seconds) of a stall)."""
        if kind == "auto":
            return self._auto(body), b"", True, None
        if kind == "script":
            return self.scripts[arg], b"", True, None
        if kind == "no-usage":
            return [c for c in scenario_chunks("text") if "usage" not in c], b"", True, None
        if kind == "no-done":
            return scenario_chunks("text"), b"", False, None
        if kind == "cut":
            return scenario_chunks("tools")[: int(arg)], None, False, None
        if kind == "error-mid":
            error = error_body(500)
            tail = b"data: " + json.dumps(error).encode() + b"\n\n"
            return scenario_chunks("tools")[: int(arg)], tail, False, None
        if kind == "bad-json":
            return scenario_chunks("text")[:1], b'data: {"choices": [\n\n', False, None
        if kind == "stall":
            count, _, secs = arg.partition(":")
            return scenario_chunks("text"), b"", True, (int(count), float(secs))
        return scenario_chunks(kind), b"", True, None

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        chunks: list[Chunk],
        tail: bytes | None,
        done: bool,
        pause: tuple[int, float] | None,
    ) -> web.StreamResponse:
        options = body.get("stream_options") or {}
        if not options.get("include_usage"):
            chunks = [c for c in chunks if "usage" not in c]
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream; charset=utf-8", **_ids()}
        )
        await response.prepare(request)
        delay = float(request.headers.get("x-fake-openai-delay-ms", "0")) / 1000
        split = int(request.headers.get("x-fake-openai-split", "0"))
        pieces = [sse_body([c], done=False) for c in chunks]
        rest = (tail or b"") + (b"data: [DONE]\n\n" if done else b"")
        if pause is not None:
            await self._write(response, b"".join(pieces[: pause[0]]), split, delay)
            await asyncio.sleep(pause[1])
            pieces = pieces[pause[0] :]
        if split > 0:
            await self._write(response, b"".join(pieces) + rest, split, delay)
        else:  # one write per event, as OpenAI flushes them
            for piece in [*pieces, rest]:
                await self._write(response, piece, 0, delay)
        if tail is None:
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()  # cut: no end of the chunked body
            return response
        await response.write_eof()
        return response

    @staticmethod
    async def _write(response: web.StreamResponse, data: bytes, split: int, delay: float) -> None:
        step = split if split > 0 else max(len(data), 1)
        for start in range(0, len(data), step):
            if delay:
                await asyncio.sleep(delay)
            await response.write(data[start : start + step])

    def _auto(self, body: dict[str, Any]) -> list[Chunk]:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        tools = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]
        size = len(json.dumps(body))
        if last.get("role") == "tool":
            text = "Tool said: " + _plain(last.get("content"))[:200]
            return [
                *text_chunks(text),
                chunk(finish="stop"),
                usage_chunk(size // 4, len(text) // 4),
            ]
        if tools and last.get("role") == "user":
            names = {t["name"] for t in tools}
            name, arguments = tools[0]["name"], {}
            if self.auto_tool is not None and self.auto_tool[0] in names:
                name, arguments = self.auto_tool
            text = json.dumps(arguments)
            return [
                *text_chunks(f"Calling {name}."),
                call(0, "", id="call_auto0001", name=name),
                call(0, text[: len(text) // 2]),
                call(0, text[len(text) // 2 :]),
                chunk(finish="tool_calls"),
                usage_chunk(size // 4, 20),
            ]
        text = "Echo: " + _plain(last.get("content"))[:200]
        return [*text_chunks(text), chunk(finish="stop"), usage_chunk(size // 4, len(text) // 4)]

    def _error(self, status: int, *, quota: bool = False) -> web.Response:
        headers = _ids()
        if status == 502:
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(
                status=502, body=page, headers={**headers, "content-type": "text/html"}
            )
        if status == 429:
            headers.update(
                {
                    "retry-after": "7",
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "7s",
                }
            )
        return web.json_response(error_body(status, quota=quota), status=status, headers=headers)


def _ids() -> dict[str, str]:
    return {"x-request-id": "req_fakeopenai0001", "openai-processing-ms": "12"}


def _from_model(model: object) -> str:
    if isinstance(model, str) and model.startswith("fake:"):
        return model[len("fake:") :]
    return "auto"


def _plain(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
