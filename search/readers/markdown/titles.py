"""Title clean-up: a heading's, bullet's or cell's title text split from its links, trailers
(`(2019) - Authors`, `[CVPR 2020]`), prefixes (`Summary:`), and words counted in any script."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from search.readers.markdown.blocks import _inline_text, _norm_space
from search.readers.records import (
    clean_text,
)

PROSE_WORDS = 15


# Text around links that is punctuation, not title: "Title [[arXiv](...)] | [[code](...)]".
_SEPARATORS = " \t\n[](){}|,;:-\u2013\u2014\u00b7\u2022/"


_TRAILING = " \t\n[(|,;:-\u2013\u2014\u00b7\u2022/"


# Punctuation that ends or breaks a sentence in Chinese and Japanese text: a "title" holding
# one of these (。，；：！？、) is a sentence of a note, whatever its length.
_CJK_SENTENCE = re.compile("[\u3002\uff0c\uff1b\uff1a\uff01\uff1f\u3001]")


# Han, kana and Hangul: scripts written without spaces, where a character is about a word.
_CJK_CHAR = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


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


Segments = list[tuple[str, str | None]]  # (text, href or None), in order


def _title(children: list[Token]) -> _Title:
    """Split a bullet's, heading's or cell's inline content into title text and links.

    Links after the title are not title text: bracketed ones (`Title [[arXiv](url)]`) and
    trailing ones (`Title [pdf](url) [code](url)`); everything after the first such link is
    dropped (`[[code]()] (soon)`), but `[tags]` and `<kbd>venue</kbd>` there are kept as tags.
    A link that is the whole title (`[Title](notes/x.md)`), or set off by dashes
    (`[Title](url) — description`), is the title link; `[Title](url) (Alias)` gives an alias.
    """
    segs, tags = _segments(children)
    n = len(segs)
    aux, aux_bracketed = _first_aux_link(segs)
    head = segs[:aux]
    for text, h in segs[aux:]:
        if h is None:
            tags.extend(t.strip() for t in _BRACKETED.findall(text) if t.strip())
    head, title_href, alias = _title_link(head, tags)
    text = "".join(t for t, _ in head).strip()
    text = _bold_title(_CHECKBOX.sub("", text), children, tags)
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
    if aux < n or pseudo:
        # What joined the title to the links that were cut off: "Title [", "Title (", "Title |".
        text = text.rstrip(_TRAILING)
    if title_href is None:
        in_title = [h for t, h in head if h is not None]
        if len(in_title) == 1 and all(_is_sep(t) for t, h in head if h is None):
            title_href = in_title[0]
    return _Title(
        text=text,
        title_href=title_href or None,
        hrefs=[h for _, h in segs if h],
        has_aux=aux < n,
        bracketed=aux_bracketed,
        tags=tags,
        alias=alias,
        note_paths=wiki_paths + note_paths,
    )


def _is_sep(s: str) -> bool:
    """Text between links that is punctuation, not title."""
    return not s.strip(_SEPARATORS)


def _segments(children: list[Token]) -> tuple[Segments, list[str]]:
    """(segments, tags): the inline content as text and link segments (text of links and
    emphasis flattened), and `<kbd>venue</kbd>` tags taken out of it."""
    segs: Segments = []
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
    return segs, tags


def _first_aux_link(segs: Segments) -> tuple[int, bool]:
    """(index, bracketed) of the first link after the title (`[[arXiv](url)]`, or links and
    separators only from there on); (len(segs), False) when there is none."""
    n = len(segs)
    # only_links_after[k]: everything from segment k on is links or separator text.
    only_links_after = [True] * (n + 1)
    for k in range(n - 1, -1, -1):
        text, h = segs[k]
        only_links_after[k] = only_links_after[k + 1] and (h is not None or _is_sep(text))
    seen_text = False
    for k, (text, h) in enumerate(segs):
        if h is None:
            seen_text = seen_text or not _is_sep(text)
            continue
        before = segs[k - 1][0] if k > 0 and segs[k - 1][1] is None else ""
        after = segs[k + 1][0] if k + 1 < n and segs[k + 1][1] is None else ""
        bracketed = before.rstrip().endswith("[") and (
            after.lstrip().startswith("]") or (seen_text and before.rstrip() != "[")
        )
        if bracketed or (seen_text and only_links_after[k + 1]):
            return k, bracketed
        seen_text = seen_text or not _is_sep(text)
    return n, False


def _title_link(head: Segments, tags: list[str]) -> tuple[Segments, str | None, str | None]:
    """(head, title link, alias): a title that is one link, with at most a date before it and
    `(Alias)`, `(2019)`, `[tags]`, a dash or `, Authors, Venue 2019.` after it, is that link
    (its text the title); tags found after it are added to `tags`."""
    links = [k for k, (_, h) in enumerate(head) if h is not None]
    if len(links) != 1:
        return head, None, None
    p = links[0]
    before = "".join(t for t, _ in head[:p])
    after = "".join(t for t, _ in head[p + 1 :])
    paren = re.fullmatch(r"\s*\(([^()]+)\)\s*", after)
    bracket_tags = re.fullmatch(r"(?:\s*\[[^\[\]]+\])+\s*", after)
    lead_ok = _is_sep(before) or _DATE_PREFIX.fullmatch(before) is not None
    if not (lead_ok and (_is_sep(after) or paren or bracket_tags or _DASH_AFTER.match(after))):
        return head, None, None
    alias: str | None = None
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
    return [head[p]], head[p][1], alias


def _bold_title(text: str, children: list[Token], tags: list[str]) -> str:
    """`**Title** - Authors, Venue 2019 [[pdf](...)]`: the bold part is the title (the year
    after it a tag); else `text` unchanged."""
    bold = _leading_bold(children)
    if not bold or len(bold.split()) < 2 or not text.startswith(bold) or _YEAR.match(bold):
        return text
    rest = text[len(bold) :]
    if not re.match(r"\s*[-\u2013\u2014:,.(|]", rest):
        return text
    found = list(_YEAR.finditer(rest))
    if found:
        tail = re.split(r"[,.;|(\u2013\u2014]", rest[: found[-1].start()])[-1]
        tags.append(_norm_space(tail + " " + found[-1].group(1)))
    return bold


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


_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")


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


_GENERIC_NAMES = {"untitled", "new note", "todo", "to do", "reading list", "daily note", "notes"}


def _norm_words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


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


def _split_authors(text: str) -> list[str]:
    # "Last, First and Last, First" (BibTeX) splits on "and" only; otherwise commas count too.
    if re.search(r"\s+and\s+", text):
        names = re.split(r"\s+and\s+", text)
    else:
        names = re.split(r"[,;]", text)
    return [clean_text(n) for n in names if n.strip()]
