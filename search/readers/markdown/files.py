"""Listing the note files of a notes folder, and reading one as text (sizes, encodings, links
that leave the library) before it is parsed."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from search.readers.markdown.parser import _problem, parse_markdown
from search.readers.records import (
    FileResult,
    Problem,
)

MAX_NOTE_BYTES = 20 * 1024 * 1024


NOTE_SUFFIXES = frozenset({".md", ".markdown", ".bib", ".jsonl", ".pdf"})


_BINARY_SNIFF = 8192


def list_note_files(
    notes_dir: Path, follow_links: bool = False
) -> tuple[list[Path], list[Problem]]:
    """Every note file (.md, .markdown, .bib, .jsonl) under `notes_dir`, sorted, and the
    problems met on the way. Hidden names are skipped; symlinks are followed, but a folder
    reached twice (a symlink loop, or two links to one folder) is walked once. Never raises.

    A symlink that leads out of the library (the folder holding notes/) is reported and not
    followed unless `follow_links`: nothing outside the library is read unless asked.
    """
    root = Path(notes_dir)
    try:
        root_real = os.path.realpath(root)
        if not root.is_dir():
            return [], [Problem(str(root), None, "notes folder is missing or not a folder")]
    except OSError as exc:
        return [], [Problem(str(root), None, f"cannot open notes folder: {exc.strerror}")]
    walk = _FolderWalk(root, root_real, follow_links)
    walk.run()
    # Two paths to one file would give every paper in it twice: keep the real one.
    seen: set[str] = set()
    unique = []
    for f, _ in sorted(walk.files, key=lambda fl: (fl[1], fl[0])):
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    unique.sort()
    return unique, walk.problems


def note_folders(notes_dir: Path, follow_links: bool = False) -> list[Path]:
    """The folders a rebuild reads under `notes_dir`, sorted: the walk of `list_note_files`
    (hidden names skipped, links out of the library not followed unless `follow_links`, each
    real folder once). What `papers watch` watches. Never raises."""
    root = Path(notes_dir)
    try:
        root_real = os.path.realpath(root)
        if not root.is_dir():
            return []
    except OSError:
        return []
    walk = _FolderWalk(root, root_real, follow_links)
    walk.run()
    return sorted(walk.folders)


class _FolderWalk:
    """One walk of a notes folder: the folders still to read, those read, the files found."""

    def __init__(self, root: Path, root_real: str, follow_links: bool) -> None:
        self.root = root
        self.follow_links = follow_links
        # The library is the folder holding notes/; notes/ may itself be a link to elsewhere.
        self.library = [Path(root_real), Path(os.path.realpath(root.parent))]
        self.files: list[tuple[Path, bool]] = []  # (path, reached through a symlink)
        self.problems: list[Problem] = []
        self.visited = {root_real}
        self.stack: list[Path] = [root]
        # Symlinked folders wait until every real folder is listed, so that a folder
        # reachable both ways is listed under its real path and the link is the one reported.
        self.linked: list[Path] = []
        self.via_link: set[Path] = set()  # folders reached through a symlink
        self.folders: list[Path] = []  # every folder read, in the order read

    def rel(self, p: str | Path) -> str:
        try:
            return Path(p).relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(p)

    def leaves_library(self, link: Path) -> Problem | None:
        if self.follow_links:
            return None
        target = Path(os.path.realpath(link))
        if any(target.is_relative_to(inside) for inside in self.library):
            return None
        return Problem(
            self.rel(link),
            None,
            f"symlink to {target}, outside the library: not followed "
            "(`papers rebuild --follow-links` follows it)",
        )

    def run(self) -> None:
        while self.stack or self.linked:
            if not self.stack:
                link = self.linked.pop(0)
                real = os.path.realpath(link)
                if real in self.visited:
                    self.problems.append(
                        Problem(
                            self.rel(link),
                            None,
                            "symlink to a folder already read (a loop?); skipped",
                        )
                    )
                    continue
                self.visited.add(real)
                self.stack.append(link)
                self.via_link.add(link)
            self.read_folder(self.stack.pop())

    def read_folder(self, folder: Path) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.problems.append(
                Problem(self.rel(folder), None, f"cannot read folder: {exc.strerror}")
            )
            return
        self.folders.append(folder)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()  # follows symlinks
                is_file = entry.is_file()
            except OSError as exc:
                self.problems.append(Problem(self.rel(path), None, f"cannot read: {exc.strerror}"))
                continue
            if is_dir:
                self.folder_entry(folder, path, is_link)
            elif path.suffix.lower() in NOTE_SUFFIXES:
                if not is_file:
                    self.problems.append(Problem(self.rel(path), None, _not_a_file(path, is_link)))
                    continue
                outside = self.leaves_library(path) if is_link else None
                if outside is not None:
                    self.problems.append(outside)
                else:
                    self.files.append((path, is_link or folder in self.via_link))

    def folder_entry(self, folder: Path, path: Path, is_link: bool) -> None:
        """A folder inside `folder`: walked later if a link, now if not read already."""
        if is_link:
            outside = self.leaves_library(path)
            if outside is not None:
                self.problems.append(outside)
            else:
                self.linked.append(path)
            return
        real = os.path.realpath(path)
        if real in self.visited:
            self.problems.append(Problem(self.rel(path), None, "folder already read; skipped"))
            return
        self.visited.add(real)
        self.stack.append(path)
        if folder in self.via_link:
            self.via_link.add(path)


def _not_a_file(path: Path, is_link: bool) -> str:
    """Why a note-named entry that is not a regular file (after links) is not read."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        return "broken symlink" if is_link else f"cannot read: {exc.strerror}"
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    )
    kind = next((name for test, name in kinds if test(mode)), "not a file")
    return f"not a regular file ({kind}{', through a symlink' if is_link else ''})"


