"""The reader on real paper-notes repositories (../shared/data/notes-real): for each, the Done-when
of issue 9 holds: papers within ±10 % of expected, ≥ 90 % of the sampled titles found, every
expected note file joined to exactly one paper. Parse only (collect_papers): the reader is
what is measured; bench/notes_real.py runs the same through `papers rebuild`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, shared_data


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notes_real", ROOT / "bench" / "notes_real.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["notes_real"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _bench()
REPOS = sorted(p.name.removesuffix(".expected.json") for p in bench.REAL.glob("*.expected.json"))


@pytest.mark.parametrize("name", REPOS or ["(none)"])
def test_real_repository_is_read_right(name: str) -> None:
    real = shared_data("notes-real")
    expected_file = real / f"{name}.expected.json"
    if not expected_file.is_file():
        pytest.skip("no notes-real repositories")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    score = bench.evaluate(name, expected, bench.parse_only(real / name))
    assert score.count_ok, (score.found, score.expected)
    assert score.samples_found * 10 >= score.samples * 9, score
    assert score.joined == score.note_files, score
    assert score.recall is not None and score.recall >= 0.9, score


def test_reading_list_and_seed_counts() -> None:
    denny = shared_data("notes-dennybritz")
    [(_, _, expected)] = [x for x in bench.local_expectations() if x[0] == "notes-dennybritz"]
    score = bench.evaluate("dennybritz", expected, bench.parse_only(denny))
    assert (score.found, score.joined, score.note_files) == (619, 99, 99)
    seed = bench.parse_only(Path(ROOT / "notes"))
    assert len(seed) == 16
