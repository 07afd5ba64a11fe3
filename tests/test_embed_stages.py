"""Embedding the catalog in stages (tokenize ahead, model, write) and in one precision, with the
fake encoder: the logic, not the vectors (tests/test_embed_parity.py has the real model)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from search.catalog import embed_stages
from search.catalog.catalog import (
    Catalog,
    CatalogError,
    Embeddings,
    catalog_dir,
    catalog_encoder,
)
from search.catalog.catalog import write_shard as real_write_shard
from search.catalog.embed_stages import Stages, StageTimes, resolve_precision
from search.catalog.embed_stages import embed_stages as run_stages
from search.library import library_paths
from tests.test_catalog import one_error_line, run, write_jsonl

ROWS = [{"title": f"paper {i} about topic {i % 7}", "abstract": f"words {i}"} for i in range(50)]


@pytest.fixture
def catalog(library: Path, tmp_path: Path) -> Catalog:
    cat = Catalog.open(catalog_dir(library_paths()), create=True)
    cat.add_files([write_jsonl(tmp_path / "a.jsonl", ROWS)])
    return cat


def fake_stages(events: list[tuple[str, str, int]], die_at: int | None = None) -> Stages:
    """Stages over the fake encoder that log (stage, thread, texts) as they run."""
    enc = catalog_encoder(library_paths(), "fake")
    calls = {"model": 0}

    def tokenize(texts: list[str]) -> list[str]:
        events.append(("tokenize", threading.current_thread().name, len(texts)))
        return [t.upper() for t in texts]  # what the model stage gets is the tokenizer's

    def model(tokens: list[str]) -> np.ndarray:
        calls["model"] += 1
        if die_at is not None and calls["model"] >= die_at:
            raise KeyboardInterrupt  # as if the run were killed here
        events.append(("model", threading.current_thread().name, len(tokens)))
        return enc.encode([t.lower() for t in tokens])

    return Stages(tokenize, model, "fp32", "fake")


def test_tokenizing_runs_ahead_of_the_model_in_its_own_thread(catalog: Catalog) -> None:
    paths = library_paths()
    store = Embeddings.of(paths, "stages")
    events: list[tuple[str, str, int]] = []
    times = StageTimes()
    assert run_stages(catalog, store, fake_stages(events), shard_size=8, times=times) == 50
    tokenize = [e for e in events if e[0] == "tokenize"]
    model = [e for e in events if e[0] == "model"]
    assert [n for _, _, n in tokenize] == [8] * 6 + [2] == [n for _, _, n in model]
    assert {thread for _, thread, _ in tokenize} != {threading.current_thread().name}
    assert all(thread.startswith("papers-tokenize") for _, thread, _ in tokenize)
    assert {thread for _, thread, _ in model} == {threading.current_thread().name}
    # The second shard's texts were tokenized before the model embedded the first.
    assert events.index(tokenize[1]) < events.index(model[0])
    assert times.texts == 50 and times.model > 0 and times.tokenize > 0 and times.write > 0
    assert set(times.rates()) == {"read", "tokenize", "model", "write"}
    # The vectors are the model's on the tokenizer's output (upper-cased, then lowered back).
    merged = store.merge(catalog)
    expect = catalog_encoder(paths, "fake").encode([t for _, t in catalog.texts(merged.cids)])
    assert np.allclose(np.asarray(merged.vectors, np.float32), expect, atol=2e-3)


def test_a_killed_run_keeps_every_shard_written_and_the_next_goes_on(catalog: Catalog) -> None:
    store = Embeddings.of(library_paths(), "stages")
    events: list[tuple[str, str, int]] = []
    with pytest.raises(KeyboardInterrupt):
        run_stages(catalog, store, fake_stages(events, die_at=3), shard_size=8)
    assert len(store.shard_files()) == 2
    assert len(store.pending(catalog)[0]) == 50 - 16
    assert not [t for t in threading.enumerate() if t.name.startswith("papers-tokenize")]
    assert run_stages(catalog, store, fake_stages([]), shard_size=8) == 34
    assert len(store.merge(catalog).cids) == 50


def test_each_shard_says_its_precision(catalog: Catalog) -> None:
    store = Embeddings.of(library_paths(), "stages")
    assert store.precisions() == set()
    stages = fake_stages([])
    stages.precision = "int8"
    run_stages(catalog, store, stages, shard_size=32)
    assert store.precisions() == {"int8"}
    assert store.merge(catalog).meta["precision"] == "int8"


def test_a_shard_written_before_shards_said_is_fp32(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    np.savez(folder / "shard-old.npz", hashes=np.arange(3), vectors=np.ones((3, 4), np.float16))
    real_write_shard(folder, np.arange(3, 6), np.ones((3, 4)), precision="fp16")
    assert Embeddings(tmp_path).precisions() == {"fp32", "fp16"}


def test_resolve_precision_continues_refuses_a_mix_and_re_embeds(catalog: Catalog) -> None:
    store = Embeddings.of(library_paths(), "stages")
    cpu = {"available": ("fp32", "int8"), "default": "int8"}
    assert resolve_precision(store, None, **cpu) == "int8"  # nothing yet: the default
    run_stages(catalog, store, fake_stages([]), shard_size=32)  # fp32 shards
    assert resolve_precision(store, None, **cpu) == "fp32"  # continues as it was made
    with pytest.raises(CatalogError, match=r"made in fp32; adding int8 .*--re-embed"):
        resolve_precision(store, "int8", **cpu)
    assert len(store.shard_files()) == 2  # a refusal deletes nothing
    # A GPU-made catalog continued on CPUs only: refused, saying what would do it.
    with pytest.raises(CatalogError, match="made in fp32, which this run cannot make"):
        resolve_precision(store, None, available=("fp16",), default="fp16")
    # Re-embedding in another precision deletes every vector first (merged ones too).
    store.merge(catalog)
    said: list[str] = []
    assert resolve_precision(store, "int8", re_embed=True, log=said.append, **cpu) == "int8"
    assert store.shard_files() == [] and not store.merged_dir.exists()
    assert said and "embed every paper again in int8" in said[0]
    with pytest.raises(CatalogError, match="unknown precision"):
        resolve_precision(store, "fp8", **cpu)


def test_a_catalog_of_mixed_precisions_is_refused(catalog: Catalog) -> None:
    store = Embeddings.of(library_paths(), "stages")
    run_stages(catalog, store, fake_stages([]), shard_size=32)
    real_write_shard(store.shards, np.asarray([1, 2]), np.ones((2, 64)), precision="int8")
    with pytest.raises(CatalogError, match=r"several precisions \(fp32, int8\).*--re-embed"):
        resolve_precision(store, None, available=("fp32", "int8"), default="int8")


# -- the command --------------------------------------------------------------------------------


def test_embed_refuses_another_precision_in_one_line_and_re_embeds_when_asked(
    library: Path, tmp_path: Path
) -> None:
    run("catalog", "add", str(write_jsonl(tmp_path / "a.jsonl", ROWS)))
    first = json.loads(run("catalog", "embed", "--model", "fake", "--json").stdout)
    assert first["precision"] == "fp32" and first["embedded"] == 50
    assert set(first["stages"]) == {"read", "tokenize", "model", "write"}
    shards = sorted(p.name for p in catalog_dir(library_paths()).rglob("shard-*.npz"))
    line = one_error_line(run("catalog", "embed", "--model", "fake", "--int8", ok=False))
    assert "made in fp32" in line and "--re-embed" in line
    assert sorted(p.name for p in catalog_dir(library_paths()).rglob("shard-*.npz")) == shards
    # The fake encoder runs in fp32 only: int8 with --re-embed is refused before deleting.
    line = one_error_line(
        run("catalog", "embed", "--model", "fake", "--int8", "--re-embed", ok=False)
    )
    assert "int8 cannot run here" in line
    assert sorted(p.name for p in catalog_dir(library_paths()).rglob("shard-*.npz")) == shards
    again = json.loads(run("catalog", "embed", "--model", "fake", "--re-embed", "--json").stdout)
    assert again["embedded"] == 50 and again["already"] == 0 and again["precision"] == "fp32"
    assert "(fp32): 50 vectors" in run("catalog").stdout


def test_a_long_run_says_how_long_it_will_take_first(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.catalog import embed as catalog_embed

    monkeypatch.setattr(catalog_embed, "ESTIMATE_MIN", 40)
    run("catalog", "add", str(write_jsonl(tmp_path / "a.jsonl", ROWS)))
    result = run("catalog", "embed", "--model", "fake")
    first = result.stderr.splitlines()[0]
    assert first.startswith("embedding 50 papers with in-process encoder: ")
    assert "papers/s (measured on" in first and ("min" in first or "under a minute" in first)
    monkeypatch.setattr(catalog_embed, "ESTIMATE_MIN", 10_000)
    run(
        "catalog",
        "add",
        str(write_jsonl(tmp_path / "b.jsonl", [{"title": "new", "abstract": "x"}])),
    )
    again = run("catalog", "embed", "--model", "fake").stderr
    assert "embedding 1 papers with in-process encoder…" in again


def test_estimate_line_gives_papers_minutes_and_where() -> None:
    line = embed_stages.estimate_line(2_700_000, 54.0, "ONNX int8 on 2 cores", 64)
    assert line == (
        "embedding 2,700,000 papers with ONNX int8 on 2 cores: about 833 min (13.9 h) at "
        "54.0 papers/s (measured on 64 of them)"
    )
    assert "under a minute" in embed_stages.estimate_line(10, 54.0, "x", 10)


def test_int8_and_another_precision_together_is_a_usage_error(library: Path) -> None:
    result = run("catalog", "embed", "--int8", "--precision", "fp32", ok=False)
    assert result.exit_code == 2 and "disagree" in result.stderr
