"""A small, safe Markdown renderer of our own, for the conversation view.

Prompts and replies are untrusted text: the whole input is HTML-escaped first,
and only then is a bounded subset of Markdown recognised on the escaped text, so
no character of the input can ever become markup; every tag in the output is
one of this module's constants. The subset: paragraphs (lines joined with
`<br>`), fenced code blocks, headings, `>` quotes, bullet and numbered lists
(one level, deeper items indented), horizontal rules, code spans, `**strong**`,
`*emphasis*` and `[links](https://…)`. A link is made only for an `http://` or
`https://` URL without whitespace (never `javascript:`, `data:` or a relative
one), opening a new tab with `rel="noopener noreferrer nofollow"`; anything else
stays text. Images are never loaded: `![alt](url)` is a `!` and a link.
Underscore emphasis is left out on purpose: code identifiers (`parse_invoice`)
are far more common in these texts than `_emphasis_`.

Linear time whatever the input: lines are classified by anchored patterns
without nested repetition, the inline scanner looks for each closing delimiter
with a forward-only cache (a search that failed is never repeated, one that
succeeded is reused until passed), code-span fences are at most `MAX_TICKS`
backticks, and emphasis nests at most `MAX_DEPTH` levels (each level scans its
text once more). Input beyond `MAX_CHARS` is cut before rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

MAX_CHARS = 100_000
MAX_DEPTH = 3
MAX_TICKS = 8
MAX_URL = 2_048
LINK_ATTRS = 'rel="noopener noreferrer nofollow" target="_blank"'

# Escaping turns `>` into `&gt;`, so a quote line starts with that.
_QUOTE = "&gt;"
# A backtick in the rest of the line makes it no fence (as in CommonMark).
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^`]*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])[ \t]*\1[ \t]*\1[ \t]*(?:\1[ \t]*)*$")
_ITEM = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+(.*)$")
_SPECIAL = re.compile(r"[`*\[]")
_LANG = re.compile(r"[A-Za-z0-9_+.-]{1,24}")
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


def render_markdown(text: str) -> Markup:
    """`text` as safe HTML (a fragment of block elements)."""
    clipped = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = str(escape(clipped)).split("\n")
    return Markup("".join(_Blocks(lines).render()))


def render_inline(text: str) -> Markup:
    """One line of `text` with inline Markdown only (no blocks)."""
    return Markup(_inline(str(escape(text[:MAX_CHARS])), 0, True))


# ---- blocks ---------------------------------------------------------------------------
@dataclass
class _Blocks:
    lines: list[str]
    out: list[str] = field(default_factory=list)
    paragraph: list[str] = field(default_factory=list)
    quote: list[str] = field(default_factory=list)
    list_tag: str | None = None
    items: list[tuple[int, list[str]]] = field(default_factory=list)

    def render(self) -> list[str]:
        i, n = 0, len(self.lines)
        while i < n:
            line = self.lines[i]
            fence = _FENCE.match(line)
            if fence:
                self.flush()
                info = fence.group(2).split()
                i = self.code_block(i, fence.group(1), info[0] if info else "")
                continue
            i += 1
            if not line.strip():
                self.flush()
                continue
            if self.block_line(line):
                continue
            if self.items and line[:1] in (" ", "\t"):
                self.items[-1][1].append(line.strip())  # an item's continuation line
                continue
            self.flush_list()
            self.flush_quote()
            self.paragraph.append(line.strip())
        self.flush()
        return self.out

    def block_line(self, line: str) -> bool:
        """Handles a heading, rule, quote or list line; False for anything else."""
        heading = _HEADING.match(line)
        if heading:
            self.flush()
            level = min(len(heading.group(1)) + 2, 6)  # h1 in a turn would shout
            title = heading.group(2).rstrip().rstrip("#").rstrip()
            self.out.append(f'<h{level} class="md-h">{_inline(title, 0, True)}</h{level}>')
            return True
        if _RULE.match(line):
            self.flush()
            self.out.append("<hr>")
            return True
        stripped = line.lstrip()
        if stripped.startswith(_QUOTE):
            self.flush_list()
            self.flush_paragraph()
            self.quote.append(stripped[len(_QUOTE) :].strip())
            return True
        item = _ITEM.match(line)
        if item:
            self.flush_paragraph()
            self.flush_quote()
            tag = "ol" if item.group(2)[0].isdigit() else "ul"
            if self.list_tag != tag:
                self.flush_list()
                self.list_tag = tag
            depth = min(len(item.group(1).expandtabs(4)) // 2, 3)
            self.items.append((depth, [item.group(3)]))
            return True
        return False

    def code_block(self, start: int, fence: str, info: str) -> int:
        """Emits the fenced block opening at `start`; returns the line after it."""
        body: list[str] = []
        i = start + 1
        while i < len(self.lines):
            line = self.lines[i]
            i += 1
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                break
            body.append(line)
        lang = _LANG.fullmatch(info)
        label = f' data-lang="{lang.group(0)}"' if lang else ""
        self.out.append(f'<pre class="md-code"{label}><code>' + "\n".join(body) + "</code></pre>")
        return i

    def flush(self) -> None:
        self.flush_paragraph()
        self.flush_quote()
        self.flush_list()

    def flush_paragraph(self) -> None:
        if self.paragraph:
            inner = "<br>".join(_inline(line, 0, True) for line in self.paragraph)
            self.out.append(f"<p>{inner}</p>")
            self.paragraph = []

    def flush_quote(self) -> None:
        if self.quote:
            inner = "<br>".join(_inline(line, 0, True) for line in self.quote)
            self.out.append(f"<blockquote>{inner}</blockquote>")
            self.quote = []

    def flush_list(self) -> None:
        if self.items and self.list_tag:
            self.out.append(f"<{self.list_tag}>")
            for depth, parts in self.items:
                css = f' class="md-depth-{depth}"' if depth else ""
                inner = "<br>".join(_inline(part, 0, True) for part in parts)
                self.out.append(f"<li{css}>{inner}</li>")
            self.out.append(f"</{self.list_tag}>")
        self.items = []
        self.list_tag = None


# ---- inline ---------------------------------------------------------------------------
class _Finder:
    """`str.find` for a scan that only moves forward: per delimiter, the last
    answer is reused while it still lies ahead, and a failed search is final."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.known: dict[str, int] = {}

    def find(self, needle: str, start: int) -> int:
        found = self.known.get(needle)
        if found is not None and (found == -1 or found >= start):
            return found
        found = self.text.find(needle, start)
        self.known[needle] = found
        return found


