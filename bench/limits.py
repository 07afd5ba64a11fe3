"""Measured limits: what the largest and most hostile inputs cost (docs/reliability.md).

    .venv/bin/python bench/limits.py [--cases bullets brackets ...] [--code DIR] [--bullets N]

Each case runs in a fresh process (`--child CASE`) that prints its wall time, its CPU time
(robust to other jobs on a shared machine) and its peak RSS (VmHWM). `--code DIR` imports
`search` from another checkout (e.g. `git archive <commit> search | tar -x -C DIR`), so the
same inputs can be measured before and after a change, in the same run. Cases:

  bullets     parse_markdown of one list of --bullets N bullets ("* Paper i", 13 MB for 1M)
  rebuild     a whole rebuild of that list with a cheap hashing encoder (embedding time
              reported apart: "before embedding" = total - embed)
  brackets    parse_markdown of "* " + 500,000 "[" (issue 10, D5)
  largest     parse_markdown of a 20 MB reading list (the Markdown cap): bullets with an
              arXiv link and a blockquoted note
  nested      parse_markdown of "- " * 1,000,000 (2 MB: a list nested a million times)
  abstract    a rebuild of one .jsonl record with a 10 MB abstract (cheap encoder)
  query       chunks and time for `similar --text` with 1 MB of text (cheap encoder)

Prints one JSON object per case.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's fake encoder, whichever checkout's search/ --code measures.
sys.path.insert(0, str(ROOT / "tests"))

from fake_encoder import HashingEncoder, hashing_encoder  # noqa: E402

# The project's one fake encoder (tests/fake_encoder.py), at all-MiniLM-L6-v2's size.
BenchEncoder = hashing_encoder(384, 256)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def bullets_text(n: int) -> str:
    return "# List\n\n" + "".join(f"* Paper {i}\n" for i in range(n))


def largest_text(limit: int = 20 * 1024 * 1024) -> str:
    parts = ["# Reading list\n\n"]
    size, i = 0, 0
    while True:
        item = (
            f"* Paper number {i} on learning things "
            f"[[arXiv](https://arxiv.org/abs/2101.{i % 99999:05d})]\n"
            f"  > My note on paper {i}: it *works* well, see [code](https://github.com/x/{i}).\n"
        )
        if size + len(item) > limit - 100:
            break
        parts.append(item)
        size += len(item)
        i += 1
    return "".join(parts)


def child(case: str, n: int) -> dict:
    from search.encoders.encoder import register_encoder
    from search.readers.markdown import parse_markdown

    register_encoder("bench", BenchEncoder)
    out: dict = {"case": case}
    if case in ("bullets", "brackets", "largest", "nested"):
        text = {
            "bullets": lambda: bullets_text(n),
            "brackets": lambda: "* " + "[" * 500_000 + "\n",
            "largest": largest_text,
            "nested": lambda: "- " * 1_000_000 + "x\n",
        }[case]()
        out["input_mb"] = round(len(text.encode()) / 1e6, 2)
        t, c = time.perf_counter(), time.process_time()
        result = parse_markdown(text, "x.md")
        out["wall_s"] = round(time.perf_counter() - t, 2)
        out["cpu_s"] = round(time.process_time() - c, 2)
        out["papers"] = len(result.records)
        out["problems"] = [str(p)[:120] for p in result.problems[:2]]
    elif case in ("rebuild", "abstract"):
        from search.build import rebuild
        from search.library import library_paths

        root = Path(tempfile.mkdtemp(prefix="papers-limits-"))
        (root / "notes").mkdir()
        if case == "rebuild":
            (root / "notes" / "list.md").write_text(bullets_text(n), encoding="utf-8")
        else:
            words = " ".join(f"word{i % 5003}" for i in range(1_300_000))[:10_000_000]
            record = {"title": "A paper with a huge abstract", "abstract": words}
            (root / "notes" / "big.jsonl").write_text(json.dumps(record) + "\n")
        out["input_mb"] = round(sum(f.stat().st_size for f in (root / "notes").iterdir()) / 1e6, 2)
        t, c = time.perf_counter(), time.process_time()
        report = rebuild(library_paths(root), model="bench")
        out["wall_s"] = round(time.perf_counter() - t, 2)
        out["cpu_s"] = round(time.process_time() - c, 2)
        out["embed_s"] = round(HashingEncoder.seconds, 2)
        out["before_embedding_wall_s"] = round(out["wall_s"] - HashingEncoder.seconds, 2)
        out["papers"] = report.papers
        out["chunks"] = report.chunks
        out["problems"] = [p[:120] for p in report.problems[:2]]
    elif case in ("latex", "bibbomb"):
        # A plain 1 MB abstract through LaTeX-to-text; a 20-level @string macro bomb (2^20
        # copies of "ab", one 2 MB title and a 4 MB abstract before the cap) read as BibTeX.
        from search.readers import bibtex

        root = Path(tempfile.mkdtemp(prefix="papers-limits-"))
        if case == "latex":
            text = " ".join(f"word{i % 5003}" for i in range(130_000))[:1_000_000]
            out["input_mb"] = round(len(text) / 1e6, 2)
            t, c = time.perf_counter(), time.process_time()
            bibtex._latex_to_text(text)
        else:
            levels = 20
            lines = ['@string{s0 = "ab"}']
            lines += [f"@string{{s{i} = s{i - 1} # s{i - 1}}}" for i in range(1, levels + 1)]
            lines.append(f"@article{{bomb, title = s{levels}, abstract = s{levels} # s{levels}}}")
            (root / "bomb.bib").write_text("\n".join(lines) + "\n")
            out["input_mb"] = round((root / "bomb.bib").stat().st_size / 1e6, 4)
            t, c = time.perf_counter(), time.process_time()
            result = bibtex.read_bibtex(root / "bomb.bib", "bomb.bib")
            out["problems"] = [str(p)[:120] for p in result.problems[:2]]
        out["wall_s"] = round(time.perf_counter() - t, 2)
        out["cpu_s"] = round(time.process_time() - c, 2)
    elif case == "query":
        from search.storage.chunking import PaperText, chunk

        enc = BenchEncoder()
        text = " ".join(f"word{i % 5003}" for i in range(130_000))[:1_000_000]
        try:
            from search.query import MAX_QUERY_CHARS

            used = text[:MAX_QUERY_CHARS]
        except ImportError:  # code from before the cap
            used = text
        t, c = time.perf_counter(), time.process_time()
        pieces = chunk(PaperText(head="", body=used), enc.token_spans, enc.max_tokens)
        enc.encode(pieces, query=True)
        out["wall_s"] = round(time.perf_counter() - t, 2)
        out["cpu_s"] = round(time.process_time() - c, 2)
        out["chunks"] = len(pieces)
        out["chars_used"] = len(used)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["bullets", "brackets", "largest", "query"])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose search/ is measured")
    ap.add_argument("--bullets", type=int, default=1_000_000)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, str(args.code.resolve()))
        print(json.dumps(child(args.child, args.bullets)))
        return
    for case in args.cases:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                case,
                "--code",
                str(args.code),
                "--bullets",
                str(args.bullets),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            print(json.dumps({"case": case, "error": proc.stderr.strip().splitlines()[-1:]}))
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["code"] = str(args.code)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
