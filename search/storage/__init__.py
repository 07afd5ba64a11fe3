"""Storage: one index generation on disk (SQLite rows, FAISS vectors, FTS5 keywords, the
chunks embedded, the map) and the atomic swap between generations."""
