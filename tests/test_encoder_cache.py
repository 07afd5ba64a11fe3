"""One ONNX export per model fingerprint in the user's cache, reused by every library's first
build (checked like the index's own copy: a damaged cached export is exported again)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from search import build
from search.encoders.encoder import STEncoder
from search.encoders.onnx_encoder import export_problem
from search.library import Paths

from .conftest import SEED

pytestmark = pytest.mark.model


def new_library(root: Path) -> Path:
    (root / "notes").mkdir(parents=True)
    shutil.copy(SEED, root / "notes" / "cvpr2020.md")
    return root


def test_export_conftest_keeps_the_cache_in_the_test_folder(tmp_path: Path) -> None:
    import os

    assert Path(os.environ["XDG_CACHE_HOME"]).is_relative_to(tmp_path.parent)


def test_second_library_reuses_the_cached_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build.rebuild(Paths(new_library(tmp_path / "a")))
    cache = Path(tmp_path / "cache" / "papers" / "encoders")
    exports = [d for d in cache.iterdir() if (d / "encoder.json").is_file()]
    assert len(exports) == 1 and export_problem(exports[0], verify=True) is None

    def must_not(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the second library loaded torch or exported again")

    monkeypatch.setattr("search.encoders.query_encoder.export_onnx", must_not)
    monkeypatch.setattr(STEncoder, "load", must_not)
    logs: list[str] = []
    second = build.rebuild(Paths(new_library(tmp_path / "b")), log=logs.append)
    assert second.chunks == first.chunks
    copied = tmp_path / "b" / "index" / "encoders" / exports[0].name
    assert export_problem(copied, verify=True) is None
    assert any("reusing the ONNX export" in line for line in logs), logs


def test_a_damaged_cached_export_is_not_used_and_is_replaced(tmp_path: Path) -> None:
    build.rebuild(Paths(new_library(tmp_path / "a")))
    cache = Path(tmp_path / "cache" / "papers" / "encoders")
    (export,) = [d for d in cache.iterdir() if (d / "encoder.json").is_file()]
    weights = max(export.iterdir(), key=lambda f: f.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the CRC-32 sees it
    weights.write_bytes(bytes(data))
    logs: list[str] = []
    build.rebuild(Paths(new_library(tmp_path / "b")), log=logs.append)
    assert any("exporting the encoder" in line for line in logs), logs
    assert export_problem(tmp_path / "b" / "index" / "encoders" / export.name, verify=True) is None
    assert export_problem(export, verify=True) is None  # the cache holds a whole one again
