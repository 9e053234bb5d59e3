"""The document keeps the seed's contract (tests/openapi/seed_spec.py): its
operationIds, its components and their fields; every operationId is unique; numbers
are wide enough for what they count; the rate-limit schema lists every key the
parser emits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sanic import Sanic

from app import create_app
from runtime.settings import Settings
from storage.ratelimits import parse_rate_limits
from tests.openapi.schemas import errors, json_schema
from tests.openapi.seed_spec import (
    SEED_COMPONENTS,
    component_lines,
    seed_lines,
    seed_operations,
)

Sanic.test_mode = True

# Seed fields this document leaves out on purpose, and why.
DEVIATIONS = {
    ("ModelsResponse", "object"): (
        "the list is the upstream's, forwarded: Anthropic's has `data`, `has_more`, "
        "`first_id`, `last_id`, no `object`"
    ),
}

# Integer properties and parameters that stay int32, and why (openapi/integers.py
# holds the rule; this is the reviewed list it must produce, no more, no less).
STAY_INT32 = {
    "statusCode": "HTTP status",
    "hour": "0-23",
    "bucket": "minutes, a fixed list up to a day",
    "page": "query parameter, at most 1,000,000",
    "limit": "query parameter, at most 10,000",
    "offset": "query parameter, at most 10,000,000",
    "in_flight": "concurrent requests of one server",
    "worker_in_flight": "concurrent requests of one worker",
    "index": "position in one conversation",
    "segment": "history segment of one conversation",
    "schemaVersion": "document format version",
}
# Names that say the value counts something unbounded (tokens, requests, bytes,
# milliseconds since 1970 or of a duration): never int32.
WIDE = re.compile(
    r"tokens?|^ts$|bytes|count|total|requests|errors|deleted|duration|time|matches|"
    r"^status_|truncated|retryafter|remaining",
    re.IGNORECASE,
)


@pytest.fixture
async def spec() -> dict[str, Any]:
    app = create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9"}))
    _, resp = await app.asgi_client.get("/openapi.json")
    assert resp.status == 200
    return resp.json


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }


def _shape(path: str) -> str:
    """A path with its parameters unnamed: the seed's `{id}` is this one's `{request_id}`."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_seed_file_reads_whole() -> None:
    operations = seed_operations()
    assert len(operations) == 22 and len(set(operations.values())) == 22
    assert operations[("POST", "/v1/messages")] == "createMessage"
    assert operations[("PUT", "/api/settings")] == "saveSettings"
    # Every component of the file is transcribed, each field found in its block.
    lines = seed_lines()
    section = lines[lines.index("schemas:") + 1 :]
    named = {m.group(1) for line in section if (m := re.fullmatch(r"([A-Z]\w*):", line))}
    assert named == set(SEED_COMPONENTS)
    for name, fields in SEED_COMPONENTS.items():
        keys = {line.split(":", 1)[0] for line in component_lines(name)}
        assert set(fields) <= keys, (name, set(fields) - keys)


