"""Operator header rules (the seed's `HeaderRule` / `ProxySettings`).

Rules shape forwarded requests (`requestHeaderRules`) and returned responses
(`responseHeaderRules`): `block` drops a header, `set` forces one value, `replace`
edits inside the existing values. They arrive over `PUT /api/settings`, so
`validate_rules` is the gate that keeps them from breaking the proxy: no header
injection (CR, LF, NUL, other controls), no hop-by-hop or framing headers (the
proxy owns the framing of each connection), bounded sizes and counts.

The OpenAPI document's `HeaderRule` is built from the constants below
(openapi/finish.py), and the validation checks exactly what it states, field by
field and action by action, so every rule `GET /api/settings` answers is one the
schema admits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ACTIONS = ("block", "set", "replace")
MAX_RULES = 100  # per list
# Characters, as JSON Schema's maxLength counts them (code points): at most 8 KiB
# in UTF-8, a header line most servers still take.
MAX_VALUE_CHARS = 2048
MAX_HEADER_NAME = 256
TEXT_FIELDS = ("value", "find")
# The text fields each action reads. Any other must be absent, null or "" (a client
# that serialises every field of the seed's HeaderRule sends "" for them): a `find`
# on a `block` rule is a mistake the operator should hear about, not a no-op.
USES: dict[str, frozenset[str]] = {
    "block": frozenset(),
    "set": frozenset({"value"}),
    "replace": frozenset({"value", "find"}),
}
# The field an action needs, and its minimum length: `set` may set an empty value;
# `replace` needs something to find (str.replace("", x) would insert x between
# every character).
REQUIRED: dict[str, tuple[str, int]] = {"set": ("value", 0), "replace": ("find", 1)}

# Owned by each connection (RFC 9110 §7.6.1) or by the framing of each body: a rule
# on them would desynchronise the proxy's own handling of the message.
REFUSED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)

SETTINGS_KEYS = ("requestHeaderRules", "responseHeaderRules")
_RULE_KEYS = frozenset({"header", "action", "value", "find", "enabled"})

# RFC 9110 §5.6.2 token: 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Field values may hold VCHAR, SP, HTAB and obs-text; any other control character
# (CR and LF above all) would let a rule inject headers or split the message.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Lone surrogates (a JSON `\ud800` escape) are not text: MongoDB cannot store them
# and no header can carry them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class RuleError(ValueError):
    """A rule (or the settings document) is invalid; the message names where."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.field = field


@dataclass(frozen=True, slots=True)
class HeaderRule:
    header: str
    action: str  # one of ACTIONS
    value: str | None = None
    find: str | None = None
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        """The seed's JSON shape; `value` and `find` only when set."""
        out: dict[str, Any] = {"header": self.header, "action": self.action}
        if self.value is not None:
            out["value"] = self.value
        if self.find is not None:
            out["find"] = self.find
        out["enabled"] = self.enabled
        return out


def validate_rules(raw: object, where: str = "rules", *, lenient: bool = False) -> list[HeaderRule]:
    """Parse and check a JSON list of rules. `where` prefixes error messages, e.g.
    `requestHeaderRules[2].header: ...`. Raises RuleError.

    `lenient` (rules read back from the database): a text field the rule's action
    does not use is dropped instead of refused, so a document an older build
    stored (one that took a `find` on a `block` rule) still loads whole."""
    if not isinstance(raw, list):
        raise RuleError(f"{where}: must be a list of rules")
    if len(raw) > MAX_RULES:
        raise RuleError(f"{where}: at most {MAX_RULES} rules are allowed, got {len(raw)}")
    return [_rule(item, f"{where}[{index}]", index, lenient) for index, item in enumerate(raw)]


