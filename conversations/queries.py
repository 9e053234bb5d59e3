"""Conversation queries as data: filters, pipelines, projections (pure).

Every query starts from an index (`storage.mongo` creates them). The lists read
the conversation summaries (`conversations.summaries`, one document per
conversation, kept by the log writer) on `lastActivity`, or `projectPath` +
`lastActivity` for a project, so a page costs the same however long the log is.
Request-log queries start from the `conversation` sub-document:
`conversation.id` + `timestamp` for threads and the summaries of search hits,
`conversation.projectPath` + `timestamp` and `conversation.words` + `timestamp`
for search.

Search (conversations.search): the development database has no text indexes,
so each request stores its normalised words (a multikey array); a query finds
the requests holding one of its words through the index, newest first in time
windows, keeps those holding all of them (`$all`), and lists their
conversations by latest match. It runs the same on MongoDB.
"""

from __future__ import annotations

import re
from typing import Any

from conversations.text import words_of

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_QUERY_WORDS = 10
MAX_THREAD_REQUESTS = 5_000
ORDER = {"timestamp": 1, "messageCount": 1, "requestId": 1}

HAS_CONVERSATION: dict[str, Any] = {"conversation.id": {"$gte": ""}}  # any string id

# What rebuilding a thread needs: never the bodies, the headers or the words.
THREAD_PROJECTION: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "timestamp": 1,
    "model": 1,
    "servedModel": 1,
    "statusCode": 1,
    "stopReason": 1,
    "usage": 1,
    "tokens": 1,
    "cost": 1,
    "unpriced": 1,
    "responseTime": 1,
    "timeToFirstByte": 1,
    "messageCount": 1,
    "response.completedAt": 1,
    **{
        f"conversation.{name}": 1
        for name in (
            "id",
            "grouping",
            "thread",
            "agentId",
            "parentAgentId",
            "projectPath",
            "projectName",
            "segment",
            "start",
            "turns",
            "reply",
            "error",
            "compactions",
            "resumes",
            "servedModel",
            "thinkingTokens",
            "prompt",
        )
    },
}

SNIPPET_PROJECTION: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "conversation.turns": 1,
    "conversation.reply": 1,
}


# The lists' order: newest activity first (the `last_activity` index).
LIST_SORT: list[tuple[str, int]] = [("lastActivity", -1), ("_id", 1)]


def list_filter(model: str | None) -> dict[str, Any]:
    """Summaries of conversations with a request whose model contains `model`
    (case-insensitive, `all` or nothing: every one): a regex over each summary's
    small set of models, in the conversations collection (never the request log)."""
    if not model or model == "all":
        return {}
    return {"models": {"$regex": re.escape(model), "$options": "i"}}


def list_project_filter(project: str) -> dict[str, Any]:
    """Summaries of one project path, compared as a value."""
    return {"projectPath": project}


def project_filter(project: str) -> dict[str, Any]:
    """The project is compared as a value (exact path), never used as a path."""
    return {"conversation.projectPath": project}


def thread_filter(conversation_id: str) -> dict[str, Any]:
    return {"conversation.id": conversation_id}


def _zero(path: str) -> dict[str, Any]:
    return {"$ifNull": [path, 0]}


def summary_pipeline(ids: list[str]) -> list[dict[str, Any]]:
    """Per conversation: counts, times, project and token/cost totals."""
    return [
        {"$match": {"conversation.id": {"$in": ids}}},
        {"$sort": ORDER},
        {
            "$group": {
                "_id": "$conversation.id",
                "requestCount": {"$sum": 1},
                "startTime": {"$min": "$timestamp"},
                "lastActivity": {"$max": {"$ifNull": ["$response.completedAt", "$timestamp"]}},
                "firstPrompt": {"$first": "$conversation.prompt"},
                "lastModel": {"$last": "$model"},
                "projectPath": {"$max": "$conversation.projectPath"},
                "inputTokens": {"$sum": _zero("$usage.input_tokens")},
                "outputTokens": {"$sum": _zero("$usage.output_tokens")},
                "cacheCreationTokens": {"$sum": _zero("$usage.cache_creation_input_tokens")},
                "cacheReadTokens": {"$sum": _zero("$usage.cache_read_input_tokens")},
                "totalTokens": {"$sum": _zero("$tokens")},
                "cost": {"$sum": _zero("$cost.usd")},
                "unpricedRequests": {"$sum": {"$cond": [{"$eq": ["$unpriced", True]}, 1, 0]}},
                "errorCount": {
                    "$sum": {"$cond": [{"$ifNull": ["$conversation.error", False]}, 1, 0]}
                },
                "subagentRequests": {
                    "$sum": {"$cond": [{"$eq": ["$conversation.thread", "subagent"]}, 1, 0]}
                },
            }
        },
    ]


def main_thread_pipeline(ids: list[str]) -> list[dict[str, Any]]:
    """Per conversation: the first prompt and the latest model of the main thread
    (side calls such as title generation come first in a session, but are not it)."""
    return [
        {"$match": {"conversation.id": {"$in": ids}, "conversation.thread": "main"}},
        {"$sort": ORDER},
        {
            "$group": {
                "_id": "$conversation.id",
                "firstMessage": {"$first": "$conversation.prompt"},
                "model": {"$last": "$model"},
            }
        },
    ]


def query_words(q: str) -> list[str]:
    """The words a search matches: the same normalisation as the stored ones."""
    return words_of(q)
