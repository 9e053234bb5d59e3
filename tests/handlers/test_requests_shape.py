"""`/api/requests*` items in the seed's shapes (storage/request_log_shape.py): the
list and the detail a `RequestLog` with a nested `ResponseLog`, the summary a flat
`RequestSummary`; every seed field there, null when unknown; no bodies or headers
in lists. Documents are built by the recorder's own code, read back through the
list projection, and the handlers' answers checked against the served document."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from datetime import datetime
from typing import Any

import pytest
from sanic import Sanic

from app import create_app
from openapi.requests import RateLimitInfo, RequestLog, RequestSummary, ResponseLog
from recording.document import build_document, minimal_document
from runtime.settings import Settings
from storage import request_log_shape as shape
from storage.pricing import PriceTable
from storage.queries import SUMMARY_PROJECTION
from streaming.accumulator import accumulate, finalize
from streaming.exchange import Exchange, Outcome
from streaming.sse import SSEDecoder
from tests.fake_upstream import RATE_LIMIT_HEADERS
from tests.fixtures import stream_bytes
from tests.openapi.schemas import errors, json_schema
from tests.openapi.seed_spec import SEED_COMPONENTS

Sanic.test_mode = True
PRICES = PriceTable.load()
KEY = "sk-ant-api03-SHAPE-SECRET"
# What the list and the summary must never carry.
HEAVY = {"request", "conversation", "batch", "attempts", "query", "clientKeyFingerprint"}
HEAVY_RESPONSE = {"headers", "body", "bodyEncoding", "bodyBytes", "streamErrorBody"}


def _exchange(*, rate_limits: bool = True) -> Exchange:
    body = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "shape me"}],
    }
    exchange = Exchange(
        method="POST",
        path="/v1/messages",
        query="",
        request_headers=[
            ("x-api-key", KEY),
            ("user-agent", "claude-cli/2.1.3 (external, cli)"),
            ("content-type", "application/json"),
        ],
        request_body=json.dumps(body).encode(),
        request_json=body,
        model=body["model"],
        stream_requested=True,
    )
    exchange.status = 200
    exchange.response_headers = [
        ("content-type", "text/event-stream"),
        *(RATE_LIMIT_HEADERS.items() if rate_limits else ()),
    ]
    exchange.is_sse = True
    snapshot = None
    for event in SSEDecoder().decode(stream_bytes("tool_use")):
        snapshot = accumulate(json.loads(event.data), snapshot)
    exchange.message = finalize(snapshot)
    exchange.stream_complete = True
    exchange.finish(Outcome.COMPLETED)
    exchange.ttfb_ms, exchange.duration_ms = 412.4, 5012.6
    return exchange


def _public(document: dict[str, Any]) -> dict[str, Any]:
    """As the repository hands rows over: JSON-ready, datetimes ISO 8601, no `_id`."""

    def iso(value: object) -> str:
        assert isinstance(value, datetime)
        return value.isoformat().replace("+00:00", "Z")

    out = json.loads(json.dumps(document, default=iso))
    out.pop("_id", None)
    return out


def _project(document: dict[str, Any], projection: dict[str, int]) -> dict[str, Any]:
    """An inclusion projection of dotted paths, as MongoDB applies it: a path
    through a missing or non-document value yields nothing."""
    out: dict[str, Any] = {}
    for path, keep in projection.items():
        if not keep:
            continue
        source: Any = document
        target = out
        *parents, leaf = path.split(".")
        for name in parents:
            source = source.get(name) if isinstance(source, dict) else None
            if not isinstance(source, dict):
                break
            target = target.setdefault(name, {})
        else:
            if isinstance(source, dict) and leaf in source:
                target[leaf] = source[leaf]
    return out


def _full() -> dict[str, Any]:
    return _public(build_document(_exchange(), PRICES))


def _minimal() -> dict[str, Any]:
    return _public(minimal_document(_exchange(), ValueError("no price table")))


def _listed(document: dict[str, Any]) -> dict[str, Any]:
    return shape.list_item(_project(document, SUMMARY_PROJECTION))


# ---- the shapes ------------------------------------------------------------------


def test_a_list_item_is_the_seeds_request_log_without_bodies_or_headers() -> None:
    document = _full()
    item = _listed(document)
    assert set(SEED_COMPONENTS["RequestLog"]) <= set(item)
    assert set(item["response"]) >= set(SEED_COMPONENTS["ResponseLog"])
    assert not HEAVY & set(item) and not HEAVY_RESPONSE & set(item["response"])
    assert KEY not in json.dumps(item)
    response = item["response"]
    assert response["statusCode"] == 200 and response["responseTime"] == 5013
    assert response["isStreaming"] is True and response["streamError"] is None
    assert response["completedAt"] == document["response"]["completedAt"]
    assert response["timeToFirstByte"] == 412 and response["streamComplete"] is True
    assert response["rateLimit"] == {
        k: document["response"]["rateLimit"][k] for k in SEED_COMPONENTS["RateLimitInfo"]
    }
    assert response["rateLimit"]["unifiedUtilization5h"] == 0.42
    assert item["userAgent"] == "claude-cli/2.1.3 (external, cli)"
    assert item["contentType"] == "application/json"
    assert item["organizationId"] == "org-fake-0001" and item["messageCount"] == 1
    # Ours stay where the detail has them.
    for name in ("usage", "tokens", "cost", "statusCode", "servedModel", "stopReason", "outcome"):
        assert item[name] == document[name], name
    assert item["tokens"] > 0 and item["stopReason"] == "tool_use"


def test_every_field_a_list_item_shows_is_read_from_the_log() -> None:
    """The projection brings every field the shape reads: none of a complete
    record's values is lost on the way to a list item or a summary item."""
    document = _full()
    assert _listed(document) == shape.list_item(document)
    assert shape.summary_item(_project(document, SUMMARY_PROJECTION)) == shape.summary_item(
        document
    )


