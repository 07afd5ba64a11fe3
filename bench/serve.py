"""Warm questions through the servers, and the map page in a real browser.

    python bench/serve.py build --library /tmp/lib10k --papers 10000
    python bench/serve.py latency --library /tmp/lib10k --runs 50
    python bench/serve.py page --n 10000

build: a library of `--papers` papers made with the real model from ../shared/data: the seed
notes, the CVPR 2021 abstracts, the SciFact corpus, the arXiv sample and every notes
repository there (copied as note folders), topped up to `--papers` with papers recombined from
two SciFact abstracts each (first half of one, second half of another: real text, new papers).
Built once, outside the repository; it takes a while on 2 cores.

latency: `papers serve` and `papers mcp` run as subprocesses over such a library; after 3
warm-up questions, `--runs` different questions are asked through each, one at a time, over
127.0.0.1 (HTTP) and stdio (MCP, the SDK's own client). The baseline, measured in the same
run, is the same questions through `Library.ask` in this process (no transport at all).

page: a map of `--n` synthetic papers written by the same code as `papers map --html`,
loaded in headless Chromium (Debian's, through Playwright) until the page says the map is
drawn; the baseline is an empty page loaded the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
DATA = ROOT.parent / "shared" / "data"
WORDS = (
    "denoising image noise self-supervised contrastive loss metric learning retrieval "
    "segmentation depth camera pose transformer attention graph protein gene cell cancer "
    "vaccine clinical trial mutation robot grasp policy reinforcement language translation"
).split()


def questions(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=4, replace=False)) for _ in range(n)]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def row(name: str, xs: list[float]) -> str:
    return f"| {name} | {len(xs)} | {pct(xs, 0.5):.1f} | {pct(xs, 0.95):.1f} |"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def via_http(library: Path, qs: list[str]) -> list[float]:
    import httpx

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(BIN / "papers"), "--library", str(library), "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/ask"
        with httpx.Client(timeout=60) as c:
            for _ in range(600):
                try:
                    c.get(f"http://127.0.0.1:{port}/api/papers/none")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            for q in qs[:3]:
                c.get(url, params={"q": q}).raise_for_status()
            times = []
            for q in qs[3:]:
                start = time.perf_counter()
                c.get(url, params={"q": q}).raise_for_status()
                times.append(time.perf_counter() - start)
        return times
    finally:
        proc.terminate()
        proc.wait(10)


def via_mcp(library: Path, qs: list[str]) -> list[float]:
    import anyio
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=str(BIN / "papers"),
        args=["--library", str(library), "mcp"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )

    async def run() -> list[float]:
        with open(os.devnull, "w") as devnull:
            async with stdio_client(params, errlog=devnull) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    for q in qs[:3]:
                        await s.call_tool("ask", {"question": q})
                    times = []
                    for q in qs[3:]:
                        start = time.perf_counter()
                        r = await s.call_tool("ask", {"question": q})
                        times.append(time.perf_counter() - start)
                        assert not r.is_error
                    return times

    result: list[float] = anyio.run(run)
    return result


def in_process(library: Path, qs: list[str], faiss_threads: bool = False) -> list[float]:
    """`Library.ask` in this process. `faiss_threads`: search as before one question was kept
    on one OpenMP thread (search.storage.vectors.search), FAISS on all its threads."""
    from search.api import Library
    from search.storage import vectors

    one_thread = vectors.search

    def all_threads(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, int(index.ntotal)))
        scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    vectors.search = all_threads if faiss_threads else one_thread  # type: ignore[assignment]
    try:
        with Library(library) as lib:
            for q in qs[:3]:
                lib.ask(q)
            times = []
            for q in qs[3:]:
                start = time.perf_counter()
                lib.ask(q)
                times.append(time.perf_counter() - start)
    finally:
        vectors.search = one_thread  # type: ignore[assignment]
    return times


def build(args: argparse.Namespace) -> None:
    lib: Path = args.library
    sources = [
        DATA / "cvpr2021" / "papers.jsonl",
        DATA / "scifact-train" / "corpus.jsonl",
        DATA / "arxiv" / "arxiv-metadata-oai-snapshot.sample.jsonl",
    ]
    for s in sources:
        if not s.exists():
            sys.exit(f"{s} is missing: this benchmark needs ../shared/data")
    notes = lib / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notes" / "cvpr2020.md", notes / "cvpr2020.md")
    shutil.copytree(DATA / "notes-dennybritz", notes / "dennybritz", dirs_exist_ok=True)
    for repo in sorted((DATA / "notes-real").iterdir()):
        if repo.is_dir():
            shutil.copytree(repo, notes / "real" / repo.name, dirs_exist_ok=True)
    papers = str(BIN / "papers")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = [papers, "--library", str(lib)]
    subprocess.run([*run, "import", *map(str, sources)], env=env, check=True)
    from search.build import collect_papers

    have = len(collect_papers(notes))  # what the reader finds, before anything is embedded
    corpus = [
        json.loads(line)
        for line in (DATA / "scifact-train" / "corpus.jsonl").read_text().splitlines()
    ]
    rng = np.random.default_rng(0)
    extra = lib / "recombined.jsonl"
    with extra.open("w", encoding="utf-8") as f:
        for i in range(max(0, args.papers - have)):
            a, b = rng.choice(len(corpus), size=2, replace=False)
            sa, sb = corpus[a]["text"].split(". "), corpus[b]["text"].split(". ")
            text = ". ".join(sa[: max(1, len(sa) // 2)] + sb[len(sb) // 2 :])
            title = f"{corpus[a]['title'].rstrip('.')} and {corpus[b]['title'].rstrip('.')}"
            f.write(json.dumps({"id": f"recombined-{i}", "title": title, "abstract": text}))
            f.write("\n")
    subprocess.run([*run, "import", str(extra)], env=env, check=True)
    start = time.perf_counter()
    subprocess.run([*run, "rebuild"], env=env, check=True)
    print(f"built in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def latency(args: argparse.Namespace) -> None:
    if not (args.library / "index" / "CURRENT").exists():
        sys.exit(f"{args.library} has no index: build it first (see bench/query_speed.py)")
    from search.api import Library

    with Library(args.library) as lib:
        n = lib.info().papers
    qs = questions(args.runs + 3)
    print(f"{n} papers, {args.runs} questions each, one at a time\n")
    print("| path | questions | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|")
    before = in_process(args.library, qs, faiss_threads=True)
    print(row("Library.ask in process, FAISS on all its threads (before)", before), flush=True)
    print(row("baseline: Library.ask in process", in_process(args.library, qs)), flush=True)
    print(row("/api/ask (papers serve, HTTP on 127.0.0.1)", via_http(args.library, qs)), flush=True)
    print(row("ask tool (papers mcp, stdio)", via_mcp(args.library, qs)), flush=True)


def synthetic_payload(n: int) -> dict[str, Any]:
    from search.faces.web.app import map_payload
    from search.storage import map as library_map

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(300)]
    data = library_map.MapInput(
        ids=[f"p{i}" for i in range(n)],
        titles=[
            f"A paper about {words[i % 300]} and {words[(i * 7) % 300]} ({i})" for i in range(n)
        ],
        sections=[[f"Section {i % 12}"] for i in range(n)],
        texts=[
            f"{words[i % 300]} {words[(i * 7) % 300]} {words[(i * 13) % 300]}" for i in range(n)
        ],
        hashes=[""] * n,
        vectors=x,
    )
    m = library_map.compute(data, method="pca")

    class P:  # the fields map_payload reads from a Paper
        def __init__(self, i: int) -> None:
            self.id = f"p{i}"
            self.note = "a note of about twenty words " * 4
            self.abstract = ""
            self.where = f"notes/n{i % 40}.md:{i}"

    return map_payload(m, [P(i) for i in range(n)])  # type: ignore[misc]


def page(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    from search.faces.web.app import standalone_map_html

    tmp = Path(tempfile.mkdtemp())
    html = tmp / "map.html"
    html.write_text(standalone_map_html(synthetic_payload(args.n), "bench"), encoding="utf-8")
    blank = tmp / "blank.html"
    blank.write_text("<!doctype html><title>x</title><body data-map-ready='1'></body>")
    chrome_args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    times: dict[str, list[float]] = {"blank": [], "map": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=chrome_args)
        for _ in range(args.runs):
            for name, f in (("blank", blank), ("map", html)):
                pg = browser.new_page(viewport={"width": 1200, "height": 900})
                start = time.perf_counter()
                pg.goto(f.as_uri())
                pg.wait_for_selector("body[data-map-ready='1']", state="attached", timeout=60000)
                times[name].append(time.perf_counter() - start)
                pg.close()
        browser.close()
    size = html.stat().st_size / 1e6
    print(f"map of {args.n} points ({size:.1f} MB self-contained file), {args.runs} loads each\n")
    print("| page | loads | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|")
    print(row("baseline: empty page", times["blank"]))
    print(row(f"map, {args.n} points, drawn", times["map"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    bld = sub.add_parser("build")
    bld.add_argument("--library", type=Path, default=Path("/tmp/lib10k"))
    bld.add_argument("--papers", type=int, default=10000)
    lat = sub.add_parser("latency")
    lat.add_argument("--library", type=Path, default=Path("/tmp/lib10k"))
    lat.add_argument("--runs", type=int, default=50)
    pg = sub.add_parser("page")
    pg.add_argument("--n", type=int, default=10000)
    pg.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    {"build": build, "latency": latency, "page": page}[args.cmd](args)


if __name__ == "__main__":
    main()
