"""Shared fixtures: every test gets its own library folder and a fast fake encoder."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from search.encoders.encoder import Encoder, register_encoder, unregister_encoder

from .fake_encoder import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SEED = ROOT / "notes" / "cvpr2020.md"

# The name tests use for the project's one fake encoder (tests/fake_encoder.py).
FakeEncoder = HashingEncoder


@pytest.fixture
def encoders() -> Iterator[Callable[[str, Callable[[], Encoder]], None]]:
    """`encoders(name, factory)` registers an in-process encoder for this test only."""
    names: list[str] = []

    def register(name: str, factory: Callable[[], Encoder]) -> None:
        register_encoder(name, factory)
        names.append(name)

    yield register
    for name in names:
        unregister_encoder(name)


@pytest.fixture(autouse=True)
def fake_encoder(encoders: Callable[[str, Callable[[], Encoder]], None]) -> None:
    """The "fake" model, for every test."""
    encoders("fake", FakeEncoder)


@pytest.fixture(autouse=True)
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh library folder per test: PAPERS_LIBRARY points at it; nothing else is touched."""
    lib = tmp_path / "library"
    (lib / "notes").mkdir(parents=True)
    monkeypatch.setenv("PAPERS_LIBRARY", str(lib))
    monkeypatch.delenv("PAPERS_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The user's cache (the ONNX export kept per model) is the test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return lib


@pytest.fixture
def seeded(library: Path) -> Path:
    """The library with the seed notes in it."""
    shutil.copy(SEED, library / "notes" / "cvpr2020.md")
    return library


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path
