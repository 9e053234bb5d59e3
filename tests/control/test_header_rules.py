"""Header rules: validation (the 400s of PUT /api/settings) and application."""

from __future__ import annotations

import json

import pytest

from control.header_rules import (
    ACTIONS,
    MAX_HEADER_NAME,
    MAX_RULES,
    MAX_VALUE_CHARS,
    HeaderRule,
    RuleError,
    apply_rules,
    parse_settings,
    settings_document,
    validate_rules,
)

# ---------------------------------------------------------------------------------
# validate_rules
# ---------------------------------------------------------------------------------


def test_valid_rules_parse() -> None:
    rules = validate_rules(
        [
            {"header": "X-Debug", "action": "block"},
            {"header": "user-agent", "action": "set", "value": "proxy/1", "enabled": False},
            {"header": "anthropic-beta", "action": "replace", "find": "a,", "value": ""},
            {"header": "x-empty", "action": "set", "value": ""},
            {"header": "x-r", "action": "replace", "find": "old"},
        ]
    )
    assert rules == [
        HeaderRule("X-Debug", "block"),
        HeaderRule("user-agent", "set", value="proxy/1", enabled=False),
        HeaderRule("anthropic-beta", "replace", value="", find="a,"),
        HeaderRule("x-empty", "set", value=""),
        HeaderRule("x-r", "replace", find="old"),
    ]


def test_empty_list_is_valid() -> None:
    assert validate_rules([]) == []


