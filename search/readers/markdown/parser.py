"""Read Markdown notes: reading lists (one paper per entry) and one-paper note files.

People write notes in many shapes, so a file's shape is decided from evidence across the whole
file, not from its first blocks (a README may open with an introduction or an "about me"):

- An *entry* is a list item, numbered item, table row (of a table with a Title or Paper
  column) or heading with *evidence* that it names a paper: a link to a paper (arXiv,
  OpenReview, DOI, ACL Anthology, CVF, PMLR, NeurIPS, other publishers, any .pdf), a link to a
  local note file, a year or venue tag (`(2019)`, `[CVPR 2020]`, `<kbd>ICLR 2026</kbd>`), a
  citation (`Authors. Title. Venue Year.`), or `[[label](url)]` links after a title.
- A list or table lists papers when a third of its entries have evidence; lists under a note's
  own headings ("Key ideas", "Method", "References") do not. Sections listing no papers (about
  me, podcasts, a table of contents) contribute none. Two or more headings with evidence are
  entries too, the text under each being its note.
- One-paper signals: the first heading or line links the paper; front-matter `title:`; a
  tl;dr / abstract / summary paragraph; note headings such as Key ideas, Method, Results.
- Decision: a paper link in the first heading or line, or a front-matter title -> one paper
  (a front-matter title with many entries and no note headings -> a list); else entries -> a
  list (one paper when note signals meet fewer than LIST_MIN_ENTRIES entries); else note
  signals -> one paper; else a list of bare titles (no links anywhere, items that read as
  titles, as in `* Title` then `> note`) -> a list; else a heading and text -> one paper (not
  for a README or index at the notes root, which describes the folder); else nothing.

The folder as a whole decides the rest (notes_folder.py): a file linked as the note of an entry
elsewhere is one paper whatever it looks like; papers.toml can say `read_as = "list"|"paper"`.

Titles are read as people write them: `[Title](url) (Alias)` keeps the alias; trailers such as
`(2019) - Authors`, `(Sutton 1988)`, `[tags]` and `<kbd>venue</kbd>` become fields; a date line
such as `_Feb 2019_` under a title gives the year; `#[Title](url)` on the first line is read as
a heading; front matter whose title is only "Author Year" takes the description as the title.
In a list, a bullet's first line is its title and an indented line under it its note (unless
the title wraps onto a line that carries its links); what follows an entry up to the next entry
or heading (sub-bullets, blockquotes, sentences) is the note on it. A lone H1 above every other
heading names the file, not a section. A short one-line paragraph between bullets ("NLP",
"Reinforcement Learning:") reads as a sub-heading. `-Title [[arXiv](...)]` (no space: not a
bullet in CommonMark) is reported as a Problem rather than guessed at.
"""

from __future__ import annotations

import errno
import gc
import os
import posixpath
import re
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown_it import MarkdownIt
from markdown_it.rules_core.state_core import StateCore
from markdown_it.token import Token

