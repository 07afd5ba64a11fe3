"""Catalog embedding throughput: the local path against Ray with 1 and 2 workers, same run.

    .venv/bin/python bench/catalog_embed.py [--n 600]

Texts: the first N SciFact abstracts (title + abstract, as the catalog embeds them; ~250
tokens each, most cut at the model's 256-token window), added to a catalog in a temporary
library. Encoder: the packaged model's ONNX export (fp32), as `papers catalog embed` uses.

Runs, in this order, each into an empty embeddings folder: the local path (one process, ONNX
intra-op threads = cores); one ONNX thread (the per-core rate the projections use); Ray Data on
a local instance started with 2 CPUs, with 1 and then 2 encoder actors (actor start and model
load included, as a user pays them); the local path again (the machine is shared and noisy:
the two local runs bracket the Ray runs). Prints JSON with papers/s and projections for 2.7M
abstracts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.catalog.catalog import (  # noqa: E402
    Catalog,
    Embeddings,
    catalog_dir,
    catalog_encoder,
    embed_pending,
)
from search.library import library_paths  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ARXIV = 2_700_000
# Published GPU rate, labelled as such in docs/benchmarks.md: sentence-transformers lists
# all-MiniLM-L6-v2 at 14,200 sentences/s on a V100; abstracts are ~10x longer than its
# benchmark sentences, so a tenth of that is used for the projection.
GPU_PUBLISHED_SENTENCES_S = 14_200
GPU_ABSTRACT_FACTOR = 0.1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catalog-embed-") as tmp:
        lib = Path(tmp)
        (lib / "notes").mkdir()
        src = lib / "corpus.jsonl"
        lines = (DATA / "scifact-train" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        src.write_text("\n".join(lines[: args.n]) + "\n", encoding="utf-8")
        paths = library_paths(lib)
        cat = Catalog.open(catalog_dir(paths), create=True)
        cat.add_files([src])
        enc = catalog_encoder(paths, None, log=lambda s: print(s, file=sys.stderr))
        n = cat.count()
        result: dict[str, object] = {"papers": n}

        def timed(name: str, fn) -> None:  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            done = fn(Embeddings(lib / f"store-{name}"))
            s = time.perf_counter() - t
            assert done == n, (name, done, n)
            result[name] = {"seconds": round(s, 1), "papers_per_s": round(n / s, 1)}
            print(name, result[name], file=sys.stderr)

        timed("local", lambda st: embed_pending(cat, st, enc.encode))

        from search.encoders.onnx_encoder import OnnxEncoder

        assert enc.onnx_folder is not None
        one = OnnxEncoder.load(enc.onnx_folder, threads=1)
        timed("local_1_thread", lambda st: embed_pending(cat, st, one.encode))

        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        from search.catalog.ray_embed import embed_with_ray

        for workers in (1, 2):
            timed(
                f"ray_{workers}_workers",
                lambda st, w=workers: embed_with_ray(cat, st, enc, address="local", workers=w),
            )
        ray.shutdown()
        timed("local_again", lambda st: embed_pending(cat, st, enc.encode))
        cat.close()

    per_core = result["local_1_thread"]["papers_per_s"]  # type: ignore[index]
    gpu = GPU_PUBLISHED_SENTENCES_S * GPU_ABSTRACT_FACTOR
    result["projection_hours_2.7M"] = {
        "2_cores": round(ARXIV / (2 * per_core) / 3600, 1),
        "16_cores": round(ARXIV / (16 * per_core) / 3600, 1),
        "one_gpu_published_rate": round(ARXIV / gpu / 3600, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