def test_a_minimal_record_keeps_every_seed_field_as_null() -> None:
    document = _minimal()
    item = _listed(document)
    assert item["recordError"] == "ValueError: no price table"
    assert {k: item[k] for k in ("userAgent", "contentType", "conversationHash")} == {
        "userAgent": None,
        "contentType": None,
        "conversationHash": None,
    }
    assert item["requestId"] == document["requestId"] and item["model"]
    response = item["response"]
    assert set(response) >= set(SEED_COMPONENTS["ResponseLog"])
    assert response["statusCode"] == 200
    # Only the top level had the time: the same value, in both places.
    assert response["responseTime"] == item["responseTime"] == 5013
    assert response["isStreaming"] is None and response["completedAt"] is None
    assert response["rateLimit"] is None


def test_an_old_record_without_a_response_part_or_newer_fields() -> None:
    document = _full()
    for name in ("response", "userAgent", "contentType", "servedModel", "costIncomplete"):
        del document[name]
    item = _listed(document)
    assert set(SEED_COMPONENTS["RequestLog"]) <= set(item)
    assert item["userAgent"] is None and item["servedModel"] is None
    assert item["response"] == {
        "statusCode": 200,
        "responseTime": 5013,
        "isStreaming": None,  # the SSE relay is not the top level's "stream asked"
        "completedAt": None,
        "streamError": None,
        "rateLimit": None,
        "timeToFirstByte": 412,
        "streamComplete": None,
        "retryAfter": None,
    }
    document = _full()
    del document["statusCode"], document["responseTime"]
    assert shape.summary_item(document)["statusCode"] == 200
    assert shape.list_item(document)["responseTime"] == 5013


def test_a_null_or_foreign_rate_limit_is_null_in_the_list() -> None:
    document = _public(build_document(_exchange(rate_limits=False), PRICES))
    assert document["response"]["rateLimit"] is None
    assert _listed(document)["response"]["rateLimit"] is None
    assert shape.detail(document)["response"]["rateLimit"] is None
    # Only keys the seed does not name (retry-after alone, a new family): nothing
    # of the seed's, whether the read projected the rest away or not.
    foreign = _full()
    foreign["response"]["rateLimit"] = {"retryAfter": 5, "raw": {"unified-x": "1"}}
    assert shape.list_item(foreign)["response"]["rateLimit"] is None
    assert _listed(foreign)["response"]["rateLimit"] is None
    assert shape.detail(foreign)["response"]["rateLimit"]["raw"] == {"unified-x": "1"}
    # Some of the seed's keys: all of them, the unsent ones null.
    partial = _full()
    partial["response"]["rateLimit"] = {"unifiedStatus": "allowed", "raw": {}}
    limited = _listed(partial)["response"]["rateLimit"]
    assert limited == {
        **dict.fromkeys(SEED_COMPONENTS["RateLimitInfo"]),
        "unifiedStatus": "allowed",
    }


def test_a_summary_item_is_the_seeds_flat_request_summary() -> None:
    document = _full()
    item = shape.summary_item(_project(document, SUMMARY_PROJECTION))
    assert list(item) == [*shape.SEED_SUMMARY_FIELDS, *shape.SUMMARY_EXTRAS]
    assert item["statusCode"] == 200 and item["usage"] == document["usage"]
    minimal = shape.summary_item(_minimal())
    assert set(SEED_COMPONENTS["RequestSummary"]) <= set(minimal)
    assert minimal["stopReason"] is None and minimal["messageCount"] is None


