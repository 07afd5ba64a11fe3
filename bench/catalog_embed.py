"""Catalog embedding stage by stage: tokenize, model, write, then end to end, fp32 against
int8 in the same run (or fp16/bf16 on a GPU); optionally Ray, and nDCG@10 per precision.

    .venv/bin/python bench/catalog_embed.py                       # CPU, about 1-2 minutes
    .venv/bin/python bench/catalog_embed.py --n 600 --batches 8,16,32,64 --rounds 2
    .venv/bin/python bench/catalog_embed.py --device cuda --n 200000 --batches 256,1024,2048
    .venv/bin/python bench/catalog_embed.py --ray                 # + Ray, 1 and 2 actors (minutes)
    .venv/bin/python bench/catalog_embed.py --ndcg ../shared/data/scifact-train   # long

Texts: SciFact abstracts (title + abstract, as the catalog embeds them; ~240 tokens, most cut
at the model's 256-token window), repeated to --n when it asks for more; without the data,
generated abstracts of the same length. Encoder: the packaged model's ONNX export, exported
into a temporary library as `papers catalog embed` does.

Stages, each timed alone: tokenize (the export's tokenizer, one thread and every core), model
(pre-tokenized, length-sorted batches of each --batches size, each precision: best of
--rounds, interleaved, with papers per CPU second), write (float16 shards of SHARD_SIZE).
Then end to end: `embed_stages` (tokenizing ahead in a thread) into an empty store per
precision, with the seconds each stage took. The machine is shared: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from search.catalog.catalog import (  # noqa: E402
    SHARD_SIZE,
    Catalog,
    Embeddings,
    catalog_dir,
    catalog_encoder,
    text_of,
    write_shard,
)
from search.catalog.embed_stages import (  # noqa: E402
    GPU_TOKENS,
    ExportTokenizer,
    OnnxModel,
    StageTimes,
    TorchModel,
    embed_stages,
    onnx_stages,
    torch_stages,
)
from search.encoders.onnx_encoder import read_config  # noqa: E402
from search.library import library_paths  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ARXIV = 2_700_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=128, help="abstracts (default 128: CI's time)")
    ap.add_argument("--batches", default="16,32,64", help="model batch sizes to compare")
    ap.add_argument("--rounds", type=int, default=1, help="model-stage rounds; best counts")
    ap.add_argument("--device", default="cpu", help="cpu (ONNX) or cuda (torch)")
    ap.add_argument("--precisions", default=None, help="default: fp32,int8 (cpu), fp16,bf16")
    ap.add_argument("--threads", type=int, default=None, help="ONNX threads (default: cores)")
    ap.add_argument("--ray", action="store_true", help="also Ray with 1 and 2 actors")
    ap.add_argument("--ndcg", type=Path, default=None, help="BEIR folder: nDCG@10 per precision")
    args = ap.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    gpu = args.device != "cpu"
    precisions = (args.precisions or ("fp16,bf16" if gpu else "fp32,int8")).split(",")
    batches = [int(b) for b in args.batches.split(",")]
    threads = args.threads or len(os.sched_getaffinity(0))
    texts, source = load_texts(args.n)
    result: dict[str, Any] = {
        "papers": len(texts),
        "texts": source,
        "device": args.device,
        "cpus": len(os.sched_getaffinity(0)),
        "onnx_threads": threads,
        "load_average_start": round(os.getloadavg()[0], 1),
    }
    with tempfile.TemporaryDirectory(prefix="catalog-embed-") as tmp:
        lib = Path(tmp)
        (lib / "notes").mkdir()
        paths = library_paths(lib)
        t = time.perf_counter()
        enc = catalog_encoder(paths, None, log=lambda s: print(s, file=sys.stderr))
        result["export_s"] = round(time.perf_counter() - t, 1)
        assert enc.onnx_folder is not None and enc.model_path is not None
        folder, model_path = enc.onnx_folder, enc.model_path

        result["tokenize"] = tokenize_stage(folder, texts)
        rows = ExportTokenizer(folder)(texts)
        result["tokens_mean"] = round(float(np.mean([len(ids) for ids, _ in rows])), 1)
        models = {p: model_stage_runner(p, folder, model_path, gpu, threads) for p in precisions}
        result["model"] = model_stage(models, rows, batches, args.rounds, gpu)
        result["write"] = write_stage(lib / "write-probe", 384, 5)

        src = lib / "corpus.jsonl"
        with src.open("w", encoding="utf-8") as fh:
            for i, text in enumerate(texts):
                title, _, abstract = text.partition("\n")
                fh.write(json.dumps({"title": f"{title} [{i}]", "abstract": abstract}) + "\n")
        cat = Catalog.open(catalog_dir(paths), create=True)
        cat.add_files([src])
        result["end_to_end"] = {}
        for p in precisions:
            if gpu:
                stages = torch_stages(folder, model_path, "", p, args.device)
            else:
                stages = onnx_stages(folder, "", p, threads)
            result["end_to_end"][p] = end_to_end(cat, Embeddings(lib / f"store-{p}"), stages)
        if args.ray:
            result["ray"] = ray_runs(cat, enc, lib, precisions[-1])
        if args.ndcg:
            result["ndcg"] = ndcg_by_precision(args.ndcg, folder, threads)
        cat.close()
    result["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result, indent=2))
    print_tables(result, precisions)


def load_texts(n: int) -> tuple[list[str], str]:
    """n catalog texts: SciFact abstracts (repeated when n is larger), else generated ones."""
    corpus = DATA / "scifact-train" / "corpus.jsonl"
    if corpus.is_file():
        docs = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
        texts = [text_of(str(d.get("title") or ""), str(d.get("text") or "")) for d in docs]
        source = f"SciFact train abstracts ({len(texts)}, repeated to {n})"
    else:
        words = "protein folding image denoising metric learning galaxy survey speech".split()
        texts = [
            f"A study of {words[i % 9]} {i}\n" + " ".join(words[(i + j) % 9] for j in range(190))
            for i in range(1000)
        ]
        source = "generated abstracts (../shared/data/scifact-train absent)"
    return [texts[i % len(texts)] for i in range(n)], source


def tokenize_stage(folder: Path, texts: list[str]) -> dict[str, float]:
    """Texts/s of the export's tokenizer: one thread, then encode_batch over every core."""
    tok = ExportTokenizer(folder)
    out = {}
    for label, parallel in (("one_thread", "false"), ("all_cores", "true")):
        os.environ["TOKENIZERS_PARALLELISM"] = parallel  # read by tokenizers on each call
        tok(texts[:64])
        t = time.perf_counter()
        tok(texts)
        out[f"{label}_per_s"] = round(len(texts) / (time.perf_counter() - t), 1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    return out


def model_stage_runner(
    precision: str, folder: Path, model_path: Path, gpu: bool, threads: int
) -> Any:
    if gpu:
        return TorchModel(model_path, read_config(folder), precision, "cuda")
    return OnnxModel(folder, precision, threads)


def model_stage(
    models: dict[str, Any], rows: list[Any], batches: list[int], rounds: int, gpu: bool
) -> dict[str, dict[str, dict[str, float]]]:
    """Papers/s (and per CPU second) of the model alone on pre-tokenized rows, per precision
    and batch size; best of `rounds`, precisions taking turns."""
    out: dict[str, dict[str, dict[str, float]]] = {p: {} for p in models}
    for model in models.values():
        model(rows[:8])  # warm-up: a runtime's first call allocates
    for _ in range(rounds):
        for batch in batches:
            for precision, model in models.items():
                if gpu:
                    model.tokens = batch * 256
                else:
                    model.batch = batch
                t, c = time.perf_counter(), time.process_time()
                model(rows)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                best = out[precision].get(str(batch), {"per_s": 0.0})
                if len(rows) / wall > best["per_s"]:
                    out[precision][str(batch)] = {
                        "per_s": round(len(rows) / wall, 1),
                        "per_cpu_s": round(len(rows) / cpu, 1),
                    }
    if gpu:
        for model in models.values():
            model.tokens = GPU_TOKENS
    return out


def write_stage(folder: Path, dim: int, shards: int) -> dict[str, float]:
    """Papers/s of writing float16 shards of SHARD_SIZE unit vectors (fsync included)."""
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((SHARD_SIZE, dim)).astype(np.float32)
    t = time.perf_counter()
    for i in range(shards):
        write_shard(folder, np.arange(i * SHARD_SIZE, (i + 1) * SHARD_SIZE), vecs, "fp32")
    return {"per_s": round(shards * SHARD_SIZE / (time.perf_counter() - t), 1)}


def end_to_end(cat: Catalog, store: Embeddings, stages: Any) -> dict[str, Any]:
    times = StageTimes()
    t, c = time.perf_counter(), time.process_time()
    done = embed_stages(cat, store, stages, times=times)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(f"end to end {stages.where}: {done / wall:.1f} papers/s", file=sys.stderr)
    return {
        "where": stages.where,
        "seconds": round(wall, 2),
        "per_s": round(done / wall, 1),
        "per_cpu_s": round(done / cpu, 1),
        "stage_seconds": times.seconds(),
        "hours_for_2.7M": round(ARXIV / (done / wall) / 3600, 1),
    }


def ray_runs(cat: Catalog, enc: Any, lib: Path, precision: str) -> dict[str, Any]:
    """Ray Data on a local instance with 2 CPUs, 1 and 2 model actors (start-up included)."""
    import ray

    from search.catalog.ray_embed import embed_with_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = {}
    for workers in (1, 2):
        store = Embeddings(lib / f"store-ray-{workers}")
        t = time.perf_counter()
        done, _ = embed_with_ray(
            cat, store, enc, address="local", workers=workers, precision=precision
        )
        wall = time.perf_counter() - t
        out[f"{workers}_actors_{precision}"] = {
            "seconds": round(wall, 1),
            "per_s": round(done / wall, 1),
        }
    ray.shutdown()
    return out


def ndcg_by_precision(folder: Path, export: Path, threads: int) -> dict[str, Any]:
    """Semantic nDCG@10 of a catalog of the BEIR corpus (one vector per abstract, as the
    catalog embeds) per precision: questions in fp32 (as `ask --catalog` and your notes'
    vectors are) and in the catalog's own precision."""
    from search import evaluate

    beir = evaluate.load_beir(folder)
    ids, texts = [], []
    with beir.corpus.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                doc = json.loads(line)
                ids.append(str(doc["_id"]))
                texts.append(text_of(str(doc.get("title") or ""), str(doc.get("text") or "")))
    qids = list(beir.queries)
    tok = ExportTokenizer(export)
    docs, questions = {}, {}
    for p in ("fp32", "int8"):
        model = OnnxModel(export, p, threads)
        t = time.perf_counter()
        docs[p] = model(tok(texts))
        print(
            f"nDCG: {len(texts)} abstracts in {p}, {time.perf_counter() - t:.0f} s", file=sys.stderr
        )
        questions[p] = model(tok([beir.queries[q] for q in qids]))

    def score(d: np.ndarray, q: np.ndarray) -> float:
        found = []
        for i, qid in enumerate(qids):
            top = np.argsort(-(d @ q[i]))[:10]
            found.append(evaluate.ndcg([ids[j] for j in top], beir.qrels[qid]))
        return round(float(np.mean(found)), 4)

    return {
        "queries": len(qids),
        "abstracts": len(texts),
        "fp32 catalog, fp32 questions": score(docs["fp32"], questions["fp32"]),
        "int8 catalog, fp32 questions": score(docs["int8"], questions["fp32"]),
        "int8 catalog, int8 questions": score(docs["int8"], questions["int8"]),
    }


def print_tables(result: dict[str, Any], precisions: list[str]) -> None:
    load = f"{result['load_average_start']}-{result['load_average_end']}"
    print(
        f"\n{result['papers']} papers, {result['texts']}, mean {result['tokens_mean']} tokens; "
        f"{result['cpus']} CPUs, load average {load}\n"
    )
    print("| stage | papers/s | papers per CPU s |")
    print("|---|---:|---:|")
    tok = result["tokenize"]
    print(f"| tokenize, one thread | {tok['one_thread_per_s']:,.0f} | |")
    print(f"| tokenize, every core (encode_batch) | {tok['all_cores_per_s']:,.0f} | |")
    for p in precisions:
        size, best = max(result["model"][p].items(), key=lambda kv: kv[1]["per_s"])
        print(f"| model {p} (best batch: {size}) | {best['per_s']:,.1f} | {best['per_cpu_s']} |")
    print(f"| write (float16 shards) | {result['write']['per_s']:,.0f} | |")
    for p in precisions:
        e = result["end_to_end"][p]
        print(f"| **end to end, {e['where']}** | **{e['per_s']:,.1f}** | {e['per_cpu_s']} |")
    sizes = list(result["model"][precisions[0]])
    print(
        "\n| model stage: papers/s (per CPU s) | " + " | ".join(f"batch {b}" for b in sizes) + " |"
    )
    print("|---|" + "---:|" * len(sizes))
    for p in precisions:
        cells = [f"{v['per_s']:.1f} ({v['per_cpu_s']:.1f})" for v in result["model"][p].values()]
        print(f"| {p} | " + " | ".join(cells) + " |")
    if len(precisions) == 2:
        a, b = (result["end_to_end"][p] for p in precisions)
        print(
            f"\nend to end, {precisions[1]} / {precisions[0]}: {b['per_s'] / a['per_s']:.2f}x "
            f"papers/s, {b['per_cpu_s'] / a['per_cpu_s']:.2f}x papers per CPU second"
        )


if __name__ == "__main__":
    main()
