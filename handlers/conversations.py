"""`/api/conversations*`: Claude Code sessions rebuilt from the request log (the
seed's contract, plus search)."""

from __future__ import annotations

from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json
from sanic_ext import openapi

from conversations.queries import ID_PATTERN, MAX_QUERY_WORDS, query_words
from conversations.repo import API_SEARCH_DOCS, ConversationsRepo, json_default
from handlers.params import (
    BadParameter,
    api_error,
    datetime_param,
    int_param,
    log_unavailable,
    text_param,
)
from openapi import params
from openapi.components import ConversationDetail, ConversationList, ConversationSearchResults
from openapi.responses import error, guarded, ok

bp = Blueprint("conversations", url_prefix="/api/conversations")

MAX_LIMIT = 100
PROJECT_CHARS = 1024
QUERY_CHARS = 200

_P = openapi.definitions.Parameter
_PAGE = _P("page", params.integer(1, 1, 1_000_000))
_LIMIT = _P("limit", params.integer(10, 1, MAX_LIMIT))
_PROJECT = _P(
    "project",
    params.text(PROJECT_CHARS),
    description="Project path, matched exactly (e.g. /home/me/app)",
)
_BAD = error(400)
_NOT_FOUND = error(404)
_UNAVAILABLE = error(503)


def _repo(request: Request) -> ConversationsRepo | None:
    db = getattr(request.app.ctx, "db", None)
    return ConversationsRepo(db) if db is not None else None


def _paging(request: Request) -> tuple[int, int]:
    return (
        int_param(request, "page", 1, 1, 1_000_000),
        int_param(request, "limit", 10, 1, MAX_LIMIT),
    )


def _listing(
    items: list,
    total: int,
    page: int,
    limit: int,
    has_more: bool | None = None,
    **extra: object,
) -> HTTPResponse:
    return json(
        {
            "conversations": items,
            "hasMore": page * limit < total if has_more is None else has_more,
            "total": total,
            "page": page,
            "limit": limit,
            **extra,
        }
    )


@bp.get("")
@openapi.definition(
    summary="List conversations (grouped by session), newest activity first",
    operation="getConversations",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _P("model", params.text(default="all"), description="Substring of a model, or all"),
        _PAGE,
        _LIMIT,
    ],
    response=guarded(ok(ConversationList), _BAD, _UNAVAILABLE),
)
async def list_conversations(request: Request) -> HTTPResponse:
    try:
        page, limit = _paging(request)
        model = text_param(request, "model", "all")
    except BadParameter as exc:
        return exc.response()
    repo = _repo(request)
    if repo is None:
        return log_unavailable()
    items, total = await repo.page(page, limit, model=model)
    return _listing(items, total, page, limit)


@bp.get("/project")
@openapi.definition(
    summary="List the conversations of one project",
    operation="getConversationsByProject",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _P("project", params.text(PROJECT_CHARS, minLength=1), required=True),
        _PAGE,
        _LIMIT,
    ],
    response=guarded(ok(ConversationList), _BAD, _UNAVAILABLE),
)
async def project_conversations(request: Request) -> HTTPResponse:
    try:
        project = text_param(request, "project", None, PROJECT_CHARS)
        if project is None:
            raise BadParameter("project: required (the project path)")
        page, limit = _paging(request)
    except BadParameter as exc:
        return exc.response()
    repo = _repo(request)
    if repo is None:
        return log_unavailable()
    items, total = await repo.page(page, limit, project=project)
    return _listing(items, total, page, limit, project=project)


@bp.get("/search")
@openapi.definition(
    summary="Search conversations by words in messages and tool names",
    operation="searchConversations",
    description=(
        "Matches requests holding every word of `q` (case- and accent-insensitive words "
        "of 2+ characters) and lists their conversations by their latest match, newest "
        f"first. Reads the newest {API_SEARCH_DOCS:,} matching requests at most "
        "(`start`/`end` reach older ones): `matches` counts a conversation's matching "
        "requests among those read, `total` the conversations ranked through this "
        "page, and `hasMore` says whether another page follows."
    ),
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _P("q", params.text(QUERY_CHARS, minLength=2), required=True, description="Words to find"),
        _PROJECT,
        _P("start", params.DATE_TIME, description="Requests at or after (ISO 8601)"),
        _P("end", params.DATE_TIME, description="Requests before (ISO 8601)"),
        _PAGE,
        _LIMIT,
    ],
    response=guarded(ok(ConversationSearchResults), _BAD, _UNAVAILABLE),
)
async def search_conversations(request: Request) -> HTTPResponse:
    try:
        text = text_param(request, "q", None, QUERY_CHARS)
        if text is None:
            raise BadParameter("q: required")
        words = query_words(text)
        if not words:
            raise BadParameter("q: needs a word of at least 2 letters or digits")
        if len(words) > MAX_QUERY_WORDS:
            raise BadParameter(f"q: at most {MAX_QUERY_WORDS} words")
        project = text_param(request, "project", None, PROJECT_CHARS)
        start = datetime_param(request, "start")
        end = datetime_param(request, "end")
        if start and end and start > end:
            raise BadParameter("start: must not be after end")
        page, limit = _paging(request)
    except BadParameter as exc:
        return exc.response()
    repo = _repo(request)
    if repo is None:
        return log_unavailable()
    items, total, more = await repo.search(words, project, start, end, page, limit)
    return _listing(items, total, page, limit, more, words=words)


@bp.get("/<id:str>")
@openapi.definition(
    summary="One conversation: every turn in order, subagents nested",
    operation="getConversationByID",
    tag="dashboard",
    secured={"dashboardBasicAuth": []},
    parameter=[
        _P(
            "id",
            openapi.String(pattern=ID_PATTERN.pattern),
            location="path",
            required=True,
        ),
        _P(
            "project",
            params.text(PROJECT_CHARS),
            description="Project path the conversation must belong to (optional)",
        ),
    ],
    response=guarded(ok(ConversationDetail), _BAD, _NOT_FOUND, _UNAVAILABLE),
)
async def get_conversation(request: Request, id: str) -> HTTPResponse:
    # The seed names the path parameter `id`. Sanic hands it over still
    # percent-encoded: `a%3Ab` is the id `a:b`.
    conversation_id = unquote(id)
    try:
        if not ID_PATTERN.match(conversation_id):
            raise BadParameter("id: 1 to 128 letters, digits, '.', '_', ':' or '-'")
        project = text_param(request, "project", None, PROJECT_CHARS)
    except BadParameter as exc:
        return exc.response()
    repo = _repo(request)
    if repo is None:
        return log_unavailable()
    found = await repo.thread(conversation_id, project)
    if found is None:
        where = f" in project {project}" if project is not None else ""
        return api_error(404, "Conversation not found", f"No conversation {conversation_id}{where}")
    # Sanic's encoder (ujson, else json) writes the datetimes through `default`.
    return json(found, default=json_default)
