"""A rebuild never loses the last good index: locks, kills, damaged files, hostile notes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.build import rebuild
from search.library import library_paths
from search.query import Searcher
from search.storage import store

from .test_cli import one_error_line, rebuild_fake, run

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "rebuild_helper.py"


def start_rebuild(library: Path, pause: str | None = None, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PAPERS_LIBRARY": str(library)}
    if pause:
        args = (*args, "--pause-at", pause)
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(library), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_paused(proc: subprocess.Popen[str], stage: str) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.strip() == f"PAUSED AT {stage}", line + proc.stderr.read()


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL, then reap it and close its pipes."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def answers(library: Path) -> list[tuple[str, float]]:
    with Searcher(library / "index") as s:
        hits = s.ask("dropout single image denoising", k=5)
        return [(h.paper.title, round(h.score, 5)) for h in hits]


def edit_notes(library: Path) -> None:
    with open(library / "notes" / "extra.md", "w", encoding="utf-8") as f:
        f.write("* A brand new paper on dropout\n> single image tricks\n")


# -- concurrency ------------------------------------------------------------------------------


def test_second_rebuild_names_the_holder_and_wait_waits(seeded: Path) -> None:
    rebuild_fake()
    holder = start_rebuild(seeded, "locked")
    try:
        wait_paused(holder, "locked")
        line = one_error_line(run("rebuild", "--model", "fake", ok=False))
        assert f"pid {holder.pid}" in line and "rebuild.lock" in line and "--wait" in line
        waiter = start_rebuild(seeded, None, "--wait")
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting for the lock
    finally:
        kill(holder)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert json.loads(out)["nothing_changed"]


def test_query_during_rebuild_answers_from_previous_index(seeded: Path) -> None:
    rebuild_fake()
    before = answers(seeded)
    edit_notes(seeded)
    proc = start_rebuild(seeded, "renamed")
    try:
        wait_paused(proc, "renamed")  # new generation on disk, CURRENT not yet replaced
        assert answers(seeded) == before
    finally:
        kill(proc)


# -- SIGKILL at every stage -------------------------------------------------------------------

STAGES = ["locked", "parsed", "embedded", "written", "synced", "renamed", "published"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_leaves_a_whole_index(seeded: Path, stage: str) -> None:
    rebuild_fake()
    before = answers(seeded)
    edit_notes(seeded)
    proc = start_rebuild(seeded, stage)
    wait_paused(proc, stage)
    kill(proc)
    after = answers(seeded)
    if stage == "published":  # the new index was already live
        assert any("brand new paper" in t for t, _ in after)
    else:
        assert after == before
    report = rebuild(library_paths(), model="fake")
    assert report.papers == 17
    assert any("brand new paper" in t for t, _ in answers(seeded))
    leftovers = [p.name for p in (seeded / "index").iterdir() if p.name.startswith("tmp-")]
    assert not leftovers
    assert len(list((seeded / "index").glob("gen-*"))) <= 2


def test_sigkill_after_random_delays(seeded: Path) -> None:
    """Kills at unplanned moments during a larger build: each time the index stays whole."""
    lines = [
        json.dumps({"title": f"Paper {i}", "abstract": f"words w{i} x{i % 7}"}) for i in range(3000)
    ]
    (seeded / "notes" / "big.jsonl").write_text("\n".join(lines[:1500]) + "\n")
    rebuild_fake()
    before = answers(seeded)
    (seeded / "notes" / "big.jsonl").write_text("\n".join(lines) + "\n")
    for delay in (0.3, 0.8, 1.3, 1.8):
        proc = start_rebuild(seeded)
        time.sleep(delay)
        kill(proc)
        now = answers(seeded)
        assert now == before or len(now) == 5  # old index, or the complete new one
        if now != before:
            before = now
    report = rebuild(library_paths(), model="fake")
    assert report.papers == 3016


# -- damaged index ---------------------------------------------------------------------------


def live_gen(library: Path) -> Path:
    gen = store.current_generation(library / "index")
    assert gen is not None
    return gen


def truncate_faiss(library: Path) -> None:
    f = live_gen(library) / store.FAISS_NAME
    f.write_bytes(f.read_bytes()[:-100])


def flip_faiss_middle(library: Path) -> None:
    """Same size, different bytes: only the checksum can tell."""
    f = live_gen(library) / store.FAISS_NAME
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    f.write_bytes(bytes(data))


def garbage_in_sqlite(library: Path) -> None:
    f = live_gen(library) / store.DB_NAME
    data = bytearray(f.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = os.urandom(4096)
    f.write_bytes(bytes(data))


def sqlite_header_garbage(library: Path) -> None:
    f = live_gen(library) / store.DB_NAME
    data = bytearray(f.read_bytes())
    data[:100] = os.urandom(100)
    f.write_bytes(bytes(data))


def delete_manifest_rows(library: Path) -> None:
    import sqlite3

    f = live_gen(library) / store.DB_NAME
    db = sqlite3.connect(f)
    db.execute("DELETE FROM manifest")
    db.commit()
    db.close()


def delete_checksums(library: Path) -> None:
    (live_gen(library) / store.CHECKSUMS).unlink()


def delete_current(library: Path) -> None:
    (library / "index" / store.CURRENT).unlink()


def current_to_missing(library: Path) -> None:
    (library / "index" / store.CURRENT).write_text("gen-00000000000000000001\n")


def current_garbage(library: Path) -> None:
    (library / "index" / store.CURRENT).write_bytes(b"\xff\xfe../etc\n")


DAMAGE = [
    truncate_faiss,
    flip_faiss_middle,
    garbage_in_sqlite,
    sqlite_header_garbage,
    delete_manifest_rows,
    delete_checksums,
    delete_current,
    current_to_missing,
    current_garbage,
]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_damaged_index_says_rebuild_and_rebuild_recovers(seeded: Path, damage: object) -> None:
    rebuild_fake()
    before = answers(seeded)
    damage(seeded)  # type: ignore[operator]
    line = one_error_line(run("ask", "dropout", ok=False))
    assert "papers rebuild" in line and "damaged" in line
    result = rebuild_fake("--json")
    report = json.loads(result.stdout)
    assert not report["nothing_changed"]
    assert report["reembed_reason"] and "unusable" in report["reembed_reason"]
    assert answers(seeded) == before


# -- hostile notes, end to end ----------------------------------------------------------------


def test_malformed_notes_are_reported_and_the_rest_indexed(seeded: Path) -> None:
    notes = seeded / "notes"
    (notes / "binary.md").write_bytes(bytes(range(256)) * 64)
    (notes / "latin1.md").write_bytes("* Caf\xe9 na\xefve paper\n".encode("latin-1"))
    with open(notes / "huge.md", "wb") as f:  # 50 MB
        line = b"* a paper title that repeats\n" * 1024
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            f.write(line)
    (notes / "bullets.md").write_text(
        "# Many\n\n" + "".join(f"* Bullet paper {i}\n" for i in range(10_000))
    )
    deep = "".join("  " * i + "* nested level\n" for i in range(100))
    (notes / "deep.md").write_text("# Deep\n\n" + deep + "\n* Paper after the deep list\n")
    (notes / "empty_titles.md").write_text("# Empty\n\n* \n*\n* []()\n* Real title here\n")
    (notes / "loop").mkdir()
    (notes / "loop" / "self").symlink_to(notes / "loop", target_is_directory=True)
    (notes / "loop" / "ok.md").write_text("* Paper inside the loop folder\n")
    started = time.perf_counter()
    result = rebuild_fake("--json")
    elapsed = time.perf_counter() - started
    report = json.loads(result.stdout)
    problems = "\n".join(report["problems"])
    for name in ("binary.md", "huge.md", "loop/self"):
        assert name in problems, problems
    assert "latin1.md" in problems or "latin1.md" in result.stderr
    titles = {p["title"] for p in json.loads(run("list", "--json").stdout)}
    assert "Proxy Anchor Loss for Deep Metric Learning" in titles
    assert "Bullet paper 9999" in titles
    assert "Paper after the deep list" in titles
    assert "Real title here" in titles
    assert "Paper inside the loop folder" in titles
    assert all(t.strip() for t in titles)
    assert elapsed < 300  # guards against pathological (hours-long) cost, not speed: shared CI
    again = json.loads(rebuild_fake("--json").stdout)
    assert again["nothing_changed"] and again["problems"] == report["problems"]


# -- nothing that can run code --------------------------------------------------------------


def test_index_holds_no_pickles(seeded: Path) -> None:
    rebuild_fake()
    for path in (seeded / "index").rglob("*"):
        if path.is_file():
            head = path.read_bytes()[:2]
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))
            assert path.suffix not in (".pkl", ".pickle", ".npy", ".npz", ".pt", ".joblib")
    source = "\n".join(p.read_text() for p in (ROOT / "search").glob("*.py"))
    assert not re.search(r"\bimport pickle\b|\bpickle\.load|\bjoblib\b|torch\.load", source)
    assert not re.search(r"allow_pickle\s*=\s*True", source)
