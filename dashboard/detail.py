"""The request detail page (`/dashboard/requests/<id>`) and its downloads: the
body of either side as sent, and the whole record as JSON.

One indexed read of the document (by id, or by a unique short prefix) without
the conversation's stored copies; bodies are shown as dashboard.detail_body
decides (large ones clipped, never parsed whole); headers as stored, so
credentials appear only as the fingerprints the log keeps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pymongo.errors import PyMongoError
from sanic import Request
from sanic.response import HTTPResponse

from dashboard.detail_body import PRETTY_MAX_CHARS, BodyView, body_view, curl_command
from dashboard.detail_store import (
    PARTS,
    body_bytes,
    body_text,
    document_json,
    download_name,
    find_document,
)
from dashboard.render import own_address, render
from dashboard.requests_rows import detail_href, session_href, status_class
from dashboard.security import security_headers
from storage.queries import SHORT_ID

DROPPED_BODIES = {
    "queue_full": "The body was not recorded: the worker's hand-off queue was full.",
    "journal_full": "The body was not recorded: the journal was nearly full.",
}
USAGE_ROWS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache write 5m", "cache_creation.ephemeral_5m_input_tokens"),
    ("cache write 1h", "cache_creation.ephemeral_1h_input_tokens"),
    ("cache read", "cache_read_input_tokens"),
)
COST_KEYS = {
    "input": "input",
    "output": "output",
    "cache write 5m": "cacheWrite5m",
    "cache write 1h": "cacheWrite1h",
    "cache read": "cacheRead",
}
LIMIT_KINDS = (
    ("requests", "requests"),
    ("tokens", "tokens"),
    ("input tokens", "inputTokens"),
    ("output tokens", "outputTokens"),
)


@dataclass(frozen=True, slots=True)
class UsageRow:
    label: str
    tokens: int | None
    cost: float | None


@dataclass(frozen=True, slots=True)
class LimitRow:
    label: str
    remaining: Any
    limit: Any
    reset: Any


def _get(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def usage_rows(document: dict[str, Any]) -> list[UsageRow]:
    usage = document.get("usage") if isinstance(document.get("usage"), dict) else None
    cost = document.get("cost") if isinstance(document.get("cost"), dict) else None
    breakdown = cost.get("breakdown") if cost and isinstance(cost.get("breakdown"), dict) else {}
    rows = []
    for label, path in USAGE_ROWS:
        tokens = _get(usage, path) if usage else None
        price = breakdown.get(COST_KEYS[label])
        rows.append(
            UsageRow(
                label,
                tokens if isinstance(tokens, int) else None,
                float(price) if isinstance(price, int | float) else None,
            )
        )
    return rows


def limit_rows(rate: dict[str, Any]) -> list[LimitRow]:
    rows = []
    for label, key in LIMIT_KINDS:
        values = [rate.get(f"{key}{part}") for part in ("Remaining", "Limit", "Reset")]
        if any(v is not None for v in values):
            rows.append(LimitRow(label, *values))
    return rows


_UNIFIED = re.compile(r"^unified(Status|Reset|Utilization)(5h|7d|7dOpus|7dSonnet)?$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_WINDOW_NAMES = {"5h": "5h", "7d": "7d", "7dOpus": "7d Opus", "7dSonnet": "7d Sonnet"}


def _unified_order(key: str) -> tuple[int, int, str]:
    match = _UNIFIED.match(key)
    if match is None:
        return (9, 9, key)
    windows = [None, *_WINDOW_NAMES]
    fields = ["Status", "Utilization", "Reset"]
    return (windows.index(match[2]), fields.index(match[1]), key)


def unified_rows(rate: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The subscription (unified) limits and retry-after: label, text, and
    whether the text is a time (shown in the browser's zone)."""
    rows: list[tuple[str, str, bool]] = []
    for key in sorted(rate, key=_unified_order):
        value = rate[key]
        match = _UNIFIED.match(key)
        if match is None or isinstance(value, dict):
            continue
        field, window = match[1], match[2]
        label = f"{_WINDOW_NAMES[window]} {field.lower()}" if window else f"unified {field.lower()}"
        if field == "Utilization" and isinstance(value, int | float):
            rows.append((label, f"{value * 100:.0f} %", False))
        else:
            is_time = field == "Reset" and _ISO.match(str(value)) is not None
            rows.append((label, str(value), is_time))
    if rate.get("retryAfter") is not None:
        rows.append(("retry after", f"{rate['retryAfter']} s", False))
    return rows


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    """What went wrong, as label and text: the outcome's reason, the stream's
    error, the recorder's own troubles."""
    response = document.get("response") if isinstance(document.get("response"), dict) else {}
    found: list[tuple[str, str]] = []
    for label, value in (
        ("error", document.get("errorReason")),
        ("stream error", response.get("streamError")),
        ("stream error body", response.get("streamErrorBody")),
        ("observer error", response.get("observerError")),
        ("record error", document.get("recordError")),
        ("bodies dropped", document.get("bodiesDropped")),
        ("encode error", document.get("encodeError")),
    ):
        if value:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            found.append((label, text))
    if response.get("bodyClipped"):
        found.append(
            ("response body", f"clipped in the log ({response.get('bodyBytes')} bytes relayed)")
        )
    if document.get("recordClipped"):
        found.append(("record", "the conversation fields were dropped to fit the document"))
    return found


def _missing_note(document: dict[str, Any], part: str) -> str:
    dropped = document.get("bodiesDropped")
    if isinstance(dropped, str):
        return DROPPED_BODIES.get(dropped, f"The body was not recorded ({dropped}).")
    if part == "response" and _get(document, "response.bodyClipped"):
        return "The response body was too large to record whole."
    return "No body was recorded."


