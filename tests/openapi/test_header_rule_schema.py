"""The settings validation and the served OpenAPI schema agree: every limit is read
from the document itself (lengths, counts, enums, required fields per action), and
every rule of a grid around those limits is accepted by `validate_rules` exactly
when the schema admits it. A change to either side alone fails here."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from sanic import Sanic

from app import create_app
from control.header_rules import RuleError, parse_settings, validate_rules
from runtime.settings import Settings
from tests.openapi.schemas import errors, json_schema

Sanic.test_mode = True
_ABSENT = object()


@pytest.fixture
async def spec() -> dict[str, Any]:
    app = create_app(Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9"}))
    _, resp = await app.asgi_client.get("/openapi.json")
    return resp.json


def _limits(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    rule = schemas["HeaderRule"]
    props = rule["properties"]
    assert props["value"]["maxLength"] == props["find"]["maxLength"]
    lists = schemas["ProxySettings"]["properties"]
    assert lists["requestHeaderRules"]["maxItems"] == lists["responseHeaderRules"]["maxItems"]
    return {
        "header": props["header"]["maxLength"],
        "text": props["value"]["maxLength"],
        "actions": props["action"]["enum"],
        "rules": lists["requestHeaderRules"]["maxItems"],
        "required": rule["required"],
        # action -> the text fields its branch requires
        "needs": {
            branch["properties"]["action"]["enum"][0]: branch.get("required", [])
            for branch in rule["oneOf"]
        },
    }


def _accepts(rule: dict[str, Any]) -> bool:
    try:
        validate_rules([rule])
    except RuleError:
        return False
    return True


def _texts(limit: int) -> list[object]:
    return [
        _ABSENT,
        None,
        "",
        "v",
        "tab\tok",
        "a" * limit,
        "a" * (limit + 1),
        "é" * limit,
        "a\nb",
        "\x00",
        "\x7f",
        5,
    ]


def _rule(**fields: object) -> dict[str, object]:
    return {k: v for k, v in fields.items() if v is not _ABSENT}


def test_the_limits_are_the_documented_ones(spec: dict[str, Any]) -> None:
    limits = _limits(spec)
    assert limits["actions"] == ["block", "set", "replace"]
    assert limits["required"] == ["header", "action"]
    assert limits["needs"] == {"block": [], "set": ["value"], "replace": ["find"]}
    for field, limit in (("header", limits["header"]), ("value", limits["text"])):
        base = {"header": "x", "action": "set", "value": "v"}
        assert _accepts({**base, field: "a" * limit})
        assert not _accepts({**base, field: "a" * (limit + 1)})
    rule = {"header": "x", "action": "block"}
    assert len(validate_rules([rule] * limits["rules"])) == limits["rules"]
    with pytest.raises(RuleError):
        validate_rules([rule] * (limits["rules"] + 1))


def test_value_and_find_agree_for_every_action(spec: dict[str, Any]) -> None:
    limits = _limits(spec)
    schema = json_schema(spec, "HeaderRule")
    texts = _texts(limits["text"])
    disagree = []
    for action, value, find in itertools.product([*limits["actions"], "drop", None], texts, texts):
        rule = _rule(header="x-a", action=action, value=value, find=find)
        if _accepts(rule) != (not errors(schema, rule)):
            disagree.append(json.dumps(rule)[:120])
    assert disagree == []


def test_header_enabled_and_unknown_fields_agree(spec: dict[str, Any]) -> None:
    limits = _limits(spec)
    schema = json_schema(spec, "HeaderRule")
    headers: list[object] = [
        _ABSENT,
        "",
        "x",
        "a" * limits["header"],
        "a" * (limits["header"] + 1),
        "x y",
        "é",
        "Content-Length",
        "HOST",
        "te-x",
        5,
    ]
    enabled: list[object] = [_ABSENT, True, False, None, "true", 1]
    disagree = []
    for action in limits["actions"]:
        valid = {"block": {}, "set": {"value": "v"}, "replace": {"find": "f"}}[action]
        for header, on in itertools.product(headers, enabled):
            rule = _rule(header=header, action=action, enabled=on, **valid)
            if _accepts(rule) != (not errors(schema, rule)):
                disagree.append(json.dumps(rule)[:120])
        rule = {"header": "x", "action": action, "note": "?", **valid}
        assert not _accepts(rule) and errors(schema, rule)
    assert disagree == []


def test_settings_documents_agree(spec: dict[str, Any]) -> None:
    limits = _limits(spec)
    schema = json_schema(spec, "ProxySettings")
    rule = {"header": "x", "action": "block"}
    for body in (
        {},
        {"requestHeaderRules": []},
        {"requestHeaderRules": [rule] * limits["rules"]},
        {"responseHeaderRules": [rule] * (limits["rules"] + 1)},
        {"requestHeaderRules": None},
        {"requestHeaderRules": rule},
        {"rules": []},
        {"requestHeaderRules": [{"header": "x", "action": "block", "find": "a" * 3000}]},
    ):
        try:
            parse_settings(body)
            accepted = True
        except RuleError:
            accepted = False
        assert accepted == (not errors(schema, body)), json.dumps(body)[:120]


def test_lone_surrogates_are_refused_as_the_schema_says(spec: dict[str, Any]) -> None:
    # JSON Schema cannot state it (a lone surrogate is not a character to its
    # validators); the description does, and the validation refuses it.
    assert "surrogate" in spec["components"]["schemas"]["HeaderRule"]["description"]
    assert not _accepts({"header": "x", "action": "set", "value": "a\ud800"})