_OK = {"header": "x-a", "action": "set", "value": "v"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"header": "x"}, "must be a list"),
        ("[]", "must be a list"),
        (None, "must be a list"),
        ([_OK, "x"], "rules[1]: must be an object"),
        ([_OK, ["x"]], "rules[1]: must be an object"),
        ([{**_OK, "extra": 1}], "rules[0].extra: unknown field"),
        ([{"action": "block"}], "rules[0].header: must be a non-empty string"),
        ([{"header": "", "action": "block"}], "rules[0].header: must be a non-empty string"),
        ([{"header": 5, "action": "block"}], "rules[0].header: must be a non-empty string"),
        ([{"header": "x y", "action": "block"}], "rules[0].header: 'x y' is not a valid"),
        ([{"header": "x\r\ny", "action": "block"}], "rules[0].header"),
        (
            [_OK, {"header": "Content-Length", "action": "block"}],
            "rules[1].header: 'Content-Length'",
        ),
        (
            [{"header": "x", "action": "drop"}],
            "rules[0].action: must be one of block, set, replace",
        ),
        ([{"header": "x"}], "rules[0].action"),
        ([{"header": "x", "action": "set"}], "rules[0].value: is required for action 'set'"),
        ([{"header": "x", "action": "replace", "value": "v"}], "rules[0].find: is required"),
        ([{"header": "x", "action": "replace", "find": ""}], "rules[0].find: is required"),
        ([{**_OK, "value": "a\r\nX-Evil: 1"}], "rules[0].value: must not contain CR, LF, NUL"),
        ([{**_OK, "value": "a\rb"}], "rules[0].value: must not contain"),
        ([{**_OK, "value": "a\x00b"}], "rules[0].value: must not contain"),
        ([{**_OK, "value": "v" * 2049}], "rules[0].value: must be at most 2048 characters"),
        ([{**_OK, "value": "é" * 2049}], "rules[0].value: must be at most 2048 characters"),
        ([{**_OK, "enabled": "true"}], "rules[0].enabled: must be true or false"),
        ([_OK] * (MAX_RULES + 1), f"at most {MAX_RULES} rules"),
    ],
)
def test_invalid_rules_name_index_and_field(raw: object, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate_rules(raw)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "header",
    [
        "connection",
        "Keep-Alive",
        "proxy-connection",
        "TE",
        "trailer",
        "Transfer-Encoding",
        "upgrade",
        "content-length",
        "Host",
    ],
)
def test_hop_by_hop_and_framing_headers_are_refused(header: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate_rules([{"header": header, "action": "block"}])
    assert caught.value.index == 0
    assert caught.value.field == "header"
    assert "hop-by-hop or framing" in caught.value.message


def test_limits_are_inclusive() -> None:
    assert len(validate_rules([_OK] * MAX_RULES)) == MAX_RULES
    assert validate_rules([{**_OK, "value": "v" * 2048, "header": "x-" + "a" * 254}])
    assert validate_rules([{**_OK, "value": "\U0001f600" * 2048}])  # characters, not bytes
    assert validate_rules([{**_OK, "value": "tab\tis fine, obs-text é too"}])


def test_where_prefixes_the_message() -> None:
    with pytest.raises(RuleError, match=r"^responseHeaderRules\[0\]\.action"):
        validate_rules([{"header": "x", "action": "nope"}], "responseHeaderRules")


# ---------------------------------------------------------------------------------
# Every field for every action (the OpenAPI HeaderRule says the same:
# tests/openapi/test_header_rule_schema.py checks the two agree)
# ---------------------------------------------------------------------------------

_ABSENT = object()
# A valid rule of each action; each case below changes one field of it.
_BASE: dict[str, dict[str, object]] = {
    "block": {"header": "x-a", "action": "block"},
    "set": {"header": "x-a", "action": "set", "value": "v"},
    "replace": {"header": "x-a", "action": "replace", "find": "f"},
}
_LONG = "a" * (MAX_VALUE_CHARS + 1)
_UNUSED = "is not used by action"
_HEADER = "is not a valid header name"


def _each(expected: str | None) -> dict[str, str | None]:
    return dict.fromkeys(ACTIONS, expected)


# (field, value, {action: None when accepted, else a fragment of the error}).
FIELD_CASES: list[tuple[str, object, dict[str, str | None]]] = [
    ("header", "X-Custom_1.~!#$%&'*+^`|", _each(None)),
    ("header", "a" * MAX_HEADER_NAME, _each(None)),
    ("header", "a" * (MAX_HEADER_NAME + 1), _each(_HEADER)),
    ("header", _ABSENT, _each("must be a non-empty string")),
    ("header", "", _each("must be a non-empty string")),
    ("header", None, _each("must be a non-empty string")),
    ("header", 5, _each("must be a non-empty string")),
    ("header", "x y", _each(_HEADER)),
    ("header", "x:y", _each(_HEADER)),
    ("header", "é", _each(_HEADER)),
    ("header", "Transfer-Encoding", _each("hop-by-hop or framing")),
    ("header", "te", _each("hop-by-hop or framing")),
    ("header", "te-x", _each(None)),  # only the exact name is refused
    ("action", _ABSENT, _each("must be one of block, set, replace")),
    ("action", None, _each("must be one of")),
    ("action", "BLOCK", _each("must be one of")),
    ("action", "drop", _each("must be one of")),
    ("action", ["block"], _each("must be one of")),
    ("enabled", _ABSENT, _each(None)),
    ("enabled", False, _each(None)),
    ("enabled", None, _each("must be true or false")),
    ("enabled", "true", _each("must be true or false")),
    ("enabled", 1, _each("must be true or false")),
    ("value", _ABSENT, {"block": None, "set": "is required for action 'set'", "replace": None}),
    ("value", None, {"block": None, "set": "is required for action 'set'", "replace": None}),
    ("value", "", _each(None)),
    ("value", "v", {"block": _UNUSED, "set": None, "replace": None}),
    ("value", "a" * MAX_VALUE_CHARS, {"block": _UNUSED, "set": None, "replace": None}),
    ("value", "é" * MAX_VALUE_CHARS, {"block": _UNUSED, "set": None, "replace": None}),
    ("value", _LONG, {"block": _UNUSED, "set": "at most 2048", "replace": "at most 2048"}),
    ("value", "a\r\nX: 1", {"block": _UNUSED, "set": "control", "replace": "control"}),
    ("value", "a\x7f", {"block": _UNUSED, "set": "control", "replace": "control"}),
    ("value", "tab\tok", {"block": _UNUSED, "set": None, "replace": None}),
    ("value", "\ud800", {"block": _UNUSED, "set": "surrogate", "replace": "surrogate"}),
    ("value", 5, {"block": _UNUSED, "set": "must be a string", "replace": "must be a string"}),
    ("find", _ABSENT, {"block": None, "set": None, "replace": "is required for action"}),
    ("find", None, {"block": None, "set": None, "replace": "is required for action"}),
    ("find", "", {"block": None, "set": None, "replace": "non-empty"}),
    ("find", "f", {"block": _UNUSED, "set": _UNUSED, "replace": None}),
    ("find", "a" * MAX_VALUE_CHARS, {"block": _UNUSED, "set": _UNUSED, "replace": None}),
    # The issue's case: a `block` rule took any `find`, and GET then broke the spec.
    ("find", _LONG, {"block": _UNUSED, "set": _UNUSED, "replace": "at most 2048"}),
    ("find", "a\nb", {"block": _UNUSED, "set": _UNUSED, "replace": "control"}),
    ("find", "\udfff", {"block": _UNUSED, "set": _UNUSED, "replace": "surrogate"}),
    ("find", 5, {"block": _UNUSED, "set": _UNUSED, "replace": "must be a string"}),
    ("extra", 1, _each("unknown field")),
]


def _with(action: str, field: str, value: object) -> dict[str, object]:
    rule = dict(_BASE[action])
    if value is _ABSENT:
        rule.pop(field, None)
    else:
        rule[field] = value
    return rule


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    FIELD_CASES,
    ids=[f"{f}={str(v)[:12]!r}" for f, v, _ in FIELD_CASES],
)
def test_every_field_for_every_action(
    action: str, field: str, value: object, expected: dict[str, str | None]
) -> None:
    rule = _with(action, field, value)
    if expected[action] is None:
        [parsed] = validate_rules([rule])
        assert parsed.action == rule.get("action", parsed.action)
        return
    with pytest.raises(RuleError) as caught:
        validate_rules([rule])
    assert expected[action] in caught.value.message
    assert caught.value.field == field and caught.value.index == 0


