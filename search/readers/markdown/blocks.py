"""Block parsing: markdown-it set up with bounded nesting and time, front matter, and the
token helpers every later step reads blocks and inline text with (`Document`)."""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown_it import MarkdownIt
from markdown_it.rules_core.state_core import StateCore
from markdown_it.token import Token

from search.readers.records import (
    Problem,
    clean_text,
)

LABEL_WORDS = 8


# Deep enough for lists nested 100 levels (two token levels each); markdown-it recurses about
# twice per level, well inside Python's default recursion limit. Deeper input is cut off by
# markdown-it, which we detect and report.
_MAX_NESTING = 256


_MD = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING}).enable("table")


# Fallback if the deep parser still overflows the Python stack (e.g. when called deep already).
_MD_SHALLOW = MarkdownIt("commonmark", {"maxNesting": 20}).enable("table")


# Inline markup (links in emphasis in brackets) nests a few levels in real notes, but
# markdown-it's work per unmatched '[' grows with the nesting limit (it rescans up to that
# many levels): `* ` + 500,000 '[' took 88 s under the block limit of 256. Inline parsing
# gets its own parser with a low limit, and a paragraph whose '[' brackets nest deeper than
# that (no link anyone wrote) is read as plain text and reported, at a linear cost.
_MAX_INLINE_NESTING = 20


_MD_INLINE = MarkdownIt("commonmark", {"maxNesting": _MAX_INLINE_NESTING})


# The last bound on the work per file, whatever the input (a 20 MB note of some markup costs
# markdown-it minutes: lists or quotes nested on every line, 20 MB of links): a parse that
# uses more CPU time than PARSE_SECONDS + PARSE_SECONDS_PER_MB per MB of text stops, and the
# file is reported and skipped. CPU time, not wall time, so a busy machine does not skip
# notes; plain reading lists cost about 2.5 s per MB (a 20 MB one, ~45 s, is well inside the
# 130 s it gets), markup bombs 5-10 s per MB.
PARSE_SECONDS = 30.0


PARSE_SECONDS_PER_MB = 5.0


_DEADLINE_KEY = "papers_deadline"  # in markdown-it's env: when the parse must stop


_PLAIN_KEY = "papers_plain_text"  # in env: paragraphs _inline_rule read as plain text


_BRACKET = re.compile(r"(?<!\\)[\[\]]")


class _OutOfTime(Exception):
    """Raised inside markdown-it when a parse passes its deadline."""


def _check_deadline(state: Any, *_args: Any) -> bool:
    # A block and an inline rule that never match, placed first: markdown-it calls them at
    # every block and every markup character, so a parse stops soon after its deadline.
    if time.process_time() > state.env.get(_DEADLINE_KEY, float("inf")):
        raise _OutOfTime
    return False


for _md in (_MD, _MD_SHALLOW, _MD_INLINE):
    # Keep hrefs as written: nothing is rendered to HTML, and percent-encoding every link
    # (markdown-it's default) is a third of the parse time on a long reading list.
    _md.normalizeLink = lambda url: url  # type: ignore[method-assign]


def _brackets_too_deep(text: str) -> bool:
    """True if '[' brackets in `text` nest deeper than the inline parser's limit."""
    if text.count("[") <= _MAX_INLINE_NESTING:
        return False
    depth = 0
    for m in _BRACKET.finditer(text):
        if m.group() == "[":
            depth += 1
            if depth > _MAX_INLINE_NESTING:
                return True  # stops early: the scan is linear in what it reads
        elif depth:
            depth -= 1
    return False


def _inline_rule(state: StateCore) -> None:
    """markdown-it's core "inline" step with a low nesting limit (see _MAX_INLINE_NESTING)."""
    plain: list[int | None] = state.env.setdefault(_PLAIN_KEY, [])
    for token in state.tokens:
        if token.type != "inline":
            continue
        token.children = []
        if _brackets_too_deep(token.content):
            plain.append(token.map[0] if token.map else None)
            text = Token("text", "", 0)
            text.content = token.content
            token.children.append(text)
            continue
        _MD_INLINE.inline.parse(token.content, _MD_INLINE, state.env, token.children)


