"""The Markdown reader: reading lists (one paper per entry) and one-paper note files.

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

The folder as a whole decides the rest (readers/folder.py): a file linked as the note of an entry
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

The story in parts, in the order a note goes through them: `files` (which files, read as text),
`blocks` (markdown-it, front matter, token helpers), `evidence` (each block and entry, with what
names a paper), `decision` (list, one paper or not a paper), then `reading_list` or
`one_paper`; `titles`, `citations` and `links` clean up titles and resolve links for all of them;
`parser` runs one note through the parts.
"""

from search.readers.folder import NO_TEXT
from search.readers.markdown.files import (
    MAX_NOTE_BYTES,
    NOTE_SUFFIXES,
    list_note_files,
    read_markdown_file,
)
from search.readers.markdown.links import MARKDOWN_SUFFIXES
from search.readers.markdown.parser import READ_AS, parse_markdown

__all__ = [
    "MARKDOWN_SUFFIXES",
    "MAX_NOTE_BYTES",
    "NOTE_SUFFIXES",
    "NO_TEXT",
    "READ_AS",
    "list_note_files",
    "parse_markdown",
    "read_markdown_file",
]