def body_path(request_id: str, part: str) -> str:
    return f"{detail_href(request_id)}/body/{part}"


def curl_for(request: Request, document: dict[str, Any], request_body: Any) -> str:
    section = document.get("request") if isinstance(document.get("request"), dict) else {}
    query = document.get("query")
    url = f"{own_address(request)}{document.get('endpoint') or '/v1/messages'}"
    if query:
        url += f"?{query}"
    headers = [
        h for h in section.get("headers") or [] if isinstance(h, list | tuple) and len(h) == 2
    ]
    method = str(document.get("method") or "POST")
    request_id = str(document.get("requestId"))
    if request_body.text is None:
        return curl_command(url, method, headers, None)
    if request_body.complete and not str(request_body.encoding or "").startswith("base64"):
        return curl_command(url, method, headers, request_body.text)
    name, _ = download_name(document, "request")
    return curl_command(
        url,
        method,
        headers,
        None,
        body_file=name,
        body_url=f"{own_address(request)}{body_path(request_id, 'request')}",
    )


def _refusal(request: Request, status: int, problem: str) -> HTTPResponse:
    return render(request, "request_detail.html", status=status, doc=None, problem=problem)


async def detail_page(request: Request, request_id: str) -> HTTPResponse:
    if not SHORT_ID.match(request_id):
        return _refusal(request, 400, "A request id is 4 to 32 lowercase hex digits.")
    db = getattr(request.app.ctx, "db", None)
    if db is None:
        return _refusal(request, 503, "The request log is off or its database is not configured.")
    try:
        document = await find_document(db, request_id)
        if document is None:
            return _refusal(request, 404, f"No request with id {request_id} (or it is ambiguous).")
        bodies = {p: await body_text(db, document, p, PRETTY_MAX_CHARS) for p in PARTS}
    except PyMongoError:
        return _refusal(request, 503, "The database did not answer in time; try again.")
    full_id = str(document.get("requestId"))
    views: dict[str, BodyView] = {
        p: body_view(p, bodies[p], _missing_note(document, p)) for p in PARTS
    }
    response = document.get("response") if isinstance(document.get("response"), dict) else {}
    rate = response.get("rateLimit") if isinstance(response.get("rateLimit"), dict) else {}
    conversation = document.get("conversation")
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    session = document.get("sessionId")
    return render(
        request,
        "request_detail.html",
        problem=None,
        doc=document,
        full_id=full_id,
        response=response,
        status_class=status_class(document.get("statusCode"), document.get("outcome")),
        timestamp=_instant(document.get("timestamp")),
        completed_at=_instant(response.get("completedAt")),
        usage_rows=usage_rows(document),
        cost=document.get("cost") if isinstance(document.get("cost"), dict) else None,
        limit_rows=limit_rows(rate),
        unified_rows=unified_rows(rate),
        problems=problems(document),
        request_headers=_headers(document.get("request")),
        response_headers=_headers(response),
        request_body=views["request"],
        response_body=views["response"],
        curl=curl_for(request, document, bodies["request"]),
        download_url=f"{detail_href(full_id)}/download",
        body_urls={p: body_path(full_id, p) for p in PARTS},
        conversation_url=(
            f"/dashboard/conversations/{quote(str(conversation_id), safe='')}"
            if conversation_id
            else None
        ),
        session_url=session_href(str(session)) if session else None,
    )


def _instant(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _headers(section: Any) -> list[tuple[str, str]]:
    if not isinstance(section, dict):
        return []
    out = []
    for pair in section.get("headers") or []:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            out.append((str(pair[0]), str(pair[1])))
    return out


async def _streamed(request: Request, filename: str, content_type: str) -> Any:
    headers = security_headers()
    headers["content-disposition"] = f'attachment; filename="{filename}"'
    headers["cache-control"] = "private, no-cache"
    return await request.respond(headers=headers, content_type=content_type)


async def download_body(request: Request, request_id: str, part: str) -> HTTPResponse | None:
    found = await _found(request, request_id)
    if isinstance(found, HTTPResponse):
        return found
    if part not in PARTS:
        return _refusal(request, 404, "The body is `request` or `response`.")
    db, document = found
    filename, content_type = download_name(document, part)
    response = await _streamed(request, filename, content_type)
    async for chunk in body_bytes(db, document, part):
        await response.send(chunk)
    await response.eof()
    return None


async def download_document(request: Request, request_id: str) -> HTTPResponse | None:
    found = await _found(request, request_id)
    if isinstance(found, HTTPResponse):
        return found
    db, document = found
    filename = f"{document.get('requestId', 'request')}.json"
    response = await _streamed(request, filename, "application/json; charset=utf-8")
    async for piece in document_json(db, document):
        await response.send(piece)
    await response.eof()
    return None


async def _found(request: Request, request_id: str) -> HTTPResponse | tuple[Any, dict[str, Any]]:
    if not SHORT_ID.match(request_id):
        return _refusal(request, 400, "A request id is 4 to 32 lowercase hex digits.")
    db = getattr(request.app.ctx, "db", None)
    if db is None:
        return _refusal(request, 503, "The request log is off or its database is not configured.")
    try:
        document = await find_document(db, request_id)
    except PyMongoError:
        return _refusal(request, 503, "The database did not answer in time; try again.")
    if document is None:
        return _refusal(request, 404, f"No request with id {request_id} (or it is ambiguous).")
    return db, document
