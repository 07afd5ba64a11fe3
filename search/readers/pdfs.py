"""Reading PDFs page by page (pypdf, BSD licence), so that a result can cite `paper.pdf:p.7`.

A PDF under notes/ is one paper: titled from its metadata (when that looks like a title) or its
first page's first substantial line, with the DOI and arXiv id printed on its first page, so
that `merge` joins it to the same paper in Markdown notes or Zotero. Its pages become the
record's `pages`; the References section and everything after it are left out (reference lists
match every question about their topics). A PDF without a text layer (a scan) is reported as a
problem: it needs OCR, which is out of scope.

pypdf is slow (tens of pages a second, docs/benchmarks.md), so the text of each PDF is cached
by content hash in index/pdf-cache/: a PDF moved, renamed or touched is not extracted again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.readers.records import (
    FileResult,
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

# Bump when the extraction changes: cached texts of the old one are then ignored.
# 2: the first page's heading (its largest type) is kept for the title.
EXTRACT_VERSION = 2
# A document with fewer characters than this per page on average has no usable text layer.
MIN_CHARS_PER_PAGE = 20

_REFERENCES = re.compile(
    r"^[ \t]*(?:[0-9IVX]+\.?[ \t]+)?(?:references|bibliography|literature cited|works cited"
    r"|参考文献|參考文獻|참고[ \t]*문헌)[ \t]*[:：]?[ \t]*$",
    re.I | re.M,
)
# What follows a real References heading: numbered entries ("[1]", "1.") or publication years.
_REFERENCE_ENTRY = re.compile(r"^\s*(?:\[\d{1,3}\]|\d{1,3}\.\s)", re.M)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# "arXiv:2101.00001", "arXiv 2101.00001v2", "ArXiv ePrint: 0807.3577",
# "arXiv e-print hep-th/9901001"
_ARXIV_MENTION = re.compile(
    r"arxiv(?:[ \t]*e-?print)?[:\s]*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})",
    re.I,
)
# First-page lines that are never the title: running heads of proceedings and journals,
# licence and copyright notices, preprint stamps.
_NOT_TITLE = re.compile(
    r"proceedings of|published (?:as|in) |appear(?:s|ed)? in |accepted (?:at|to|for) |"
    r"under review|preprint|conference on|workshop on|journal of|transactions on|"
    r"creative commons|licen[cs]ed? (?:under|to)|provided proper attribution|permission to|"
    r"all rights reserved|copyright|©|\bvol(?:ume)?\.? ?\d|\bpp\. ?\d|doi:|https?://|www\.",
    re.I,
)
_BAD_META_TITLE = re.compile(
    r"^(untitled|microsoft word|title|document\d*)\b|\.(pdf|docx?|tex)$", re.I
)


@dataclass
class PdfText:
    """What a PDF holds: its metadata title, and (page label, text) of each page."""

    title: str = ""
    pages: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None
    # The first page's text in its largest type above the body's (one block of lines): where
    # papers print their title. Empty when the page has one size of type.
    heading: str = ""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_pages(path: Path, cache: Path | None = None) -> PdfText:
    """The text of each page of the PDF at `path`; never raises (a problem is reported in
    `.problem`). With `cache`, the result is kept there under the file's content hash."""
    try:
        digest = _digest(path)
    except OSError as e:
        return PdfText(problem=f"cannot read: {e.strerror or e}")
    cached = cache / f"{digest}.json" if cache is not None else None
    if cached is not None:
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            if data.get("version") == EXTRACT_VERSION:
                return PdfText(
                    data["title"],
                    [(a, b) for a, b in data["pages"]],
                    data.get("problem"),
                    str(data.get("heading") or ""),
                )
        except (OSError, ValueError, KeyError, TypeError):
            pass
    text = _extract(path)
    if cached is not None and not (text.problem or "").startswith("cannot read"):
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.tmp-{os.getpid()}")
            tmp.write_text(
                json.dumps(
                    {
                        "version": EXTRACT_VERSION,
                        "title": text.title,
                        "pages": text.pages,
                        "problem": text.problem,
                        "heading": text.heading,
                    },
                    ensure_ascii=False,
                ),
                encoding="utf-8",
            )
            os.replace(tmp, cached)
        except OSError:
            pass  # the cache is an optimisation: a full disk must not fail the rebuild
    return text


