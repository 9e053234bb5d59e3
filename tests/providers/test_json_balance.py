"""Completion of streamed JSON, whatever the fragment boundaries."""

from __future__ import annotations

import pytest

from providers.json_balance import JsonBalance

COMPLETE = [
    "{}",
    '{"a": 1}',
    '{"a": "}"}',
    '{"a": "\\"}"}',
    '{"a": "\\\\"}',
    '{"a": "\\\\\\"{"}',
    '{"a": [1, {"b": "]"}], "c": "\\u00e9"}',
    "[1, 2]",
    ' \n {"a": {}} ',
]
INCOMPLETE = [
    "",
    "   ",
    '{"a": 1',
    '{"a": "}',
    '{"a": "\\"}',
    '{"a": "\\\\\\"}',
    '{"a": [1, 2}',
    "null",
    "}",
    "{}}",
]


def fed(pieces: list[str]) -> JsonBalance:
    balance = JsonBalance()
    for piece in pieces:
        balance.feed(piece)
    return balance


@pytest.mark.parametrize("text", COMPLETE)
def test_complete_at_every_split(text: str) -> None:
    assert fed([text]).complete
    assert fed(list(text)).complete
    for cut in range(len(text) + 1):
        assert fed([text[:cut], text[cut:]]).complete, cut


@pytest.mark.parametrize("text", INCOMPLETE)
def test_incomplete_at_every_split(text: str) -> None:
    assert not fed([text]).complete
    assert not fed(list(text)).complete
    for cut in range(len(text) + 1):
        assert not fed([text[:cut], text[cut:]]).complete, cut


def test_complete_only_once_the_last_bracket_arrives() -> None:
    balance = JsonBalance()
    states = []
    for piece in ['{"path": "a\\', '"b', '"}', "  "]:
        balance.feed(piece)
        states.append(balance.complete)
    assert states == [False, False, True, True]