from search.readers.records import (
    FileResult,
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

MAX_NOTE_BYTES = 20 * 1024 * 1024
NOTE_SUFFIXES = frozenset({".md", ".markdown", ".bib", ".jsonl", ".pdf"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
PROSE_WORDS = 15
LABEL_WORDS = 8
LABEL_LINK_WORDS = 3  # `[Paper](url) | [Talk](url)`: each link's label a few words at most

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

_BINARY_SNIFF = 8192
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/", re.I)
# Text around links that is punctuation, not title: "Title [[arXiv](...)] | [[code](...)]".
_SEPARATORS = " \t\n[](){}|,;:-\u2013\u2014\u00b7\u2022/"
_TRAILING = " \t\n[(|,;:-\u2013\u2014\u00b7\u2022/"
_SENTENCE_END = (".", "!", "?", "\u3002", "\uff01", "\uff1f")  # and the full-width 。！？
# Punctuation that ends or breaks a sentence in Chinese and Japanese text: a "title" holding
# one of these (。，；：！？、) is a sentence of a note, whatever its length.
_CJK_SENTENCE = re.compile("[\u3002\uff0c\uff1b\uff1a\uff01\uff1f\u3001]")
# Han, kana and Hangul: scripts written without spaces, where a character is about a word.
_CJK_CHAR = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# ftfy leaves printable ASCII without '&' unchanged, and is the slow part of reading a long list.
_FAKE_BULLET = re.compile(r"^[-*+][^\s\-*+]")
_YAML_NULL = {"", "~", "null", "Null", "NULL"}
_KNOWN_META = {
    "title",
    "authors",
    "author",
    "year",
    "venue",
    "tags",
    "arxiv",
    "doi",
    "url",
    "abstract",
}


# ---------------------------------------------------------------------------- listing files


def list_note_files(
    notes_dir: Path, follow_links: bool = False
) -> tuple[list[Path], list[Problem]]:
    """Every note file (.md, .markdown, .bib, .jsonl) under `notes_dir`, sorted, and the
    problems met on the way. Hidden names are skipped; symlinks are followed, but a folder
    reached twice (a symlink loop, or two links to one folder) is walked once. Never raises.

    A symlink that leads out of the library (the folder holding notes/) is reported and not
    followed unless `follow_links`: nothing outside the library is read unless asked.
    """
    root = Path(notes_dir)
    files: list[tuple[Path, bool]] = []  # (path, reached through a symlink)
    problems: list[Problem] = []

    def rel(p: str | Path) -> str:
        try:
            return Path(p).relative_to(root).as_posix() or "."
        except ValueError:
            return str(p)

    try:
        root_real = os.path.realpath(root)
        if not root.is_dir():
            return [], [Problem(str(root), None, "notes folder is missing or not a folder")]
    except OSError as exc:
        return [], [Problem(str(root), None, f"cannot open notes folder: {exc.strerror}")]

    # The library is the folder holding notes/; notes/ may itself be a link to elsewhere.
    library = [Path(root_real), Path(os.path.realpath(root.parent))]

    def leaves_library(link: Path) -> Problem | None:
        if follow_links:
            return None
        target = Path(os.path.realpath(link))
        if any(target.is_relative_to(inside) for inside in library):
            return None
        return Problem(
            rel(link),
            None,
            f"symlink to {target}, outside the library: not followed "
            "(`papers rebuild --follow-links` follows it)",
        )

    visited = {root_real}
    stack: list[Path] = [root]
    # Symlinked folders wait until every real folder is listed, so that a folder reachable
    # both ways is listed under its real path and the link is the one reported.
    linked: list[Path] = []
    via_link: set[Path] = set()  # folders reached through a symlink
    while stack or linked:
        if not stack:
            link = linked.pop(0)
            real = os.path.realpath(link)
            if real in visited:
                problems.append(
                    Problem(rel(link), None, "symlink to a folder already read (a loop?); skipped")
                )
                continue
            visited.add(real)
            stack.append(link)
            via_link.add(link)
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(rel(folder), None, f"cannot read folder: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows symlinks
                is_file = entry.is_file()
            except OSError as exc:
                problems.append(Problem(rel(path), None, f"cannot read: {exc.strerror}"))
                continue
            if is_dir:
                if is_link:
                    outside = leaves_library(path)
                    if outside is not None:
                        problems.append(outside)
                    else:
                        linked.append(path)
                    continue
                real = os.path.realpath(path)
                if real in visited:
                    problems.append(Problem(rel(path), None, "folder already read; skipped"))
                    continue
                visited.add(real)
                stack.append(path)
                if folder in via_link:
                    via_link.add(path)
            elif path.suffix.lower() in NOTE_SUFFIXES:
                if not is_file:
                    problems.append(Problem(rel(path), None, _not_a_file(path, is_link)))
                    continue
                outside = leaves_library(path) if is_link else None
                if outside is not None:
                    problems.append(outside)
                else:
                    files.append((path, is_link or folder in via_link))
    # Two paths to one file would give every paper in it twice: keep the real one.
    seen: set[str] = set()
    unique = []
    for f, _ in sorted(files, key=lambda fl: (fl[1], fl[0])):
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    unique.sort()
    return unique, problems


def _not_a_file(path: Path, is_link: bool) -> str:
    """Why a note-named entry that is not a regular file (after links) is not read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return "broken symlink" if is_link else f"cannot read: {exc.strerror}"
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a file")
    return f"not a regular file ({kind}{', through a symlink' if is_link else ''})"


# ---------------------------------------------------------------------------- reading a file


def read_markdown_file(path: Path, rel: str, read_as: str = "auto") -> FileResult:
    """Read one Markdown note and parse it; a file that is not a readable, UTF-8 text note of
    at most MAX_NOTE_BYTES gives a Problem and no records. Never raises."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return _problem(rel, None, "not a regular file")
        if st.st_size > MAX_NOTE_BYTES:
            return _too_big(rel, st.st_size)
        with open(path, "rb") as f:
            # Read one byte past the limit: the file may have grown since stat().
            data = f.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        return _problem(rel, None, f"cannot read: {exc.strerror or exc}")
    if len(data) > MAX_NOTE_BYTES:
        return _too_big(rel, len(data))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a UTF-16 byte-order mark
        try:
            return parse_markdown(data.decode("utf-16"), rel)
        except UnicodeDecodeError as exc:
            return _problem(rel, None, f"not valid UTF-16 (byte offset {exc.start})")
    if b"\x00" in data[:_BINARY_SNIFF]:
        if _looks_utf16(data[:_BINARY_SNIFF]):
            return _problem(rel, None, "UTF-16 text without a byte-order mark: save it as UTF-8")
        return _problem(rel, None, "binary file (NUL byte), not a text note")
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if bom else 0)
        line = data[:offset].count(b"\n") + 1
        return _problem(rel, line, f"not valid UTF-8 (byte offset {offset}, line {line})")
    return parse_markdown(text, rel, read_as)


def _looks_utf16(sample: bytes) -> bool:
    """Mostly-ASCII UTF-16: NUL in nearly every other byte, on one side only."""
    half = len(sample) // 2
    if half < 2:
        return False
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) >= 0.6 * half and min(even, odd) <= 0.05 * half


def _problem(rel: str, line: int | None, message: str) -> FileResult:
    return FileResult(
        records=[], problems=[Problem(rel, line, message)], reading="skipped", reason=message
    )


def _too_big(rel: str, size: int) -> FileResult:
    mb = MAX_NOTE_BYTES / (1024 * 1024)
    return _problem(rel, None, f"{size} bytes is over the {mb:g} MB limit for a note; skipped")


# ---------------------------------------------------------------------------- parsing

READ_AS = ("auto", "list", "paper")


def parse_markdown(text: str, rel: str, read_as: str = "auto") -> FileResult:
    """The papers in one Markdown note (see the module docstring for how its shape is
    decided). `read_as` "list" or "paper" skips the guess. Every record keeps `rel` and its
    1-based line; the result says how the file was read and why. Never raises."""
    try:
        return _Parser(text, rel).run(read_as)
    except Exception as exc:  # a note must never stop a rebuild; say what went wrong
        result = _problem(rel, None, f"internal error while parsing ({type(exc).__name__}: {exc})")
        result.reading, result.reason = "skipped", "internal error while parsing"
        return result


@dataclass
class _Title:
    """The title part of a heading, bullet or table cell, and what was around it."""

    text: str
    title_href: str | None  # the link the title itself is, if it is one
    hrefs: list[str] = field(default_factory=list)  # every link, in order
    has_aux: bool = False  # links after the title such as [[arXiv](...)]
    bracketed: bool = False  # ... in brackets, as reading lists write them
    tags: list[str] = field(default_factory=list)  # [tag] and <kbd>tag</kbd> after the title
    alias: str | None = None  # `[Title](url) (Alias)`
    note_paths: list[str] = field(default_factory=list)  # local note paths written as text


@dataclass(eq=False)
class _Draft:
    """A record being built: note chunks are added until the next entry or heading."""

    record: Record
    chunks: list[str] = field(default_factory=list)
    evidence: bool = False  # links a paper or a note file, or carries a year/venue tag
    title_like: bool = False  # reads like a title, not a sentence or a labelled item
    title_link: bool = False  # the whole title is one link to a web page, of a few words


@dataclass(eq=False)
class _Unit:
    """One top-level block, analysed: a heading, a list, a table or anything else."""

    kind: str  # "heading", "list", "table", "para", "hr", "other"
    i: int
    j: int
    entries: list[_Draft] = field(default_factory=list)  # list items or table rows
    entry: _Draft | None = None  # a heading that is a paper entry
    level: int = 0  # heading level
    text: str = ""  # heading text
    note_heading: bool = False  # "Key ideas", "Method", "Results", ...
    prose_colon: bool = False  # a list right after a sentence ending in ':'


class _Parser:
    """One parse of one file."""

    def __init__(self, text: str, rel: str) -> None:
        self.rel = rel
        self.problems: list[Problem] = []
        text = text.removeprefix("\ufeff")
        self.meta, self.body, self.offset = self._front_matter(text)
        self.tokens = self._parse(_fix_first_heading(self.body))
        self.titled_by_name = False  # a vault page: no heading, its file name is the title
        self.unsure = ""  # why the decision rests on weak evidence, if it does

    # -- setup

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
                        self._line(t),
                        f"nested more than {limit} levels deep; the rest of the file was skipped",
                    )
                )
                break
        return tokens

    def _line(self, token: Token) -> int:
        return (token.map[0] if token.map else 0) + 1 + self.offset

    # -- driver

    def run(self, read_as: str = "auto") -> FileResult:
        units = self._units()
        if read_as == "paper":
            kind, reason = "paper", "read as one paper"
        elif read_as == "list":
            kind, reason = "list", "read as a list"
        else:
            kind, reason = self._decide(units)
        if kind == "paper":
            records = self._paper_file(forced=read_as == "paper" or self.titled_by_name)
        elif kind == "list":
            records = self._paper_list(units, every_list=read_as == "list")
        else:
            records = []
        if kind == "list":
            reading = f"list of {len(records)} paper{'s' if len(records) != 1 else ''}"
        elif kind == "paper" and records:
            reading = "one paper"
        else:
            reading = "skipped"
        entries = (
            sum(d.evidence for u in units if u.kind in ("list", "table") for d in u.entries)
            if kind == "list"
            else 0
        )
        unsure = self.unsure if read_as == "auto" and records else ""
        return FileResult(
            records=records,
            problems=self.problems,
            reading=reading,
            reason=reason,
            entries=entries,
            unsure=unsure,
        )

    # -- what shape is this file?

    def _decide(self, units: list[_Unit]) -> tuple[str, str]:
        """("paper" | "list" | "skipped", why), from evidence across the whole file."""
        tokens = self.tokens
        meta_title = _meta_str(self.meta.get("title"))
        first = next((u for u in units if u.kind not in ("hr",)), None)
        title_link = paper_link = False
        bare_link = False
        if first is not None and first.kind in ("heading", "para"):
            parsed = _title(tokens[first.i + 1].children or [])
            title_link = _is_url(parsed.title_href) or (
                first.kind == "heading" and parsed.has_aux and any(map(_is_paper_url, parsed.hrefs))
            )
            paper_link = any(map(_is_paper_url, parsed.hrefs))
            bare_link = (
                first.kind == "para"
                and _BARE_URL_LINE.fullmatch(tokens[first.i + 1].content.strip()) is not None
            )
        headings = [u for u in units if u.kind == "heading"]
        heading_entries = _heading_entries(headings)
        contributing = [u for u in units if u.kind in ("list", "table") and self._evidence_list(u)]
        n_entries = sum(len(u.entries) for u in contributing) + len(heading_entries)
        note_headings = [u for u in headings[1:] if u.note_heading]
        summary = any(
            u.kind == "para" and _SUMMARY_START.match(tokens[u.i + 1].content.lstrip())
            for u in units
        )
        weak = summary or (
            bool(note_headings) and 2 * len(note_headings) >= max(1, len(headings) - 1)
        )
        readme = _is_readme(self.rel)
        root_readme = readme and "/" not in self.rel
        what = _entries_phrase(contributing, heading_entries)
        if meta_title:
            if n_entries >= LIST_MIN_ENTRIES and not weak and not (title_link and paper_link):
                self.unsure = "front matter names one paper, yet entries make it a list"
                return "list", f"front matter has a title, but {what}"
            return "paper", "front matter has a title"
        if title_link and not heading_entries and (paper_link or n_entries < LIST_MIN_ENTRIES):
            # A first heading linking a web page ("# [Awesome X](https://github.com/...)") over
            # many entries names a list, not a paper.
            return "paper", "its first heading or line links the paper"
        if bare_link and not readme:
            return "paper", "it opens with a link to the paper"
        if n_entries:
            if n_entries < LIST_MIN_ENTRIES and not weak:
                self.unsure = f"only {n_entries} entries: may be one paper's note citing others"
            if weak and n_entries < LIST_MIN_ENTRIES:
                why = "a summary paragraph" if summary else "note headings such as Key ideas"
                return (
                    "paper",
                    f"{why}, and only {n_entries} linked entr{'y' if n_entries == 1 else 'ies'}",
                )
            return "list", what
        if weak and headings and not root_readme:
            why = "a summary paragraph" if summary else "note headings such as Key ideas"
            return "paper", f"a title and {why}"
        if headings and not readme and _names_its_file(headings[0].text, self.rel):
            # `# Lessons From Thirty Years` in "Lessons From Thirty Years.md": a note on one
            # thing (a paper, a talk, a chapter), its bullets an outline, not a list of titles.
            self.unsure = "no paper link or title field: may be a note on a talk or a chapter"
            return "paper", "its first heading is its file name, and no linked entries"
        plain = [u for u in units if u.kind in ("list", "table") and self._plain_list(u)]
        # Prose before the first list: a note's text (sentences after bullets are their notes).
        first_list = min((u.i for u in plain), default=0)
        prose = sum(
            _word_count(tokens[u.i + 1].content)
            for u in units
            if u.kind == "para" and u.i < first_list
        )
        listed = sum(_word_count(d.record.title) for u in plain for d in u.entries)
        if plain and prose <= listed:
            # Titles, not a note's prose with a few bullet points in it.
            n = sum(len(u.entries) for u in plain)
            self.unsure = "no links or years: items taken as titles because they read as titles"
            return "list", f"{n} title-like list item{'s' if n != 1 else ''} (no links anywhere)"
        if headings and not root_readme:
            self.unsure = "no paper link, title field or note headings: may not be about a paper"
            return "paper", "a heading and text, no list of papers"
        if not headings and not readme:
            words = self._prose_words(units)
            if words >= VAULT_PROSE_WORDS and _title_from_path(self.rel, words=True):
                # A vault page (Obsidian, Logseq, Foam, Notion exports): its file name is the
                # title, its text the note.
                self.titled_by_name = True
                self.unsure = "no heading: the title is the file name, the page may not be a paper"
                return "paper", f"{words} words of prose and no heading: titled by its file name"
            if words == 0:
                return "skipped", f"{NO_TEXT} (only links, tags or nothing)"
        if units and not headings:
            return "skipped", "no heading, title or paper entries"
        return "skipped", "no paper entries (links to papers or note files, year tags)"

    def _prose_words(self, units: list[_Unit]) -> int:
        """Words of the file's own text: paragraphs and list items without the wiki links,
        #tags and URLs that backlink and tag pages are made of."""
        words = 0
        for u in units:
            if u.kind in ("para", "list", "other"):
                text = _plain_blocks(self.tokens, u.i, u.j)
                words += len(_NOT_PROSE.sub(" ", text).split())
        return words

    def _evidence_list(self, unit: _Unit) -> bool:
        """A list or table of papers by evidence: a third of its entries link a paper or a note
        file, or carry a year or venue tag. Lists under note headings ("Key ideas",
        "References") are part of a note, not a reading list."""
        titled = [d for d in unit.entries if d.record.title]
        if not titled or unit.note_heading:
            return False
        with_evidence = sum(d.evidence for d in titled)
        return with_evidence > 0 and 3 * with_evidence >= len(titled)

    def _plain_outweighs(self, units: list[_Unit], heading_entries: list[_Unit]) -> bool:
        """More entries in lists of bare titles than in lists with evidence."""
        lists = [u for u in units if u.kind in ("list", "table")]
        with_evidence = sum(len(u.entries) for u in lists if self._evidence_list(u))
        plain = sum(
            len(u.entries) for u in lists if not self._evidence_list(u) and self._plain_list(u)
        )
        return plain > with_evidence + len(heading_entries)

    def _plain_list(self, unit: _Unit) -> bool:
        """A list of bare titles, as in a list with no links at all: most items read as
        titles, and it is not the continuation of a sentence ending in ':'."""
        titled = [d for d in unit.entries if d.record.title]
        if not titled or unit.prose_colon or unit.note_heading:
            return False
        return 10 * sum(d.title_like for d in titled) >= 7 * len(titled)

    # -- analysis

    def _units(self) -> list[_Unit]:
        tokens = self.tokens
        units: list[_Unit] = []
        stack: list[tuple[int, bool]] = []  # (level, note heading) of the enclosing headings
        prev_para_colon = False
        seen_heading = False
        for i, j in _blocks(tokens, 0, len(tokens), 0):
            tok = tokens[i]
            under_note = any(n for _, n in stack)
            if tok.type == "heading_open":
                level = int(tok.tag[1:]) if tok.tag[1:].isdigit() else 6
                text = _heading_text(tokens[i + 1])
                while stack and stack[-1][0] >= level:
                    stack.pop()
                # The file's first heading is its title ("Notes"), not a part of a note.
                note = seen_heading and _is_note_heading(text)
                seen_heading = True
                stack.append((level, note))
                unit = _Unit("heading", i, j, level=level, text=text, note_heading=note)
                if not note:
                    unit.entry = self._entry(tokens[i + 1].children or [], tok, [])
                units.append(unit)
                prev_para_colon = False
                continue
            if tok.type in _LISTS:
                unit = _Unit("list", i, j, note_heading=under_note, prose_colon=prev_para_colon)
                unit.entries = self._items(tokens, i, j, [])
                _regular_link_list(unit)
            elif tok.type == "table_open":
                unit = _Unit("table", i, j, note_heading=under_note)
                unit.entries = self._table_rows(tokens, i, j)
            elif tok.type == "paragraph_open":
                unit = _Unit("para", i, j)
            elif tok.type == "hr":
                unit = _Unit("hr", i, j)
            else:
                unit = _Unit("other", i, j)
            if tok.type == "paragraph_open":
                content = tokens[i + 1].content.strip()
                prev_para_colon = content.endswith(":") and len(content.split()) > LABEL_WORDS
            else:
                prev_para_colon = False
            units.append(unit)
        return units

    def _items(self, tokens: list[Token], i: int, j: int, label: list[str]) -> list[_Draft]:
        """The entries of the list tokens[i:j]. An item without evidence of its own whose
        sub-list is a list of papers is a category: its sub-items are the entries."""
        drafts: list[_Draft] = []
        for a, b in _blocks(tokens, i + 1, j - 1, tokens[i].level + 1):
            inner = list(_blocks(tokens, a + 1, b - 1, tokens[a].level + 1))
            children: list[Token] = []
            # A heading inside an item: `* Title` with a lone `-` under it is a setext heading.
            if inner and tokens[inner[0][0]].type in ("paragraph_open", "heading_open"):
                children = tokens[inner[0][0] + 1].children or []
            draft = self._entry(children, tokens[a], label)
            if draft is None:
                drafts.append(_Draft(Record(title="", file=self.rel, line=self._line(tokens[a]))))
                continue
            rest = inner[1:] if children else inner
            sub = [(x, y) for x, y in rest if tokens[x].type in _LISTS]
            if not draft.evidence and sub and not _has_link_children(children):
                nested = [
                    d
                    for x, y in sub
                    for d in self._items(tokens, x, y, [*label, draft.record.title])
                ]
                if nested and 2 * sum(d.evidence for d in nested) >= len(nested):
                    drafts.extend(nested)
                    continue
            draft.chunks.extend(_plain_blocks(tokens, x, y) for x, y in rest)
            drafts.append(draft)
        return drafts

    def _entry(self, children: list[Token], tok: Token, label: list[str]) -> _Draft | None:
        """The record of a list item, heading or paragraph whose inline content is
        `children`, with whether it looks like a paper entry; None without title text."""
        title_children, note_children = _first_line(children)
        parsed = _title(title_children)
        raw = _inline_plain_children(children, " ")
        cite = _citation(_norm_space(raw)) if not parsed.title_href else None
        if cite is not None:
            parsed = _title(children)
            note_children = []
        text = cite.title if cite is not None else parsed.text
        title, year, venue, authors = _trailers(_norm_space(clean_text(text)))
        if not title:
            return None
        record = Record(title=title, file=self.rel, line=self._line(tok), section=list(label))
        meta = _META_ITEM.match(raw)
        if meta and _norm_words(meta.group(1)) in _META_LABELS:
            # "Authors: ...", "Venue: CVPR 2019", "Code: [github](...)": a field of the
            # paper this note is about, not an entry of a list.
            return _Draft(record, chunks=[], evidence=False, title_like=False)
        _apply_links(record, parsed)
        bare = [u for u in _BARE_URL.findall(raw) if not any(u in h for h in parsed.hrefs)]
        if record.url is None and bare:
            record.arxiv = record.arxiv or next(filter(None, map(_arxiv_of, bare)), None)
            record.url = (
                f"https://arxiv.org/abs/{record.arxiv}" if record.arxiv else bare[0].rstrip(".,;)")
            )
        if cite is not None:
            authors = authors or cite.authors
            year = year or cite.year
            venue = venue or cite.venue
        for tag in parsed.tags:
            tag_venue, tag_year = _venue_year(tag)
            if tag_year:
                year = year or tag_year
                venue = venue or tag_venue
            else:
                record.tags.extend(t.strip() for t in tag.split(",") if t.strip())
        record.year, record.venue, record.authors = year, venue, authors
        if parsed.alias:
            record.aliases.append(parsed.alias)
        note_file = _note_file(parsed.title_href, self.rel) or next(
            (
                n
                for n in (
                    *(_note_file(h, self.rel) for h in parsed.hrefs),
                    *(_note_file(p, self.rel) for p in parsed.note_paths),
                )
                if n
            ),
            None,
        )
        if note_file:
            record.extra["note_file"] = note_file
        # A sentence that cites a paper ("It builds on [X](arxiv) (2018), which showed ...")
        # is a note's prose, however many links it has: evidence is for titles.
        evidence = not _is_sentence(title) and bool(
            note_file
            or any(_is_paper_url(h) for h in parsed.hrefs)
            or any(_is_paper_url(u) for u in bare)
            or cite is not None
            or (parsed.bracketed and any(map(_is_url, parsed.hrefs)))
            or year is not None
            or venue is not None
        )
        title_like = (
            not evidence and not parsed.hrefs and not bare and _looks_like_title(title, children)
        )
        draft = _Draft(record, evidence=evidence, title_like=title_like)
        draft.title_link = (
            _is_url(parsed.title_href)
            and len(title.split()) >= REGULAR_TITLE_WORDS
            and not title.endswith(_SENTENCE_END)
        )
        if note_children:
            draft.chunks.append(clean_text(_inline_plain_children(note_children, "\n").strip()))
        return draft

    def _table_rows(self, tokens: list[Token], i: int, j: int) -> list[_Draft]:
        """Rows of a table with a Title (or Paper) column: one entry per data row."""
        rows: list[list[tuple[Token, Token]]] = []  # (tr token, inline) per cell
        k = i
        while k < j:
            if tokens[k].type == "tr_open":
                cells = []
                m = k + 1
                while m < j and tokens[m].type != "tr_close":
                    if tokens[m].type == "inline":
                        cells.append((tokens[k], tokens[m]))
                    m += 1
                rows.append(cells)
                k = m
            k += 1
        if len(rows) < 2:
            return []
        header = [_norm_words(_inline_plain(c[1], " ")) for c in rows[0]]
        title_col = next((n for n, h in enumerate(header) if h in _TITLE_COLUMNS), None)
        if title_col is None:  # "Title & Authors", "Paper (with link)"; not "Paper link"
            title_col = next(
                (
                    n
                    for n, h in enumerate(header)
                    if h.split()[:1] in (["title"], ["paper"])
                    and not set(h.split()[1:]) & {"link", "links", "url", "pdf", "code", "id"}
                ),
                None,
            )
        if title_col is None:
            return []
        drafts = []
        for cells in rows[1:]:
            if title_col >= len(cells):
                continue
            tr, inline = cells[title_col]
            draft = self._entry(inline.children or [], tr, [])
            if draft is None:
                drafts.append(_Draft(Record(title="", file=self.rel, line=self._line(tr))))
                continue
            record = draft.record
            for n, (_, cell) in enumerate(cells):
                if n == title_col or n >= len(header):
                    continue
                name = header[n]
                parsed = _title(cell.children or [])
                plain = _norm_space(clean_text(_inline_plain(cell, " ")))
                for href in [*parsed.hrefs, *parsed.note_paths, plain]:
                    note_file = _note_file(href, self.rel) if href else None
                    if note_file and "note_file" not in record.extra:
                        record.extra["note_file"] = note_file
                        draft.evidence = True
                if any(_is_paper_url(h) for h in parsed.hrefs):
                    draft.evidence = True
                    if record.url is None or record.arxiv is None:
                        _apply_links(record, parsed)
                if not plain or parsed.title_href:
                    continue
                if name in _AUTHOR_COLUMNS:
                    record.authors = record.authors or _split_authors(plain)
                elif name in _VENUE_COLUMNS or name in _YEAR_COLUMNS:
                    venue, year = _venue_year(plain)
                    if name in _VENUE_COLUMNS and plain and not record.venue:
                        record.venue = venue or plain
                    if year and record.year is None:
                        record.year = year
                        draft.evidence = draft.evidence or name in _VENUE_COLUMNS
                elif name in _NOTE_COLUMNS and not parsed.hrefs:
                    draft.chunks.append(plain)
            draft.title_like = not draft.evidence and _looks_like_title(record.title, [])
            drafts.append(draft)
        return drafts

    # -- one paper per file

    def _paper_file(self, forced: bool = False) -> list[Record]:
        tokens = self.tokens
        blocks = list(_blocks(tokens, 0, len(tokens), 0))
        meta_title = _meta_str(self.meta.get("title"))
        title_block: tuple[int, int] | None = None
        parsed: _Title | None = None
        bare_url: str | None = None
        label_url: str | None = None
        if blocks:
            i, j = blocks[0]
            if tokens[i].type == "paragraph_open":
                content = tokens[i + 1].content.strip()
                candidate = _title(tokens[i + 1].children or [])
                if candidate.title_href and _norm_words(candidate.text) in _META_LABELS:
                    # `[Paper](url) | [Talk](url)`: a link to the paper, not its title
                    label_url = candidate.title_href
                elif candidate.title_href:  # a file opening with just a link to the paper
                    title_block, parsed = (i, j), candidate
                elif _BARE_URL_LINE.fullmatch(content):
                    bare_url = content
        if parsed is None and bare_url is None:
            # The first heading, unless it is one of the note's parts ("### Abstract"); else
            # the title cell of a table row the note opens with.
            top = 7  # a title heading is above every heading before it
            for i, j in blocks:
                if tokens[i].type == "heading_open":
                    level = int(tokens[i].tag[1:]) if tokens[i].tag[1:].isdigit() else 6
                    text = _heading_text(tokens[i + 1])
                    if level < top and (
                        not _is_note_heading(text) or _strip_title_prefix(text) != text
                    ):
                        title_block, parsed = (i, j), _title(tokens[i + 1].children or [])
                        break
                    top = min(top, level)
                if tokens[i].type == "table_open" and title_block is None:
                    rows = self._table_rows(tokens, i, j)
                    if rows and rows[0].record.title:
                        title_block = (i, j)
                        parsed = _Title(rows[0].record.title, None, [])
                        break
        if parsed is None and bare_url is None:
            bare_url = label_url
        aliases: list[str] = []
        year = venue = None
        authors: list[str] = []
        if meta_title:
            title, line = _norm_space(clean_text(meta_title)), 1
            description = _meta_str(self.meta.get("description"))
            if (
                description
                and _AUTHOR_YEAR.fullmatch(title)
                and _looks_like_title(_norm_space(clean_text(description)), [])
            ):
                # "Bazil 2010" names the paper by author and year; the description has its title.
                aliases.append(title)
                title = _norm_space(clean_text(description))
            # The heading stays note text unless it only repeats the front-matter title.
            if parsed is None or _norm_space(parsed.text).casefold() != title.casefold():
                title_block, parsed = None, None
        elif parsed is not None and title_block is not None:
            heading = _strip_title_prefix(_norm_space(clean_text(parsed.text)))
            title, year, venue, authors = _trailers(heading)
            line = self._line(tokens[title_block[0]])
            named = _title_from_path(self.rel, words=True)
            short = len(title.split())
            if 0 < short <= SHORT_NAME_WORDS and len(named.split()) >= short + 2:
                # `# CLIP` in "Learning Transferable Visual Models.md": the file name is the
                # full title, the heading a short name for it.
                aliases.append(title)
                title = named
        elif bare_url is not None or (forced and any(t.type == "inline" for t in tokens)):
            title, line = _title_from_path(self.rel), 1 + self.offset
            if bare_url is not None:
                title_block = blocks[0]
        else:
            if any(t.type == "inline" and t.content.strip() for t in tokens) or self.meta:
                self.problems.append(
                    Problem(self.rel, None, "no title: no front-matter title, heading or list")
                )
            return []
        if not title:
            self.problems.append(Problem(self.rel, line, "empty title; skipped"))
            return []
        chunks: list[str] = []
        for i, j in blocks:
            if title_block is not None and i == title_block[0]:
                continue
            if tokens[i].type == "paragraph_open" and not chunks and year is None:
                # "_Feb 2019_" right under the title: the date, not note text.
                date = _DATE_LINE.fullmatch(_inline_plain(tokens[i + 1], " ").strip())
                if date:
                    year = int(date.group(1))
                    continue
            chunks.append(_plain_blocks(tokens, i, j))
        record = Record(title=title, file=self.rel, line=line, note=_join_note(chunks))
        if parsed is not None:
            _apply_links(record, parsed)
            if parsed.alias:
                aliases.append(parsed.alias)
        elif bare_url is not None:
            record.url = bare_url
            record.arxiv = _arxiv_of(bare_url)
        if record.url is None:
            self._label_links(record, blocks)
        record.year, record.venue, record.authors = year, venue, authors
        record.aliases = aliases
        self._apply_meta(record)
        record.extra["kind"] = "paper-file"
        return [record]

    def _label_links(self, record: Record, blocks: list[tuple[int, int]]) -> None:
        """The paper's link from a line of labelled links under the title
        (`[Paper](arxiv) | [Code](github)`), the first such line in the note."""
        tokens = self.tokens
        for i, _j in blocks[:3]:
            if tokens[i].type != "paragraph_open":
                continue
            parsed = _title(tokens[i + 1].children or [])
            labels = re.split(r"[|/,\u00b7\u2022]", _inline_plain(tokens[i + 1], " "))
            if (
                any(map(_is_paper_url, parsed.hrefs))
                and any(_norm_words(t) in _META_LABELS for t in labels)
                and all(len(t.split()) <= LABEL_LINK_WORDS for t in labels)
            ):
                _apply_links(
                    record, _Title("", None, [h for h in parsed.hrefs if _is_paper_url(h)])
                )
                return

    def _apply_meta(self, record: Record) -> None:
        meta = self.meta
        authors = meta.get("authors", meta.get("author"))
        if isinstance(authors, list):
            record.authors = [clean_text(a) for a in authors if isinstance(a, str) and a.strip()]
        elif _meta_str(authors):
            record.authors = _split_authors(str(authors))
        year = _meta_str(meta.get("year"))
        if year:
            m = re.fullmatch(r"\s*(\d{4})\s*", year)
            if m:
                record.year = int(m.group(1))
            else:
                record.extra["year"] = year
        venue = _meta_str(meta.get("venue"))
        if venue:
            record.venue = clean_text(venue)
        tags = meta.get("tags")
        if isinstance(tags, list):
            record.tags = [clean_text(t) for t in tags if isinstance(t, str) and t.strip()]
        elif _meta_str(tags):
            sep = "," if "," in str(tags) else None
            record.tags = [t.strip() for t in str(tags).split(sep) if t.strip()]
        arxiv = _meta_str(meta.get("arxiv"))
        if arxiv:
            record.arxiv = parse_arxiv_id(arxiv) or record.arxiv
        doi = normalise_doi(_meta_str(meta.get("doi")))
        if doi:
            record.doi = doi
        abstract = _meta_str(meta.get("abstract"))
        if abstract:
            record.abstract = clean_text(abstract)
        url = _meta_str(meta.get("url"))
        if url:
            record.url = url
            record.arxiv = record.arxiv or _arxiv_of(url)
        elif record.arxiv:
            record.url = f"https://arxiv.org/abs/{record.arxiv}"
        for key, value in meta.items():
            if isinstance(key, str) and key not in _KNOWN_META and isinstance(value, str):
                if value not in _YAML_NULL:
                    record.extra[key] = value

    # -- a list of papers

    def _paper_list(self, units: list[_Unit], every_list: bool = False) -> list[Record]:
        """Records of the entries: items of the lists and rows of the tables that list papers,
        and headings that are paper entries. Headings are sections; what follows an entry up
        to the next entry or heading is the note on it."""
        tokens = self.tokens
        headings = [u for u in units if u.kind == "heading"]
        heading_entries = _heading_entries(headings, every_list)
        if every_list and not any(u.entries for u in units if u.kind in ("list", "table")):
            # Told it is a list, with no bullets or table rows: the papers are its headings
            # (those of the most common level, "## Paper" under "# My notes").
            named = [u for u in headings if u.entry is not None and not u.note_heading]
            levels = [u.level for u in named]
            common = max(set(levels), key=lambda lv: (levels.count(lv), lv), default=0)
            heading_entries = [u for u in named if u.level == common]
        entry_ids = {id(u) for u in heading_entries}
        entry_levels = {u.level for u in heading_entries}
        skip_h1 = (
            bool(headings)
            and headings[0].level == 1
            and not any(h.level == 1 for h in headings[1:])
            and id(headings[0]) not in entry_ids
        )
        has_evidence = any(
            self._evidence_list(u) for u in units if u.kind in ("list", "table")
        ) or bool(heading_entries)

        # Lists of bare titles count beside linked or tagged ones when they hold more entries:
        # a plain reading list stays one when a tagged entry is added (one line must never
        # change how the rest of a file is read), and a few plain bullets (a table of
        # contents, "about me") beside a linked list stay out of it.
        plain_too = not has_evidence or self._plain_outweighs(units, heading_entries)

        def contributes(u: _Unit) -> bool:
            if every_list or self._evidence_list(u):
                return True
            return plain_too and self._plain_list(u)

        stack: list[tuple[int, str]] = []
        label: str | None = None
        drafts: list[_Draft] = []
        current: _Draft | None = None
        entry_level: int | None = None  # level of the heading entry whose note we are in

        def section() -> list[str]:
            return [text for _, text in stack] + ([label] if label else [])

        for u in units:
            i, j = u.i, u.j
            if u.kind == "heading":
                if entry_level is not None and u.level > entry_level and current is not None:
                    current.chunks.append(u.text)  # a sub-heading inside a paper's note
                    continue
                current, label, entry_level = None, None, None
                if skip_h1 and u is headings[0]:
                    continue
                if id(u) in entry_ids and u.entry is not None:
                    while stack and stack[-1][0] >= u.level:
                        stack.pop()
                    u.entry.record.section = [t for _, t in stack]
                    drafts.append(u.entry)
                    current, entry_level = u.entry, u.level
                    continue
                while stack and stack[-1][0] >= u.level:
                    stack.pop()
                if u.level not in entry_levels or not heading_entries:
                    stack.append((u.level, u.text))
            elif entry_level is not None and current is not None:
                current.chunks.append(_plain_blocks(tokens, i, j))
            elif u.kind in ("list", "table"):
                if not contributes(u):
                    current = None
                    continue
                for d in u.entries:
                    if not d.record.title:
                        self.problems.append(
                            Problem(self.rel, d.record.line, "bullet without title text; skipped")
                        )
                        current = None
                        continue
                    d.record.section = section() + d.record.section
                    drafts.append(d)
                    current = d
                if u.kind == "table":
                    current = None
            elif u.kind == "para":
                inline = tokens[i + 1]
                plain = _plain_blocks(tokens, i, j)
                if _is_label(inline, plain):
                    label, current = clean_text(_norm_space(plain).rstrip(":").strip()), None
                elif current is not None:
                    current.chunks.append(plain)
                elif _has_link(inline) and has_evidence and _FAKE_BULLET.match(inline.content):
                    self.problems.append(
                        Problem(
                            self.rel,
                            self._line(tokens[i]),
                            "text with links outside any bullet, not read as a paper (a bullet "
                            "needs a space after its '-', '*' or '+')",
                        )
                    )
            elif u.kind == "hr":
                current = None
            elif current is not None:
                # Blockquotes, code and other blocks after a bullet are notes on it.
                current.chunks.append(_plain_blocks(tokens, i, j))
        records = []
        for d in drafts:
            d.record.note = _join_note(d.chunks)
            records.append(d.record)
        return records