def _extract(path: Path) -> PdfText:
    from pypdf import PdfReader  # lazy: only rebuilds that meet a PDF need it
    from pypdf.errors import PyPdfError

    # pypdf logs recoverable oddities of real-world PDFs as warnings; they are not the user's.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                return PdfText(problem="encrypted PDF: cannot read its text")
        try:
            labels = list(reader.page_labels)
        except Exception:
            labels = []
        pages: list[tuple[str, str]] = []
        runs: list[tuple[float, str]] = []
        for i, page in enumerate(reader.pages):
            label = labels[i] if i < len(labels) and labels[i] else str(i + 1)
            try:
                text = page.extract_text(visitor_text=_sized(runs) if i == 0 else None) or ""
            except Exception:
                text = ""
            pages.append((label, clean_text(text.replace("\x00", ""))))
        title = ""
        try:
            meta = reader.metadata
            title = clean_text(str(meta.title)) if meta is not None and meta.title else ""
        except Exception:
            title = ""
    except (OSError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as e:
        return PdfText(problem=f"not a readable PDF: {e}")
    chars = sum(len(t) for _, t in pages)
    if pages and chars < MIN_CHARS_PER_PAGE * len(pages):
        return PdfText(
            title,
            pages,
            f"no text layer in {len(pages)} page(s) (a scan?): not searchable until OCRed, "
            "e.g. with ocrmypdf",
        )
    return PdfText(title, pages, heading=_heading(runs))


def _sized(runs: list[tuple[float, str]]) -> Any:
    """A pypdf text visitor that appends (type size in points, text) of each run to `runs`."""

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        if text.strip():
            # The size set by Tf times the text and current matrices' scales ("1 Tf" + a
            # 17-point matrix is how many papers set their title).
            scale = (abs(tm[0] * tm[3] - tm[1] * tm[2]) * abs(cm[0] * cm[3] - cm[1] * cm[2])) ** 0.5
            runs.append((round(float(size) * scale, 1), " ".join(text.split())))

    return visit


def _heading(runs: list[tuple[float, str]]) -> str:
    """The first block of runs in the largest type bigger than the body's that reads as a
    title (the title of a paper may take two or three lines; a bigger running head is not)."""
    if not runs:
        return ""
    by_size: dict[float, int] = {}
    for size, text in runs:
        by_size[size] = by_size.get(size, 0) + len(text)
    body = max(by_size, key=lambda s: by_size[s])
    for size in sorted((s for s in by_size if s > body + 0.5), reverse=True):
        block: list[str] = []
        for s, text in runs:
            if abs(s - size) <= 0.5:
                block.append(text)
            elif block:
                break
        heading = " ".join(block)
        # In large type a one-word title is a title ("Libtasn1"); in body type it is not.
        if _looks_like_title(heading, min_words=1):
            return heading
    return ""


def _looks_like_title(text: str, min_words: int = 2) -> bool:
    words = text.split()
    return (
        min_words <= len(words) <= 40
        and len(text) >= 3
        and len(text) <= 300
        and not _NOT_TITLE.search(text)
        and not _ARXIV_MENTION.search(text)
        and "@" not in text
        and sum(c.isalpha() for c in text) >= len(text) / 2
    )


def drop_references(pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`pages` without the References section and what follows it. A "References" heading on
    the first page (a cover or contents page) is not taken as the section."""
    for i, (label, text) in enumerate(pages):
        if i == 0 and len(pages) > 1:
            continue
        for m in _REFERENCES.finditer(text):
            # A figure or table may be labelled "References" (a retrieval paper's "References
            # / Query" panels): the section is a heading followed by entries.
            after = text[m.end() : m.end() + 600]
            if _REFERENCE_ENTRY.search(after) is None and len(_YEAR.findall(after)) < 2:
                continue
            head = text[: m.start()].rstrip()
            return [*pages[:i], *([(label, head)] if head else [])]
    return pages


def _title_from_page(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if len(line.split()) >= 3 and _looks_like_title(line):
            return line[:300]
    return ""


def guess_title(meta_title: str, first_page: str, fallback: str, heading: str = "") -> str:
    """The metadata title when it looks like one, else the first page's heading (its largest
    type), else its first line of three or more words that is no running head or licence,
    else `fallback`."""
    if meta_title and not _BAD_META_TITLE.search(meta_title):
        return meta_title
    return heading or _title_from_page(first_page) or fallback


def read_pdf_file(path: Path, rel: str, cache: Path | None = None) -> FileResult:
    """A PDF under notes/ as one paper; never raises for bad content."""
    text = extract_pages(path, cache)
    if text.problem and not text.pages:
        # Not a PDF one can read (broken, encrypted): nothing to list, only the problem.
        return FileResult(problems=[Problem(rel, None, f"{text.problem}; skipped")])
    problems = [Problem(rel, None, text.problem)] if text.problem else []
    if not any(t.strip() for _, t in text.pages) or (text.problem or "").startswith("no text"):
        return FileResult(problems=problems)  # a scan (or no PDF at all) is no paper to find
    pages = drop_references(text.pages)
    first = pages[0][1] if pages else ""
    fallback = clean_text(path.stem.replace("_", " "))
    title = guess_title(text.title, first, fallback, text.heading)
    m = _ARXIV_MENTION.search(first)
    record = Record(
        title=title,
        file=rel,
        line=0,
        arxiv=parse_arxiv_id(m.group(1)) if m else None,
        doi=normalise_doi(first[:5000]),
        pages=[[rel, label, t] for label, t in pages if t.strip()],
    )
    return FileResult(records=[record], problems=problems)