def _inline(text: str, depth: int, links: bool) -> str:
    """Inline Markdown over already escaped `text`."""
    if depth >= MAX_DEPTH:
        return text
    out: list[str] = []
    finder = _Finder(text)
    i, n = 0, len(text)
    while i < n:
        special = _SPECIAL.search(text, i)
        if special is None:
            out.append(text[i:])
            break
        at = special.start()
        out.append(text[i:at])
        char = text[at]
        if char == "`":
            i = _code_span(text, at, finder, out)
        elif char == "*":
            i = _emphasis(text, at, finder, out, depth, links)
        else:
            i = _link(text, at, finder, out, depth) if links else _literal(text, at, out)
    return "".join(out)


def _literal(text: str, at: int, out: list[str]) -> int:
    out.append(text[at])
    return at + 1


def _code_span(text: str, at: int, finder: _Finder, out: list[str]) -> int:
    run = at
    while run < len(text) and text[run] == "`":
        run += 1
    ticks = run - at
    if ticks > MAX_TICKS:
        out.append(text[at:run])
        return run
    close = finder.find("`" * ticks, run)
    if close < 0:
        out.append(text[at:run])
        return run
    out.append(f"<code>{text[run:close]}</code>")
    end = close + ticks
    while end < len(text) and text[end] == "`":  # a longer closing run: keep the rest
        end += 1
    return end


def _emphasis(text: str, at: int, finder: _Finder, out: list[str], depth: int, links: bool) -> int:
    strong = text.startswith("**", at)
    mark = "**" if strong else "*"
    start = at + len(mark)
    close = finder.find(mark, start)
    # Flanking, as CommonMark has it: no space just inside either delimiter.
    if close > start and not text[start].isspace() and not text[close - 1].isspace():
        tag = "strong" if strong else "em"
        inner = _inline(text[start:close], depth + 1, links)
        out.append(f"<{tag}>{inner}</{tag}>")
        return close + len(mark)
    out.append(mark)
    return start


def _link(text: str, at: int, finder: _Finder, out: list[str], depth: int) -> int:
    middle = finder.find("](", at + 1)
    if middle > at:
        close = finder.find(")", middle + 2)
        url = text[middle + 2 : close] if close > middle else ""
        label = text[at + 1 : middle]
        if label and len(url) <= MAX_URL and _URL.fullmatch(url):
            inner = _inline(label, depth + 1, False)
            out.append(f'<a href="{url}" {LINK_ATTRS}>{inner}</a>')
            return close + 1
    out.append("[")
    return at + 1
