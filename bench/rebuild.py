"""Rebuild cost: nothing changed, and one note changed, in synthetic 10k and 100k libraries.

    .venv/bin/python bench/rebuild.py [--papers 10000 100000] [--repeat 5]

Each library is notes/big.jsonl (N papers: title + ~120-word abstract, the JSON-lines format
`papers import` and search.readers.jsonl.read_jsonl read) plus notes/mine.md (20 hand-written
papers). The encoder is a cheap hashing bag-of-words (384 dimensions, a 256-token window like
all-MiniLM-L6-v2), registered as "bench": this measures the rebuild machinery, not a model; the
time spent inside the encoder is reported separately ("embed_s").

Every rebuild runs in a fresh process (`--child`) that prints its wall time, the time inside
rebuild(), the encoder time and its peak RSS (ru_maxrss). Baselines measured in the same run,
since the machine is shared and noisy: a bare `python -c pass` process, and reading + hashing
every notes file (the least any change detector that looks at content would do).
Prints one JSON object; medians over --repeat runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_encoder import HashingEncoder, hashing_encoder  # noqa: E402

MAP_SECONDS = [0.0]


# The project's one fake encoder (tests/fake_encoder.py), at all-MiniLM-L6-v2's size.
BenchEncoder = hashing_encoder(384, 256)


WORDS = [
    f"{a}{b}" for a in ("neur", "grad", "vis", "lang", "graph", "rob", "opt") for b in range(60)
]


def make_library(root: Path, n: int) -> None:
    rng = random.Random(n)
    notes = root / "notes"
    notes.mkdir(parents=True)
    with open(notes / "big.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            title = f"Paper {i}: " + " ".join(rng.choices(WORDS, k=6))
            abstract = " ".join(rng.choices(WORDS, k=120))
            f.write(json.dumps({"title": title, "abstract": abstract}) + "\n")
    write_mine(root, 0)


def write_mine(root: Path, version: int) -> None:
    lines = ["# My reading list\n"]
    for i in range(20):
        extra = f" (edit {version})" if i == 7 else ""
        lines.append(f"* Hand written paper {i}\n> my thoughts on topic {i}{extra}\n")
    (root / "notes" / "mine.md").write_text("\n".join(lines), encoding="utf-8")


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(root: Path) -> None:
    t0 = time.perf_counter()
    from search.build import rebuild
    from search.encoders.encoder import register_encoder
    from search.faces.output import rebuild_json
    from search.library import library_paths

    register_encoder("bench", BenchEncoder)
    import search.storage.map

    # The map of the library (search/storage/map.py) is made by every rebuild: timed on its own, so
    # the rebuild machinery can be told from it.
    make_map = search.storage.map.update_generation

    def timed_map(*args: object, **kwargs: object) -> None:
        t = time.perf_counter()
        make_map(*args, **kwargs)  # type: ignore[arg-type]
        MAP_SECONDS[0] += time.perf_counter() - t

    search.storage.map.update_generation = timed_map  # type: ignore[assignment]
    t1 = time.perf_counter()
    report = rebuild(library_paths(root), model="bench")
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "rebuild_s": round(t2 - t1, 3),
                "in_process_s": round(t2 - t0, 3),
                "embed_s": round(HashingEncoder.seconds, 3),
                "map_s": round(MAP_SECONDS[0], 3),
                "rss_mb": round(peak_rss_mb()),
                "report": rebuild_json(report),
            }
        )
    )


def run_child(root: Path) -> dict:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(root)], capture_output=True, text=True, check=True
    ).stdout
    res = json.loads(out)
    res["process_s"] = round(time.perf_counter() - t, 3)
    return res


def med(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def baselines(root: Path, repeat: int) -> dict:
    py = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        py.append(time.perf_counter() - t)
    hashing = []
    for _ in range(repeat):
        t = time.perf_counter()
        for p in sorted((root / "notes").rglob("*")):
            if p.is_file():
                hashlib.sha256(p.read_bytes()).hexdigest()
        hashing.append(time.perf_counter() - t)
    return {
        "python_pass_s": round(statistics.median(py), 3),
        "read_and_hash_notes_s": round(statistics.median(hashing), 3),
    }


def bench(n: int, repeat: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"papers-bench-{n}-"))
    try:
        make_library(root, n)
        first = run_child(root)
        same = [run_child(root) for _ in range(repeat)]
        assert all(r["report"]["nothing_changed"] for r in same)
        one = []
        for v in range(1, repeat + 1):
            write_mine(root, v)
            r = run_child(root)
            assert r["report"]["chunks_embedded"] == 1, r["report"]
            r["beyond_embed_s"] = round(r["rebuild_s"] - r["embed_s"], 3)
            r["beyond_embed_and_map_s"] = round(r["beyond_embed_s"] - r["map_s"], 3)
            one.append(r)
        base = baselines(root, repeat)
        notes_mb = sum(p.stat().st_size for p in (root / "notes").rglob("*") if p.is_file())
        return {
            "papers": n,
            "notes_mb": round(notes_mb / 2**20, 1),
            "chunks": first["report"]["chunks"],
            "first_build": {
                k: first[k] for k in ("rebuild_s", "embed_s", "map_s", "rss_mb", "process_s")
            },
            "nothing_changed": {
                "rebuild_s": med(same, "rebuild_s"),
                "process_s": med(same, "process_s"),
                "rss_mb": med(same, "rss_mb"),
            },
            "one_note_changed": {
                "rebuild_s": med(one, "rebuild_s"),
                "embed_s": med(one, "embed_s"),
                "beyond_embed_s": med(one, "beyond_embed_s"),
                "map_s": med(one, "map_s"),
                "beyond_embed_and_map_s": med(one, "beyond_embed_and_map_s"),
                "process_s": med(one, "process_s"),
                "rss_mb": med(one, "rss_mb"),
            },
            "baseline": base,
            "nothing_changed_over_hashing": round(
                med(same, "rebuild_s") / max(base["read_and_hash_notes_s"], 1e-6), 2
            ),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "results": [bench(n, args.repeat) for n in args.papers],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