def _rule(item: object, where: str, index: int, lenient: bool) -> HeaderRule:
    def fail(field: str | None, reason: str) -> RuleError:
        at = f"{where}.{field}" if field else where
        return RuleError(f"{at}: {reason}", index=index, field=field)

    if not isinstance(item, Mapping):
        raise fail(None, "must be an object")
    unknown = sorted(str(key) for key in item if key not in _RULE_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown field (allowed: {', '.join(sorted(_RULE_KEYS))})")

    header = item.get("header")
    if not isinstance(header, str) or not header:
        raise fail("header", "must be a non-empty string")
    if len(header) > MAX_HEADER_NAME or not _TOKEN.fullmatch(header):
        raise fail(
            "header",
            f"{header[:64]!r} is not a valid header name (RFC 9110 token, "
            f"at most {MAX_HEADER_NAME} characters)",
        )
    if header.lower() in REFUSED_HEADERS:
        raise fail("header", f"{header!r} is a hop-by-hop or framing header and is refused")

    action = item.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise fail("action", f"must be one of {', '.join(ACTIONS)}, got {action!r}")

    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", "must be true or false")

    texts: dict[str, str | None] = {}
    for field in TEXT_FIELDS:
        if field in USES[action]:
            texts[field] = _text(item, field, fail)
        elif not lenient and item.get(field) not in (None, ""):
            raise fail(field, f"is not used by action {action!r}: leave it out (or null)")
    needed = REQUIRED.get(action)
    if needed is not None:
        field, minimum = needed
        text = texts[field]
        if text is None or len(text) < minimum:
            what = "a non-empty string" if minimum else "a string"
            raise fail(field, f"is required for action {action!r} ({what})")
    return HeaderRule(
        header=header,
        action=action,
        value=texts.get("value"),
        find=texts.get("find"),
        enabled=enabled,
    )


def _text(item: Mapping[str, Any], field: str, fail: Any) -> str | None:
    value = item.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(field, "must be a string")
    if _CONTROL.search(value):
        raise fail(field, "must not contain CR, LF, NUL or other control characters")
    if _SURROGATE.search(value):
        raise fail(field, "must be Unicode text (a lone surrogate escape is not)")
    if len(value) > MAX_VALUE_CHARS:
        raise fail(field, f"must be at most {MAX_VALUE_CHARS} characters, got {len(value)}")
    return value


def apply_rules(
    headers: Sequence[tuple[str, str]], rules: Sequence[HeaderRule]
) -> list[tuple[str, str]]:
    """Headers after the enabled rules, applied in order. Names compare
    case-insensitively; untouched headers keep their order, spelling and duplicates.

    - block: every value of the header is removed;
    - set: the header ends with exactly one value, at the place of its first
      occurrence (spelled as the rule spells it), or appended when absent;
    - replace: each occurrence of `find` (case-sensitive) in each value becomes
      `value` ("" when unset); an absent header stays absent.
    """
    out = list(headers)
    for rule in rules:
        if not rule.enabled:
            continue
        name = rule.header.lower()
        if rule.action == "block":
            out = [(k, v) for k, v in out if k.lower() != name]
        elif rule.action == "set":
            new = (rule.header, rule.value or "")
            kept: list[tuple[str, str]] = []
            placed = False
            for k, v in out:
                if k.lower() != name:
                    kept.append((k, v))
                elif not placed:
                    kept.append(new)
                    placed = True
            if not placed:
                kept.append(new)
            out = kept
        elif rule.action == "replace" and rule.find:
            find, repl = rule.find, rule.value or ""
            out = [(k, v.replace(find, repl) if k.lower() == name else v) for k, v in out]
    return out


def settings_document(
    request_rules: Sequence[HeaderRule], response_rules: Sequence[HeaderRule]
) -> dict[str, Any]:
    """The seed's `ProxySettings` JSON object."""
    return {
        "requestHeaderRules": [rule.to_json() for rule in request_rules],
        "responseHeaderRules": [rule.to_json() for rule in response_rules],
    }


def parse_settings(
    body: object, *, lenient: bool = False
) -> tuple[list[HeaderRule], list[HeaderRule]]:
    """(request rules, response rules) from a `PUT /api/settings` body: raw JSON
    bytes/str or an already parsed object. PUT replaces the whole document, so a
    missing list means no rules. Unknown keys are refused (a typo must not silently
    drop a rule set). `lenient`: see `validate_rules`. Raises RuleError."""
    if isinstance(body, bytes | bytearray | str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise RuleError(f"settings: body is not valid JSON ({exc})") from None
    if not isinstance(body, Mapping):
        raise RuleError("settings: must be a JSON object")
    unknown = sorted(str(key) for key in body if key not in SETTINGS_KEYS)
    if unknown:
        raise RuleError(
            f"settings: unknown key {unknown[0]!r} (allowed: {', '.join(SETTINGS_KEYS)})",
            field=unknown[0],
        )
    request = validate_rules(
        body.get("requestHeaderRules", []), "requestHeaderRules", lenient=lenient
    )
    response = validate_rules(
        body.get("responseHeaderRules", []), "responseHeaderRules", lenient=lenient
    )
    return request, response