async def test_operation_ids_are_unique_and_the_seeds(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId") for op in _operations(spec).values()]
    assert all(ids), "every operation has an operationId"
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    ours = {
        (method, _shape(path)): op["operationId"]
        for (method, path), op in _operations(spec).items()
    }
    for (method, path), seed_id in seed_operations().items():
        assert ours.get((method, _shape(path))) == seed_id, f"{method} {path}"


async def test_every_method_of_the_passthrough_is_its_own_operation(spec: dict[str, Any]) -> None:
    methods = spec["paths"]["/v1/{path}"]
    assert set(methods) == {"get", "post", "put", "patch", "delete", "head", "options"}
    assert {op["operationId"] for op in methods.values()} == {
        f"passthrough{m.capitalize()}" for m in methods
    }
    # HEAD and OPTIONS are forwarded like the rest: same security and errors.
    assert methods["head"]["security"] == methods["get"]["security"]
    assert methods["options"]["responses"] == methods["get"]["responses"]
    assert spec["paths"]["/"] == {"head": spec["paths"]["/"]["head"]}
    assert spec["paths"]["/"]["head"]["operationId"] == "startupProbe"


async def test_the_seeds_components_are_here_with_its_fields(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name, fields in SEED_COMPONENTS.items():
        assert name in schemas, name
        have = set(schemas[name].get("properties", {}))
        missing = {f for f in fields if f not in have and (name, f) not in DEVIATIONS}
        assert not missing, f"{name} lacks {missing}"
    for name, field in DEVIATIONS:
        assert field not in schemas[name].get("properties", {}), "a deviation that is not one"
    request = schemas["AnthropicRequest"]["properties"]
    assert {"$ref": "#/components/schemas/SystemMessage"} in [
        branch.get("items") for branch in request["system"]["oneOf"]
    ]
    assert request["tools"]["items"] == {"$ref": "#/components/schemas/Tool"}


def _numbers(node: Any, name: str | None = None) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Every integer and number schema in the document with the property or
    parameter name it describes (items, map values and branches inherit it)."""
    if isinstance(node, list):
        for item in node:
            yield from _numbers(item, name)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") in ("integer", "number"):
        yield name, node
    for key, value in node.items():
        if key == "properties":
            for prop, sub in value.items():
                yield from _numbers(sub, prop)
        elif key == "parameters":
            for param in value:
                yield from _numbers(param.get("schema"), param.get("name"))
        elif key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
            yield from _numbers(value, name)
        else:
            yield from _numbers(value, None)


async def test_integers_that_count_are_64_bit(spec: dict[str, Any]) -> None:
    integers = [(n, s) for n, s in _numbers(spec) if s["type"] == "integer"]
    assert len(integers) > 150  # the walk reached the whole document
    for name, schema in integers:
        assert schema.get("format") in ("int32", "int64"), (name, schema)
        if WIDE.search(name or ""):
            assert schema["format"] == "int64", (name, schema)
    narrow = {name for name, schema in integers if schema["format"] == "int32"}
    assert narrow == set(STAY_INT32)
    wide = {name for name, schema in integers if schema["format"] == "int64"}
    assert {"ts", "tokens", "total_input_tokens", "bodyBytes", "duration", "max_tokens"} <= wide
    assert not any(WIDE.search(name) for name in STAY_INT32)


async def test_numbers_are_doubles_and_costs_are_numbers(spec: dict[str, Any]) -> None:
    numbers = list(_numbers(spec))
    for name, schema in numbers:
        if schema["type"] == "number":
            assert schema.get("format") == "double", (name, schema)
        if re.search(r"(^|_)usd$|^cost$", name or ""):
            assert schema["type"] == "number", (name, schema)
    assert {"cost_usd", "total_cost_usd", "usd"} <= {n for n, s in numbers if s["type"] == "number"}


def _every_rate_limit_header(value: str | None = None) -> list[tuple[str, str]]:
    """Each header family storage/ratelimits.py reads, with plausible values, or
    `value` everywhere (one that parses as nothing)."""
    headers = [("retry-after", value or "30")]
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        headers += [
            (f"anthropic-ratelimit-{kind}-limit", value or "4000"),
            (f"anthropic-ratelimit-{kind}-remaining", value or "3999"),
            (f"anthropic-ratelimit-{kind}-reset", value or "2026-11-25T12:00:01Z"),
        ]
    for window in ("", "5h-", "7d-", "7d_opus-", "7d-sonnet-"):
        headers += [
            (f"anthropic-ratelimit-unified-{window}status", value or "allowed"),
            (f"anthropic-ratelimit-unified-{window}reset", value or "1795000000"),
        ]
        if window:
            headers.append((f"anthropic-ratelimit-unified-{window}utilization", value or "0.42"))
    headers += [
        ("anthropic-ratelimit-unified-representative-claim", value or "five_hour"),
        ("anthropic-ratelimit-unified-fallback", value or "available"),
        ("anthropic-ratelimit-unified-overage-status", value or "rejected"),
        ("anthropic-ratelimit-unified-overage-reset", value or "1795000000"),
        ("anthropic-ratelimit-something-new", value or "kept raw"),
    ]
    return headers


@pytest.mark.parametrize("value", [None, "n/a"])
async def test_the_rate_limit_schema_lists_every_key_the_api_returns(
    spec: dict[str, Any], value: str | None
) -> None:
    info = parse_rate_limits(_every_rate_limit_header(value), "org-1")
    assert info is not None
    assert {"unifiedStatus5h", "unifiedStatus7d", "unifiedUtilization7dSonnet"} <= set(info)
    schema = json_schema(spec, "RateLimitInfo", closed=True)
    assert errors(schema, info) == [], json.dumps(info)
    # The stats' latest snapshot copies recorded values, strings included.
    latest = {"organizationId": "org-1", "timestamp": "2026-12-01T00:00:00Z", "ts": 1}
    latest |= {
        k: info.get(k)
        for k in spec["components"]["schemas"]["RateLimitLatest"]["properties"]
        if k in info
    }
    assert errors(json_schema(spec, "RateLimitLatest", closed=True), latest) == []


async def test_error_shapes_per_api(spec: dict[str, Any]) -> None:
    """/api/*: the seed's ErrorResponse; /v1/*: Anthropic's; the request log's 503
    is described as what it is, not as an overload."""
    schemas = spec["components"]["schemas"]
    assert set(schemas["ErrorResponse"]["properties"]) == {"error", "details"}
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["AnthropicErrorResponse"]["properties"]) == {"type", "error", "request_id"}
    seen = set()
    for (method, path), op in _operations(spec).items():
        for status, response in op["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            if path.startswith("/api/"):
                assert schema == "ErrorResponse", (method, path, status)
                assert "overload" not in json.dumps(response).lower(), (method, path)
            elif path.startswith("/v1/"):
                assert schema == "AnthropicErrorResponse", (method, path, status)
            else:
                assert (method, path, status, schema) == (
                    "GET",
                    "/health",
                    "503",
                    "DrainingResponse",
                )
            seen.add((path.split("/")[1], status))
    assert {("api", "503"), ("api", "401"), ("api", "403"), ("v1", "502")} <= seen