def test_the_detail_is_whole_with_every_seed_field() -> None:
    document = _full()
    before = copy.deepcopy(document)
    full = shape.detail(document)
    assert document == before  # the caller's row is left as it was
    assert full["request"] == document["request"]
    assert full["response"]["headers"] == document["response"]["headers"]
    assert full["response"]["rateLimit"]["raw"] == document["response"]["rateLimit"]["raw"]
    minimal = shape.detail(_minimal())
    assert set(SEED_COMPONENTS["RequestLog"]) <= set(minimal)
    assert set(SEED_COMPONENTS["ResponseLog"]) <= set(minimal["response"])
    assert minimal["response"]["headers"] and minimal["response"]["completedAt"] is None
    # The list item is the detail with parts left out, every value in its place.
    item = shape.list_item(document)
    for name, value in item.items():
        if name != "response":
            assert full[name] == value, name
    for name, value in item["response"].items():
        if name != "rateLimit":
            assert full["response"][name] == value, name


def test_the_shapes_name_the_seeds_and_the_documents_fields() -> None:
    assert (*shape.SEED_REQUEST_FIELDS, "response") == SEED_COMPONENTS["RequestLog"]
    assert shape.SEED_RESPONSE_FIELDS == SEED_COMPONENTS["ResponseLog"]
    assert shape.SEED_RATE_LIMIT_FIELDS == SEED_COMPONENTS["RateLimitInfo"]
    assert shape.SEED_SUMMARY_FIELDS == SEED_COMPONENTS["RequestSummary"]
    # Everything an item carries is documented where it is.
    summary = {f.name for f in fields(RequestSummary)}
    assert set(shape.SEED_SUMMARY_FIELDS + shape.SUMMARY_EXTRAS) == summary
    assert set(shape.SEED_REQUEST_FIELDS + shape.LIST_EXTRAS) <= {
        f.name for f in fields(RequestLog)
    }
    response = {f.name for f in fields(ResponseLog)}
    assert set(shape.SEED_RESPONSE_FIELDS + shape.RESPONSE_EXTRAS) <= response
    assert set(shape.SEED_RATE_LIMIT_FIELDS) <= {f.name for f in fields(RateLimitInfo)}


# ---- through the handlers --------------------------------------------------------


class _Repo:
    """Rows as RequestsRepo hands them over (projected, JSON-ready)."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents

    async def page(self, page: int, limit: int, model: str | None) -> Any:
        rows = [_project(d, SUMMARY_PROJECTION) for d in self.documents]
        return rows, len(rows)

    async def summaries(self, *_: object) -> Any:
        return await self.page(1, 0, None)

    async def get(self, request_id: str) -> dict[str, Any] | None:
        found = [d for d in self.documents if d["requestId"].startswith(request_id)]
        return found[0] if len(found) == 1 else None


@pytest.fixture
async def served() -> tuple[Sanic, dict[str, Any], list[dict[str, Any]]]:
    app = create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false"})
    )
    _, resp = await app.asgi_client.get("/openapi.json")
    documents = [_full(), _minimal(), _public(build_document(_exchange(rate_limits=False), PRICES))]
    documents[1]["requestId"] = "0" * 32  # a minimal record has its own id
    app.ctx.requests_repo = _Repo(documents)
    return app, resp.json, documents


async def test_the_list_answers_request_logs_the_document_describes(served: Any) -> None:
    app, spec, documents = served
    _, resp = await app.asgi_client.get("/api/requests")
    assert resp.status == 200
    assert errors(json_schema(spec, "RequestList"), resp.json) == []
    listed = resp.json["requests"]
    assert [i["requestId"] for i in listed] == [d["requestId"] for d in documents]
    for item in listed:
        assert set(SEED_COMPONENTS["RequestLog"]) <= set(item)
        assert set(SEED_COMPONENTS["ResponseLog"]) <= set(item["response"])
        assert not HEAVY & set(item) and not HEAVY_RESPONSE & set(item["response"])
    assert listed[1]["recordError"] and listed[2]["response"]["rateLimit"] is None


async def test_the_summary_and_the_detail_answer_their_seed_shapes(served: Any) -> None:
    app, spec, documents = served
    _, resp = await app.asgi_client.get("/api/requests/summary")
    assert errors(json_schema(spec, "RequestSummaryList"), resp.json) == []
    for item in resp.json["requests"]:
        assert list(item) == [*shape.SEED_SUMMARY_FIELDS, *shape.SUMMARY_EXTRAS]
    for document in documents:
        _, resp = await app.asgi_client.get(f"/api/requests/{document['requestId']}")
        assert resp.status == 200
        assert errors(json_schema(spec, "RequestDetail"), resp.json) == []
        found = resp.json["request"]
        assert set(SEED_COMPONENTS["RequestLog"]) <= set(found)
        assert set(SEED_COMPONENTS["ResponseLog"]) <= set(found["response"])
        assert found["request"] == document["request"]  # the detail stays whole
