"""`GET /v1/models` for Claude Code's gateway model discovery.

Claude Code 2.1 behind `ANTHROPIC_BASE_URL` may ask `GET /v1/models?limit=1000`
with a 3 s timeout and fails on any redirect. So this route differs from a plain
forward in three ways:

- the whole upstream answer (connect, headers, body up to `MODELS_PARSE_LIMIT`)
  gets `MODELS_BUDGET` seconds, not the 300 s meant for long completions;
- the first page (no `after_id`/`before_id`) also lists the model names the
  routing config sends to a provider, so the model picker can offer them;
- a redirect is never relayed, and an upstream that is slow, unreachable, 3xx or
  5xx still yields the routed models (marked partial by `x-proxy-models-source`).

Everything else is the ordinary forward: same plan (headers, credentials, query),
same hand-off of the finished `Exchange` to the recorder and metrics (this is a
`Forwarder` whose `handle` is inherited), 4xx relayed unchanged, and the upstream's
bytes untouched whenever nothing is added.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qs

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse
from yarl import URL

from control.header_rules import apply_rules
from control.routing import RoutingConfig, agent_of, client_key_fingerprint
from forwarding.capture import Capture
from forwarding.failure_log import failure_fields, format_fields, log_forward_failure
from forwarding.forward import PROXY_REQUEST_ID_HEADER, Forwarder
from forwarding.relay import StreamBroken, buffered_response, relay_stream
from forwarding.upstream import UpstreamClient
from runtime.settings import Settings
from streaming.errors import ProxyError
from streaming.exchange import Exchange, Outcome
from streaming.headers import get_header, response_headers_for_client
from streaming.observer import make_inflater

logger = logging.getLogger("proxy.models")

# Seconds for the whole upstream answer; Claude Code gives up at 3 s, and the
# proxy needs a margin to answer with the routed models instead.
MODELS_BUDGET = 2.5
# Decoded bytes of a models page the proxy parses on the worker's loop. Anthropic's
# list is tens of kB; a larger body is relayed unchanged, never parsed.
MODELS_PARSE_LIMIT = 1024 * 1024
# Present only when the proxy changed the list: `routing` (the upstream failed, only
# the routed models: a partial list) or `upstream+routing` (routed models added).
SOURCE_HEADER = "x-proxy-models-source"
CURSORS = ("after_id", "before_id")
# created_at of a routed model when the config file's time is unknown.
EPOCH = "1970-01-01T00:00:00Z"

Model = dict[str, str]


# ---- which names Claude Code sees ----------------------------------------------------


def candidate_names(routing: RoutingConfig) -> tuple[str, ...]:
    """Every literal name the config mentions, in file order: exact `model` patterns
    (the names a client sends) and rewrite targets. Globs and prefixes name no model."""
    names: list[str] = []
    for rule in routing.rules:
        names += [p.value for p in rule.models or () if p.kind == "exact"]
        if rule.model is not None:
            names.append(rule.model)
    return tuple(dict.fromkeys(names))


def config_time(routing: RoutingConfig) -> str:
    """The config file's modification time (RFC 3339, UTC): the same in every worker
    and across restarts until the file changes."""
    if routing.path is None:
        return EPOCH
    try:
        mtime = os.stat(routing.path).st_mtime
    except OSError:
        return EPOCH
    return datetime.fromtimestamp(int(mtime), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RoutedCatalog:
    """The routed models of one routing config, filtered per client."""

    def __init__(self, routing: RoutingConfig) -> None:
        self.routing = routing
        self.names = candidate_names(routing)
        self.created_at = config_time(routing)

    def models_for(self, headers: Sequence[tuple[str, str]]) -> list[Model]:
        """The names this client could send that a rule would route, judged with its
        own agent id and key: a rewrite target is listed only if it is routed when
        sent as is, and a rule limited to some key or agent lists only for them."""
        if not self.names:
            return []
        agent, key = agent_of(headers), client_key_fingerprint(headers)
        return [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": self.created_at,
            }
            for name in self.names
            if self.routing.route(name, agent, key) is not None
        ]


# ---- the page ------------------------------------------------------------------------


def is_first_page(query: str) -> bool:
    """No pagination cursor: only the first page gets the routed models."""
    parsed = parse_qs(query, keep_blank_values=True)
    return not any(value for cursor in CURSORS for value in parsed.get(cursor, ()))


def decode_capped(body: bytes, encoding: str | None, limit: int) -> bytes | None:
    """`body` without its content-encoding, or None when that is not possible within
    `limit` decoded bytes (max_length keeps a small gzip from inflating unbounded)."""
    try:
        inflater = make_inflater(encoding)
    except ValueError:
        return None
    if inflater is None:
        return body if len(body) <= limit else None
    try:
        decoded = inflater.decompress(body, limit + 1)
    except zlib.error:
        return None
    if len(decoded) > limit or not inflater.eof:
        return None
    return decoded


def merge_page(body: bytes, routed: Sequence[Model]) -> bytes | None:
    """The upstream's page with the routed models it lacks put first, or None when
    there is nothing to add or the body is not a models page (then it is relayed
    as is). First, not last: `last_id` stays the upstream's cursor for the next page."""
    try:
        page = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        return None
    data: list[object] = page["data"]
    listed = {m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)}
    added = [m for m in routed if m["id"] not in listed]
    if not added:
        return None
    page["first_id"] = added[0]["id"]
    if not data:
        page["last_id"] = added[-1]["id"]
    page["data"] = [*added, *data]
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()


