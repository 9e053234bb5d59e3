"""Header rules: validation (the 400s of PUT /api/settings) and application."""

from __future__ import annotations

import json

import pytest

from control.header_rules import (
    MAX_RULES,
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
        ([{"header": "x:y", "action": "block"}], "rules[0].header"),
        ([{"header": "x\r\ny", "action": "block"}], "rules[0].header"),
        ([{"header": "é", "action": "block"}], "rules[0].header"),
        ([{"header": "x" * 300, "action": "block"}], "rules[0].header"),
        (
            [_OK, {"header": "Content-Length", "action": "block"}],
            "rules[1].header: 'Content-Length'",
        ),
        (
            [{"header": "x", "action": "drop"}],
            "rules[0].action: must be one of block, set, replace",
        ),
        ([{"header": "x"}], "rules[0].action"),
        ([{"header": "x", "action": "BLOCK"}], "rules[0].action"),
        ([{"header": "x", "action": "set"}], "rules[0].value: is required for action 'set'"),
        ([{"header": "x", "action": "set", "value": None}], "rules[0].value: is required"),
        ([{"header": "x", "action": "set", "value": 5}], "rules[0].value: must be a string"),
        ([{"header": "x", "action": "replace", "value": "v"}], "rules[0].find: is required"),
        ([{"header": "x", "action": "replace", "find": ""}], "rules[0].find: is required"),
        ([{"header": "x", "action": "replace", "find": 1}], "rules[0].find: must be a string"),
        ([{**_OK, "value": "a\r\nX-Evil: 1"}], "rules[0].value: must not contain CR, LF, NUL"),
        ([{**_OK, "value": "a\nb"}], "rules[0].value: must not contain"),
        ([{**_OK, "value": "a\rb"}], "rules[0].value: must not contain"),
        ([{**_OK, "value": "a\x00b"}], "rules[0].value: must not contain"),
        ([{**_OK, "value": "a\x7fb"}], "rules[0].value: must not contain"),
        (
            [{"header": "x", "action": "replace", "find": "a\nb"}],
            "rules[0].find: must not contain",
        ),
        ([{**_OK, "value": "v" * 8193}], "rules[0].value: must be at most 8192 bytes"),
        ([{**_OK, "value": "é" * 4097}], "rules[0].value: must be at most 8192 bytes"),
        ([{**_OK, "enabled": "true"}], "rules[0].enabled: must be true or false"),
        ([{**_OK, "enabled": 1}], "rules[0].enabled"),
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
    assert validate_rules([{**_OK, "value": "v" * 8192, "header": "x-" + "a" * 254}])
    assert validate_rules([{**_OK, "value": "tab\tis fine, obs-text é too"}])


def test_where_prefixes_the_message() -> None:
    with pytest.raises(RuleError, match=r"^responseHeaderRules\[0\]\.action"):
        validate_rules([{"header": "x", "action": "nope"}], "responseHeaderRules")


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