_LISTS = ("bullet_list_open", "ordered_list_open")


# ---------------------------------------------------------------------------- token helpers


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


def _title(children: list[Token]) -> _Title:
    """Split a bullet's, heading's or cell's inline content into title text and links.

    Links after the title are not title text: bracketed ones (`Title [[arXiv](url)]`) and
    trailing ones (`Title [pdf](url) [code](url)`); everything after the first such link is
    dropped (`[[code]()] (soon)`), but `[tags]` and `<kbd>venue</kbd>` there are kept as tags.
    A link that is the whole title (`[Title](notes/x.md)`), or set off by dashes
    (`[Title](url) — description`), is the title link; `[Title](url) (Alias)` gives an alias.
    """
    # Segments: (text, href or None). Text of links and emphasis is flattened.
    segs: list[tuple[str, str | None]] = []
    href: str | None = None
    buf: list[str] = []
    tags: list[str] = []
    kbd: list[str] | None = None
    for child in children:
        if child.type == "html_inline" and child.content.lower() == "<kbd>":
            kbd = []
        elif child.type == "html_inline" and child.content.lower() == "</kbd>":
            if kbd is not None and "".join(kbd).strip():
                tags.append(_norm_space("".join(kbd)))
            kbd = None
        elif kbd is not None:
            kbd.append(_inline_text(child, " "))
        elif child.type == "link_open":
            if buf:
                segs.append(("".join(buf), None))
            buf, href = [], str(child.attrs.get("href") or "")
        elif child.type == "link_close":
            segs.append(("".join(buf), href))
            buf, href = [], None
        else:
            buf.append(_inline_text(child, " "))
    if buf:
        segs.append(("".join(buf), href))
    if segs and segs[0][1] is None and _CHECKBOX.match(segs[0][0].lstrip() + " "):
        # `- [x] [Title](note.md)`: a task list's box, not text of the title.
        segs[0] = (_CHECKBOX.sub("", segs[0][0].lstrip() + " ", count=1), None)

    def is_sep(s: str) -> bool:
        return not s.strip(_SEPARATORS)

    n = len(segs)
    # only_links_after[k]: everything from segment k on is links or separator text.
    only_links_after = [True] * (n + 1)
    for k in range(n - 1, -1, -1):
        text, h = segs[k]
        only_links_after[k] = only_links_after[k + 1] and (h is not None or is_sep(text))
    aux, aux_bracketed = n, False
    seen_text = False
    for k, (text, h) in enumerate(segs):
        if h is None:
            seen_text = seen_text or not is_sep(text)
            continue
        before = segs[k - 1][0] if k > 0 and segs[k - 1][1] is None else ""
        after = segs[k + 1][0] if k + 1 < n and segs[k + 1][1] is None else ""
        bracketed = before.rstrip().endswith("[") and (
            after.lstrip().startswith("]") or (seen_text and before.rstrip() != "[")
        )
        if bracketed or (seen_text and only_links_after[k + 1]):
            aux, aux_bracketed = k, bracketed
            break
        seen_text = seen_text or not is_sep(text)
    head = segs[:aux]
    for text, h in segs[aux:]:
        if h is None:
            tags.extend(t.strip() for t in _BRACKETED.findall(text) if t.strip())
    alias: str | None = None
    links = [k for k, (_, h) in enumerate(head) if h is not None]
    title_href = None
    if len(links) == 1:
        p = links[0]
        before = "".join(t for t, _ in head[:p])
        after = "".join(t for t, _ in head[p + 1 :])
        paren = re.fullmatch(r"\s*\(([^()]+)\)\s*", after)
        bracket_tags = re.fullmatch(r"(?:\s*\[[^\[\]]+\])+\s*", after)
        lead_ok = is_sep(before) or _DATE_PREFIX.fullmatch(before) is not None
        if lead_ok and (is_sep(after) or paren or bracket_tags or _DASH_AFTER.match(after)):
            title_href = head[p][1]
            if bracket_tags:
                tags.extend(x.strip() for x in re.findall(r"\[([^\[\]]+)\]", after))
            elif not paren and _YEAR.search(after):
                # `[Title](url), Authors, Venue 2019.`: the year, and the venue if it is set off
                year_at = list(_YEAR.finditer(after))[-1]
                tail = re.split(r"[,.;|\u2013\u2014]", after[: year_at.start()])[-1]
                tags.append(_norm_space(tail + " " + year_at.group(1)))
            if paren:
                _, year = _venue_year(paren.group(1))
                if year:
                    tags.append(paren.group(1).strip())
                else:
                    alias = _norm_space(paren.group(1))
            head = [head[p]]
    text = "".join(t for t, _ in head).strip()
    text = _CHECKBOX.sub("", text)
    bold = _leading_bold(children)
    if bold and len(bold.split()) >= 2 and text.startswith(bold) and not _YEAR.match(bold):
        # `**Title** - Authors, Venue 2019 [[pdf](...)]`: the bold part is the title.
        rest = text[len(bold) :]
        if re.match(r"\s*[-\u2013\u2014:,.(|]", rest):
            text = bold
            found = list(_YEAR.finditer(rest))
            if found:
                tail = re.split(r"[,.;|(\u2013\u2014]", rest[: found[-1].start()])[-1]
                tags.append(_norm_space(tail + " " + found[-1].group(1)))
    wiki = _WIKI_LINK.match(text)
    wiki_paths = []
    if wiki and not any(h for _, h in head):
        # `[[Paper Title]]` or `[[file|Paper Title]]`: a wiki link to the note of that name.
        target, shown = wiki.group(1).strip(), (wiki.group(2) or "").strip()
        wiki_paths = [target if target.lower().endswith(".md") else target + ".md"]
        text = (shown or target) + text[wiki.end() :]
    # Links people wrote that CommonMark does not read as links: `[[note][./x.md]]`, a
    # `[note](./a folder/x.md)` with spaces, or a cut-off `[[note](./x`: not title text.
    pseudo = _PSEUDO_LINK.search(text)
    if pseudo:
        text = text[: pseudo.start()]
    note_paths = [
        p.strip() for t, h in segs if h is None for p in _PSEUDO_TARGET.findall(t) if "](" not in p
    ]
    note_paths = wiki_paths + note_paths
    if aux < n or pseudo:
        # What joined the title to the links that were cut off: "Title [", "Title (", "Title |".
        text = text.rstrip(_TRAILING)
    if title_href is None:
        in_title = [h for t, h in head if h is not None]
        if len(in_title) == 1 and all(is_sep(t) for t, h in head if h is None):
            title_href = in_title[0]
    hrefs = [h for _, h in segs if h]
    return _Title(
        text=text,
        title_href=title_href or None,
        hrefs=hrefs,
        has_aux=aux < n,
        bracketed=aux_bracketed,
        tags=tags,
        alias=alias,
        note_paths=note_paths,
    )


