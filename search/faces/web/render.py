"""Text on the page: notes rendered as Markdown and sanitised, places made into links.

Notes are Markdown people wrote (bold, lists, code, links, bare URLs). markdown-it-py (already
the notes reader's parser) renders them with raw HTML off, and nh3 (the Ammonia sanitiser)
keeps only a small set of tags, attributes and URL schemes, so a note holding `<script>` or a
`javascript:` link shows as text or loses the link, never runs. LaTeX is left as written.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

_MD = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True})
_MD.enable(["linkify", "table", "strikethrough"])

TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "a", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
SCHEMES = {"http", "https", "mailto"}


def note_html(text: str) -> Markup:
    """A note as safe HTML: Markdown rendered, bare URLs linked, everything else escaped."""
    html = _MD.render(text)
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer",
    )
    return Markup(clean)


# A place a paper is noted: `notes/file.md:12`, `notes/paper.pdf:p.7`, or just the file.
_PLACE = re.compile(r"(?P<file>notes/.+?)(?::(?:(?P<line>\d+)|p\.(?P<page>[^:/]+)))?")


def note_href(place: str) -> str | None:
    """The page's link for a place in notes/ (None for a Zotero item and the like)."""
    m = _PLACE.fullmatch(place)
    if m is None:
        return None
    href = "/note/" + quote(m["file"])
    if m["line"]:
        return f"{href}#L{m['line']}"
    if m["page"]:
        return f"{href}#page={quote(m['page'])}"
    return href


def place_link(place: str) -> Markup:
    """`notes/file.md:12` as a link to that line of the note file (plain text otherwise)."""
    href = note_href(place)
    text = escape(place)
    if href is None:
        return Markup(f'<code class="where">{text}</code>')
    return Markup(f'<a class="where" href="{escape(href)}"><code>{text}</code></a>')


def numbered_lines(text: str) -> Markup:
    """A note file's text as lines with anchors (`#L12`), escaped."""
    rows = (
        f'<tr id="L{i}"><td class="n"><a href="#L{i}">{i}</a></td>'
        f"<td><pre>{escape(line)}</pre></td></tr>"
        for i, line in enumerate(text.splitlines(), 1)
    )
    return Markup('<table class="lines">' + "".join(rows) + "</table>")
