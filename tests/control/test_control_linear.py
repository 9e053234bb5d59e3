"""Body edits, header rules and routing stay linear on adversarial input (pure).

Timing rules (best of three, 256 KB vs 1 MB) are those of
`tests.storage.test_linear_time.assert_linear`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.header_rules import HeaderRule, RuleError, apply_rules, parse_settings, validate_rules
from control.jsonbytes import scan_object
from control.jsonedit import get_member, set_member
from control.routing import Pattern, agent_of, client_key_fingerprint
from tests.storage.test_linear_time import assert_linear

# Serial (make test's second phase): timings that must grow linearly (1 MB vs 256 KB).
pytestmark = pytest.mark.serial


def _scan(body: bytes) -> None:
    try:
        scan_object(body)
    except ValueError:
        pass  # refusing a body is fine; taking long to is not


def _deep(n: int) -> bytes:
    half = (n - 8) // 2
    return b'{"a": ' + b"[" * half + b"]" * half + b"}"


BODIES: dict[str, Callable[[int], bytes]] = {
    "unclosed-brackets": lambda n: b'{"a": ' + b"[" * n,
    "deep-balanced": _deep,
    "unmatched-braces": lambda n: b'{"a": [' + b"{" * n,
    "many-quotes-even": lambda n: b'{"a": [' + b'"' * (n // 2 * 2) + b"]}",
    "many-quotes-odd": lambda n: b'{"a": [' + b'"' * (n // 2 * 2 + 1) + b"]}",
    "unterminated-string": lambda n: b'{"a": "' + b"x" * n,
    "unterminated-key": lambda n: b'{"' + b"k" * n,
    "escapes": lambda n: b'{"a": "' + b"\\\\" * (n // 2) + b'"}',
    "bad-escape-at-end": lambda n: b'{"a": "' + b"\\n" * (n // 2) + b'\\q"}',
    "many-members": lambda n: b"{" + b",".join(b'"k%d":0' % i for i in range(n // 10)) + b"}",
    "long-number": lambda n: b'{"a": ' + b"1" * n + b"}",
    "long-fraction-then-junk": lambda n: b'{"a": 1.' + b"5" * n + b"x}",
    "number-fragments": lambda n: b'{"a": [' + b"1e" * (n // 2) + b"]}",
    "many-literals": lambda n: b'{"a": [' + b"true," * (n // 5) + b"null]}",
    "literal-prefixes": lambda n: b'{"a": [' + b"tru" * (n // 3) + b"]}",
    "whitespace": lambda n: b"{" + b" \t\r\n" * (n // 4) + b"}",
    "colons-and-commas": lambda n: b'{"a": [' + b",:" * (n // 2) + b"]}",
    "invalid-utf8-late": lambda n: b'{"a": "' + b"x" * n + b'\xff"}',
}


@pytest.mark.parametrize("make", BODIES.values(), ids=BODIES.keys())
def test_json_member_scan_is_linear(make: Callable[[int], bytes]) -> None:
    assert_linear(_scan, make)


def test_member_edits_are_linear() -> None:
    # set_member is a scan and a splice (get_member a scan and a slice).
    def edit(body: bytes) -> None:
        set_member(body, "stream", b"true")

    def body(n: int) -> bytes:
        members = b",".join(b'"k%d":[{"a":[1,{"b":"c"}]}]' % i for i in range(n // 28))
        return b'{"model":"m",' + members + b', "stream": false}'

    assert_linear(edit, body)
    assert get_member(body(1000), "model") == b'"m"'


def test_the_adversarial_bodies_are_judged_as_before() -> None:
    # Runs of brackets and innermost containers are taken at once now; what is
    # accepted, and where a refusal points, is unchanged.
    assert scan_object(_deep(64)).members[0].value_end == len(_deep(64)) - 1
    flat = b'{"a": [[], {}, [1, "]"], {"k": [true]}], "b": {"c": [[[]]]}}'
    assert [m.key for m in scan_object(flat).members] == ["a", "b"]
    for bad, at in [
        (b'{"a": [[[}]]]}', 9),
        (b'{"a": [[1 }]]}', 10),
        (b'{"a": [{"k": [1}]}', 15),
        (b'{"a": [[]]]]}', 10),
        (b'{"a": [] ]}', 9),
    ]:
        with pytest.raises(ValueError, match=f"at byte {at}"):
            scan_object(bad)


def test_header_rules_are_linear() -> None:
    def validate(n: int) -> list[object]:
        value = "v" * n
        return [
            {"header": "x-a", "action": "set", "value": value},
            {"header": "x-b", "action": "replace", "find": "\x00" + value},
            {"header": "h" * n, "action": "block"},
        ]

    def check(rules: list[object]) -> None:
        for rule in rules:
            with pytest.raises(RuleError):
                validate_rules([rule])

    def refuse(body: bytes) -> None:
        with pytest.raises(RuleError):
            parse_settings(body)

    assert_linear(check, validate)
    assert_linear(refuse, lambda n: b'{"requestHeaderRules": [' + b"[" * n)

    rules = [
        HeaderRule("x-h", "replace", value="b", find="a"),
        HeaderRule("x-h", "replace", value="", find="aab"),
        HeaderRule("x-h", "set", value="v"),
        HeaderRule("x-other", "block"),
    ]
    assert_linear(
        lambda headers: apply_rules(headers, rules),
        lambda n: [("x-h", "a" * n), ("x-other", "o" * n)] + [("x-q", "1")] * (n // 16),
    )


GLOBS = ["*a*a*a*b", "*?*?*?*x", "a*", "*a", "?*a*?*a*?", "claude-*-4-*[1m]"]


@pytest.mark.parametrize("glob", GLOBS)
def test_glob_routing_is_linear_in_the_model(glob: str) -> None:
    pattern = Pattern.parse(glob)
    assert pattern.kind == "glob"
    assert_linear(pattern.matches, lambda n: "a" * n)
    assert_linear(pattern.matches, lambda n: "claude-" + "-4-" * (n // 3) + "[1m")


def test_request_helpers_are_linear() -> None:
    def headers(n: int) -> list[tuple[str, str]]:
        return [
            ("authorization", "Bearer " + " " * n + "k"),
            ("x-api-key", " " * n),
            ("x-claude-code-agent-id", " " * n + "a"),
        ] + [("x-q", "1")] * (n // 16)

    assert_linear(lambda h: (client_key_fingerprint(h), agent_of(h)), headers)


def _old_glob(text: str) -> re.Pattern[str]:
    # The translation routing used before globs were matched piece by piece.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.DOTALL)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="ab*?-\n[", min_size=1, max_size=8).filter(lambda t: "*" in t or "?" in t),
    st.text(alphabet="ab-\n[", max_size=12),
)
def test_globs_match_what_the_old_regex_matched(glob: str, model: str) -> None:
    pattern = Pattern.parse(glob)
    assert pattern.matches(model) == (_old_glob(glob).fullmatch(model) is not None)