def read_markdown_file(path: Path, rel: str, read_as: str = "auto") -> FileResult:
    """Read one Markdown note and parse it; a file that is not a readable, UTF-8 text note of
    at most MAX_NOTE_BYTES gives a Problem and no records. Never raises."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return _problem(rel, None, "not a regular file")
        if st.st_size > MAX_NOTE_BYTES:
            return _too_big(rel, st.st_size)
        with open(path, "rb") as f:
            # Read one byte past the limit: the file may have grown since stat().
            data = f.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        return _problem(rel, None, f"cannot read: {exc.strerror or exc}")
    if len(data) > MAX_NOTE_BYTES:
        return _too_big(rel, len(data))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a UTF-16 byte-order mark
        try:
            return parse_markdown(data.decode("utf-16"), rel)
        except UnicodeDecodeError as exc:
            return _problem(rel, None, f"not valid UTF-16 (byte offset {exc.start})")
    if b"\x00" in data[:_BINARY_SNIFF]:
        if _looks_utf16(data[:_BINARY_SNIFF]):
            return _problem(rel, None, "UTF-16 text without a byte-order mark: save it as UTF-8")
        return _problem(rel, None, "binary file (NUL byte), not a text note")
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if bom else 0)
        line = data[:offset].count(b"\n") + 1
        return _problem(rel, line, f"not valid UTF-8 (byte offset {offset}, line {line})")
    return parse_markdown(text, rel, read_as)


def _looks_utf16(sample: bytes) -> bool:
    """Mostly-ASCII UTF-16: NUL in nearly every other byte, on one side only."""
    half = len(sample) // 2
    if half < 2:
        return False
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    return max(even, odd) >= 0.6 * half and min(even, odd) <= 0.05 * half


def _too_big(rel: str, size: int) -> FileResult:
    mb = MAX_NOTE_BYTES / (1024 * 1024)
    return _problem(rel, None, f"{size} bytes is over the {mb:g} MB limit for a note; skipped")
