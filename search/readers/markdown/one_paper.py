"""One paper per file: its title (front matter, a first heading, a link, the file name), its
note text, and its fields from front matter."""

from __future__ import annotations

import re

from markdown_it.token import Token

from search.readers.markdown.blocks import (
    _YAML_NULL,
    Document,
    _blocks,
    _heading_text,
    _inline_plain,
    _join_note,
    _meta_str,
    _norm_space,
    _plain_blocks,
)
from search.readers.markdown.evidence import _META_LABELS, _is_note_heading, _table_rows
from search.readers.markdown.links import _BARE_URL_LINE, _apply_links, _arxiv_of, _is_paper_url
from search.readers.markdown.titles import (
    _AUTHOR_YEAR,
    _DATE_LINE,
    _looks_like_title,
    _norm_words,
    _split_authors,
    _strip_title_prefix,
    _Title,
    _title,
    _title_from_path,
    _trailers,
)
from search.readers.records import (
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

LABEL_LINK_WORDS = 3  # `[Paper](url) | [Talk](url)`: each link's label a few words at most


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


Span = tuple[int, int]  # a block's token range


def _paper_file(doc: Document, forced: bool = False) -> list[Record]:
    """The one paper a note is about: its title from front matter, a first heading (or
    table row), a first line that links it, or the file name; the rest is its note."""
    tokens = doc.tokens
    blocks = list(_blocks(tokens, 0, len(tokens), 0))
    meta_title = _meta_str(doc.meta.get("title"))
    title_block, parsed, bare_url = _title_source(doc, blocks)
    aliases: list[str] = []
    year = venue = None
    authors: list[str] = []
    if meta_title:
        title, line = _norm_space(clean_text(meta_title)), 1
        description = _meta_str(doc.meta.get("description"))
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
        line = doc.line(tokens[title_block[0]])
        named = _title_from_path(doc.rel, words=True)
        short = len(title.split())
        if 0 < short <= SHORT_NAME_WORDS and len(named.split()) >= short + 2:
            # `# CLIP` in "Learning Transferable Visual Models.md": the file name is the
            # full title, the heading a short name for it.
            aliases.append(title)
            title = named
    elif bare_url is not None or (forced and any(t.type == "inline" for t in tokens)):
        title, line = _title_from_path(doc.rel), 1 + doc.offset
        if bare_url is not None:
            title_block = blocks[0]
    else:
        if any(t.type == "inline" and t.content.strip() for t in tokens) or doc.meta:
            doc.problems.append(
                Problem(doc.rel, None, "no title: no front-matter title, heading or list")
            )
        return []
    if not title:
        doc.problems.append(Problem(doc.rel, line, "empty title; skipped"))
        return []
    chunks, year = _note_chunks(tokens, blocks, title_block, year)
    record = Record(title=title, file=doc.rel, line=line, note=_join_note(chunks))
    if parsed is not None:
        _apply_links(record, parsed)
        if parsed.alias:
            aliases.append(parsed.alias)
    elif bare_url is not None:
        record.url = bare_url
        record.arxiv = _arxiv_of(bare_url)
    if record.url is None:
        _label_links(doc, record, blocks)
    record.year, record.venue, record.authors = year, venue, authors
    record.aliases = aliases
    _apply_meta(doc, record)
    record.extra["kind"] = "paper-file"
    return [record]


def _title_source(
    doc: Document, blocks: list[Span]
) -> tuple[Span | None, _Title | None, str | None]:
    """(title block, its parsed title, bare URL): where the title of a one-paper note is,
    before front matter is considered. A first line that is the paper's link, else the first
    heading that is not one of the note's parts ("### Abstract"), else the title cell of a
    table row the note opens with; a `[Paper](url)` line or a bare URL gives only the link."""
    tokens = doc.tokens
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
                return (i, j), candidate, None
            elif _BARE_URL_LINE.fullmatch(content):
                return None, None, content
    top = 7  # a title heading is above every heading before it
    for i, j in blocks:
        if tokens[i].type == "heading_open":
            level = int(tokens[i].tag[1:]) if tokens[i].tag[1:].isdigit() else 6
            text = _heading_text(tokens[i + 1])
            if level < top and (not _is_note_heading(text) or _strip_title_prefix(text) != text):
                return (i, j), _title(tokens[i + 1].children or []), None
            top = min(top, level)
        if tokens[i].type == "table_open":
            rows = _table_rows(doc, tokens, i, j)
            if rows and rows[0].record.title:
                return (i, j), _Title(rows[0].record.title, None, []), None
    return None, None, label_url


def _note_chunks(
    tokens: list[Token], blocks: list[Span], title_block: Span | None, year: int | None
) -> tuple[list[str], int | None]:
    """(note text per block, year): every block but the title's; a date line right under the
    title ("_Feb 2019_") gives the year instead of note text."""
    chunks: list[str] = []
    for i, j in blocks:
        if title_block is not None and i == title_block[0]:
            continue
        if tokens[i].type == "paragraph_open" and not chunks and year is None:
            date = _DATE_LINE.fullmatch(_inline_plain(tokens[i + 1], " ").strip())
            if date:
                year = int(date.group(1))
                continue
        chunks.append(_plain_blocks(tokens, i, j))
    return chunks, year


def _label_links(doc: Document, record: Record, blocks: list[tuple[int, int]]) -> None:
    """The paper's link from a line of labelled links under the title
    (`[Paper](arxiv) | [Code](github)`), the first such line in the note."""
    tokens = doc.tokens
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
            _apply_links(record, _Title("", None, [h for h in parsed.hrefs if _is_paper_url(h)]))
            return


def _apply_meta(doc: Document, record: Record) -> None:
    meta = doc.meta
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


SHORT_NAME_WORDS = 2  # a heading this short under a longer file name is a nickname ("CLIP")
