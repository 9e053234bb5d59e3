"""Every dashboard route's live answer against the seed's spec: a real proxy with
traffic answers each `/api/*` GET (and the settings PUT), and each answer carries
every field the seed's component for that operation names, with the seed's type
(string, integer, number, boolean, array, object; date-time strings parse). A seed
field may be null or absent only by the allow-lists below, each with its reason;
every seed field is seen with a value at least once. Our own fields beside the
seed's are checked against the served document (routes the seed lacks only there).

The seed's shapes are transcribed below (its file lost its indentation, so nesting
cannot be read back); `test_the_transcription_is_the_seeds` checks every name and
every one-line type against tests/openapi/seed_openapi.txt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyProcess, start_proxy, wait_recorded
from tests.fake_upstream import FakeUpstream
from tests.openapi.schemas import errors, json_schema
from tests.openapi.seed_spec import SEED_COMPONENTS, component_lines, seed_lines, seed_operations

# The seed's types (a date-time is a string in that format).
S, INT, N, B, DT, OBJECT = "string", "integer", "number", "boolean", "date-time", "object"


@dataclass(frozen=True)
class Obj:
    """An object of the seed: a component (its name) or an inline schema
    (`operationId field[]`), with its properties."""

    name: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Arr:
    item: Any


@dataclass(frozen=True)
class Map:
    value: Any  # additionalProperties


def obj(name: str, scalars: str, **nested: Any) -> Obj:
    """An object from its scalar fields as `name:type` words and its other fields."""
    return Obj(name, {**dict(w.split(":") for w in scalars.split()), **nested})


RATE_LIMIT_INFO = obj(
    "RateLimitInfo",
    "organizationId:string requestsLimit:integer requestsRemaining:integer "
    "requestsReset:string tokensLimit:integer tokensRemaining:integer tokensReset:string "
    "unifiedStatus:string unifiedUtilization5h:number unifiedReset5h:string "
    "unifiedUtilization7d:number unifiedReset7d:string",
)
RESPONSE_LOG = obj(
    "ResponseLog",
    "statusCode:integer responseTime:integer isStreaming:boolean completedAt:date-time "
    "streamError:string",
    rateLimit=RATE_LIMIT_INFO,
)
REQUEST_LOG = obj(
    "RequestLog",
    "requestId:string timestamp:date-time method:string endpoint:string model:string "
    "originalModel:string routedModel:string userAgent:string contentType:string "
    "conversationHash:string messageCount:integer organizationId:string",
    response=RESPONSE_LOG,
)
ANTHROPIC_USAGE = obj(
    "AnthropicUsage",
    "input_tokens:integer output_tokens:integer cache_creation_input_tokens:integer "
    "cache_read_input_tokens:integer service_tier:string",
)
REQUEST_SUMMARY = obj(
    "RequestSummary",
    "requestId:string timestamp:date-time method:string endpoint:string model:string "
    "originalModel:string routedModel:string statusCode:integer responseTime:integer "
    "conversationHash:string messageCount:integer stopReason:string",
    usage=ANTHROPIC_USAGE,
)
BY_MODEL = obj(
    "UsageStats requests_by_model{}",
    "request_count:integer input_tokens:integer output_tokens:integer cache_tokens:integer",
)
USAGE_STATS = obj(
    "UsageStats",
    "total_requests:integer total_input_tokens:integer total_output_tokens:integer "
    "total_cache_tokens:integer start_date:string end_date:string",
    requests_by_model=Map(BY_MODEL),
)
DAY = obj("DashboardStats dailyStats[]", "date:string tokens:integer requests:integer")
HOUR = obj(
    "HourlyStatsResponse hourlyStats[]",
    "hour:integer label:string tokens:integer requests:integer",
)
HOURLY_STATS = obj(
    "HourlyStatsResponse",
    "todayTokens:integer todayRequests:integer avgResponseTime:integer",
    hourlyStats=Arr(HOUR),
)
PER_MODEL = obj("ModelStatsResponse modelStats[]", "model:string tokens:integer requests:integer")
HEADER_RULE = obj(
    "HeaderRule", "header:string action:string value:string find:string enabled:boolean"
)
PROXY_SETTINGS = obj(
    "ProxySettings", "", requestHeaderRules=Arr(HEADER_RULE), responseHeaderRules=Arr(HEADER_RULE)
)
CONVERSATION = obj(
    "getConversations conversations[]",
    "id:string requestCount:integer startTime:date-time lastActivity:date-time "
    "duration:integer firstMessage:string projectPath:string projectName:string model:string",
)

# The 200 answer of each seed operation the dashboard serves, by operationId.
SEED_ANSWERS: dict[str, Any] = {
    "getRequests": obj("getRequests", "total:integer", requests=Arr(REQUEST_LOG)),
    "getRequestsSummary": obj(
        "getRequestsSummary",
        "total:integer offset:integer limit:integer",
        requests=Arr(REQUEST_SUMMARY),
    ),
    "getLatestRequestDate": obj("getLatestRequestDate", "latestDate:date-time"),
    "getRequestByID": obj("getRequestByID", "fullId:string", request=REQUEST_LOG),
    "getStats": USAGE_STATS,
    "getDashboardStats": obj("DashboardStats", "", dailyStats=Arr(DAY)),
    "getHourlyStats": HOURLY_STATS,
    "getModelStats": obj("ModelStatsResponse", "", modelStats=Arr(PER_MODEL)),
    "getOrganizations": obj("getOrganizations", "", organizations=Arr(S)),
    "getConversations": obj(
        "getConversations",
        "hasMore:boolean total:integer page:integer limit:integer",
        conversations=Arr(CONVERSATION),
    ),
    "getConversationByID": OBJECT,
    "getConversationsByProject": OBJECT,
    "getSettings": PROXY_SETTINGS,
    "saveSettings": PROXY_SETTINGS,
}
# Dashboard operations the seed does not have: checked against the served document only.
OURS_ONLY = {"getLatencyStats", "getRateLimitStats", "searchConversations"}

_NO_MODEL = "a request without a model (GET /v1/models)"
_NO_TEXT = "no user text to hash (GET /v1/models)"
# Seed fields that may be null, and why. `Name.*`: every field of that object.
NULLABLE: dict[str, str] = {
    "RequestLog.model": _NO_MODEL,
    "RequestLog.originalModel": _NO_MODEL,
    "RequestLog.routedModel": _NO_MODEL,
    "RequestLog.contentType": "a request without a body (GET) has no content-type",
    "RequestLog.conversationHash": _NO_TEXT,
    "RequestLog.organizationId": "the upstream sent no anthropic-organization-id",
    "ResponseLog.streamError": "the stream did not end in an error event, or no stream",
    "ResponseLog.rateLimit": "the response carried none of the seed's rate-limit headers",
    "RateLimitInfo.*": "the upstream did not send that rate-limit header",
    "RequestSummary.model": _NO_MODEL,
    "RequestSummary.originalModel": _NO_MODEL,
    "RequestSummary.routedModel": _NO_MODEL,
    "RequestSummary.conversationHash": _NO_TEXT,
    "RequestSummary.usage": "an error, or an endpoint that reports no usage",
    "RequestSummary.stopReason": "an error, a cut stream, or not a message",
    "getLatestRequestDate.latestDate": "the log is empty",
    "getConversations conversations[].projectPath": "no working directory stated",
    "getConversations conversations[].projectName": "no working directory stated",
}
# Seed fields that may be absent, and why.
ABSENT: dict[str, str] = {
    "HeaderRule.value": (
        "only on the actions that use it (set, replace): control/header_rules.py "
        "HeaderRule.to_json, as the served HeaderRule schema says"
    ),
    "HeaderRule.find": "only on replace rules (control/header_rules.py HeaderRule.to_json)",
}

PROJECT = "/src/contract-app"
SESSION = "5d0c8f7e-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
BODY = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 64,
    "system": f"You are Claude Code.\n\n<env>\nWorking directory: {PROJECT}\n</env>",
    "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": "check the contract of every route"}],
}
RULES = {
    "requestHeaderRules": [
        {"header": "x-contract-drop", "action": "block"},
        {"header": "x-contract-set", "action": "set", "value": "1"},
    ],
    "responseHeaderRules": [
        {
            "header": "x-contract-edit",
            "action": "replace",
            "find": "a",
            "value": "b",
            "enabled": False,
        }
    ],
}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


# ---- checking a value against a seed shape ----------------------------------------


@dataclass
class Check:
    problems: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # `Object.field`s seen with a value

    def value(self, value: Any, shape: Any, where: str) -> None:
        if isinstance(shape, Obj):
            self.object(value, shape, where)
        elif isinstance(shape, Arr):
            if not isinstance(value, list):
                self.problems.append(f"{where}: not an array: {value!r}")
                return
            for index, item in enumerate(value):
                self.value(item, shape.item, f"{where}[{index}]")
        elif isinstance(shape, Map):
            if not isinstance(value, dict):
                self.problems.append(f"{where}: not an object: {value!r}")
                return
            for key, item in value.items():
                self.value(item, shape.value, f"{where}.{key}")
        elif not _is(value, shape):
            self.problems.append(f"{where}: {value!r} is not {shape}")

    def object(self, value: Any, shape: Obj, where: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: not an object ({shape.name}): {value!r}")
            return
        for name, inner in shape.fields.items():
            key = f"{shape.name}.{name}"
            if name not in value:
                if key not in ABSENT:
                    self.problems.append(f"{where}: lacks {key}")
            elif value[name] is None:
                if key not in NULLABLE and f"{shape.name}.*" not in NULLABLE:
                    self.problems.append(f"{where}.{name}: null ({key})")
            else:
                self.seen.add(key)
                self.value(value[name], inner, f"{where}.{name}")


def _is(value: Any, kind: str) -> bool:
    if kind == S:
        return isinstance(value, str)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == N:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == B:
        return isinstance(value, bool)
    if kind == OBJECT:
        return isinstance(value, dict)
    if kind == DT:
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            return False
        return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    raise AssertionError(f"unknown seed type {kind}")


def _objects(shape: Any) -> Iterator[Obj]:
    if isinstance(shape, Obj):
        yield shape
        for inner in shape.fields.values():
            yield from _objects(inner)
    elif isinstance(shape, Arr):
        yield from _objects(shape.item)
    elif isinstance(shape, Map):
        yield from _objects(shape.value)


# ---- the transcription ---------------------------------------------------------------


def _operation_lines(operation_id: str) -> list[str]:
    """The seed's lines of one operation: from its method line to the next method
    or path (or the components)."""
    ((method, path),) = [k for k, v in seed_operations().items() if v == operation_id]
    lines = seed_lines()
    start = lines.index(f"{path}:", lines.index("paths:"))
    start = lines.index(f"{method.lower()}:", start)
    block = []
    for line in lines[start + 1 :]:
        if re.fullmatch(r"(/\S*|get|put|post|delete|patch|components):", line):
            break
        block.append(line)
    return block


def _one_line_types(lines: list[str]) -> dict[str, set[str]]:
    """`name: { type: T[, format: F] ... }` lines: the seed's type of each name."""
    found: dict[str, set[str]] = {}
    for line in lines:
        match = re.fullmatch(r"(\w+): \{ type: (\w+)(?:, format: ([\w-]+))?.*\}", line)
        if match:
            name, kind, fmt = match.groups()
            found.setdefault(name, set()).add(DT if fmt == "date-time" else kind)
    return found


