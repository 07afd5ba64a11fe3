"""The decision: is a note a list of papers, one paper, or not a paper? From the evidence
across the whole file (docs/architecture.md says why each rule holds for notes in general)."""

from __future__ import annotations

import posixpath
import re

from search.readers.folder import NO_TEXT
from search.readers.markdown.blocks import Document, _meta_str, _plain_blocks
from search.readers.markdown.evidence import _evidence_list, _heading_entries, _plain_list, _Unit
from search.readers.markdown.links import _BARE_URL_LINE, _is_paper_url, _is_url
from search.readers.markdown.titles import _norm_words, _title, _title_from_path, _word_count


def _decide(doc: Document, units: list[_Unit]) -> tuple[str, str]:
    """("paper" | "list" | "skipped", why), from evidence across the whole file."""
    tokens = doc.tokens
    meta_title = _meta_str(doc.meta.get("title"))
    title_link, paper_link, bare_link = _first_block_links(doc, units)
    headings = [u for u in units if u.kind == "heading"]
    heading_entries = _heading_entries(headings)
    contributing = [u for u in units if u.kind in ("list", "table") and _evidence_list(u)]
    n_entries = sum(len(u.entries) for u in contributing) + len(heading_entries)
    note_headings = [u for u in headings[1:] if u.note_heading]
    summary = any(
        u.kind == "para" and _SUMMARY_START.match(tokens[u.i + 1].content.lstrip()) for u in units
    )
    weak = summary or (bool(note_headings) and 2 * len(note_headings) >= max(1, len(headings) - 1))
    readme = _is_readme(doc.rel)
    root_readme = readme and "/" not in doc.rel
    what = _entries_phrase(contributing, heading_entries)
    if meta_title:
        if n_entries >= LIST_MIN_ENTRIES and not weak and not (title_link and paper_link):
            doc.unsure = "front matter names one paper, yet entries make it a list"
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
            doc.unsure = f"only {n_entries} entries: may be one paper's note citing others"
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
    return _decide_without_entries(doc, units, headings, readme)


def _first_block_links(doc: Document, units: list[_Unit]) -> tuple[bool, bool, bool]:
    """(title link, paper link, bare link) of the file's first heading or paragraph: is its
    title a link (or followed by a paper's links), does it link a paper, is it a bare URL."""
    tokens = doc.tokens
    first = next((u for u in units if u.kind not in ("hr",)), None)
    if first is None or first.kind not in ("heading", "para"):
        return False, False, False
    parsed = _title(tokens[first.i + 1].children or [])
    title_link = _is_url(parsed.title_href) or (
        first.kind == "heading" and parsed.has_aux and any(map(_is_paper_url, parsed.hrefs))
    )
    paper_link = any(map(_is_paper_url, parsed.hrefs))
    bare_link = (
        first.kind == "para"
        and _BARE_URL_LINE.fullmatch(tokens[first.i + 1].content.strip()) is not None
    )
    return title_link, paper_link, bare_link


def _decide_without_entries(
    doc: Document, units: list[_Unit], headings: list[_Unit], readme: bool
) -> tuple[str, str]:
    """The decision for a file with no entries that link or tag a paper, nor a title field,
    paper link or note headings: an outline, bare titles, a heading and text, a vault page,
    or nothing."""
    tokens = doc.tokens
    root_readme = readme and "/" not in doc.rel
    if headings and not readme and _names_its_file(headings[0].text, doc.rel):
        # `# Lessons From Thirty Years` in "Lessons From Thirty Years.md": a note on one
        # thing (a paper, a talk, a chapter), its bullets an outline, not a list of titles.
        doc.unsure = "no paper link or title field: may be a note on a talk or a chapter"
        return "paper", "its first heading is its file name, and no linked entries"
    plain = [u for u in units if u.kind in ("list", "table") and _plain_list(u)]
    # Prose before the first list: a note's text (sentences after bullets are their notes).
    first_list = min((u.i for u in plain), default=0)
    prose = sum(
        _word_count(tokens[u.i + 1].content) for u in units if u.kind == "para" and u.i < first_list
    )
    listed = sum(_word_count(d.record.title) for u in plain for d in u.entries)
    if plain and prose <= listed:
        # Titles, not a note's prose with a few bullet points in it.
        n = sum(len(u.entries) for u in plain)
        doc.unsure = "no links or years: items taken as titles because they read as titles"
        return "list", f"{n} title-like list item{'s' if n != 1 else ''} (no links anywhere)"
    if headings and not root_readme:
        doc.unsure = "no paper link, title field or note headings: may not be about a paper"
        return "paper", "a heading and text, no list of papers"
    if not headings and not readme:
        words = _prose_words(doc, units)
        if words >= VAULT_PROSE_WORDS and _title_from_path(doc.rel, words=True):
            # A vault page (Obsidian, Logseq, Foam, Notion exports): its file name is the
            # title, its text the note.
            doc.titled_by_name = True
            doc.unsure = "no heading: the title is the file name, the page may not be a paper"
            return "paper", f"{words} words of prose and no heading: titled by its file name"
        if words == 0:
            return "skipped", f"{NO_TEXT} (only links, tags or nothing)"
    if units and not headings:
        return "skipped", "no heading, title or paper entries"
    return "skipped", "no paper entries (links to papers or note files, year tags)"


def _prose_words(doc: Document, units: list[_Unit]) -> int:
    """Words of the file's own text: paragraphs and list items without the wiki links,
    #tags and URLs that backlink and tag pages are made of."""
    words = 0
    for u in units:
        if u.kind in ("para", "list", "other"):
            text = _plain_blocks(doc.tokens, u.i, u.j)
            words += len(_NOT_PROSE.sub(" ", text).split())
    return words


def _plain_outweighs(units: list[_Unit], heading_entries: list[_Unit]) -> bool:
    """More entries in lists of bare titles than in lists with evidence."""
    lists = [u for u in units if u.kind in ("list", "table")]
    with_evidence = sum(len(u.entries) for u in lists if _evidence_list(u))
    plain = sum(len(u.entries) for u in lists if not _evidence_list(u) and _plain_list(u))
    return plain > with_evidence + len(heading_entries)


LIST_MIN_ENTRIES = 5


# A file with no heading and at least this many words of its own prose is a note on the paper
# its file name names (vault pages); one holding only links and tags is not a paper.
VAULT_PROSE_WORDS = 30


_NOT_PROSE = re.compile(r"\[\[[^\[\]]*\]\]|(?<!\w)#[\w/-]+|https?://\S+|[^\w\s]+")


_SUMMARY_START = re.compile(
    r"(?i)(?:\*\*|__)?(?:tl\s*[;:,]?\s*dr|abstract|summary|in one sentence|one[- ]line summary)"
    r"(?:\*\*|__)?\s*[:;.\-\u2013\u2014]"
)


_README_STEMS = {"readme", "index", "_index"}


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


def _names_its_file(heading: str, rel: str) -> bool:
    """The heading and the file name are the same words (two or more): `# Peter Stone -
    Practical RL` in "Peter Stone - Practical RL.md", `# Deep Sets` in "deep-sets.md"."""
    name = _norm_words(_title_from_path(rel))
    return len(name.split()) >= 2 and name == _norm_words(heading)