def _leading_bold(children: list[Token]) -> str:
    """The text of a bold (or italic) span that opens the inline content, or ""."""
    kids = [c for c in children if not (c.type == "text" and not c.content.strip())]
    if not kids or kids[0].type not in ("strong_open", "em_open"):
        return ""
    close = kids[0].type.replace("_open", "_close")
    parts: list[str] = []
    for c in kids[1:]:
        if c.type == close:
            return "".join(parts).strip()
        parts.append(_inline_text(c, " "))
    return ""


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


# ---------------------------------------------------------------------------- shapes of entries

LIST_MIN_ENTRIES = 5
# A file with no heading and at least this many words of its own prose is a note on the paper
# its file name names (vault pages); one holding only links and tags is not a paper.
VAULT_PROSE_WORDS = 30
SHORT_NAME_WORDS = 2  # a heading this short under a longer file name is a nickname ("CLIP")
NO_TEXT = "no text of its own"
_NOT_PROSE = re.compile(r"\[\[[^\[\]]*\]\]|(?<!\w)#[\w/-]+|https?://\S+|[^\w\s]+")
_PAPER_HOSTS = (
    "arxiv.org", "openreview.net", "doi.org", "aclanthology.org", "aclweb.org", "thecvf.com",
    "cv-foundation.org", "mlr.press", "jmlr.org", "nips.cc", "neurips.cc", "dl.acm.org",
    "ieeexplore.ieee.org", "link.springer.com", "sciencedirect.com", "nature.com",
    "science.org", "biorxiv.org", "medrxiv.org", "ncbi.nlm.nih.gov", "ssrn.com", "aaai.org",
    "ijcai.org", "usenix.org", "vldb.org", "iclr.cc", "icml.cc", "ecva.net", "pnas.org",
    "jstor.org", "tandfonline.com", "wiley.com", "plos.org", "hal.science", "isca-speech.org",
)  # fmt: skip
# Sites that also host pages that are not papers: only their paper pages count.
_PAPER_PATHS = {
    "semanticscholar.org": "/paper", "paperswithcode.com": "/paper",
    "researchgate.net": "/publication", "huggingface.co": "/papers",
}  # fmt: skip
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]]+")
_BARE_URL_LINE = re.compile(r"<?https?://\S+>?")
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_SUMMARY_START = re.compile(
    r"(?i)(?:\*\*|__)?(?:tl\s*[;:,]?\s*dr|abstract|summary|in one sentence|one[- ]line summary)"
    r"(?:\*\*|__)?\s*[:;.\-\u2013\u2014]"
)
_BRACKETED = re.compile(r"\[([^\[\]]+)\]")
_CHECKBOX = re.compile(r"^\[[ xX]\]\s+")
_WIKI_LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|([^\[\]]*))?\]\]")
_DATE_PREFIX = re.compile(r"\s*(?:19|20)\d\d(?:[-/.]\d{1,2}){0,2}\s*[:|\-\u2013\u2014]*\s*")
_BRACKETED_DATE = re.compile(r"[\[(]((?:19|20)\d\d)(?:[-/.]\d{1,2}){0,2}[\])]\s+")
_DASH_AFTER = re.compile(r"\s*[,;|\u2013\u2014]|\s+-\s|\.\s|\s+by\s", re.I)
_PSEUDO_LINK = re.compile(
    r"\[\s*\[|\[[^\[\]]*\]\s*[\[(]\s*(?:\.{0,2}/|https?:|[^\s\[\]()]*\.(?:md|markdown|pdf)\b)",
    re.I,
)
_PSEUDO_TARGET = re.compile(r"[\[(]\s*([^\[\]()]*?\.(?:md|markdown))\s*[\])]", re.I)
_AUTHOR_YEAR = re.compile(
    r"[A-Z][\w'\u2019\-]+(?:\s+(?:et\s+al\.?|(?:and|&)\s+[A-Z][\w'\u2019\-]+))?,?\s+"
    r"\(?(?:19|20)\d\d[a-z]?\)?"
)
_DATE_LINE = re.compile(
    r"(?:(?:\d{1,2}\s+)?[A-Za-z]{3,9}\.?,?\s+)?((?:19|20)\d\d)(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?)?"
)
_TRAILER = re.compile(
    r"(?P<title>.+?)\s*[(\[](?:(?P<venue>[^()\[\]]*?)[\s,']+)?(?P<year>(?:19|20)\d\d)[)\]]"
    r"\s*(?:[-\u2013\u2014:]\s*(?P<authors>.+))?"
)
_NOTE_HEADINGS = (
    "key idea", "key point", "key contribution", "key insight", "key takeaway", "contribution",
    "method", "approach", "result", "experiment", "technical detail", "detail", "note",
    "summary", "abstract", "tl dr", "tldr", "overall impression", "impression", "motivation",
    "introduction", "background", "conclusion", "discussion", "limitation", "related work",
    "reference", "link", "review", "takeaway", "strength", "weakness", "pros", "cons",
    "critique", "thought", "comment", "question", "future work", "evaluation", "problem",
    "main idea", "idea", "overview", "highlight", "what", "why", "how", "goal", "history",
    "architecture", "analysis", "my take", "opinion", "implementation", "code", "resources",
)  # fmt: skip
# The same parts of a note as people name them in Chinese: abstract, introduction, method,
# experiments, conclusion, summary, title (and authors), related work, background,
# contributions, discussion, limitations, results, motivation, thoughts, notes, overview.
_NOTE_HEADINGS_CJK = (
    "摘要", "引言", "介绍", "方法", "实验", "结论", "总结", "标题", "题目", "作者", "相关工作",
    "背景", "贡献", "讨论", "局限", "结果", "动机", "思考", "笔记", "简介", "概述", "评价",
)  # fmt: skip
_TITLE_COLUMNS = {"title", "paper", "papers", "paper title", "paper name", "article", "name"}
_AUTHOR_COLUMNS = {"author", "authors", "author s"}
_VENUE_COLUMNS = {"conference", "venue", "journal", "published", "publication", "conf"}
_YEAR_COLUMNS = {"year"}
_NOTE_COLUMNS = {
    "in one sentence", "one sentence", "summary", "notes", "note", "comment", "comments",
    "description", "tldr", "tl dr", "takeaway", "review", "remarks", "thoughts",
}  # fmt: skip
_README_STEMS = {"readme", "index", "_index"}
_GENERIC_NAMES = {"untitled", "new note", "todo", "to do", "reading list", "daily note", "notes"}
_META_ITEM = re.compile(r"\s*(?:\*\*|__)?([A-Za-z][A-Za-z ]{0,20}?)(?:\*\*|__)?\s*:")
_META_LABELS = {
    "author", "authors", "year", "venue", "conference", "journal", "published", "date",
    "link", "links", "paper", "pdf", "arxiv", "code", "github", "project", "project page",
    "url", "doi", "tags", "tag", "status", "rating", "source", "publication", "website",
    "affiliation", "affiliations", "institution", "keywords", "slides", "video", "blog",
}  # fmt: skip
# Words before a '.' that do not end a sentence in a citation: initials are handled apart.
_ABBREVIATIONS = {"vs", "e.g", "i.e", "etc", "ph.d", "pp", "vol", "no", "jr", "dr", "eds", "ed"}