def test_the_transcription_is_the_seeds() -> None:
    assert set(SEED_ANSWERS) <= set(seed_operations().values())
    for operation, answer in SEED_ANSWERS.items():
        block = _operation_lines(operation)
        if answer == OBJECT:
            assert "type: object" in block and "properties:" not in block, operation
            continue
        for obj in _objects(answer):
            component = obj.name.split()[0]
            if obj.name in SEED_COMPONENTS:
                assert set(obj.fields) == set(SEED_COMPONENTS[obj.name]), obj.name
            # A component's objects are in its block; an operation's inline ones in its.
            lines = component_lines(component) if component in SEED_COMPONENTS else block
            names = {line.split(":", 1)[0] for line in lines}
            assert set(obj.fields) <= names, (obj.name, set(obj.fields) - names)
            types = _one_line_types(lines)
            for name, kind in obj.fields.items():
                if isinstance(kind, str) and name in types:
                    assert types[name] == {kind}, (obj.name, name, types[name], kind)


def test_the_check_finds_what_the_seed_would_not_take() -> None:
    """The flat item `/api/requests` answered before (a RequestSummary), wrong
    types, disallowed nulls and a date that is not one are all reported."""
    flat = {
        "requestId": "893594ff1ded40dab76b560866257703",
        "timestamp": "2026-12-06T19:10:39.650000Z",
        "method": "POST",
        "endpoint": "/v1/messages",
        "model": "claude-sonnet-4-5-20250929",
        "originalModel": "claude-sonnet-4-5-20250929",
        "routedModel": "claude-sonnet-4-5-20250929",
        "messageCount": 1,
        "conversationHash": "12998c017066eb0d",
        "organizationId": "org-fake-0001",
        "statusCode": 200,
        "responseTime": 1,
    }
    check = Check()
    check.value({"requests": [flat], "total": 1}, SEED_ANSWERS["getRequests"], "getRequests")
    assert set(check.problems) == {
        "getRequests.requests[0]: lacks RequestLog.userAgent",
        "getRequests.requests[0]: lacks RequestLog.contentType",
        "getRequests.requests[0]: lacks RequestLog.response",
    }
    check = Check()
    wrong = {**flat, "messageCount": True, "timestamp": "2026-12-06 19:10", "method": None}
    check.value(wrong, REQUEST_SUMMARY, "item")
    assert set(check.problems) == {
        "item.timestamp: '2026-12-06 19:10' is not date-time",
        "item.method: null (RequestSummary.method)",
        "item.messageCount: True is not integer",
        "item: lacks RequestSummary.usage",
        "item: lacks RequestSummary.stopReason",
    }


