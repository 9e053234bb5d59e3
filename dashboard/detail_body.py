"""How the detail page shows a body and a request as curl (pure).

A JSON body up to PRETTY_MAX_CHARS is parsed and shown member by member, each
pretty-printed in a collapsible part; a larger one is never parsed on the event
loop: its first PREVIEW_CHARS are shown as stored, with the download link. The
curl command replays the request through this proxy with every credential
replaced by `$ANTHROPIC_API_KEY`, which the shell fills in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from dashboard.detail_store import BodyText

PRETTY_MAX_CHARS = 256 * 1024
PREVIEW_CHARS = 64 * 1024
OPEN_CHARS = 3_000  # a part this short starts unfolded
INLINE_CHARS = 160  # a scalar this short is shown as a field, not a part
KEY_PLACEHOLDER = "$ANTHROPIC_API_KEY"
# Not replayed: framing and hop-by-hop headers curl sets itself, cookies, and
# the proxy's own credentials.
NOT_REPLAYED = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
        "cookie",
        "accept-encoding",
    }
)
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_./:@%+=,-]+$")


@dataclass(frozen=True, slots=True)
class Part:
    """One member of a JSON object body."""

    key: str
    hint: str
    text: str  # pretty JSON, or the string itself
    open: bool


@dataclass(frozen=True, slots=True)
class BodyView:
    part: str  # request | response
    state: str  # parts | text | clipped | binary | missing
    fields: list[tuple[str, str]] = field(default_factory=list)  # short scalar members
    parts: list[Part] = field(default_factory=list)
    text: str = ""
    note: str = ""
    size: int | None = None


def _size_text(size: int | None) -> str:
    if size is None:
        return "unknown size"
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size} bytes"


def _hint(value: Any) -> str:
    if isinstance(value, dict):
        return f"object, {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list):
        return f"{len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, str):
        return f"text, {len(value):,} characters"
    return type(value).__name__


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def body_view(part: str, body: BodyText, missing_note: str = "") -> BodyView:
    if body.text is None:
        return BodyView(part, "missing", note=missing_note or "No body was recorded.")
    encoding = body.encoding or "utf-8"
    if encoding.startswith("base64"):
        coding = encoding.partition(";")[2] or "binary"
        return BodyView(
            part,
            "binary",
            note=f"A {coding} body of {_size_text(body.size)}, stored as it was sent.",
            size=body.size,
        )
    if not body.complete or len(body.text) > PRETTY_MAX_CHARS:
        return BodyView(
            part,
            "clipped",
            text=body.text[:PREVIEW_CHARS],
            note=f"Showing the first {_size_text(PREVIEW_CHARS)} of {_size_text(body.size)}.",
            size=body.size,
        )
    try:
        value = json.loads(body.text)
    except (ValueError, RecursionError):
        return BodyView(part, "text", text=body.text, size=body.size)
    try:
        return _parsed(part, value, body.size)
    except RecursionError:  # nesting json.loads took but pretty-printing would not
        return BodyView(part, "text", text=body.text, size=body.size)


def _parsed(part: str, value: Any, size: int | None) -> BodyView:
    if not isinstance(value, dict):
        return BodyView(part, "text", text=_pretty(value), size=size)
    fields: list[tuple[str, str]] = []
    parts: list[Part] = []
    for key, member in value.items():
        if not isinstance(member, dict | list):
            shown = _scalar(member)
            if len(shown) <= INLINE_CHARS and "\n" not in shown:
                fields.append((str(key), shown))
                continue
        text = member if isinstance(member, str) else _pretty(member)
        parts.append(Part(str(key), _hint(member), text, len(text) <= OPEN_CHARS))
    return BodyView(part, "parts", fields=fields, parts=parts, size=size)


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def shell_quote(text: str) -> str:
    if text and _SAFE_WORD.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _heredoc_tag(body: str) -> str:
    tag = "JSON_BODY"
    lines = set(body.splitlines())
    n = 0
    while tag in lines:
        n += 1
        tag = f"JSON_BODY_{n}"
    return tag


def curl_command(
    url: str,
    method: str,
    headers: list[list[str]] | list[tuple[str, str]],
    body: str | None,
    *,
    body_file: str | None = None,
    body_url: str | None = None,
) -> str:
    """A shell command that sends the request again. Credentials (`x-api-key`,
    `authorization`) become `$ANTHROPIC_API_KEY` in double quotes, so the shell
    expands it and no key, not even its fingerprint, is in the text. `body`
    goes in a quoted here-document (nothing in it is expanded); a body too
    large for the page is referred to as `body_file`, downloaded from `body_url`."""
    lines = [f"curl -X {shell_quote(method or 'POST')} {shell_quote(url)}"]
    for name, value in headers:
        lower = name.lower()
        if lower in NOT_REPLAYED:
            continue
        if lower == "x-api-key":
            lines.append(f'-H "x-api-key: {KEY_PLACEHOLDER}"')
        elif lower == "authorization":
            lines.append(f'-H "authorization: Bearer {KEY_PLACEHOLDER}"')
        else:
            lines.append(f"-H {shell_quote(f'{name}: {value}')}")
    preface = ""
    if body_file is not None:
        lines.append(f"--data-binary @{shell_quote(body_file)}")
        if body_url:
            preface = f"# First save the request body from {body_url} as {body_file}\n"
        return preface + " \\\n  ".join(lines)
    if body is None:
        return " \\\n  ".join(lines)
    tag = _heredoc_tag(body)
    lines.append(f"--data-binary @- <<'{tag}'")
    return " \\\n  ".join(lines) + f"\n{body}\n{tag}"
