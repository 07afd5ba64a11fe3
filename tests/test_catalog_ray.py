"""`papers catalog embed --ray`: a local Ray instance with 2 CPUs gives the local path's vectors
through a tokenize stage and model-only actors, and a killed run resumes from its finished
shards. Uses the real model's ONNX export."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from search.catalog.catalog import Catalog, Embeddings, catalog_dir, catalog_encoder
from search.catalog.embed_stages import embed_pending
from search.library import library_paths

pytestmark = pytest.mark.model

PRINT = builtins.print  # Ray Data's progress bars may replace it; embed_with_ray must not let them
TOPICS = ["image denoising", "metric learning", "protein folding", "dark matter", "speech"]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="ray is not installed")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray cannot start here: {e}")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged model exported to ONNX once for the module (it takes tens of seconds)."""
    root = tmp_path_factory.mktemp("export")
    catalog_encoder(library_paths(root), None)
    return root / "index" / "encoders"


@pytest.fixture
def with_export(library: Path, exported: Path) -> Path:
    shutil.copytree(exported, library / "index" / "encoders")
    return library


def _catalog(library: Path, n: int) -> Catalog:
    rows = [
        {
            "title": f"A study of {TOPICS[i % 5]} number {i}",
            "abstract": f"We look at {TOPICS[i % 5]} from angle {i}. " * (1 + i % 4),
        }
        for i in range(n)
    ]
    src = library / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cat = Catalog.open(catalog_dir(library_paths()), create=True)
    cat.add_files([src])
    return cat


def test_ray_vectors_equal_the_local_path_and_a_killed_run_resumes(
    with_export: Path, ray_local
) -> None:
    library = with_export
    from search.catalog.ray_embed import embed_with_ray

    paths = library_paths()
    cat = _catalog(library, 40)
    enc = catalog_encoder(paths, None)  # exports the packaged model to ONNX under index/
    assert enc.onnx_folder is not None

    local = Embeddings(paths.root / "local-store")
    assert embed_pending(cat, local, enc.encode) == 40
    expect = local.merge(cat)

    store = Embeddings.of(paths, enc.fingerprint)
    # Killed after its first shard: that shard is kept...
    first, precision = embed_with_ray(
        cat, store, enc, address="local", shard_size=8, stop_after=1, precision="fp32"
    )
    assert 0 < first < 40 and precision == "fp32"
    assert len(store.pending(cat)[0]) == 40 - first
    assert store.precisions() == {"fp32"}
    # ...and the next run embeds only the rest, in the precision the catalog was made in.
    rest, precision = embed_with_ray(cat, store, enc, address="local", workers=2, shard_size=8)
    assert rest == 40 - first and precision == "fp32"
    got = store.merge(cat)
    assert np.array_equal(got.cids, expect.cids)
    a = np.asarray(got.vectors, dtype=np.float32)
    b = np.asarray(expect.vectors, dtype=np.float32)
    cos = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.9999, cos.min()
    # A patched print breaks numba (UMAP, for the map) later in the same process.
    assert builtins.print is PRINT


def test_ray_refuses_an_encoder_it_cannot_ship(library: Path) -> None:
    from search.catalog.catalog import CatalogError
    from search.catalog.ray_embed import embed_with_ray

    paths = library_paths()
    cat = _catalog(library, 3)
    enc = catalog_encoder(paths, "fake")
    with pytest.raises(CatalogError, match="ONNX export"):
        embed_with_ray(cat, Embeddings.of(paths, enc.fingerprint), enc, address="local")


def test_an_actor_on_a_node_without_the_library_gets_the_export_from_ray(
    with_export: Path, ray_local
) -> None:
    library = with_export
    from search.catalog.ray_embed import ModelBatch, _pack, tokenize_batch

    paths = library_paths()
    enc = catalog_encoder(paths, None)
    assert enc.onnx_folder is not None
    tok_files = [ray_local.put(_pack(enc.onnx_folder, ["tokenizer.json", "encoder.json"]))]
    files = [ray_local.put(_pack(enc.onnx_folder))]
    texts = np.asarray(["metric learning with proxies", "protein folding"], dtype=object)
    away = str(library / "not-here")
    tokens = tokenize_batch(
        {"hash": np.asarray([1, 2]), "text": texts}, folder=away, files=tok_files, prompt=""
    )
    actor = ModelBatch(away, "fp32", threads=1, files=files)
    out = actor(tokens)
    expect = dict(zip([1, 2], enc.encode(list(texts)), strict=True))
    for h, vec in zip(out["hash"].tolist(), out["vector"].astype(np.float32), strict=True):
        assert np.allclose(vec, expect[h], atol=2e-3)