@dataclass
class _Citation:
    title: str
    authors: list[str]
    year: int | None
    venue: str | None


def _is_paper_url(href: str | None) -> bool:
    """A link to a paper: an arXiv, OpenReview, DOI, ACL Anthology, CVF, PMLR, NeurIPS (and
    other publishers') page, or any .pdf."""
    if not href:
        return False
    try:
        parts = urlsplit(href.strip().lower())
    except ValueError:
        return False
    host, path = parts.netloc, parts.path
    if not host:
        return path.endswith(".pdf") and not parts.scheme  # a PDF beside the notes
    if path.endswith(".pdf") or "/pdf/" in path or re.search(r"10\.\d{4,9}/", href):
        return True
    if path.strip("/") and any(host == h or host.endswith("." + h) for h in _PAPER_HOSTS):
        return True
    return any(
        (host == h or host.endswith("." + h)) and path.startswith(p)
        for h, p in _PAPER_PATHS.items()
    )


def _has_link_children(children: list[Token]) -> bool:
    return any(c.type == "link_open" for c in children)


def _norm_words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _is_note_heading(text: str) -> bool:
    """A heading of a note on one paper ("Key ideas", "Method", "Results", "Notes")."""
    cjk = "".join(_CJK_CHAR.findall(text))
    if cjk and len(cjk) <= 8 and cjk.startswith(_NOTE_HEADINGS_CJK):
        return True  # "摘要" (abstract), "Part1. 标题&作者" (title and authors), ...
    words = re.sub(r"\d+", " ", _norm_words(text)).split()
    if not words or len(words) > 5:
        return False
    joined = " ".join(words)
    for h in _NOTE_HEADINGS:
        if joined in (h, h + "s"):
            return True
        # "Key idea: Extensible OS", "Results on ImageNet"; not "Introduction to Graph Networks"
        for stem in (h + " ", h + "s "):
            if joined.startswith(stem) and len(joined[len(stem) :].split()) <= 2:
                return True
    return False


