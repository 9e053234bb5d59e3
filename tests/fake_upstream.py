"""A fake Anthropic API on a real socket, for tests and benchmarks.

It replays the recorded SSE fixtures event by event, answers JSON, errors, slow
headers and silences, and records what it received and which requests the
client abandoned. What to do is chosen by the `x-fake` request header (which the
proxy forwards like any other header):

    sse:NAME            replay tests/fixtures/streams/NAME.sse event by event
    json:NAME           answer NAME.json (gzip when `x-fake-gzip: 1` and accepted)
    status:CODE         an Anthropic error (429 carries retry-after)
    slow-headers:SECS   wait before sending headers, then a JSON message
    silence:SECS        start an SSE stream, then say nothing for SECS
    ticks:N:MS          N SSE events spaced MS apart, each stamped with its send time
    drop:N              send N events of text_basic, then cut the connection
    echo                answer JSON describing the request as received
    bigline:BYTES       one SSE event whose data line is BYTES long
    long:N:MS           a complete text message of N deltas spaced MS apart; the
                        exact bytes are `long_stream(N)`, so a client can check them
    big:BYTES           BYTES of application/octet-stream (any path, e.g. GET
                        /v1/files/{id}/content), chunked without Content-Length,
                        made 64 KiB at a time as the client reads (never held
                        whole); the exact bytes are `big_chunks(BYTES)`
    models:IDS[:more]   a models page listing the comma-separated IDS, exactly
                        `models_page(IDS)` (gzip as for json:); `:more` sets has_more
    models-padded:BYTES a valid models page of at least BYTES, with Content-Length
    slow-body:SECS      the models page's headers at once, half its body, SECS of
                        silence, then the rest
    redirect:CODE       status CODE with `location: /v1/models` on this same server
    script:KEY          the answer a test registered with `script(KEY, ...)`: its
                        status, headers and body; an SSE body is sent event by event
    call:KEY            the answer of the responder a test registered with
                        `respond(KEY, fn)`: `fn` sees each request as received
                        (method, path, headers, body) and returns a `Script` (see
                        `build_script`), or None for the default answer below; for a
                        client such as Claude Code, whose turns depend on each other,
                        and which sends the header on every request

`x-fake-delay-ms` spaces the replayed events. Without `x-fake`, /v1/messages
answers text_basic (SSE if the body asks to stream), count_tokens and models
answer like the API.

Run standalone for benchmarks: `python -m tests.fake_upstream --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_upstream_bodies import (
    BIG_CHUNK,
    ERRORS,
    RATE_LIMIT_HEADERS,
    Received,
    Script,
    big_chunks,
    build_script,
    long_stream,
    models_page,
    sse_chunks,
)
from tests.fixtures import events_of, message_bytes

# Imported from here by the tests and benchmarks that use the fake.
__all__ = [
    "BIG_CHUNK",
    "ERRORS",
    "RATE_LIMIT_HEADERS",
    "FakeUpstream",
    "Received",
    "Script",
    "big_chunks",
    "build_script",
    "long_stream",
    "models_page",
    "sse_chunks",
]


def headers_of(request: web.Request) -> list[tuple[str, str]]:
    """Headers exactly as they arrived: order, case and duplicates kept."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


# Sees each request as received; answers with a Script, or None for the default answer.
Responder = Callable[[Received], Script | None]


