"""Hostile conditions around the index (issue 10, part 2): stale parse caches, full disks,
odd files and links in notes/, terminal escapes in notes, unquoted suggested commands."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from search import build
from search.build import rebuild
from search.library import library_paths
from search.readers.markdown import list_note_files
from search.storage import store
from search.storage.store import Index

from .test_cli import FAKE, one_error_line, rebuild_fake, run

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "rebuild_helper.py"
CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))]


def titles(library: Path) -> list[str]:
    idx = Index.open(library / "index")
    try:
        return sorted(p.title for p in idx.all_papers())
    finally:
        idx.close()


def no_control(text: str) -> None:
    bad = sorted({hex(ord(c)) for c in text if c in CONTROL})
    assert not bad, (bad, text)


# -- D14: suggested commands are shell-quoted ----------------------------------------------------


def test_suggested_model_command_is_shell_quoted(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuild_fake()
    monkeypatch.setenv("PAPERS_MODEL", "org/model;rm -rf /")
    line = one_error_line(run("ask", "dropout", ok=False))
    assert "`papers rebuild --model 'org/model;rm -rf /'`" in line


# -- D11: control characters never reach the terminal --------------------------------------------


def test_terminal_safe_strips_escape_sequences_and_control_characters() -> None:
    from search.faces.output import terminal_safe

    text = (
        "a\x1b]0;HACKED\x07b\x1b[31mc\x9b2Jd\x00e\x07f\tg\nh\x7f\x85i"
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1bcj\r"
    )
    assert terminal_safe(text) == "abcdef\tg\nhilinkj"
    assert terminal_safe("Café 日本語 — ok\n") == "Café 日本語 — ok\n"


EVIL_TITLE = "Evil \x1b]0;HACKED\x07 Paper \x00 with \x9b2J bells \x07"


def test_titles_notes_and_warnings_are_printed_without_control_characters(library: Path) -> None:
    notes = library / "notes"
    record = {"title": EVIL_TITLE, "abstract": "An abstract \x1b[2J about dropout denoising."}
    (notes / "evil.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (notes / "good.md").write_text("* Dropout Denoising Paper\n> about dropout\n")
    # A problem line names the file: a file name can carry escapes too.
    (notes / "bad\x1b]0;HACKED\x07.md").write_bytes(b"* \xff\xfe broken\n")
    result = rebuild_fake()
    assert "skipped bad.md:1" in result.stderr  # the warning is printed, without its escapes
    no_control(result.stderr)
    listed = run("list").stdout
    assert "Evil" in listed
    no_control(listed)
    asked = run("ask", "dropout", "denoising", *FAKE).stdout
    assert "Evil" in asked
    no_control(asked)
    shown = run("show", "Evil").stdout
    assert "An abstract" in shown
    no_control(shown)
    # JSON keeps the text as it is (escaped by the JSON encoder).
    as_json = run("list", "--json").stdout
    assert "\\u001b]0;HACKED\\u0007" in as_json
    no_control(as_json)


def test_error_messages_are_printed_without_control_characters(seeded: Path) -> None:
    rebuild_fake()
    line = one_error_line(run("similar", "No such \x1b]0;HACKED\x07 title zebra", ok=False))
    assert "no paper titled" in line
    no_control(line)


# -- D13: honest messages about odd files ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_note_with_bom_is_read(library: Path, encoding: str) -> None:
    text = "# Reading\n\n* Walrus Optimisation Paper\n> a note on walruses, café\n"
    data = text.encode(encoding)
    if encoding != "utf-16":  # the plain codec writes its own BOM; the others need one
        data = ("\ufeff" + text).encode(encoding)
    (library / "notes" / "u16.md").write_bytes(data)
    report = rebuild(library_paths(), model="fake")
    assert report.problems == []
    assert titles(library) == ["Walrus Optimisation Paper"]


def test_utf16_without_bom_says_utf16(library: Path) -> None:
    (library / "notes" / "good.md").write_text("* Good Paper\n")
    (library / "notes" / "u16.md").write_bytes("* Walrus Paper\n".encode("utf-16-le"))
    report = rebuild(library_paths(), model="fake")
    assert len(report.problems) == 1
    assert "UTF-16" in report.problems[0]


def test_symlink_to_a_device_is_not_a_regular_file(library: Path) -> None:
    notes = library / "notes"
    (notes / "zero.md").symlink_to("/dev/zero")
    os.mkfifo(notes / "pipe.md")
    (notes / "dead.md").symlink_to(notes / "nowhere.md")
    files, problems = list_note_files(notes)
    assert files == []
    said = {p.file: p.message for p in problems}
    assert "not a regular file" in said["zero.md"]
    assert "broken" not in said["zero.md"]
    assert "not a regular file" in said["pipe.md"]
    assert "broken symlink" in said["dead.md"]


def test_current_that_is_a_folder_is_repaired_by_rebuild(seeded: Path) -> None:
    rebuild_fake()
    current = seeded / "index" / "CURRENT"
    current.unlink()
    current.mkdir()
    (current / "junk").write_text("x")
    assert "papers rebuild" in one_error_line(run("ask", "dropout", ok=False))
    rebuild_fake()
    assert current.is_file()
    assert "Self2Self" in run("ask", "dropout", "single", "image", "denoising").stdout


# -- S1: links leaving the library are not followed unless asked ---------------------------------


@pytest.fixture
def linked(tmp_path: Path, library: Path) -> Path:
    notes = library / "notes"
    (notes / "own.md").write_text("* Own Paper On Gardens\n")
    outside = tmp_path / "outside"  # beside the library, not in it
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "ssh.md").write_text("* Secret SSH Client Configuration\n")
    (outside / "one.md").write_text("* Outside Single File Paper\n")
    (notes / "etc").symlink_to(outside / "etc")
    (notes / "one.md").symlink_to(outside / "one.md")
    # Inside the library, beside notes/: followed as before.
    (library / "shared").mkdir()
    (library / "shared" / "s.md").write_text("* Shared Inside Paper\n")
    (notes / "shared").symlink_to(library / "shared")
    (notes / "loop").symlink_to(notes)
    return library


def test_links_out_of_the_library_are_reported_not_followed(linked: Path) -> None:
    result = rebuild_fake()
    assert titles(linked) == ["Own Paper On Gardens", "Shared Inside Paper"]
    lines = [line for line in result.stderr.splitlines() if "outside the library" in line]
    assert len(lines) == 2, result.stderr
    assert any("etc" in line for line in lines) and any("one.md" in line for line in lines)
    assert any("--follow-links" in line for line in lines)
    assert "loop" in result.stderr  # a loop is still reported, not followed


def test_follow_links_option_follows_them(linked: Path) -> None:
    result = rebuild_fake("--follow-links")
    assert "outside the library" not in result.stderr
    assert titles(linked) == [
        "Outside Single File Paper",
        "Own Paper On Gardens",
        "Secret SSH Client Configuration",
        "Shared Inside Paper",
    ]
    # Back to the default: the outside papers go again.
    rebuild_fake()
    assert titles(linked) == ["Own Paper On Gardens", "Shared Inside Paper"]


def test_notes_folder_that_is_itself_a_link_is_read(tmp_path: Path, library: Path) -> None:
    real = tmp_path / "synced-notes"
    real.mkdir()
    (real / "a.md").write_text("* Synced Paper\n")
    shutil.rmtree(library / "notes")
    (library / "notes").symlink_to(real)
    files, problems = list_note_files(library / "notes")
    assert [f.name for f in files] == ["a.md"] and problems == []


# -- D9: the parse cache ---------------------------------------------------------------------------


def test_a_copied_library_is_hashed_not_parsed_again(library: Path, tmp_path: Path) -> None:
    """A copy (or a restore) gives every file a new ctime and inode: the content decides, so
    nothing is parsed or embedded again and the next edit still patches."""
    (library / "notes" / "a.md").write_text("* Alpha Paper\n> notes\n")
    (library / "notes" / "b.md").write_text("* Beta Paper\n> more notes\n")
    rebuild(library_paths(library), model="fake")
    copy = tmp_path / "copy"
    shutil.copytree(library, copy)  # copy2: the same sizes and mtimes, new ctimes and inodes
    again = rebuild(library_paths(copy), model="fake")
    assert again.nothing_changed and again.files_parsed == 0
    a = copy / "notes" / "a.md"
    st = a.stat()
    a.write_text("* Omega Paper\n> notes\n")  # same size, mtime put back: the hash differs
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited = rebuild(library_paths(copy), model="fake")
    assert edited.files_parsed == 1 and edited.papers_added == 1 and edited.papers_removed == 1


def test_verify_rehashes_and_reparses_a_same_size_edit_with_restored_mtime(library: Path) -> None:
    a = library / "notes" / "a.md"
    a.write_text("* Alpha Paper\n> notes\n")
    rebuild(library_paths(), model="fake")
    st = a.stat()
    a.write_text("* Omega Paper\n> notes\n")  # same size
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r
    assert a.stat().st_size == st.st_size
    # The edit moved ctime (no program can put it back): the fast path sees it, no --verify.
    quick = rebuild(library_paths(), model="fake")
    assert not quick.nothing_changed and quick.files_parsed == 1
    assert titles(library) == ["Omega Paper"]
    report = rebuild(library_paths(), model="fake", verify=True)  # re-hashes, finds it the same
    assert report.nothing_changed and titles(library) == ["Omega Paper"]
    again = rebuild(library_paths(), model="fake", verify=True)
    assert again.nothing_changed and again.files_parsed == 0
    # The hash is kept in the parse cache.
    idx = Index.open(library / "index")
    try:
        (digest,) = idx.query("SELECT sha256 FROM files WHERE path = 'a.md'")[0]
    finally:
        idx.close()
    import hashlib

    assert digest == hashlib.sha256(a.read_bytes()).hexdigest()


def test_verify_on_the_command_line(library: Path) -> None:
    a = library / "notes" / "a.md"
    a.write_text("* Alpha Paper\n")
    rebuild_fake()
    st = a.stat()
    a.write_text("* Omega Paper\n")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = json.loads(rebuild_fake("--verify", "--json").stdout)
    assert report["files_parsed"] == 1 and not report["nothing_changed"]
    assert titles(library) == ["Omega Paper"]


def _rebuild_unprivileged(library: Path) -> dict[str, object]:
    """A rebuild in a process that cannot read files it has no permission for (as root, the
    capabilities that bypass file permissions are dropped)."""
    cmd = [sys.executable, str(HELPER), str(library)]
    if os.geteuid() == 0:
        if shutil.which("capsh") is None:
            pytest.skip("running as root without capsh: cannot make a file unreadable")
        inner = " ".join(f"'{c}'" for c in cmd)
        cmd = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", inner]
    env = {**os.environ, "PAPERS_LIBRARY": str(library)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_file_unreadable_then_chmod_644_is_read_again(library: Path) -> None:
    notes = library / "notes"
    (notes / "b.md").write_text("* Beta Paper\n")
    a = notes / "a.md"
    a.write_text("* Alpha Paper\n")
    a.chmod(0)
    try:
        first = _rebuild_unprivileged(library)
    finally:
        a.chmod(0o644)  # mtime and size are unchanged by chmod
    assert any("a.md" in p and "Permission denied" in p for p in first["problems"]), first
    assert titles(library) == ["Beta Paper"]
    report = rebuild(library_paths(), model="fake")
    assert report.problems == []
    assert titles(library) == ["Alpha Paper", "Beta Paper"]
    assert rebuild(library_paths(), model="fake").nothing_changed


def test_a_file_that_still_fails_keeps_the_index_up_to_date(library: Path) -> None:
    (library / "notes" / "b.md").write_text("* Beta Paper\n")
    (library / "notes" / "bin.md").write_bytes(b"\x00\x01binary")
    first = rebuild(library_paths(), model="fake")
    again = rebuild(library_paths(), model="fake")
    assert again.nothing_changed
    assert again.problems == first.problems and len(first.problems) == 1
    verified = rebuild(library_paths(), model="fake", verify=True)
    assert verified.nothing_changed and verified.problems == first.problems


# -- D10: a full disk ----------------------------------------------------------------------------


def _faiss_write_to_full_device(index: object, path: Path) -> None:
    """What vectors.write meets on a full disk: FAISS's own write error (from /dev/full)."""
    import faiss

    faiss.write_index(index, "/dev/full")


