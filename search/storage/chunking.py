"""What text of a paper is embedded, split into chunks that fit the encoder's window."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from search.library import Paper

# Bump when the text of chunks changes for the same notes: every vector is then re-embedded.
CHUNKING_VERSION = 2
# Tokens shared by neighbouring chunks, so a sentence cut at a border is whole in one of them.
OVERLAP = 32
# Room for [CLS]/[SEP] and similar special tokens.
SPECIAL_TOKENS = 2

# At most this many characters of a paper's text (notes, then abstract) are embedded and
# keyword-indexed: about 25k tokens, ~110 chunks of a 256-token window, a second or two of
# embedding on a laptop CPU. The paper's stored abstract and notes stay whole (`papers show`);
# a rebuild reports each paper it cut. Without it, one record with a 10 MB abstract made ~21k
# chunks and a rebuild of more than 15 minutes.
MAX_EMBED_CHARS = 100_000

Spans = Callable[[str], list[tuple[int, int]]]


@dataclass(frozen=True)
class PaperText:
    """The parts of a paper that are embedded: `pages` are (file, page label, text) of its PDF
    pages or full text, chunked page by page so each chunk can cite its page."""

    head: str
    body: str
    pages: tuple[tuple[str, str, str], ...] = ()

    def digest(self) -> str:
        h = hashlib.sha256(f"{self.head}\0{self.body}".encode())
        for f, label, text in self.pages:
            h.update(f"\0{f}\0{label}\0{text}".encode())
        return h.hexdigest()


def paper_text(paper: Paper) -> PaperText:
    """Title (with its section: the reader's own grouping says what a paper is about), then the
    notes, then the abstract."""
    head = paper.title
    if paper.section:
        head = f"{head} ({' / '.join(paper.section)})"
    body = "\n".join([*paper.notes, paper.abstract]).strip()
    return PaperText(head=head, body=body[:MAX_EMBED_CHARS], pages=tuple(paper.pages))


def chunk_pages(
    text: PaperText, spans: Spans, max_tokens: int, prompt: str = ""
) -> list[tuple[str, str | None, str | None]]:
    """`chunk` of the notes and abstract, then of each page on its own: (chunk, file, page
    label) with file and label None for chunks that are not from a page."""
    out: list[tuple[str, str | None, str | None]] = [
        (c, None, None) for c in chunk(PaperText(text.head, text.body), spans, max_tokens, prompt)
    ]
    for f, label, page in text.pages:
        if page.strip():
            out += [
                (c, f, label) for c in chunk(PaperText(text.head, page), spans, max_tokens, prompt)
            ]
    return out


def full_length(paper: Paper) -> int:
    """Characters of the paper's whole text, before the MAX_EMBED_CHARS cut."""
    return len("\n".join([*paper.notes, paper.abstract]).strip())


def chunk(text: PaperText, spans: Spans, max_tokens: int, prompt: str = "") -> list[str]:
    """Split `text` into chunks of at most `max_tokens` tokens, each starting with the head.

    Nothing is cut off: a body longer than the window gives several overlapping chunks.
    """
    if not text.body:
        return [text.head]
    budget = max_tokens - SPECIAL_TOKENS - (len(spans(prompt)) if prompt else 0)
    head = text.head
    head_spans = spans(head)
    # A title longer than half the window would leave no room for the body: shorten it.
    if len(head_spans) > budget // 2:
        head = head[: head_spans[budget // 2 - 1][1]]
        head_spans = head_spans[: budget // 2]
    room = budget - len(head_spans) - 1
    body_spans = spans(text.body)
    if len(body_spans) <= room:
        return [f"{head}\n{text.body}"]
    out = []
    step = max(room - OVERLAP, 1)
    start = 0
    while start < len(body_spans):
        end = min(start + room, len(body_spans))
        piece = text.body[body_spans[start][0] : body_spans[end - 1][1]]
        out.append(f"{head}\n{piece}")
        if end == len(body_spans):
            break
        start += step
    return out


def chunk_key(fingerprint: str, text: str) -> str:
    """The key a vector is stored under: same model, same chunking, same text → same vector."""
    h = hashlib.sha256()
    h.update(f"{fingerprint}\0{CHUNKING_VERSION}\0".encode())
    h.update(text.encode())
    return h.hexdigest()