for _md in (_MD, _MD_SHALLOW):
    _md.core.ruler.at("inline", _inline_rule)
    _md.block.ruler.before("table", "papers_deadline", _check_deadline)


_MD_INLINE.inline.ruler.before("text", "papers_deadline", _check_deadline)


_SENTENCE_END = (".", "!", "?", "\u3002", "\uff01", "\uff1f")  # and the full-width 。！？


# ftfy leaves printable ASCII without '&' unchanged, and is the slow part of reading a long list.
_FAKE_BULLET = re.compile(r"^[-*+][^\s\-*+]")


_YAML_NULL = {"", "~", "null", "Null", "NULL"}


_LISTS = ("bullet_list_open", "ordered_list_open")


def _blocks(tokens: Sequence[Token], start: int, end: int, level: int) -> Iterator[tuple[int, int]]:
    """(first, last + 1) index ranges of the blocks at `level` within tokens[start:end]."""
    opened = -1
    for k in range(start, end):
        t = tokens[k]
        if t.level != level:
            continue
        if t.nesting == 0:
            yield k, k + 1
        elif t.nesting == 1:
            opened = k
        elif opened >= 0:
            yield opened, k + 1
            opened = -1


def _fix_first_heading(body: str) -> str:
    """`#[Title](url)` or `#![Title](url)` on the first line is not a heading in CommonMark (no
    space after '#'), but people mean one: read it as `# [Title](url)`."""
    m = re.match(r"(\s*\n)*(#{1,6})!?(?=\[)", body)
    if not m:
        return body
    return body[: m.start(2)] + m.group(2) + " " + body[m.end() :]


def _first_line(children: list[Token]) -> tuple[list[Token], list[Token]]:
    """(title part, note part) of a bullet's first paragraph. `* Walrus Paper` followed by an
    indented `my note on it` is a title and a note; a title wrapped onto the next line (the
    links on the second line, none on the first) is one title."""
    cut = next((n for n, c in enumerate(children) if c.type in ("softbreak", "hardbreak")), None)
    if cut is None:
        return children, []
    first, rest = children[:cut], children[cut + 1 :]
    if not _has_link_children(first) and _has_link_children(rest):
        return children, []
    return first, rest


def _inline_text(tok: Token, newline: str) -> str:
    """Plain text of one inline child token (markup dropped, words kept)."""
    if tok.type in ("text", "code_inline"):
        return tok.content
    if tok.type in ("softbreak", "hardbreak"):
        return newline
    if tok.type == "image":
        return "".join(_inline_text(c, newline) for c in tok.children or [])
    return ""  # emphasis markers, link markers, raw HTML


def _inline_plain(inline: Token, newline: str = "\n") -> str:
    return _inline_plain_children(inline.children or [], newline)


def _inline_plain_children(children: list[Token], newline: str = "\n") -> str:
    return "".join(_inline_text(c, newline) for c in children)


def _heading_text(inline: Token) -> str:
    return _norm_space(clean_text(_inline_plain(inline, " ")))


def _plain_blocks(tokens: Sequence[Token], start: int, end: int) -> str:
    """Plain text of the blocks tokens[start:end]: one line per tight-list item, a blank line
    between other blocks, no Markdown syntax."""
    parts: list[str] = []
    tight_next = False
    for k in range(start, end):
        t = tokens[k]
        text = ""
        if t.type == "inline":
            text = "\n".join(line.strip() for line in _inline_plain(t).split("\n"))
        elif t.type in ("code_block", "fence"):
            text = "\n".join(line.rstrip() for line in t.content.split("\n"))
        elif t.type == "paragraph_open":
            tight_next = t.hidden
            continue
        else:
            continue
        text = text.strip("\n")
        if not text.strip():
            continue
        if parts:
            parts.append("\n" if tight_next else "\n\n")
        parts.append(text)
        tight_next = False
    return "".join(parts)


def _join_note(chunks: list[str]) -> str:
    return clean_text("\n\n".join(c for c in chunks if c.strip()))


def _has_link(inline: Token) -> bool:
    return any(c.type == "link_open" for c in inline.children or [])


