"""PDF extraction speed, and rebuilds of a 1,000-item Zotero library against the same papers
as a JSON-lines file.

    .venv/bin/python bench/zotero_pdf.py [--items 1000] [--pdfs 20] [--pages 10] [--repeat 3]
        [--real some.pdf other.pdf]

PDF: --pdfs generated PDFs of --pages pages (~330 words a page, Helvetica text objects written
by tests/zotero_fixture.write_pdf) extracted with pypdf (search.readers.pdfs._extract), in pages/s;
baselines in the same run: reading + SHA-256 of the same files, and extract_pages() answered
from its content-hash cache.

Zotero: a data directory built by tests/zotero_fixture (Zotero 7 table names) with --items
papers, each with an abstract, a child note, two PDF annotations and a .zotero-ft-cache of ~400
words; every 50th item also has a 10-page PDF attachment. Baseline: the same papers, same text
(abstract; note + annotations; full text as the note) as notes/papers.jsonl, the format
`papers import` writes. First build, nothing-changed rebuild and a rebuild after Zotero wrote
to its database without changing a paper (its mtime moved; baseline: the .jsonl's mtime moved),
each in a fresh process, with
the cheap hashing encoder of bench/rebuild.py (the machinery, not a model, is measured; encoder
time reported apart). Prints one JSON object; medians over --repeat runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rebuild import WORDS, BenchEncoder, peak_rss_mb  # noqa: E402
from tests.zotero_fixture import Annotation, Item, ZoteroBuilder, write_pdf  # noqa: E402

EMBED = BenchEncoder


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=n))


def bench_pdfs(n_pdfs: int, n_pages: int, repeat: int) -> dict:
    from search.readers import pdfs

    tmp = Path(tempfile.mkdtemp(prefix="papers-bench-pdf-"))
    rng = random.Random(1)
    try:
        files = []
        for i in range(n_pdfs):
            path = tmp / f"p{i}.pdf"
            write_pdf(path, [words(rng, 330) for _ in range(n_pages)], title=f"Paper {i}")
            files.append(path)
        pages = n_pdfs * n_pages
        extract, hashing, cached = [], [], []
        cache = tmp / "cache"
        pdfs._extract(files[0])  # warm-up: pypdf's import is not extraction
        for _ in range(repeat):
            t = time.perf_counter()
            for f in files:
                hashlib.sha256(f.read_bytes()).hexdigest()
            hashing.append(time.perf_counter() - t)
            t = time.perf_counter()
            for f in files:
                got = pdfs._extract(f)
                assert len(got.pages) == n_pages and not got.problem
            extract.append(time.perf_counter() - t)
            shutil.rmtree(cache, ignore_errors=True)
            for f in files:
                pdfs.extract_pages(f, cache)
            t = time.perf_counter()
            for f in files:
                pdfs.extract_pages(f, cache)
            cached.append(time.perf_counter() - t)
        ext, hsh, cch = (statistics.median(x) for x in (extract, hashing, cached))
        return {
            "pdfs": n_pdfs,
            "pages": pages,
            "mb": round(sum(f.stat().st_size for f in files) / 2**20, 2),
            "pypdf_s": round(ext, 3),
            "pypdf_pages_per_s": round(pages / ext, 1),
            "baseline_read_and_hash_s": round(hsh, 4),
            "cache_hit_s": round(cch, 4),
            "cache_hit_pages_per_s": round(pages / cch),
            "pypdf_over_hashing": round(ext / hsh, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_real(paths: list[Path], repeat: int) -> dict:
    """pypdf on PDFs found on this machine (real layouts and fonts), after a warm-up."""
    from search.readers import pdfs

    pdfs._extract(paths[0])
    times, pages = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        pages = sum(len(pdfs._extract(p).pages) for p in paths)
        times.append(time.perf_counter() - t)
    s = statistics.median(times)
    return {"files": [p.name for p in paths], "pages": pages, "s": round(s, 3),
            "pages_per_s": round(pages / s, 1)}  # fmt: skip


def make_libraries(base: Path, n: int) -> tuple[Path, Path]:
    """(Zotero library root, JSON-lines library root) holding the same n papers."""
    rng = random.Random(n)
    zroot, jroot = base / "zotero-lib", base / "jsonl-lib"
    (zroot / "notes").mkdir(parents=True)
    (jroot / "notes").mkdir(parents=True)
    z = ZoteroBuilder(base / "Zotero")
    rows = []
    for i in range(n):
        title = f"Paper {i}: " + words(rng, 6)
        abstract = words(rng, 120)
        note = words(rng, 40)
        anns = [Annotation(words(rng, 15), words(rng, 5), page=str(p)) for p in (2, 5)]
        full = words(rng, 400)
        pdf = [words(rng, 330) for _ in range(10)] if i % 50 == 0 else None
        z.add(
            Item(
                f"K{i:07d}",
                {"title": title, "abstractNote": abstract, "date": "2021"},
                authors=[("Ada", f"Author{i % 97}")],
                tags=[f"tag{i % 13}"],
                collection=[f"Area {i % 5}", f"Topic {i % 17}"],
                notes=[f"<p>{note}</p>"],
                annotations=anns,
                ft_cache=None if pdf else full,
                pdf=pdf,
            )
        )
        text = "\n".join([note, *(f"{a.text} {a.comment}" for a in anns)])
        body = " ".join(pdf) if pdf else full
        rows.append({"title": title, "abstract": abstract, "note": f"{text}\n{body}"})
    z.close()
    with open(jroot / "notes" / "papers.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    from search.readers.zotero import write_zotero_config

    write_zotero_config(zroot, base / "Zotero")
    return zroot, jroot


def child(root: Path) -> None:
    t0 = time.perf_counter()
    from bench.rebuild import EMBED_SECONDS
    from search.build import rebuild
    from search.encoders.encoder import register_encoder
    from search.library import library_paths

    register_encoder("bench", EMBED)
    t1 = time.perf_counter()
    report = rebuild(library_paths(root), model="bench")
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "rebuild_s": round(t2 - t1, 3),
                "in_process_s": round(t2 - t0, 3),
                "embed_s": round(EMBED_SECONDS[0], 3),
                "rss_mb": round(peak_rss_mb()),
                "report": report.to_json(),
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


def bench_zotero(n: int, repeat: int) -> dict:
    base = Path(tempfile.mkdtemp(prefix="papers-bench-zotero-"))
    try:
        zroot, jroot = make_libraries(base, n)
        out: dict = {"items": n}
        # Parts, in this process: reading the Zotero library with a cold and a warm PDF cache,
        # and the stat key a no-change rebuild computes instead of reading it.
        from search.readers import zotero

        cache = base / "pdf-cache"
        t = time.perf_counter()
        zotero.read_zotero(base / "Zotero", cache)
        out["read_zotero_cold_pdf_cache_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        zotero.read_zotero(base / "Zotero", cache)
        out["read_zotero_warm_pdf_cache_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        zotero.library_stat_key(base / "Zotero")
        out["stat_key_s"] = round(time.perf_counter() - t, 3)
        for name, root in (("zotero", zroot), ("jsonl_baseline", jroot)):
            firsts, sames, toucheds = [], [], []
            for _ in range(repeat):
                shutil.rmtree(root / "index", ignore_errors=True)
                firsts.append(run_child(root))
                same = run_child(root)
                assert same["report"]["nothing_changed"], same["report"]
                sames.append(same)
                # Zotero wrote to its database, no paper changed (baseline: the .jsonl touched)
                if name == "zotero":
                    db = base / "Zotero" / "zotero.sqlite"
                else:
                    db = root / "notes" / "papers.jsonl"
                st = db.stat()
                os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
                touched = run_child(root)
                assert touched["report"]["chunks_embedded"] == 0, touched["report"]
                toucheds.append(touched)
            out[name] = {
                "papers": firsts[0]["report"]["papers"],
                "chunks": firsts[0]["report"]["chunks"],
                "problems": len(firsts[0]["report"]["problems"]),
                "first_rebuild_s": round(statistics.median(r["rebuild_s"] for r in firsts), 3),
                "first_embed_s": round(statistics.median(r["embed_s"] for r in firsts), 3),
                "nothing_changed_rebuild_s": round(
                    statistics.median(r["rebuild_s"] for r in sames), 3
                ),
                "nothing_changed_process_s": round(
                    statistics.median(r["process_s"] for r in sames), 3
                ),
            }
            out[name]["touched_no_change_rebuild_s"] = round(
                statistics.median(r["rebuild_s"] for r in toucheds), 3
            )
        z, j = out["zotero"], out["jsonl_baseline"]
        out["first_over_baseline"] = round(z["first_rebuild_s"] / j["first_rebuild_s"], 2)
        out["touched_over_baseline"] = round(
            z["touched_no_change_rebuild_s"] / j["touched_no_change_rebuild_s"], 2
        )
        out["nothing_changed_over_baseline"] = round(
            z["nothing_changed_rebuild_s"] / j["nothing_changed_rebuild_s"], 2
        )
        return out
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--pdfs", type=int, default=20)
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--real", type=Path, nargs="*", default=[], help="also time these PDFs")
    ap.add_argument("--child", type=Path)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    result = {
        "real_pdfs": bench_real(args.real, args.repeat) if args.real else None,
        "pdf": bench_pdfs(args.pdfs, args.pages, args.repeat),
        "zotero": bench_zotero(args.items, args.repeat),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
