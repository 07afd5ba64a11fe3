"""papers: semantic search over a researcher's paper notes."""

__version__ = "0.1.0"
