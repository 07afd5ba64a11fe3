"""Read Markdown notes: reading lists (one paper per bullet) and one-paper note files.

Which kind a Markdown file is gets decided per file, in this order:

1. Front matter with a `title:` -> one paper (the file is a note on that paper).
2. The first block names a linked paper: a heading, or a paragraph that is just a link, whose
   title is a link to a URL or that carries links to URLs after it (`## [Title](https://...)`,
   `## Title [[arXiv](https://...)]`) -> one paper.
3. No top-level list at all -> one paper (a heading and prose); the first heading is the title.
4. The first heading is followed by a prose paragraph of at least PROSE_WORDS words (a summary,
   as in "## Title / TLDR; The authors ...") -> one paper; its bullets are key points.
5. Otherwise -> a list of papers: each top-level bullet (or numbered item) is one paper, headings
   are sections, and what belongs to a bullet (indented text, sub-bullets, the blockquotes, code
   and sentences that follow it up to the next bullet or heading) is the note on it.

In a list, a lone H1 above every other heading names the file, not a section, and is left out
of section paths. A short one-line paragraph between bullets without links or sentence-ending
punctuation ("Reinforcement Learning:", "NLP") reads as a sub-heading. Text with links that
belongs to no bullet (such as `-Title [[arXiv](...)]`: no space, so not a bullet in CommonMark)
is reported as a Problem rather than guessed at. Write notes on list papers indented,
blockquoted or as sentences; a short phrase on its own between bullets is taken as a label.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from frontmatter.default_handlers import YAMLHandler
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .records import FileResult, Problem, Record, clean_text, normalise_doi, parse_arxiv_id

MAX_NOTE_BYTES = 20 * 1024 * 1024
NOTE_SUFFIXES = frozenset({".md", ".markdown", ".bib", ".jsonl", ".pdf"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
PROSE_WORDS = 15
LABEL_WORDS = 8

# Deep enough for lists nested 100 levels (two token levels each); markdown-it recurses about
# twice per level, well inside Python's default recursion limit. Deeper input is cut off by
# markdown-it, which we detect and report.
_MAX_NESTING = 256
_MD = MarkdownIt("commonmark", {"maxNesting": _MAX_NESTING})
# Fallback if the deep parser still overflows the Python stack (e.g. when called deep already).
_MD_SHALLOW = MarkdownIt("commonmark", {"maxNesting": 20})
for _md in (_MD, _MD_SHALLOW):
    # Keep hrefs as written: nothing is rendered to HTML, and percent-encoding every link
    # (markdown-it's default) is a third of the parse time on a long reading list.
    _md.normalizeLink = lambda url: url  # type: ignore[method-assign]

_BINARY_SNIFF = 8192
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/", re.I)
# Text around links that is punctuation, not title: "Title [[arXiv](...)] | [[code](...)]".
_SEPARATORS = " \t\n[](){}|,;:-\u2013\u2014\u00b7\u2022/"
_TRAILING = " \t\n[(|,;:-\u2013\u2014\u00b7\u2022/"
_SENTENCE_END = (".", "!", "?")
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


def read_markdown_file(path: Path, rel: str) -> FileResult:
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
    return parse_markdown(text, rel)


def _looks_utf16(sample: bytes) -> bool:
    """Mostly-ASCII UTF-16: NUL in nearly every other byte, on one side only."""
    half = len(sample) // 2
    if half < 2:
        return False
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) >= 0.6 * half and min(even, odd) <= 0.05 * half


def _problem(rel: str, line: int | None, message: str) -> FileResult:
    return FileResult(records=[], problems=[Problem(rel, line, message)])


def _too_big(rel: str, size: int) -> FileResult:
    mb = MAX_NOTE_BYTES / (1024 * 1024)
    return _problem(rel, None, f"{size} bytes is over the {mb:g} MB limit for a note; skipped")


# ---------------------------------------------------------------------------- parsing


def parse_markdown(text: str, rel: str) -> FileResult:
    """The papers in one Markdown note (see the module docstring for the kinds of file).
    Every record keeps `rel` and its 1-based line. Never raises."""
    try:
        return _Parser(text, rel).run()
    except Exception as exc:  # a note must never stop a rebuild; say what went wrong
        return _problem(rel, None, f"internal error while parsing ({type(exc).__name__}: {exc})")


@dataclass
class _Title:
    """The title part of a heading or bullet line, and the links around it."""

    text: str
    title_href: str | None  # the link the title itself is, if it is one
    hrefs: list[str] = field(default_factory=list)  # every link, in order
    has_aux: bool = False  # links after the title such as [[arXiv](...)]


@dataclass
class _Draft:
    """A record being built: note chunks are added until the next bullet or heading."""

    record: Record
    chunks: list[str] = field(default_factory=list)


class _Parser:
    """One parse of one file."""

    def __init__(self, text: str, rel: str) -> None:
        self.rel = rel
        self.problems: list[Problem] = []
        text = text.removeprefix("\ufeff")
        self.meta, self.body, self.offset = self._front_matter(text)
        self.tokens = self._parse(self.body)

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
        try:
            tokens = _MD.parse(body)
            limit = _MAX_NESTING
        except RecursionError:
            tokens = _MD_SHALLOW.parse(body)
            limit = 20
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

    def run(self) -> FileResult:
        if self._is_paper_file():
            records = self._paper_file()
        else:
            records = self._paper_list()
        return FileResult(records=records, problems=self.problems)

    def _is_paper_file(self) -> bool:
        if _meta_str(self.meta.get("title")):
            return True
        blocks = list(_blocks(self.tokens, 0, len(self.tokens), 0))
        if not blocks:
            return True
        i, _ = blocks[0]
        first = self.tokens[i]
        if first.type in ("heading_open", "paragraph_open"):
            title = _title(self.tokens[i + 1])
            links_paper = _is_url(title.title_href) or (
                first.type == "heading_open" and title.has_aux and any(map(_is_url, title.hrefs))
            )
            if links_paper:
                return True
        if not any(self.tokens[i].type in _LISTS for i, _ in blocks):
            return True
        # A summary paragraph right under the first heading: a note on one paper.
        for n, (i, _) in enumerate(blocks[:-1]):
            if self.tokens[i].type == "heading_open":
                nxt = self.tokens[blocks[n + 1][0]]
                if nxt.type == "paragraph_open":
                    inline = self.tokens[blocks[n + 1][0] + 1]
                    return len(inline.content.split()) >= PROSE_WORDS
                return False
        return False

    # -- one paper per file

    def _paper_file(self) -> list[Record]:
        tokens = self.tokens
        blocks = list(_blocks(tokens, 0, len(tokens), 0))
        meta_title = _meta_str(self.meta.get("title"))
        title_block: tuple[int, int] | None = None
        parsed: _Title | None = None
        if blocks:
            i, j = blocks[0]
            if tokens[i].type == "paragraph_open":
                candidate = _title(tokens[i + 1])
                if candidate.title_href:  # a file opening with just a link to the paper
                    title_block, parsed = (i, j), candidate
        if parsed is None:
            for i, j in blocks:
                if tokens[i].type == "heading_open":
                    title_block, parsed = (i, j), _title(tokens[i + 1])
                    break
        if meta_title:
            title, line = _norm_space(clean_text(meta_title)), 1
            # The heading stays note text unless it only repeats the front-matter title.
            if parsed is None or _norm_space(parsed.text).casefold() != title.casefold():
                title_block, parsed = None, None
        elif parsed is not None and title_block is not None:
            title, line = _norm_space(clean_text(parsed.text)), self._line(tokens[title_block[0]])
        else:
            if any(t.type == "inline" and t.content.strip() for t in tokens) or self.meta:
                self.problems.append(
                    Problem(self.rel, None, "no title: no front-matter title, heading or list")
                )
            return []
        if not title:
            self.problems.append(Problem(self.rel, line, "empty title; skipped"))
            return []
        chunks = [
            _plain_blocks(tokens, i, j)
            for i, j in blocks
            if title_block is None or i != title_block[0]
        ]
        record = Record(title=title, file=self.rel, line=line, note=_join_note(chunks))
        if parsed is not None:
            _apply_links(record, parsed)
        self._apply_meta(record)
        record.extra["kind"] = "paper-file"
        return [record]

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

    def _paper_list(self) -> list[Record]:
        tokens = self.tokens
        blocks = list(_blocks(tokens, 0, len(tokens), 0))
        headings = [tokens[i] for i, _ in blocks if tokens[i].type == "heading_open"]
        skip_h1 = (
            bool(headings)
            and headings[0].tag == "h1"
            and not any(h.tag == "h1" for h in headings[1:])
        )
        stack: list[tuple[int, str]] = []
        label: str | None = None
        drafts: list[_Draft] = []
        current: _Draft | None = None

        def section() -> list[str]:
            return [text for _, text in stack] + ([label] if label else [])

        for i, j in blocks:
            tok = tokens[i]
            if tok.type == "heading_open":
                current, label = None, None
                if skip_h1 and tok is headings[0]:
                    continue
                level = int(tok.tag[1:]) if tok.tag[1:].isdigit() else 6
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, _heading_text(tokens[i + 1])))
            elif tok.type in _LISTS:
                for a, b in _blocks(tokens, i + 1, j - 1, tok.level + 1):
                    draft = self._bullet(tokens, a, b, section())
                    if draft is not None:
                        drafts.append(draft)
                    current = draft
            elif tok.type == "paragraph_open":
                inline = tokens[i + 1]
                plain = _plain_blocks(tokens, i, j)
                if _is_label(inline, plain):
                    label, current = clean_text(_norm_space(plain).rstrip(":").strip()), None
                elif current is not None:
                    current.chunks.append(plain)
                elif _has_link(inline):
                    hint = ""
                    if _FAKE_BULLET.match(inline.content):
                        hint = " (a bullet needs a space after its '-', '*' or '+')"
                    self.problems.append(
                        Problem(
                            self.rel,
                            self._line(tok),
                            f"text with links outside any bullet, not read as a paper{hint}",
                        )
                    )
            elif tok.type == "hr":
                current = None
            elif current is not None:
                # Blockquotes, code and other blocks after a bullet are notes on it.
                current.chunks.append(_plain_blocks(tokens, i, j))
        records = []
        for d in drafts:
            d.record.note = _join_note(d.chunks)
            records.append(d.record)
        return records

    def _bullet(self, tokens: list[Token], i: int, j: int, section: list[str]) -> _Draft | None:
        """The record of the list item tokens[i:j], or None (with a Problem) if untitled."""
        inner = list(_blocks(tokens, i + 1, j - 1, tokens[i].level + 1))
        parsed: _Title | None = None
        rest = inner
        if inner and tokens[inner[0][0]].type == "paragraph_open":
            parsed = _title(tokens[inner[0][0] + 1])
            rest = inner[1:]
        title = _norm_space(clean_text(parsed.text)) if parsed else ""
        if not title:
            self.problems.append(
                Problem(self.rel, self._line(tokens[i]), "bullet without title text; skipped")
            )
            return None
        record = Record(title=title, file=self.rel, line=self._line(tokens[i]), section=section)
        assert parsed is not None
        _apply_links(record, parsed)
        note_file = _note_file(parsed.title_href, self.rel)
        if note_file:
            record.extra["note_file"] = note_file
        return _Draft(record, [_plain_blocks(tokens, a, b) for a, b in rest])


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


def _title(inline: Token) -> _Title:
    """Split a bullet's or heading's inline content into title text and links.

    Links after the title are not title text: bracketed ones (`Title [[arXiv](url)]`) and
    trailing ones (`Title [pdf](url) [code](url)`); everything after the first such link is
    dropped (`[[code]()] (soon)`). A link that is the whole title (`[Title](notes/x.md)`) is
    the title link.
    """
    # Segments: (text, href or None). Text of links and emphasis is flattened.
    segs: list[tuple[str, str | None]] = []
    href: str | None = None
    buf: list[str] = []
    for child in inline.children or []:
        if child.type == "link_open":
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

    def is_sep(s: str) -> bool:
        return not s.strip(_SEPARATORS)

    n = len(segs)
    # only_links_after[k]: everything from segment k on is links or separator text.
    only_links_after = [True] * (n + 1)
    for k in range(n - 1, -1, -1):
        text, h = segs[k]
        only_links_after[k] = only_links_after[k + 1] and (h is not None or is_sep(text))
    aux = n
    seen_text = False
    for k, (text, h) in enumerate(segs):
        if h is None:
            seen_text = seen_text or not is_sep(text)
            continue
        before = segs[k - 1][0] if k > 0 and segs[k - 1][1] is None else ""
        after = segs[k + 1][0] if k + 1 < n and segs[k + 1][1] is None else ""
        bracketed = before.rstrip().endswith("[") and after.lstrip().startswith("]")
        if bracketed or (seen_text and only_links_after[k + 1]):
            aux = k
            break
        seen_text = seen_text or not is_sep(text)
    head = segs[:aux]
    text = "".join(t for t, _ in head).strip()
    if aux < n:
        # What joined the title to the links that were cut off: "Title [", "Title (", "Title |".
        text = text.rstrip(_TRAILING)
    links_in_title = [h for t, h in head if h is not None]
    title_href = None
    if len(links_in_title) == 1 and all(is_sep(t) for t, h in head if h is None):
        title_href = links_in_title[0]
    hrefs = [h for _, h in segs if h]
    return _Title(text=text, title_href=title_href or None, hrefs=hrefs, has_aux=aux < n)


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
    return "".join(_inline_text(c, newline) for c in inline.children or [])


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
    if parts.scheme or parts.netloc or not path or path.startswith("/"):
        return None
    if posixpath.splitext(path)[1].lower() not in MARKDOWN_SUFFIXES:
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), path))
    if joined == ".." or joined.startswith("../"):
        return None  # outside the notes folder
    return joined


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