def _tiny_sqlite(path: Path) -> sqlite3.Connection:
    """A real SQLITE_FULL: the database may not grow past a few pages (past its size, for the
    copy of the previous generation an incremental rebuild starts from)."""
    db = store_open_for_writing(path)
    db.execute("PRAGMA max_page_count = 12")
    return db


store_open_for_writing = store.open_for_writing


def _fsync_enospc(path: Path) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


FULL_DISK = {
    "faiss": ("search.storage.vectors.write", _faiss_write_to_full_device),
    "sqlite": ("search.storage.store.open_for_writing", _tiny_sqlite),
    "oserror": ("search.storage.store._fsync_dir", _fsync_enospc),
}


@pytest.mark.parametrize("kind", sorted(FULL_DISK))
def test_full_disk_is_one_line_and_keeps_the_previous_index(
    seeded: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "faiss" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    rebuild_fake()
    before = run("ask", "dropout", "single", "image", "denoising", "--json").stdout
    gen = store.current_generation(seeded / "index")
    # Enough new text that the database outgrows its few pages.
    (seeded / "notes" / "extra.md").write_text(
        "".join(f"* Extra paper {i}\n> {'words about dropout ' * 40}\n" for i in range(40))
    )
    target, replacement = FULL_DISK[kind]
    monkeypatch.setattr(target, replacement)
    line = one_error_line(run("rebuild", *FAKE, ok=False))
    assert "previous index is intact" in line
    assert "free" in line
    assert "no space" in line.lower() or "disk is full" in line.lower()
    monkeypatch.undo()
    monkeypatch.setenv("PAPERS_LIBRARY", str(seeded))
    assert store.current_generation(seeded / "index") == gen
    assert run("ask", "dropout", "single", "image", "denoising", "--json").stdout == before
    assert not list((seeded / "index").glob("tmp-*"))
    rebuild_fake()
    assert "Extra paper 1" in titles(seeded)


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the file system holding `folder`; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1 << 10, 1):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while os.write(fd, block):
                    pass
    finally:
        os.close(fd)
    return filler


