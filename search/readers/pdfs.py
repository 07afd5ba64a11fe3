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

from search.readers.records import (
    FileResult,
    Problem,
    Record,
    clean_text,
    normalise_doi,
    parse_arxiv_id,
)

# Bump when the extraction changes: cached texts of the old one are then ignored.
EXTRACT_VERSION = 1
# A document with fewer characters than this per page on average has no usable text layer.
MIN_CHARS_PER_PAGE = 20

_REFERENCES = re.compile(
    r"^[ \t]*(?:[0-9IVX]+\.?[ \t]+)?(?:references|bibliography|literature cited|works cited)"
    r"[ \t]*:?[ \t]*$",
    re.I | re.M,
)
_ARXIV_MENTION = re.compile(
    r"arxiv[:\s]*(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})", re.I
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
                    data["title"], [(a, b) for a, b in data["pages"]], data.get("problem")
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
        for i, page in enumerate(reader.pages):
            label = labels[i] if i < len(labels) and labels[i] else str(i + 1)
            try:
                text = page.extract_text() or ""
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
    return PdfText(title, pages)


def drop_references(pages: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`pages` without the References section and what follows it. A "References" heading on
    the first page (a cover or contents page) is not taken as the section."""
    for i, (label, text) in enumerate(pages):
        m = _REFERENCES.search(text)
        if m is None or (i == 0 and len(pages) > 1):
            continue
        head = text[: m.start()].rstrip()
        return [*pages[:i], *([(label, head)] if head else [])]
    return pages


def _title_from_page(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if len(line.split()) >= 3 and not _ARXIV_MENTION.search(line) and "@" not in line:
            return line[:300]
    return ""


def guess_title(meta_title: str, first_page: str, fallback: str) -> str:
    """The metadata title when it looks like one, else the first page's first line of three
    or more words, else `fallback`."""
    if meta_title and not _BAD_META_TITLE.search(meta_title):
        return meta_title
    return _title_from_page(first_page) or fallback


def read_pdf_file(path: Path, rel: str, cache: Path | None = None) -> FileResult:
    """A PDF under notes/ as one paper; never raises for bad content."""
    text = extract_pages(path, cache)
    problems = [Problem(rel, None, text.problem)] if text.problem else []
    pages = drop_references(text.pages) if not text.problem or text.pages else []
    first = pages[0][1] if pages else ""
    title = guess_title(text.title, first, clean_text(path.stem.replace("_", " ")))
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