def routed_page(routed: Sequence[Model]) -> bytes:
    page = {
        "data": list(routed),
        "has_more": False,
        "first_id": routed[0]["id"],
        "last_id": routed[-1]["id"],
    }
    return json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode()


# ---- the forward ---------------------------------------------------------------------


class _Replay(UpstreamClient):
    """Hands the relay the chunks already read before reading on from the upstream."""

    def __init__(self, settings: Settings, client: UpstreamClient, chunks: Iterable[bytes]):
        super().__init__(settings)
        self._inner = client
        self._pending = list(chunks)

    async def read_chunk(self, response: aiohttp.ClientResponse) -> bytes:
        if self._pending:
            return self._pending.pop(0)
        return await self._inner.read_chunk(response)


class ModelsForwarder(Forwarder):
    """The forwarder of `GET /v1/models`, built beside the worker's `Forwarder` and
    sharing its upstream session, sinks, header rules, capture budget and live state,
    so its exchanges are recorded and metered like every other."""

    def __init__(
        self,
        forwarder: Forwarder,
        *,
        budget: float = MODELS_BUDGET,
        parse_limit: int = MODELS_PARSE_LIMIT,
    ) -> None:
        super().__init__(
            forwarder._settings,
            forwarder._client,
            forwarder._live,
            routing=forwarder.routing,
            rulebook=forwarder.rulebook,
            breakers=forwarder.breakers,  # one board per worker, never reset
        )
        self.parent = forwarder
        self.sinks = forwarder.sinks  # the same list: a sink added later reaches both
        self._capture_budget = forwarder._capture_budget  # one budget per worker
        self.budget = budget
        self.parse_limit = parse_limit
        self._catalog = RoutedCatalog(forwarder.routing)

    def routed_models(self, exchange: Exchange) -> list[Model]:
        if not is_first_page(exchange.query):
            return []
        if self._catalog.routing is not self.parent.routing:  # the config was replaced
            self._catalog = RoutedCatalog(self.parent.routing)
        return self._catalog.models_for(exchange.request_headers)

    async def _forward(self, request: Request, exchange: Exchange) -> HTTPResponse | None:
        # The plan of a plain forward (so the upstream gets exactly what it would
        # send); only the waiting differs.
        plan = self.parent.plan(request, exchange)
        routed = self.routed_models(exchange)
        deadline = asyncio.get_running_loop().time() + self.budget
        try:
            async with asyncio.timeout_at(deadline):
                upstream = await self._client.open(
                    request.method, URL(plan.url, encoded=True), plan.headers, plan.body
                )
        except TimeoutError:
            return self._unavailable(exchange, routed, self._late())
        except ProxyError as err:  # unreachable, or the header timeout is even shorter
            return self._unavailable(exchange, routed, err)
        try:
            return await self._answer(request, exchange, upstream, routed, deadline)
        finally:
            upstream.close()

    async def _answer(
        self,
        request: Request,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        routed: list[Model],
        deadline: float,
    ) -> HTTPResponse | None:
        status = upstream.status
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
        exchange.status = status
        exchange.response_headers = raw_headers
        if 300 <= status < 400:
            message = f"Upstream answered {status} to GET /v1/models; redirects are not followed"
            err = ProxyError(502, message, "upstream_redirect")
            return self._unavailable(exchange, routed, err)
        if status >= 500 and routed:
            message = f"Upstream answered {status} to GET /v1/models"
            err = ProxyError(502, message, "upstream_server_error")
            return self._unavailable(exchange, routed, err)
        content_type = (get_header(raw_headers, "content-type") or "").lower()
        length = upstream.content_length
        if content_type.startswith("text/event-stream") or (
            length is not None and length > self.parse_limit
        ):
            return await super()._respond(request, exchange, upstream)  # as any forward
        try:
            async with asyncio.timeout_at(deadline):
                chunks, complete = await self._read_capped(upstream, exchange)
        except TimeoutError:
            return self._unavailable(exchange, routed, self._late())
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            err = ProxyError(502, f"Upstream body broke: {exc}", "upstream_stream_broken")
            return self._unavailable(exchange, routed, err)
        headers = self._client_headers(exchange, raw_headers)
        encoding = get_header(raw_headers, "content-encoding")
        exchange.response_encoding = encoding
        if not complete:
            return await self._relay_rest(request, exchange, upstream, headers, chunks)
        body = b"".join(chunks)
        merged = None
        if status == 200 and routed:
            decoded = decode_capped(body, encoding, self.parse_limit)
            merged = merge_page(decoded, routed) if decoded is not None else None
        if merged is not None:
            body = merged
            exchange.response_encoding = None
            headers = _json_headers(headers, "upstream+routing")
        exchange.response_chunks = [body]
        exchange.response_bytes = exchange.captured_bytes = len(body)
        self._finish(exchange)
        return buffered_response(status, headers, body)

    async def _read_capped(
        self, upstream: aiohttp.ClientResponse, exchange: Exchange
    ) -> tuple[list[bytes], bool]:
        """The body's chunks, stopping once they pass the parse limit; True when whole."""
        chunks: list[bytes] = []
        size = 0
        while chunk := await self._client.read_chunk(upstream):
            exchange.mark_first_byte()
            chunks.append(chunk)
            size += len(chunk)
            if size > self.parse_limit:
                return chunks, False
        return chunks, True

    async def _relay_rest(
        self,
        request: Request,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        headers: list[tuple[str, str]],
        chunks: list[bytes],
    ) -> None:
        """An unsized body past the parse limit: relayed unchanged, what was read first."""
        observer = Capture(self._settings.log_body_max_bytes, self._capture_budget)
        replay = _Replay(self._settings, self._client, chunks)
        try:
            await relay_stream(request, replay, upstream, headers, exchange, observer, sse=False)
        except StreamBroken as broken:
            observer.close(exchange)
            exchange.finish(Outcome.UPSTREAM_ERROR, broken.reason)
            log_forward_failure(exchange, broken.detail)
            return None
        except asyncio.CancelledError:
            observer.close(exchange)
            raise
        observer.close(exchange)
        self._finish(exchange)
        return None

    def _client_headers(
        self, exchange: Exchange, raw_headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        headers = apply_rules(
            response_headers_for_client(raw_headers), self.rulebook.current.response
        )
        headers.append((PROXY_REQUEST_ID_HEADER, exchange.request_id))
        return headers

    def _late(self) -> ProxyError:
        return ProxyError(
            504,
            f"Upstream did not answer GET /v1/models within {self.budget:g}s "
            "(the model discovery budget)",
            "models_deadline",
        )

    def _unavailable(
        self, exchange: Exchange, routed: list[Model], err: ProxyError
    ) -> HTTPResponse:
        """The upstream gave no usable list: the routed models alone when there are
        any (a partial list, said so by the header), else the error as any forward."""
        if not routed:
            raise err
        body = routed_page(routed)
        headers = [(PROXY_REQUEST_ID_HEADER, exchange.request_id)]
        exchange.status = 200
        exchange.response_encoding = None
        exchange.response_chunks = [body]
        exchange.response_bytes = exchange.captured_bytes = len(body)
        # The client got a list, but the upstream failed: counted as an upstream error.
        exchange.finish(Outcome.UPSTREAM_ERROR, err.reason)
        logger.warning(
            "models_from_routing_only %s", format_fields(failure_fields(exchange, err.message))
        )
        return buffered_response(200, _json_headers(headers, "routing"), body)


def _json_headers(headers: list[tuple[str, str]], source: str) -> list[tuple[str, str]]:
    """Headers for a body the proxy wrote: plain JSON, no content-encoding or digest."""
    replaced = {"content-type", "content-encoding", "etag", "content-md5", "digest"}
    kept = [(k, v) for k, v in headers if k.lower() not in replaced]
    return [*kept, ("content-type", "application/json"), (SOURCE_HEADER, source)]