# ---- the live proxy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    mongo_uri: str, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("live_contract")
    proxy = start_proxy(
        tmp,
        {
            "MONGODB_URI": mongo_uri,
            "ANTHROPIC_FORWARD_URL": upstream.url,
            "DATA_DIR": str(tmp / "data"),
        },
    )
    yield proxy
    proxy.stop()


async def _traffic(http: aiohttp.ClientSession, proxy: ProxyProcess) -> int:
    """A stream, a JSON answer, a 429, a stream cut by an error event, a models
    listing (no model, no body) and a token count: the nulls and values a log holds."""
    headers = {"x-api-key": "sk-ant-contract", "x-claude-code-session-id": SESSION}
    sent = [
        ("POST", "/v1/messages", {**BODY, "stream": True}, {"x-fake": "sse:tool_use"}),
        ("POST", "/v1/messages", BODY, {"x-fake": "json:thinking"}),
        ("POST", "/v1/messages", BODY, {"x-fake": "status:429"}),
        ("POST", "/v1/messages", {**BODY, "stream": True}, {"x-fake": "sse:overloaded_midstream"}),
        ("GET", "/v1/models", None, {}),
        ("POST", "/v1/messages/count_tokens", BODY, {}),
    ]
    for method, path, body, extra in sent:
        async with http.request(
            method, f"{proxy.url}{path}", json=body, headers={**headers, **extra}
        ) as resp:
            await resp.read()
    return len(sent)