def _is_label(inline: Token, plain: str) -> bool:
    """A short one-line paragraph that names a group of bullets ("NLP", "Reinforcement
    Learning:"), not a sentence about a paper."""
    text = plain.strip()
    return (
        bool(text)
        and "\n" not in text
        and not _has_link(inline)
        and len(text.split()) <= LABEL_WORDS
        and not text.endswith(_SENTENCE_END)
    )


def _has_link_children(children: list[Token]) -> bool:
    return any(c.type == "link_open" for c in children)


def _meta_str(value: object) -> str | None:
    """A front-matter scalar as a string, or None for missing, null or non-scalar values."""
    if isinstance(value, str) and value.strip() not in _YAML_NULL:
        return value.strip()
    return None


def _norm_space(text: str) -> str:
    return " ".join(text.split())


class Document:
    """One Markdown note, split into front matter and parsed blocks."""

    def __init__(self, text: str, rel: str) -> None:
        self.rel = rel
        self.problems: list[Problem] = []
        text = text.removeprefix("\ufeff")
        self.meta, self.body, self.offset = self._front_matter(text)
        self.tokens = self._parse(_fix_first_heading(self.body))
        self.titled_by_name = False  # a vault page: no heading, its file name is the title
        self.unsure = ""  # why the decision rests on weak evidence, if it does

    def _front_matter(self, text: str) -> tuple[dict[str, Any], str, int]:
        """Split off YAML front matter: (metadata, body, number of lines before the body)."""
        if not text.startswith("---"):
            return {}, text, 0
        lines = re.split(r"\r\n|\r|\n", text)
        if lines[0].rstrip() != "---":
            return {}, text, 0
        end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
        if end is None:
            return {}, text, 0  # a lone '---' is a thematic break, not front matter
        body = "\n".join(lines[end + 1 :])
        try:
            # BaseLoader (safe, like frontmatter's default SafeLoader) keeps every scalar a
            # string, so an arXiv id such as 1707.01490 is not read as the float 1707.0149.
            meta = YAMLHandler().load("\n".join(lines[1:end]), Loader=yaml.BaseLoader)
        except Exception as exc:  # YAMLError, or RecursionError on deeply nested YAML
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            why = getattr(exc, "problem", None) or type(exc).__name__
            self.problems.append(Problem(self.rel, line, f"front matter is not valid YAML ({why})"))
            return {}, body, end + 1
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            self.problems.append(Problem(self.rel, 1, "front matter is not a key: value mapping"))
            meta = {}
        return meta, body, end + 1

    def _parse(self, body: str) -> list[Token]:
        budget = PARSE_SECONDS + PARSE_SECONDS_PER_MB * len(body) / 1e6
        deadline = time.process_time() + budget
        env: dict[str, Any] = {_DEADLINE_KEY: deadline}
        # A long note makes millions of tokens and none of them cycles: the cyclic garbage
        # collector only slows the parse down (a third of the time on a 1M-bullet list).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            tokens = _MD.parse(body, env)
            limit = _MAX_NESTING
        except RecursionError:
            env = {_DEADLINE_KEY: deadline}
            tokens = _MD_SHALLOW.parse(body, env)
            limit = 20
        except _OutOfTime:
            self.problems.append(
                Problem(
                    self.rel,
                    None,
                    f"took over {budget:.0f} s of CPU time to parse (markup nested or "
                    "repeated beyond what notes hold); skipped",
                )
            )
            return []
        finally:
            if gc_was_enabled:
                gc.enable()
        for line in env.get(_PLAIN_KEY, []):
            self.problems.append(
                Problem(
                    self.rel,
                    line + 1 + self.offset if line is not None else None,
                    f"'[' nested more than {_MAX_INLINE_NESTING} deep; read as plain text",
                )
            )
        # markdown-it silently drops everything below its nesting limit, to the end of the
        # file: say so instead of losing the text without a word.
        for t in tokens:
            if t.nesting == 1 and t.level + 1 >= limit and t.map:
                self.problems.append(
                    Problem(
                        self.rel,
                        self.line(t),
                        f"nested more than {limit} levels deep; the rest of the file was skipped",
                    )
                )
                break
        return tokens

    def line(self, token: Token) -> int:
        return (token.map[0] if token.map else 0) + 1 + self.offset