def test_fields_an_action_does_not_use_are_not_kept() -> None:
    # "" (what a client serialising every field sends) is accepted and dropped, so
    # the settings document answers only what the action reads.
    rules = validate_rules(
        [
            {"header": "x", "action": "block", "value": "", "find": None},
            {"header": "x", "action": "set", "value": "v", "find": ""},
        ]
    )
    assert [r.to_json() for r in rules] == [
        {"header": "x", "action": "block", "enabled": True},
        {"header": "x", "action": "set", "value": "v", "enabled": True},
    ]


def test_lenient_drops_unused_fields_of_stored_rules_but_checks_the_rest() -> None:
    stored = [
        {"header": "x-a", "action": "block", "find": _LONG, "value": "a\nb"},
        {"header": "x-b", "action": "set", "value": "v", "find": _LONG},
    ]
    assert validate_rules(stored, lenient=True) == [
        HeaderRule("x-a", "block"),
        HeaderRule("x-b", "set", value="v"),
    ]
    with pytest.raises(RuleError, match=r"rules\[0\]\.value: is not used"):
        validate_rules(stored)
    with pytest.raises(RuleError, match="at most 2048"):
        validate_rules([{"header": "x", "action": "set", "value": _LONG}], lenient=True)
    assert parse_settings({"requestHeaderRules": stored}, lenient=True)[0][0].find is None


# ---------------------------------------------------------------------------------
# apply_rules
# ---------------------------------------------------------------------------------