@dataclass
class FakeUpstream:
    received: list[Received] = field(default_factory=list)
    # x-fake values of requests whose client went away before the end.
    cancelled: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    port: int = 0
    _counter: int = 0
    # Answers registered by tests, by key (`x-fake: script:KEY`); never cleared by
    # reset(), so a session-wide upstream keeps what each module registered.
    scripts: dict[str, Script] = field(default_factory=dict)
    # Request-aware responders by key (`x-fake: call:KEY`); kept like `scripts`.
    responders: dict[str, Responder] = field(default_factory=dict)

    # ---- running -------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def start_in_thread(self, port: int = 0) -> int:
        """Serve on its own loop in a daemon thread; returns the port."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            self._runner = web.AppRunner(self.make_app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.received.clear()
        self.cancelled.clear()
        self.finished.clear()

    def script(
        self,
        key: str,
        status: int,
        headers: dict[str, str],
        body: bytes | Sequence[bytes],
        *,
        sse: bool,
    ) -> str:
        """Register the answer to `x-fake: script:KEY` (replacing any earlier one) and
        return that header value. `headers` go on top of the usual `request-id` and
        rate-limit headers (and, for SSE, the event-stream content type). A `bytes`
        SSE body is written event by event; a sequence is written chunk by chunk as
        given, so a test can choose awkward boundaries."""
        if isinstance(body, bytes):
            chunks = tuple(sse_chunks(body)) if sse else (body,)
        else:
            chunks = tuple(body)
        self.scripts[key] = Script(status, dict(headers), chunks, sse)
        return f"script:{key}"

    def respond(self, key: str, responder: Responder) -> str:
        """Register the responder of `x-fake: call:KEY` (replacing any earlier one) and
        return that header value. It runs on the fake's own loop, one request at a
        time, and must not block."""
        self.responders[key] = responder
        return f"call:{key}"

    # ---- handling ------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(
                request.method,
                request.raw_path,
                headers_of(request),
                body,
            )
        )
        scenario = request.headers.get("x-fake", "")
        try:
            response = await self._dispatch(request, scenario, body)
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled.append(scenario)
            raise
        self.finished.append(scenario)
        return response

    def _request_id(self) -> str:
        self._counter += 1
        return f"req_fake{self._counter:06d}"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"request-id": self._request_id(), **RATE_LIMIT_HEADERS}
        if extra:
            headers.update(extra)
        return headers

    async def _dispatch(
        self, request: web.Request, scenario: str, body: bytes
    ) -> web.StreamResponse:
        kind, _, arg = scenario.partition(":")
        delay = float(request.headers.get("x-fake-delay-ms", "0")) / 1000
        if not kind:
            return await self._default(request, body)
        if kind == "sse":
            return await self._replay(request, events_of(arg), delay)
        if kind == "json":
            return self._json(request, message_bytes(arg))
        if kind == "status":
            return self._error(int(arg))
        if kind == "slow-headers":
            await asyncio.sleep(float(arg))
            return self._json(request, message_bytes("text_basic"))
        if kind == "silence":
            events = events_of("text_basic")
            response = await self._start_sse(request)
            await response.write(events[0][1])
            await asyncio.sleep(float(arg))
            for _, raw in events[1:]:
                await response.write(raw)
            await response.write_eof()
            return response
        if kind == "ticks":
            count, _, ms = arg.partition(":")
            return await self._ticks(request, int(count), float(ms) / 1000)
        if kind == "drop":
            response = await self._start_sse(request)
            for _, raw in events_of("text_basic")[: int(arg)]:
                await response.write(raw)
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return response
        if kind == "echo":
            return self._echo(request, body)
        if kind == "bigline":
            response = await self._start_sse(request)
            text = "x" * int(arg)
            data = json.dumps(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                }
            )
            await response.write(f"event: content_block_delta\ndata: {data}\n\n".encode())
            await response.write_eof()
            return response
        if kind == "long":
            count, _, ms = arg.partition(":")
            events = [("", raw) for raw in long_stream(int(count))]
            return await self._replay(request, events, float(ms) / 1000)
        if kind == "big":
            return await self._big(request, int(arg))
        if kind == "models":
            ids, _, more = arg.partition(":")
            page = models_page(ids.split(",") if ids else [], has_more=more == "more")
            return self._json(request, page)
        if kind == "models-padded":
            return self._json(request, models_page(["claude-padded-1"], pad=int(arg)))
        if kind == "slow-body":
            return await self._slow_body(request, float(arg))
        if kind == "redirect":
            headers = self._headers({"location": "/v1/models"})
            return web.Response(status=int(arg), headers=headers)
        if kind == "script":
            return await self._scripted(request, arg)
        if kind == "call":
            return await self._called(request, arg, body)
        raise web.HTTPBadRequest(text=f"unknown x-fake scenario {scenario!r}")

    async def _default(self, request: web.Request, body: bytes) -> web.StreamResponse:
        path = request.path
        if path == "/v1/models":
            data = {
                "data": [
                    {
                        "type": "model",
                        "id": "claude-sonnet-4-5-20250929",
                        "display_name": "Claude Sonnet 4.5",
                        "created_at": "2025-09-29T00:00:00Z",
                    }
                ],
                "has_more": False,
                "first_id": "claude-sonnet-4-5-20250929",
                "last_id": "claude-sonnet-4-5-20250929",
            }
            return web.json_response(data, headers=self._headers())
        if path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": 42}, headers=self._headers())
        if path == "/v1/messages":
            payload: dict[str, Any] = json.loads(body) if body else {}
            if payload.get("stream"):
                return await self._replay(request, events_of("text_basic"), 0)
            return self._json(request, message_bytes("text_basic"))
        return self._error(404)

    def _json(self, request: web.Request, raw: bytes) -> web.Response:
        headers = self._headers({"content-type": "application/json"})
        if request.headers.get("x-fake-gzip") == "1" and "gzip" in request.headers.get(
            "accept-encoding", ""
        ):
            raw = gzip.compress(raw)
            headers["content-encoding"] = "gzip"
        return web.Response(body=raw, headers=headers)

    def _error(self, status: int) -> web.Response:
        kind = ERRORS.get(status, "api_error")
        body = {
            "type": "error",
            "error": {"type": kind, "message": f"fake {kind}"},
            "request_id": self._request_id(),
        }
        extra = {"content-type": "application/json"}
        if status == 429:
            extra["retry-after"] = "17"
        return web.Response(
            status=status, body=json.dumps(body).encode(), headers=self._headers(extra)
        )

    async def _start_sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers=self._headers(
                {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
            )
        )
        await response.prepare(request)
        return response

    async def _replay(
        self, request: web.Request, events: list[tuple[str, bytes]], delay: float
    ) -> web.StreamResponse:
        response = await self._start_sse(request)
        for i, (_, raw) in enumerate(events):
            if delay and i:
                await asyncio.sleep(delay)
            await response.write(raw)
        await response.write_eof()
        return response

    async def _ticks(self, request: web.Request, count: int, gap: float) -> web.StreamResponse:
        response = await self._start_sse(request)
        start = time.monotonic()
        for i in range(count):
            # Scheduled against the start, so upstream spacing does not drift.
            await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
            data = json.dumps({"type": "ping", "seq": i, "sent": time.time()})
            await response.write(f"event: ping\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response

    async def _big(self, request: web.Request, total: int) -> web.StreamResponse:
        response = web.StreamResponse(
            headers=self._headers({"content-type": "application/octet-stream"})
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        # write() waits while the transport's buffer is full, so a slow reader
        # slows the production down instead of piling chunks up here.
        for chunk in big_chunks(total):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _slow_body(self, request: web.Request, pause: float) -> web.StreamResponse:
        body = models_page(["claude-sonnet-4-5-20250929"])
        response = web.StreamResponse(headers=self._headers({"content-type": "application/json"}))
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        await asyncio.sleep(pause)
        await response.write(body[len(body) // 2 :])
        await response.write_eof()
        return response

    async def _scripted(self, request: web.Request, key: str) -> web.StreamResponse:
        script = self.scripts.get(key)
        if script is None:
            raise web.HTTPBadRequest(text=f"no script registered as {key!r}")
        base = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        headers = self._headers({**(base if script.sse else {}), **script.headers})
        response = web.StreamResponse(status=script.status, headers=headers)
        if not script.sse:
            response.content_length = sum(len(c) for c in script.chunks)
        await response.prepare(request)
        for chunk in script.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _called(self, request: web.Request, key: str, body: bytes) -> web.StreamResponse:
        responder = self.responders.get(key)
        if responder is None:
            raise web.HTTPBadRequest(text=f"no responder registered as {key!r}")
        seen = Received(request.method, request.raw_path, headers_of(request), body)
        script = responder(seen)
        if script is None:
            return await self._default(request, body)
        base = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
        headers = self._headers({**(base if script.sse else {}), **script.headers})
        response = web.StreamResponse(status=script.status, headers=headers)
        if not script.sse:
            response.content_length = sum(len(c) for c in script.chunks)
        await response.prepare(request)
        for chunk in script.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    def _echo(self, request: web.Request, body: bytes) -> web.Response:
        data = {
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": [list(pair) for pair in headers_of(request)],
            "body_b64": base64.b64encode(body).decode(),
        }
        return web.json_response(data, headers=self._headers())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    fake = FakeUpstream()
    web.run_app(fake.make_app(), host="127.0.0.1", port=args.port, access_log=None, backlog=1024)


if __name__ == "__main__":
    main()
