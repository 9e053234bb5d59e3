"""The conversation view's Markdown renderer: the subset it knows, and hostile
input that must come out as text.

The output is also parsed with Python's HTML parser to check, structurally,
that the only elements and attributes in it are the renderer's own."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from dashboard.markdown import LINK_ATTRS, MAX_CHARS, render_inline, render_markdown

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "a", "ul", "ol", "li", "blockquote", "hr",
    "h3", "h4", "h5", "h6",
}  # fmt: skip
ALLOWED_ATTRS = {"href", "rel", "target", "class", "data-lang"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.tags


def only_own_markup(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, (tag, html[:200])
        assert set(attrs) <= ALLOWED_ATTRS, (tag, attrs)
        if tag == "a":
            href = attrs["href"] or ""
            assert href.lower().startswith(("http://", "https://")), href


# ---- the subset ---------------------------------------------------------------------------
def test_paragraphs_emphasis_code_and_links() -> None:
    html = render_markdown(
        "Fixed **the bug** in *parse*: `raw['currency']`.\n"
        "See [the docs](https://example.com/a?b=1&c=2).\n\nNext paragraph."
    )
    assert isinstance(html, Markup)
    assert html == (
        "<p>Fixed <strong>the bug</strong> in <em>parse</em>: "
        "<code>raw[&#39;currency&#39;]</code>.<br>"
        f'See <a href="https://example.com/a?b=1&amp;c=2" {LINK_ATTRS}>the docs</a>.</p>'
        "<p>Next paragraph.</p>"
    )


def test_blocks() -> None:
    html = render_markdown(
        "# Plan\n- read it\n- fix it\n  carefully\n    - nested\n\n1. one\n2) two\n\n"
        "> quoted <b>\n\n---\n```python\nif a < b:\n    print('x')\n```\nafter"
    )
    assert html == (
        '<h3 class="md-h">Plan</h3>'
        "<ul><li>read it</li><li>fix it<br>carefully</li>"
        '<li class="md-depth-2">nested</li></ul>'
        "<ol><li>one</li><li>two</li></ol>"
        "<blockquote>quoted &lt;b&gt;</blockquote>"
        "<hr>"
        '<pre class="md-code" data-lang="python"><code>if a &lt; b:\n'
        "    print(&#39;x&#39;)</code></pre>"
        "<p>after</p>"
    )


def test_identifiers_and_lone_marks_stay_as_written() -> None:
    text = "test_parse_invoice and snake_case_name; 2 * 3 * 4; a ** b; [x] (y); `unclosed"
    assert render_markdown(text) == f"<p>{text}</p>"


def test_an_unclosed_fence_runs_to_the_end() -> None:
    assert render_markdown("```\n<x>\n") == '<pre class="md-code"><code>&lt;x&gt;\n</code></pre>'


def test_emphasis_inside_a_link_and_a_link_never_nests() -> None:
    html = render_inline("[**bold** [inner](https://b.example)](https://a.example)")
    assert html.count("<a ") == 1
    only_own_markup(html)


# ---- hostile input ------------------------------------------------------------------------
HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    "[click](vbscript:msgbox(1))",
    "[click](//evil.example/x)",
    "[click](/relative)",
    '[click](https://ok.example/" onmouseover="alert(1))',
    "[click](https://ok.example/'onmouseover='alert(1))",
    "[x](https://a.example/<script>)",
    "![img](https://evil.example/pixel.png)",
    "**<svg onload=alert(1)>**",
    "`<iframe src=javascript:alert(1)>`",
    "```html\n<script>alert(1)</script>\n```",
    "# <style>body{display:none}</style>",
    "- <b onclick=alert(1)>x</b>",
    "> <form action=https://evil.example><button>",
    "&lt;script&gt; already escaped &amp; again",
    '```" onload="alert(1)\n```',
    "\u202e<script>\x00alert(1)</script>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_renders_as_text(text: str) -> None:
    html = str(render_markdown(text))
    only_own_markup(html)  # and every link's href is http(s)
    tags = {tag for tag, _ in elements(html)}
    assert not tags & {"script", "img", "iframe", "svg", "style", "form", "button", "b"}
    if "javascript" in text.lower():
        assert all("javascript" not in (a.get("href") or "").lower() for _, a in elements(html))
    # What the text said is still there to read (as escaped characters).
    assert "<" not in text or "&lt;" in html


def test_only_http_links_are_made() -> None:
    html = render_markdown("[ok](https://ok.example/path_(x)) [plain](http://a.example)")
    links = [attrs for tag, attrs in elements(str(html)) if tag == "a"]
    assert [a["href"] for a in links] == ["https://ok.example/path_(x", "http://a.example"]
    assert all(a["rel"] == "noopener noreferrer nofollow" for a in links)
    assert all(a["target"] == "_blank" for a in links)


def test_a_quote_in_a_url_cannot_leave_the_attribute() -> None:
    html = str(render_markdown('[x](https://ok.example/"onmouseover="alert(1))'))
    (link,) = [attrs for tag, attrs in elements(html) if tag == "a"]
    assert set(link) == {"href", "rel", "target"}
    assert link["href"] == 'https://ok.example/"onmouseover="alert(1'


# ---- bounds -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "*a" * 60_000,
        "**a" * 40_000,
        "[" * 100_000,
        "[a](" * 30_000,
        "](" * 50_000,
        "`" * 9 + "x" * 10 + "``a" * 30_000,
        "".join("`" * (n % 8 + 1) + "a" for n in range(30_000)),
        "- " * 50_000,
        "#" * 100_000,
        "> " * 50_000,
        "\n".join("```" if n % 2 else "x" for n in range(50_000)),
        "***" * 33_000,
    ],
    ids=lambda t: repr(t[:12]),
)
def test_pathological_input_is_rendered_whole_and_safely(text: str) -> None:
    """Inputs that make naive scanners quadratic (many openers, no closers): a
    quadratic renderer would not finish these."""
    html = str(render_markdown(text))
    only_own_markup(html)
    shown = "".join(_text_of(html))
    # Markdown only takes marks away: every letter of the input is still shown.
    letters = sum(1 for c in text[:MAX_CHARS] if c.isalnum())
    assert sum(1 for c in shown if c.isalnum()) == letters


def _text_of(html: str) -> list[str]:
    out: list[str] = []

    class Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            out.append(data)

    parser = Text()
    parser.feed(html)
    parser.close()
    return out


def test_input_is_cut_at_the_limit() -> None:
    html = str(render_markdown("a" * (MAX_CHARS + 500)))
    assert html == "<p>" + "a" * MAX_CHARS + "</p>"


def test_nesting_is_bounded() -> None:
    html = str(render_markdown("**a *b **c *d* c** b* a**"))
    only_own_markup(html)
    assert html.count("<strong>") + html.count("<em>") <= 3
