"""Message content as the conversation view keeps it, and the words search matches.

Pure functions shared by the log-time extraction (`conversations.fields`),
the thread rebuild and the search queries, so the same normalisation runs on both
sides of every comparison:

- content is always a list of blocks; `cache_control` is dropped (Claude Code moves
  it to the newest message on every request, so keeping it would make a resent
  message look edited), as are thinking signatures, the encrypted copy of a
  compaction summary and the bytes of images and documents (placeholders keep the
  media type and size); thinking returned empty (`display: "omitted"`) is kept as
  an empty thinking block;
- very long strings are clipped, and a request's stored content has a budget, so
  one huge paste or file read cannot push a log document towards MongoDB's 16 MB;
  the full text stays in the request body;
- the arrays and nesting are bounded too: the first `MAX_BLOCKS` blocks of a content
  list (then one `omitted` block counting the rest), the first `MAX_ITEMS` items of a
  JSON array or object in tool inputs (then a marker), `MAX_DEPTH` levels of nesting
  (deeper values become `"…"`), so neither the stored arrays nor the recursion that
  builds and reads them grow with what a client sends;
- words are NFKC-normalised, case-folded `\\w+` runs, the form both the stored
  arrays and the search query are reduced to.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

STRING_LIMIT = 64_000  # characters kept of one string while the budget lasts
SMALL_LIMIT = 2_000  # ... once a request's content budget is spent
CONTENT_BUDGET = 1_000_000  # characters of content stored per request
MAX_WORDS = 1_500  # search words stored per request (the first found)
MAX_BLOCKS = 1_000  # content blocks kept per message or tool result (the first)
MAX_ITEMS = 1_000  # items kept per JSON array or object inside content (the first)
# Levels of nesting kept inside content (tool results in tool results count too):
# plenty for tool inputs, and well inside MongoDB's limit of 100 nested levels.
MAX_DEPTH = 32
ROLE_CHARS = 64  # "user" and "assistant" are all the API knows
CLIPPED = "…"  # what stands for a value nested deeper than MAX_DEPTH
_WORD = re.compile(r"\w+")
_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.DOTALL)
_MEDIA = ("image", "document")
_OPAQUE = frozenset({"signature", "encrypted_content"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class Budget:
    """How many characters of content one request may still store in full."""

    def __init__(self, total: int = CONTENT_BUDGET) -> None:
        self.left = total

    def clip(self, text: str) -> tuple[str, int | None]:
        """The text to keep, and its original length when it was cut."""
        limit = STRING_LIMIT if self.left > 0 else SMALL_LIMIT
        kept = text if len(text) <= limit else text[:limit]
        self.left -= len(kept)
        return kept, (len(text) if len(kept) < len(text) else None)


def normalise_message(message: object, budget: Budget | None = None) -> dict[str, Any]:
    """One Messages API message as `{role, content: [blocks]}`."""
    budget = budget or Budget()
    if not isinstance(message, dict):
        return {"role": "unknown", "content": []}
    role = message.get("role") if isinstance(message.get("role"), str) else "unknown"
    role = role[:ROLE_CHARS]
    return {"role": role, "content": normalise_content(message.get("content"), budget)}


def normalise_content(content: object, budget: Budget, depth: int = 0) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text_block("text", "text", content, budget)]
    if not isinstance(content, list):
        return []
    blocks = [b for b in content if isinstance(b, dict)]
    if depth >= MAX_DEPTH:
        return [{"type": "omitted", "blocks": len(blocks)}] if blocks else []
    out = [_block(b, budget, depth) for b in blocks[:MAX_BLOCKS]]
    if len(blocks) > MAX_BLOCKS:
        out.append({"type": "omitted", "blocks": len(blocks) - MAX_BLOCKS})
    return out


def _text_block(kind: str, key: str, text: str, budget: Budget) -> dict[str, Any]:
    kept, cut = budget.clip(text)
    block: dict[str, Any] = {"type": kind, key: kept}
    if cut is not None:
        block["truncated"] = cut
    return block


def _block(block: dict[str, Any], budget: Budget, depth: int) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return _text_block("text", "text", block["text"], budget)
    if kind == "thinking":
        # Omitted thinking (`display: "omitted"`) arrives as an empty text with only
        # a signature; a block without the field is kept the same way, so the two
        # compare equal when a client resends it.
        text = block.get("thinking")
        return _text_block("thinking", "thinking", text if isinstance(text, str) else "", budget)
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking"}
    if kind == "compaction":
        # The summary the API continues from (null when compaction failed); its
        # encrypted twin is opaque bytes.
        kept = {k: v for k, v in block.items() if k not in _OPAQUE and k != "content"}
        out = _object(kept, budget, depth)
        summary = block.get("content")
        if isinstance(summary, str):
            out.update(_text_block("compaction", "content", summary, budget))
        else:
            out["content"] = _value(summary, budget, depth + 1)
        return out
    if kind in ("tool_use", "server_tool_use"):
        return {
            "type": kind,
            "id": _value(block.get("id"), budget, depth + 1),
            "name": _value(block.get("name"), budget, depth + 1),
            "input": _value(block.get("input"), budget, depth + 1),
        }
    if kind == "tool_result":
        out: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": _value(block.get("tool_use_id"), budget, depth + 1),
            "content": normalise_content(block.get("content"), budget, depth + 1),
        }
        if block.get("is_error"):
            out["is_error"] = True
        return out
    if kind in _MEDIA:
        return _media(block, budget)
    return _object(block, budget, depth)


def _media(block: dict[str, Any], budget: Budget) -> dict[str, Any]:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    kept = {
        k: budget.clip(source[k])[0]
        for k in ("type", "media_type", "url")
        if isinstance(source.get(k), str)
    }
    out: dict[str, Any] = {"type": block["type"], "source": kept}
    data = source.get("data")
    if isinstance(data, str):
        out["bytes"] = len(data) * 3 // 4  # base64 → bytes, near enough for display
    if isinstance(block.get("title"), str):
        out["title"] = block["title"][:500]
    return out


def _value(value: Any, budget: Budget, depth: int) -> Any:
    """Arbitrary JSON (tool inputs, unknown blocks) with long strings clipped, made
    storable as BSON: integers past 64 bits become strings, NUL leaves keys; long
    arrays and objects keep their first `MAX_ITEMS` items, deep ones become `CLIPPED`."""
    if isinstance(value, str):
        return budget.clip(value)[0]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return CLIPPED
    if isinstance(value, dict):
        return _object(value, budget, depth)
    if isinstance(value, list):
        items = [_value(v, budget, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"{CLIPPED} {len(value) - MAX_ITEMS} more items")
        return items
    return str(value)


def _object(value: dict[Any, Any], budget: Budget, depth: int) -> dict[str, Any]:
    keys = [k for k in value if k != "cache_control"]
    out = {
        str(k).replace("\x00", "\ufffd"): _value(value[k], budget, depth + 1)
        for k in keys[:MAX_ITEMS]
    }
    if len(keys) > MAX_ITEMS:
        out[CLIPPED] = f"{len(keys) - MAX_ITEMS} more keys"
    return out


def fingerprint(value: Any) -> str:
    """A stable short hash of normalised JSON (key order does not matter)."""
    raw = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# ---- text -------------------------------------------------------------------------------
def strip_reminders(text: str) -> str:
    """Claude Code wraps injected context (CLAUDE.md, dates, hook output) in
    `<system-reminder>` tags inside user messages; it is not what the user typed."""
    return _REMINDER.sub("", text)


def plain_text(content: list[dict[str, Any]]) -> str:
    """The visible text of normalised content: text blocks, reminders removed."""
    parts = [strip_reminders(b["text"]) for b in content if b.get("type") == "text"]
    return "\n".join(p.strip() for p in parts if p.strip())


def one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# ---- words --------------------------------------------------------------------------------
def words_of(text: str) -> list[str]:
    """Search terms of a text, in order of appearance, each once. Identifiers joined
    with `_` count as a whole and by their parts (`mcp__github__create_issue`)."""
    # Runs for every logged request: ASCII is already NFKC, and dict assignment
    # keeps first-seen order, so the common case stays a few fast C calls.
    folded = (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()
    seen: dict[str, None] = {}
    for token in _WORD.findall(folded):
        if 2 <= len(token) <= 40:
            seen[token] = None
        if "_" in token:
            for part in token.split("_"):
                if 2 <= len(part) <= 40:
                    seen[part] = None
    return list(seen)


def search_texts(content: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(primary, secondary) texts of normalised content: tool names and what people
    and the model wrote first; tool inputs, results and thinking after, so that
    when a request has more words than are stored, the first kind is kept."""
    primary: list[str] = []
    secondary: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            primary.append(strip_reminders(block["text"]))
        elif kind in ("tool_use", "server_tool_use"):
            primary.append(str(block.get("name") or ""))
            secondary.append(" ".join(_strings(block.get("input"))))
        elif kind == "tool_result":
            secondary.append(" ".join(_strings(block.get("content"))))
        elif kind == "thinking":
            secondary.append(block["thinking"])
        elif kind == "compaction" and isinstance(block.get("content"), str):
            secondary.append(block["content"])
    return primary, secondary


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "type" for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def collect_words(texts: list[str], limit: int = MAX_WORDS) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for word in words_of(text):
            seen.setdefault(word, None)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)


def snippet(content: list[dict[str, Any]], words: list[str], width: int = 160) -> str | None:
    """A short excerpt of the content around the first query word found in it."""
    primary, secondary = search_texts(content)
    for text in primary + secondary:
        folded = unicodedata.normalize("NFKC", text).casefold()
        for word in words:
            at = folded.find(word)
            if at >= 0 and len(folded) == len(text):
                start = max(0, at - width // 3)
                excerpt = one_line(text[start : start + width], width + 1)
                return ("…" if start else "") + excerpt
            if at >= 0:
                return one_line(text, width)
    return None