def test_full_tmpfs_is_one_line_and_keeps_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tiny_tmpfs(tmp_path / "mnt", "3m") as mnt:
        lib = mnt / "library"
        (lib / "notes").mkdir(parents=True)
        shutil.copy(ROOT / "notes" / "cvpr2020.md", lib / "notes")
        monkeypatch.setenv("PAPERS_LIBRARY", str(lib))
        rebuild_fake()
        before = run("ask", "dropout", "single", "image", "denoising", "--json").stdout
        (lib / "notes" / "extra.md").write_text(
            "".join(f"* Extra paper {i}\n> {'words about dropout ' * 40}\n" for i in range(40))
        )
        filler = _fill(mnt)
        line = one_error_line(run("rebuild", *FAKE, ok=False))
        assert "previous index is intact" in line and "free" in line
        assert run("ask", "dropout", "single", "image", "denoising", "--json").stdout == before
        filler.unlink()
        rebuild_fake()
        assert "Extra paper 1" in titles(lib)


def test_disk_full_helper_recognises_the_real_errors() -> None:
    assert build.disk_full_error(sqlite3.OperationalError("database or disk is full"))
    assert build.disk_full_error(OSError(errno.ENOSPC, "No space left on device"))
    assert build.disk_full_error(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not build.disk_full_error(OSError(errno.EACCES, "Permission denied"))
    assert not build.disk_full_error(sqlite3.OperationalError("no such table: x"))
    assert not build.disk_full_error(RuntimeError("something else"))
    assert not build.disk_full_error(RuntimeError("write error in x: 1 != 2 (Input/output error)"))
