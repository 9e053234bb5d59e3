"""Conversation summaries: request documents folded into one document per
conversation (pure), so the conversation lists read a small, indexed collection
instead of grouping the whole request log.

A summary document (`_id` = the conversation id) holds what the list shows,
each field kept by an update that gives the same result in any order and
grouping, so the deltas of a batch are one unordered bulk of upserts:

- counts, tokens and cost are `$inc`'d;
- `startTime` is `$min`'d and `lastActivity` (completion, else start) `$max`'d;
- the first prompt and the latest model are small documents whose first fields
  are the request's position in the log (timestamp, message count, request id:
  `conversations.thread.order_key`). MongoDB compares embedded documents
  field by field, so `$min` keeps the first request's prompt and `$max` the
  latest request's model. `main*` track the main thread only (side calls such as
  title generation come first in a session, but are not it);
- `projectPath` is `$max`'d (the greatest stated, as the thread view reports);
- `models` is the set of models the conversation's requests named (`$addToSet`),
  for the model filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from conversations.fields import project_name
from conversations.thread import duration_ms
from stats.rollups import bson_ms

# Summed per conversation: (summary field, how one request document counts).
_USAGE: tuple[tuple[str, str], ...] = (
    ("inputTokens", "input_tokens"),
    ("outputTokens", "output_tokens"),
    ("cacheCreationTokens", "cache_creation_input_tokens"),
    ("cacheReadTokens", "cache_read_input_tokens"),
)

# The list's fields, in the order the list has always returned them.
LIST_FIELDS: tuple[str, ...] = (
    "requestCount",
    "startTime",
    "lastActivity",
    "projectPath",
    "inputTokens",
    "outputTokens",
    "cacheCreationTokens",
    "cacheReadTokens",
    "totalTokens",
    "cost",
    "unpricedRequests",
    "errorCount",
    "subagentRequests",
)

# What folding reads from a request document; never the bodies or the words.
FOLD_FIELDS: dict[str, int] = {
    "_id": 0,
    "requestId": 1,
    "timestamp": 1,
    "messageCount": 1,
    "model": 1,
    "usage": 1,
    "tokens": 1,
    "cost.usd": 1,
    "unpriced": 1,
    "response.completedAt": 1,
    "conversation.id": 1,
    "conversation.thread": 1,
    "conversation.projectPath": 1,
    "conversation.prompt": 1,
    "conversation.error": 1,
}


@dataclass(slots=True)
class SummaryDelta:
    """What one conversation's summary gains from some request documents."""

    id: str
    inc: dict[str, int | float] = field(default_factory=dict)
    low: dict[str, Any] = field(default_factory=dict)
    high: dict[str, Any] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)

    def merge(self, other: SummaryDelta) -> None:
        for name, value in other.inc.items():
            self.inc[name] = self.inc.get(name, 0) + value
        for name, value in other.low.items():
            self.low[name] = min(self.low[name], value, key=_rank) if name in self.low else value
        for name, value in other.high.items():
            self.high[name] = max(self.high[name], value, key=_rank) if name in self.high else value
        self.models |= other.models

    def change(self) -> dict[str, Any]:
        """The update operators adding this delta (the writer guards them per
        batch: stats.derived_writer)."""
        change: dict[str, Any] = {"$inc": dict(self.inc), "$min": dict(self.low)}
        if self.high:
            change["$max"] = dict(self.high)
        if self.models:
            change["$addToSet"] = {"models": {"$each": sorted(self.models)}}
        return change

    def update(self) -> UpdateOne:
        """The unguarded upsert: counts again each time it is written."""
        return UpdateOne({"_id": self.id}, self.change(), upsert=True)


def _rank(value: Any) -> Any:
    """How MongoDB orders the values `$min`/`$max` compare here: datetimes and
    strings by value, the marker documents by their leading position fields,
    their time as BSON holds it (whole milliseconds)."""
    if isinstance(value, dict):
        return (bson_ms(value["at"]), value["n"], value["rid"])
    return value


def _number(value: object) -> int | float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _delta(doc: dict[str, Any]) -> SummaryDelta | None:
    conv = doc.get("conversation")
    if not isinstance(conv, dict) or not isinstance(conv.get("id"), str):
        return None
    usage = doc.get("usage") or {}
    cost = doc.get("cost")
    thread = conv.get("thread")
    inc: dict[str, int | float] = {
        "requestCount": 1,
        **{name: _number(usage.get(key)) for name, key in _USAGE},
        "totalTokens": _number(doc.get("tokens")),
        "cost": float(_number(cost.get("usd") if isinstance(cost, dict) else None)),
        "unpricedRequests": int(bool(doc.get("unpriced"))),
        "errorCount": int(bool(conv.get("error"))),
        "subagentRequests": int(thread == "subagent"),
    }
    at = doc["timestamp"]
    completed = (doc.get("response") or {}).get("completedAt")
    position = {"at": at, "n": doc.get("messageCount") or 0, "rid": doc.get("requestId") or ""}
    low: dict[str, Any] = {"startTime": at, "first": {**position, "prompt": conv.get("prompt")}}
    high: dict[str, Any] = {
        "lastActivity": completed if isinstance(completed, datetime) else at,
        "last": {**position, "model": doc.get("model")},
    }
    if thread == "main":
        low["mainFirst"] = {**position, "prompt": conv.get("prompt")}
        high["mainLast"] = {**position, "model": doc.get("model")}
    if conv.get("projectPath"):
        high["projectPath"] = conv["projectPath"]
    model = doc.get("model")
    return SummaryDelta(conv["id"], inc, low, high, {model} if isinstance(model, str) else set())


def fold(documents: Iterable[dict[str, Any]]) -> dict[str, SummaryDelta]:
    """The merged deltas of request documents, one per conversation they belong
    to; documents without a conversation count nowhere."""
    merged: dict[str, SummaryDelta] = {}
    for document in documents:
        delta = _delta(document)
        if delta is not None:
            merge_into(merged, [delta])
    return merged


def merge_into(pending: dict[str, SummaryDelta], deltas: Iterable[SummaryDelta]) -> None:
    for delta in deltas:
        if delta.id in pending:
            pending[delta.id].merge(delta)
        else:
            pending[delta.id] = delta


def list_item(doc: dict[str, Any]) -> dict[str, Any]:
    """A summary document as the list shows it (datetimes still datetimes)."""
    item: dict[str, Any] = {name: doc.get(name) for name in LIST_FIELDS}
    first = doc.get("mainFirst") or doc.get("first") or {}
    last = doc.get("mainLast") or doc.get("last") or {}
    start, end = item["startTime"], item["lastActivity"]
    item.update(
        id=doc["_id"],
        firstMessage=first.get("prompt"),
        model=last.get("model"),
        projectName=project_name(item["projectPath"]),
        duration=duration_ms(start, end),
        cost=round(item["cost"] or 0.0, 10),
    )
    return item
