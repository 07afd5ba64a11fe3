"""Readers: every source of papers (Markdown notes, BibTeX/JSONL imports, Zotero, PDFs,
fetched abstracts, papers.toml) turned into `Record`s; none of them writes the index."""