# A list of this many items or more, nearly all (4 in 5) a web link whose text is a title of
# REGULAR_TITLE_WORDS words or more, is a reading list whatever the links' host: the regularity is
# the evidence (a blog's or a personal page's notes on each paper), not the host. Lists of a few
# site links ("My blog", "Twitter") or of tools (one or two words each) do not qualify.
REGULAR_LIST = 8
REGULAR_TITLE_WORDS = 3


def _regular_link_list(unit: _Unit) -> None:
    """Mark the items of a long, regular list of title links as paper entries (evidence)."""
    titled = [d for d in unit.entries if d.record.title]
    if len(titled) < REGULAR_LIST or unit.note_heading or unit.prose_colon:
        return
    if 5 * sum(d.title_link for d in titled) >= 4 * len(titled):
        for d in titled:
            d.evidence = d.evidence or d.title_link


def _heading_entries(headings: list[_Unit], every: bool = False) -> list[_Unit]:
    """Headings that are paper entries: two or more at one level with evidence (one alone is
    the title of a one-paper note; `# [Title](url)` over `## [Related](url)` too)."""
    found = [u for u in headings if u.entry is not None and _heading_entry_title(u.entry)]
    if every:
        return found
    by_level: dict[int, int] = {}
    for u in found:
        by_level[u.level] = by_level.get(u.level, 0) + 1
    return [u for u in found if by_level[u.level] >= 2]


