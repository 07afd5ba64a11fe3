"""Link resolution: which links point at papers, arXiv ids and URLs from a title's links, and
the note file (or folder) a local or same-repository link names."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

from search.readers.markdown.titles import _Title
from search.readers.records import (
    Record,
    parse_arxiv_id,
)

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})


_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/", re.I)


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
        # repository, resolved among the notes as a relative link is (readers/folder.py).
        m = _REPO_FILE.match(path)
        if m is None or posixpath.splitext(m.group(1))[1].lower() not in MARKDOWN_SUFFIXES:
            return None
        return posixpath.normpath(m.group(1))
    if not path or path.startswith("/"):
        return None
    # A folder (`./03-slug/`) means the note inside it (readers/folder.py says which): kept with
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
