"""How the detail page shows bodies, and "copy as curl" (dashboard.detail_body):
pure, plus the curl text run through a real shell."""

from __future__ import annotations

import json
import subprocess

from dashboard.detail_body import (
    PRETTY_MAX_CHARS,
    PREVIEW_CHARS,
    body_view,
    curl_command,
    shell_quote,
)
from dashboard.detail_store import BodyText

KEY_FINGERPRINT = "sha256:0123456789abcdef"


def text(body: str, *, complete: bool = True, encoding: str = "utf-8") -> BodyText:
    return BodyText(body, encoding, complete, len(body), False)


def test_a_json_object_is_shown_member_by_member() -> None:
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 512,
        "stream": True,
        "system": "line one\nline two",
        "messages": [{"role": "user", "content": "<script>alert(1)</script>"}],
        "metadata": {"user_id": "u"},
    }
    view = body_view("request", text(json.dumps(body)))
    assert view.state == "parts"
    assert view.fields == [("model", "claude-opus-5-5"), ("max_tokens", "512"), ("stream", "true")]
    parts = {p.key: p for p in view.parts}
    assert parts["system"].text == "line one\nline two"  # a string as itself, not escaped JSON
    assert parts["messages"].hint == "1 item" and parts["messages"].open
    assert json.loads(parts["messages"].text) == body["messages"]
    assert parts["messages"].text.startswith("[\n  {")  # pretty-printed


def test_a_long_member_starts_folded() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 5000}]}
    (part,) = body_view("request", text(json.dumps(body))).parts
    assert not part.open


def test_a_body_above_the_bound_is_never_parsed_only_clipped() -> None:
    big = json.dumps({"messages": ["y" * (PRETTY_MAX_CHARS + 10)]})
    view = body_view("request", text(big))
    assert view.state == "clipped"
    assert view.text == big[:PREVIEW_CHARS] and "first 64 KiB" in view.note


def test_a_preview_of_an_offloaded_body_is_clipped() -> None:
    view = body_view("response", BodyText('{"a": 1', "utf-8", False, 9_000_000, True))
    assert view.state == "clipped" and "8.6 MiB" in view.note


def test_other_bodies() -> None:
    assert body_view("request", text("not json")).state == "text"
    array = body_view("response", text("[1, 2]"))
    assert (array.state, array.text) == ("text", "[\n  1,\n  2\n]")
    binary = body_view("response", text("AAAA", encoding="base64;gzip"))
    assert binary.state == "binary" and "gzip" in binary.note and binary.text == ""
    missing = body_view("request", BodyText(None, None, False, None, False), "dropped: full")
    assert (missing.state, missing.note) == ("missing", "dropped: full")
    deep = "[" * 100_000 + "]" * 100_000
    assert body_view("request", text(deep[: PRETTY_MAX_CHARS - 2])).state == "text"


HEADERS = [
    ["host", "127.0.0.1:3001"],
    ["content-length", "123"],
    ["x-api-key", KEY_FINGERPRINT],
    ["anthropic-version", "2023-06-01"],
    ["anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"],
    ["cookie", "session=abc"],
    ["x-odd", 'it\'s "quoted" $HOME `id` \\ <b>'],
]


def test_curl_replaces_every_credential_and_drops_framing() -> None:
    command = curl_command("http://127.0.0.1:3001/v1/messages?beta=true", "POST", HEADERS, "{}")
    assert '-H "x-api-key: $ANTHROPIC_API_KEY"' in command
    assert KEY_FINGERPRINT not in command
    for dropped in ("host:", "content-length", "cookie"):
        assert dropped not in command
    bearer = curl_command(
        "http://x/v1/messages", "POST", [["Authorization", "Bearer sha256:1"]], None
    )
    assert '"authorization: Bearer $ANTHROPIC_API_KEY"' in bearer and "sha256" not in bearer


def test_curl_points_a_large_body_at_its_download() -> None:
    command = curl_command(
        "http://h/v1/messages",
        "POST",
        [],
        None,
        body_file="abc-request.json",
        body_url="http://h/dashboard/requests/abc/body/request",
    )
    assert command.startswith("# First save the request body from http://h/dashboard/")
    assert command.endswith("--data-binary @abc-request.json")


def test_the_curl_text_replays_exactly_in_a_shell() -> None:
    """bash parses the command with `curl` replaced by a function printing what it
    got: every header as sent (quotes, `$`, backquotes untouched), the key from
    the environment, and the body from the here-document byte for byte."""
    body = json.dumps({"messages": [{"content": "JSON_BODY\n'$(id)' `id` $HOME"}]}, indent=1)
    body += "\nJSON_BODY"  # a line equal to the default delimiter
    command = curl_command("http://h:1/v1/messages?beta=true", "POST", HEADERS, body)
    script = (
        'curl() { for a in "$@"; do printf "%s\\n" "$a"; done; printf "BODY<<"; cat; '
        'printf ">>"; }\n' + command
    )
    out = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={"ANTHROPIC_API_KEY": "the-real-key", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    args, _, rest = out.partition("BODY<<")
    assert rest == body + "\n>>"
    lines = args.splitlines()
    assert lines[:3] == ["-X", "POST", "http://h:1/v1/messages?beta=true"]
    assert "x-api-key: the-real-key" in lines
    assert 'x-odd: it\'s "quoted" $HOME `id` \\ <b>' in lines
    assert "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14" in lines


def test_shell_quoting_leaves_plain_words_alone() -> None:
    assert shell_quote("POST") == "POST"
    assert shell_quote("a b") == "'a b'"
    assert shell_quote("it's") == "'it'\\''s'"
    assert shell_quote("") == "''"