def _heading_entry_title(entry: _Draft) -> bool:
    """A heading that is a paper entry has a title of a few words besides its tags."""
    return entry.evidence and len(entry.record.title.split()) >= 2


def _is_readme(rel: str) -> bool:
    return posixpath.splitext(posixpath.basename(rel))[0].lower() in _README_STEMS


def _entries_phrase(lists: list[_Unit], headings: list[_Unit]) -> str:
    parts = []
    n_items = sum(len(u.entries) for u in lists if u.kind == "list")
    n_rows = sum(len(u.entries) for u in lists if u.kind == "table")
    if n_items:
        n_lists = sum(u.kind == "list" for u in lists)
        parts.append(
            f"{n_items} list item{'s' if n_items != 1 else ''} in {n_lists} list"
            f"{'s' if n_lists != 1 else ''}"
        )
    if n_rows:
        parts.append(f"{n_rows} table row{'s' if n_rows != 1 else ''}")
    if headings:
        parts.append(f"{len(headings)} heading{'s' if len(headings) != 1 else ''}")
    return " and ".join(parts) + " link papers or notes or carry year tags"


SENTENCE_WORDS = 8  # a title of this many words ending in '.' reads as a sentence
LONG_TITLE_WORDS = 25  # longer than nearly every paper title


def _word_count(text: str) -> int:
    """Words, counting each character of a script written without spaces (Chinese,
    Japanese) as half a word, about what a word of it takes."""
    cjk = len(_CJK_CHAR.findall(text))
    if not cjk:
        return len(text.split())
    return len(_CJK_CHAR.sub(" ", text).split()) + (cjk + 1) // 2


def _is_sentence(title: str) -> bool:
    """Text that reads as a sentence of a note rather than the title of a paper."""
    if _CJK_SENTENCE.search(title):
        return True
    n = _word_count(title)
    # Only a full stop: titles ask questions ("Do Deep Nets Really Need to be Deep?").
    return n > LONG_TITLE_WORDS or (n >= SENTENCE_WORDS and title.endswith("."))


def _names_its_file(heading: str, rel: str) -> bool:
    """The heading and the file name are the same words (two or more): `# Peter Stone -
    Practical RL` in "Peter Stone - Practical RL.md", `# Deep Sets` in "deep-sets.md"."""
    name = _norm_words(_title_from_path(rel))
    return len(name.split()) >= 2 and name == _norm_words(heading)


def _looks_like_title(title: str, children: list[Token]) -> bool:
    """A bare title, not a sentence, a labelled item (`**Label:** text`) or code."""
    words = title.split()
    if not words or _word_count(title) > 30 or title.endswith((".", ":", ";", ",")):
        return False
    if _CJK_SENTENCE.search(title):
        return False
    kinds = [c.type for c in children if not (c.type == "text" and not c.content.strip())]
    if kinds and kinds[0] == "code_inline":
        return False
    if kinds and kinds[0] in ("strong_open", "em_open"):
        close = kinds[0].replace("_open", "_close")
        if close in kinds and kinds.index(close) < len(kinds) - 1:
            return False
    return True


def _venue_year(text: str) -> tuple[str | None, int | None]:
    """("ICLR", 2026) from "ICLR 2026", (None, 2019) from "2019"; (None, None) if no year."""
    m = _YEAR.search(text)
    if not m or len(text.split()) > 6:
        return None, None
    venue = text[: m.start()].strip(" ,'\u2019([") + " " + text[m.end() :].strip(" ,')]")
    venue = _norm_space(venue)
    return (venue if re.search(r"[A-Za-z]", venue) else None), int(m.group(1))


