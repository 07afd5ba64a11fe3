"""The package version, in a module of its own so that any module can import it without a cycle
through the package's front door (`search/__init__.py` imports the whole API)."""

__version__ = "0.1.0"