def _around_now() -> dict[str, str]:
    """`start` and `end` around the traffic, for the routes that require a range."""
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
        "end": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    }


async def _get(
    http: aiohttp.ClientSession, proxy: ProxyProcess, path: str, params: dict[str, str]
) -> Any:
    async with http.get(f"{proxy.url}{path}", params=params) as resp:
        assert resp.status == 200, (path, resp.status, await resp.text())
        assert resp.content_type == "application/json", path
        return await resp.json()


async def test_every_dashboard_answer_has_the_seeds_fields(
    served: ProxyProcess, http: aiohttp.ClientSession
) -> None:
    await wait_recorded(http, served, await _traffic(http, served))
    async with http.put(f"{served.url}/api/settings", json=RULES) as resp:
        assert resp.status == 200
        saved = await resp.json()
    async with http.get(f"{served.url}/openapi.json") as resp:
        spec = await resp.json()

    listed = await _get(http, served, "/api/requests", {"limit": "100"})
    ids = [item["requestId"] for item in listed["requests"]]
    assert len(ids) == 6
    when = _around_now()
    # operationId -> every call made of it (path, query).
    calls: dict[str, list[tuple[str, dict[str, str]]]] = {
        "getRequests": [("/api/requests", {}), ("/api/requests", {"limit": "100"})],
        "getRequestsSummary": [("/api/requests/summary", {})],
        "getLatestRequestDate": [("/api/requests/latest-date", {})],
        "getRequestByID": [(f"/api/requests/{i}", {}) for i in ids]
        + [(f"/api/requests/{ids[0][:8]}", {})],
        "getStats": [("/api/stats", {}), ("/api/stats", {"start_date": when["start"]})],
        "getDashboardStats": [("/api/stats/dashboard", {})],
        "getHourlyStats": [("/api/stats/hourly", when)],
        "getModelStats": [("/api/stats/models", when)],
        "getOrganizations": [("/api/stats/organizations", {})],
        "getLatencyStats": [("/api/stats/latency", when)],
        "getRateLimitStats": [("/api/stats/ratelimits", when)],
        "getConversations": [("/api/conversations", {})],
        "getConversationByID": [
            (f"/api/conversations/{SESSION}", {}),
            (f"/api/conversations/{SESSION}", {"project": PROJECT}),
        ],
        "getConversationsByProject": [("/api/conversations/project", {"project": PROJECT})],
        "searchConversations": [("/api/conversations/search", {"q": "contract"})],
        "getSettings": [("/api/settings", {})],
    }
    served_gets = {
        op["operationId"]: op
        for path, ops in spec["paths"].items()
        if path.startswith("/api")
        for method, op in ops.items()
        if method == "get"
    }
    # A new dashboard route must be added here (and to the seed's answers, if the seed has it).
    assert set(calls) == set(served_gets)
    assert set(calls) == (set(SEED_ANSWERS) - {"saveSettings"}) | OURS_ONLY

    check = Check()
    answers: dict[str, list[Any]] = {"saveSettings": [saved]}
    for operation, made in calls.items():
        for path, params in made:
            answers.setdefault(operation, []).append(await _get(http, served, path, params))
    ours = {**served_gets, "saveSettings": spec["paths"]["/api/settings"]["put"]}
    for operation, bodies in answers.items():
        ref = ours[operation]["responses"]["200"]["content"]["application/json"]["schema"]
        schema = json_schema(spec, ref["$ref"].rsplit("/", 1)[1])
        for body in bodies:
            assert errors(schema, body) == [], operation
            if operation in SEED_ANSWERS:
                check.value(body, SEED_ANSWERS[operation], operation)
    assert check.problems == []

    # Every seed field was there with a value at least once, not only allowed null.
    expected = {
        f"{obj.name}.{name}"
        for answer in SEED_ANSWERS.values()
        for obj in _objects(answer)
        for name in obj.fields
    }
    assert expected - check.seen == set()
    # The traffic reached the allowances: nulls and absences really occur.
    assert any(item["model"] is None for item in listed["requests"])
    assert any(item["response"]["streamError"] for item in listed["requests"])
    assert "value" not in saved["requestHeaderRules"][0]
    # Our routes answered something to check, not only empty lists.
    assert answers["searchConversations"][0]["total"] == 1
    assert answers["getRateLimitStats"][0]["latest"] and answers["getLatencyStats"][0]["latency"]