def test_a_cluster_with_gpus_gets_one_model_actor_per_gpu_and_cpus_tokenize() -> None:
    from search.catalog.ray_embed import ActorPlan

    gpu = ActorPlan.for_cluster({"CPU": 16.0, "GPU": 2.0}, None)
    assert gpu == ActorPlan(2, 1, True, 16, 2)
    assert gpu.default_precision == "fp16" and "int8" not in gpu.precisions
    assert gpu.resources() == {
        "tokenize": {"num_cpus": 1.0},
        "model": {"num_cpus": 1.0, "num_gpus": 1.0},
    }
    cpu = ActorPlan.for_cluster({"CPU": 2.0}, None)
    assert cpu == ActorPlan(2, 1, False, 2, 0)
    assert cpu.default_precision == "fp32" and "fp16" not in cpu.precisions
    # Model actors hold most of each core and tokenizing shares it: 2 actors and a tokenize
    # task fit in 2 CPUs (whole CPUs each would wait forever for a third).
    use = cpu.resources()
    assert 2 * use["model"]["num_cpus"] + use["tokenize"]["num_cpus"] <= 2
    # one actor alone has every core; --workers overrides the count
    assert ActorPlan.for_cluster({"CPU": 4.0}, 1) == ActorPlan(1, 4, False, 4, 0)
    assert ActorPlan.for_cluster({"CPU": 4.0, "GPU": 1.0}, 3).pool == 3


def test_a_gpu_actor_runs_the_model_in_fp16_on_token_ids(
    with_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU actor runs the sentence-transformers model with torch in fp16 on the token ids the
    tokenize stage made. This machine has no GPU: the same actor runs the model on the CPU
    instead (still in fp16), which checks everything but CUDA itself (the model it loads, the
    precision, unit float16 rows) against the vectors of the local path."""
    from search.catalog import ray_embed as catalog_ray
    from search.catalog.ray_embed import ModelBatch, tokenize_batch

    paths = library_paths()
    enc = catalog_encoder(paths, None)
    assert enc.onnx_folder is not None and enc.model_path is not None
    asked: list[tuple[str, str]] = []
    real = catalog_ray.TorchModel

    def on_this_machine(path: str, config: dict, precision: str, device: str) -> object:
        asked.append((precision, device))
        return real(path, config, precision, device="cpu")

    monkeypatch.setattr(catalog_ray, "TorchModel", on_this_machine)
    actor = ModelBatch(
        str(enc.onnx_folder), "fp16", threads=1, model_path=str(enc.model_path), device="cuda"
    )
    assert asked == [("fp16", "cuda")]
    texts = np.asarray([f"A study of {t}" for t in TOPICS], dtype=object)
    tokens = tokenize_batch(
        {"hash": np.arange(len(texts)), "text": texts},
        folder=str(enc.onnx_folder),
        files=[],
        prompt=enc.document_prompt,
    )
    out = actor(tokens)
    assert out["vector"].dtype == np.float16
    assert sorted(out["hash"].tolist()) == list(range(len(texts)))
    got = out["vector"].astype(np.float32)
    expect = enc.encode([str(texts[h]) for h in out["hash"].tolist()])
    cos = (got * expect).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expect, axis=1)
    assert cos.min() >= 0.999, cos.min()


def test_a_gpu_node_without_the_model_folder_says_so() -> None:
    from search.catalog.catalog import CatalogError
    from search.catalog.ray_embed import ModelBatch

    with pytest.raises(CatalogError, match="not on this GPU node"):
        ModelBatch("/nowhere", "fp16", threads=1, model_path="/nowhere/model", device="cuda")