def _trailers(text: str) -> tuple[str, int | None, str | None, list[str]]:
    """(title, year, venue, authors) from a title as written: `Title (2019) - Authors`,
    `Title (CVPR 2020)`, `Title [2019]`, a leading date `2026-08-03 — ` or `[2019-09] `."""
    m = _DATE_PREFIX.match(text)
    if m and m.end() < len(text) and re.match(r"(?:19|20)\d\d[-/.]\d", text):
        text = text[m.end() :]
    dated = _BRACKETED_DATE.match(text)
    if dated and text[dated.end() :].strip():
        title, year, venue, authors = _trailers(text[dated.end() :])
        return title, year or int(dated.group(1)), venue, authors
    m = _TRAILER.fullmatch(text)
    if m and m.group("title").strip(_TRAILING):
        venue = m.group("venue")
        authors = _split_authors(m.group("authors")) if m.group("authors") else []
        if venue and not re.search(r"[A-Za-z]", venue):
            venue = None
        elif venue and sum(c.isupper() for c in venue) < 2:
            # "(Sutton 1988)" names the author; "(CVPR 2020)", "(NeurIPS 2019)" the venue.
            authors, venue = authors or _split_authors(venue), None
        return (
            m.group("title").strip(_TRAILING),
            int(m.group("year")),
            _norm_space(venue) if venue else None,
            authors,
        )
    return text, None, None, []


def _sentences(text: str) -> list[str]:
    """Split a citation at '. ', keeping initials (`James R. Curran`) and abbreviations."""
    out, start = [], 0
    for m in re.finditer(r"\.\s+", text):
        word = (
            text[start : m.start()].rsplit(None, 1)[-1] if text[start : m.start()].split() else ""
        )
        if (len(word) == 1 and word.isupper()) or word.lower() in _ABBREVIATIONS:
            continue
        out.append(text[start : m.start()].strip())
        start = m.end()
    out.append(text[start:].strip().rstrip("."))
    return [s for s in out if s]


def _looks_like_authors(text: str) -> bool:
    if ":" in text or "?" in text or not text:
        return False
    words = [w for w in re.split(r"[\s,]+", text) if w]
    if not 1 <= len(words) <= 30:
        return False
    names = [w for w in words if w.lower() not in ("and", "et", "al", "&", "al.")]
    capital = sum(w[0].isupper() for w in names)
    if re.search(r"\bet al\b|\band\b|&|,", text):
        return capital * 10 >= len(names) * 6
    return 2 <= len(names) <= 4 and capital == len(names)


def _citation(text: str) -> _Citation | None:
    """A reference as people cite it: `Authors. Title. Venue Year. URL` (or with the title in
    quotes); None when the text is not one."""
    if len(text) > 1000 or ". " not in text and '"' not in text and "\u201c" not in text:
        return None
    quoted = re.search(r'["\u201c]([^"\u201d]{8,})["\u201d]', text)
    if quoted and _looks_like_authors(text[: quoted.start()].strip(" ,.")):
        rest = text[quoted.end() :]
        found = _YEAR.search(rest)
        return _Citation(
            quoted.group(1).strip(" ,."),
            _split_authors(text[: quoted.start()].strip(" ,.")),
            int(found.group(1)) if found else None,
            None,
        )
    parts = _sentences(text)
    if len(parts) < 2 or not _looks_like_authors(parts[0]) or _YEAR.search(parts[0]):
        return None
    title_at = next(
        (
            k
            for k in range(1, len(parts))
            if not _BARE_URL.match(parts[k])
            and _venue_year(parts[k]) == (None, None)
            or (not _BARE_URL.match(parts[k]) and len(parts[k].split()) > 6)
        ),
        None,
    )
    if title_at is None:
        return None
    title = parts[title_at]
    if len(title.split()) < 2 or title.startswith("["):
        return None
    cut = re.fullmatch(r"(.*[?!])\s+[A-Z][\w&\-]*\s+(?:19|20)\d\d", title)
    title_year = None
    if cut:
        title, title_year = cut.group(1), int(_YEAR.findall(parts[title_at])[-1])
    after = [p for p in parts[title_at + 1 :] if not _BARE_URL.match(p)]
    years = [int(y) for p in after for y in _YEAR.findall(_BARE_URL.sub("", p))]
    before = [int(y) for p in parts[1:title_at] for y in _YEAR.findall(p)]
    year = title_year or (years[-1] if years else before[-1] if before else None)
    has_url = bool(_BARE_URL.search(text))
    strong_authors = re.search(r"\bet al\b|\band\b", parts[0]) is not None
    if year is None and not has_url and not strong_authors:
        return None
    venue = None
    if after:
        v, _ = _venue_year(_BARE_URL.sub("", after[0]).strip())
        venue = v
    return _Citation(title.strip(), _split_authors(parts[0]), year, venue)


# "Summary: Title", "Notes on Title", "Paper: Title", "Reading notes of Title": what the note
# is, then the paper's title.
_TITLE_PREFIX = re.compile(
    r"(?i)(?:(?:paper\s+|reading\s+)?(?:summary|notes?|review)\s+(?:of|on|for)\s+"
    r"(?:the\s+paper\s+)?|(?:paper|summary|notes?|review|reading\s+notes?)\s*[:\-\u2013\u2014]\s+)"
)


def _strip_title_prefix(text: str) -> str:
    """`text` without a leading "Summary:", "Notes on", "Paper:" when a title of two words or
    more follows; else `text` unchanged."""
    m = _TITLE_PREFIX.match(text)
    if m is None or len(text[m.end() :].split()) < 2:
        return text
    return text[m.end() :]


def _title_from_path(rel: str, words: bool = False) -> str:
    """The file name as a title: `a-slug_form` -> `a slug form`. With `words`, "" when the
    name does not read as a title (a date, a number, "untitled", a single word)."""
    stem = posixpath.splitext(posixpath.basename(rel))[0]
    if " " not in stem:
        stem = stem.replace("_", " ")
        if " " not in stem:
            stem = stem.replace("-", " ")
    title = _norm_space(stem)
    numbered = re.fullmatch(r"\d+[.)]?\s+(.*\D.*)", title)
    if numbered:
        title = numbered.group(1)  # "012 detr": the number orders the files, not the title
    if words:
        lettered = [w for w in title.split() if re.search(r"[^\W\d_]", w)]
        if len(lettered) < 2 or _norm_words(title) in _GENERIC_NAMES:
            return ""
    return title


# ---------------------------------------------------------------------------- links and metadata


def _is_url(href: str | None) -> bool:
    if not href:
        return False
    try:
        parts = urlsplit(href)
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc)


def _arxiv_of(href: str) -> str | None:
    # Only arXiv links: other URLs are full of digits that look like ids.
    return parse_arxiv_id(href) if _ARXIV_URL.search(href) else None


def _apply_links(record: Record, parsed: _Title) -> None:
    """arXiv id and URL from a title's links: the arXiv abs page, else the title link, else the
    first web link."""
    for href in parsed.hrefs:
        arxiv = _arxiv_of(href)
        if arxiv:
            record.arxiv = arxiv
            record.url = f"https://arxiv.org/abs/{arxiv}"
            return
    web = [h for h in parsed.hrefs if h.lower().startswith(("http://", "https://"))]
    if parsed.title_href in web:
        record.url = parsed.title_href
    elif web:
        record.url = web[0]


def _note_file(href: str | None, rel: str) -> str | None:
    """The notes-relative path of a local Markdown file the title links to, or None."""
    if not href:
        return None
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    path = unquote(parts.path)
    if parts.scheme or parts.netloc:
        # A link to a file of a repository on the web (.../blob/BRANCH/path/Note.md), as
        # reading lists write them so that they work on the web: the path inside the
        # repository, resolved among the notes as a relative link is (notes_folder.py).
        m = _REPO_FILE.match(path)
        if m is None or posixpath.splitext(m.group(1))[1].lower() not in MARKDOWN_SUFFIXES:
            return None
        return posixpath.normpath(m.group(1))
    if not path or path.startswith("/"):
        return None
    # A folder (`./03-slug/`) means the note inside it (notes_folder.py says which): kept with
    # its trailing '/'.
    folder = path.endswith("/")
    if not folder and posixpath.splitext(path)[1].lower() not in MARKDOWN_SUFFIXES:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path))
    if joined in (".", "..") or joined.startswith("../"):
        return None  # outside the notes folder, or the folder of this note
    return joined + "/" if folder else joined


# /OWNER/REPO/blob/BRANCH/PATH (GitHub, Gitea), /OWNER/REPO/-/blob/BRANCH/PATH (GitLab).
_REPO_FILE = re.compile(r"/[^/]+/[^/]+/(?:-/)?blob/[^/]+/(.+)")


def _meta_str(value: object) -> str | None:
    """A front-matter scalar as a string, or None for missing, null or non-scalar values."""
    if isinstance(value, str) and value.strip() not in _YAML_NULL:
        return value.strip()
    return None


def _split_authors(text: str) -> list[str]:
    # "Last, First and Last, First" (BibTeX) splits on "and" only; otherwise commas count too.
    if re.search(r"\s+and\s+", text):
        names = re.split(r"\s+and\s+", text)
    else:
        names = re.split(r"[,;]", text)
    return [clean_text(n) for n in names if n.strip()]


def _norm_space(text: str) -> str:
    return " ".join(text.split())