HEADERS = [
    ("Accept", "application/json"),
    ("X-Multi", "one"),
    ("anthropic-beta", "a-2025,b-2025"),
    ("x-multi", "two"),
    ("User-Agent", "claude-cli/2.0"),
]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([], HEADERS),
        (
            [HeaderRule("x-MULTI", "block")],
            [HEADERS[0], HEADERS[2], HEADERS[4]],
        ),
        (
            [HeaderRule("X-Multi", "set", value="only")],
            [HEADERS[0], ("X-Multi", "only"), HEADERS[2], HEADERS[4]],
        ),
        (
            [HeaderRule("x-new", "set", value="v")],
            [*HEADERS, ("x-new", "v")],
        ),
        (
            [HeaderRule("anthropic-beta", "replace", find="a-2025,", value="")],
            [HEADERS[0], HEADERS[1], ("anthropic-beta", "b-2025"), HEADERS[3], HEADERS[4]],
        ),
        (
            [HeaderRule("X-MULTI", "replace", find="o", value="0")],
            [HEADERS[0], ("X-Multi", "0ne"), HEADERS[2], ("x-multi", "tw0"), HEADERS[4]],
        ),
        (
            [HeaderRule("user-agent", "replace", find="claude", value=None)],
            [*HEADERS[:4], ("User-Agent", "-cli/2.0")],
        ),
        (
            # find is case-sensitive
            [HeaderRule("user-agent", "replace", find="CLAUDE", value="x")],
            HEADERS,
        ),
        (
            [HeaderRule("x-absent", "replace", find="a", value="b")],
            HEADERS,
        ),
        (
            [HeaderRule("x-absent", "block")],
            HEADERS,
        ),
        (
            [
                HeaderRule("accept", "block", enabled=False),
                HeaderRule("x-new", "set", "v", enabled=False),
            ],
            HEADERS,
        ),
        (
            # In order: set then block leaves nothing; block then set leaves the set value.
            [HeaderRule("x-multi", "set", value="s"), HeaderRule("x-multi", "block")],
            [HEADERS[0], HEADERS[2], HEADERS[4]],
        ),
        (
            [HeaderRule("x-multi", "block"), HeaderRule("x-multi", "set", value="s")],
            [HEADERS[0], HEADERS[2], HEADERS[4], ("x-multi", "s")],
        ),
        (
            [
                HeaderRule("accept", "set", value="text/plain"),
                HeaderRule("Accept", "replace", find="plain", value="html"),
            ],
            [("accept", "text/html"), *HEADERS[1:]],
        ),
    ],
)
def test_apply_rules(rules: list[HeaderRule], expected: list[tuple[str, str]]) -> None:
    original = list(HEADERS)
    assert apply_rules(HEADERS, rules) == expected
    assert original == HEADERS  # pure: the input is not modified


def test_apply_rules_accepts_validated_rules_end_to_end() -> None:
    rules = validate_rules(
        [
            {"header": "x-api-key", "action": "block"},
            {"header": "x-team", "action": "set", "value": "platform"},
        ]
    )
    assert apply_rules([("X-Api-Key", "sk"), ("a", "b")], rules) == [
        ("a", "b"),
        ("x-team", "platform"),
    ]


# ---------------------------------------------------------------------------------
# settings document
# ---------------------------------------------------------------------------------


def test_settings_round_trip() -> None:
    request = [HeaderRule("x-a", "set", value="1"), HeaderRule("x-b", "block", enabled=False)]
    response = [HeaderRule("server", "replace", find="a", value="b")]
    document = settings_document(request, response)
    assert document == {
        "requestHeaderRules": [
            {"header": "x-a", "action": "set", "value": "1", "enabled": True},
            {"header": "x-b", "action": "block", "enabled": False},
        ],
        "responseHeaderRules": [
            {"header": "server", "action": "replace", "value": "b", "find": "a", "enabled": True}
        ],
    }
    assert parse_settings(document) == (request, response)
    assert parse_settings(json.dumps(document).encode()) == (request, response)
    assert parse_settings(json.dumps(document)) == (request, response)


def test_settings_missing_lists_mean_no_rules() -> None:
    assert parse_settings({}) == ([], [])
    assert parse_settings(b'{"responseHeaderRules":[]}') == ([], [])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        ([], "must be a JSON object"),
        ({"requestHeaderRules": [], "extra": 1}, "unknown key 'extra'"),
        ({"requestheaderrules": []}, "unknown key 'requestheaderrules'"),
        ({"requestHeaderRules": None}, "requestHeaderRules: must be a list"),
        (
            {"responseHeaderRules": [{"header": "host", "action": "block"}]},
            "responseHeaderRules[0].header",
        ),
        (
            {"requestHeaderRules": [_OK, {"header": "x", "action": "set"}]},
            "requestHeaderRules[1].value",
        ),
    ],
)
def test_parse_settings_rejects(body: object, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_settings(body)
    assert fragment in str(caught.value)
