"""Evidence gathering: each top-level block as a unit, each list item, table row or heading as
an entry with what it has that names a paper (links, year or venue tags, a citation)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from search.readers.markdown.blocks import (
    _LISTS,
    _SENTENCE_END,
    LABEL_WORDS,
    Document,
    _blocks,
    _first_line,
    _has_link_children,
    _heading_text,
    _inline_plain,
    _inline_plain_children,
    _norm_space,
    _plain_blocks,
)
from search.readers.markdown.citations import _citation
from search.readers.markdown.links import (
    _BARE_URL,
    _apply_links,
    _arxiv_of,
    _is_paper_url,
    _is_url,
    _note_file,
)
from search.readers.markdown.titles import (
    _CJK_CHAR,
    _is_sentence,
    _looks_like_title,
    _norm_words,
    _split_authors,
    _title,
    _trailers,
    _venue_year,
)
from search.readers.records import (
    Record,
    clean_text,
)


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


def _evidence_list(unit: _Unit) -> bool:
    """A list or table of papers by evidence: a third of its entries link a paper or a note
    file, or carry a year or venue tag. Lists under note headings ("Key ideas",
    "References") are part of a note, not a reading list."""
    titled = [d for d in unit.entries if d.record.title]
    if not titled or unit.note_heading:
        return False
    with_evidence = sum(d.evidence for d in titled)
    return with_evidence > 0 and 3 * with_evidence >= len(titled)


def _plain_list(unit: _Unit) -> bool:
    """A list of bare titles, as in a list with no links at all: most items read as
    titles, and it is not the continuation of a sentence ending in ':'."""
    titled = [d for d in unit.entries if d.record.title]
    if not titled or unit.prose_colon or unit.note_heading:
        return False
    return 10 * sum(d.title_like for d in titled) >= 7 * len(titled)


def _units(doc: Document) -> list[_Unit]:
    tokens = doc.tokens
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
                unit.entry = _entry(doc, tokens[i + 1].children or [], tok, [])
            units.append(unit)
            prev_para_colon = False
            continue
        if tok.type in _LISTS:
            unit = _Unit("list", i, j, note_heading=under_note, prose_colon=prev_para_colon)
            unit.entries = _items(doc, tokens, i, j, [])
            _regular_link_list(unit)
        elif tok.type == "table_open":
            unit = _Unit("table", i, j, note_heading=under_note)
            unit.entries = _table_rows(doc, tokens, i, j)
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


def _items(doc: Document, tokens: list[Token], i: int, j: int, label: list[str]) -> list[_Draft]:
    """The entries of the list tokens[i:j]. An item without evidence of its own whose
    sub-list is a list of papers is a category: its sub-items are the entries."""
    drafts: list[_Draft] = []
    for a, b in _blocks(tokens, i + 1, j - 1, tokens[i].level + 1):
        inner = list(_blocks(tokens, a + 1, b - 1, tokens[a].level + 1))
        children: list[Token] = []
        # A heading inside an item: `* Title` with a lone `-` under it is a setext heading.
        if inner and tokens[inner[0][0]].type in ("paragraph_open", "heading_open"):
            children = tokens[inner[0][0] + 1].children or []
        draft = _entry(doc, children, tokens[a], label)
        if draft is None:
            drafts.append(_Draft(Record(title="", file=doc.rel, line=doc.line(tokens[a]))))
            continue
        rest = inner[1:] if children else inner
        sub = [(x, y) for x, y in rest if tokens[x].type in _LISTS]
        if not draft.evidence and sub and not _has_link_children(children):
            nested = [
                d for x, y in sub for d in _items(doc, tokens, x, y, [*label, draft.record.title])
            ]
            if nested and 2 * sum(d.evidence for d in nested) >= len(nested):
                drafts.extend(nested)
                continue
        draft.chunks.extend(_plain_blocks(tokens, x, y) for x, y in rest)
        drafts.append(draft)
    return drafts


def _entry(doc: Document, children: list[Token], tok: Token, label: list[str]) -> _Draft | None:
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
    record = Record(title=title, file=doc.rel, line=doc.line(tok), section=list(label))
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
    note_file = _note_file(parsed.title_href, doc.rel) or next(
        (
            n
            for n in (
                *(_note_file(h, doc.rel) for h in parsed.hrefs),
                *(_note_file(p, doc.rel) for p in parsed.note_paths),
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


def _table_rows(doc: Document, tokens: list[Token], i: int, j: int) -> list[_Draft]:
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
        draft = _entry(doc, inline.children or [], tr, [])
        if draft is None:
            drafts.append(_Draft(Record(title="", file=doc.rel, line=doc.line(tr))))
            continue
        record = draft.record
        for n, (_, cell) in enumerate(cells):
            if n == title_col or n >= len(header):
                continue
            name = header[n]
            parsed = _title(cell.children or [])
            plain = _norm_space(clean_text(_inline_plain(cell, " ")))
            for href in [*parsed.hrefs, *parsed.note_paths, plain]:
                note_file = _note_file(href, doc.rel) if href else None
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


_META_ITEM = re.compile(r"\s*(?:\*\*|__)?([A-Za-z][A-Za-z ]{0,20}?)(?:\*\*|__)?\s*:")


_META_LABELS = {
    "author", "authors", "year", "venue", "conference", "journal", "published", "date",
    "link", "links", "paper", "pdf", "arxiv", "code", "github", "project", "project page",
    "url", "doi", "tags", "tag", "status", "rating", "source", "publication", "website",
    "affiliation", "affiliations", "institution", "keywords", "slides", "video", "blog",
}  # fmt: skip


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
