"""Watch as careful as rebuild (issue 24), with real file events: it re-arms when notes/ is
moved away and back, an exception from one rebuild is reported and the watcher goes on (also
in the thread `serve --watch` and `mcp --watch` use), and it watches only the folders a
rebuild reads (no symlink out of the library)."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.api import Library
from search.faces import watch as watch_module
from search.faces.watch import WatchEvent, describe, folders_read, watch, watch_in_thread

pytest.importorskip("watchfiles")

DEBOUNCE_MS = 300


class Watcher:
    """`watch` running in a thread, its events in a queue."""

    def __init__(self, library: Path):
        self.lib = Library(library, model="fake")
        self.events: queue.Queue[WatchEvent] = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch,
            args=(self.lib, self.events.put, self.stop),
            kwargs={"debounce_ms": DEBOUNCE_MS},
            daemon=True,
        )

    def next(self, timeout: float = 120.0) -> WatchEvent:
        return self.events.get(timeout=timeout)

    def until(self, check: object, timeout: float = 120.0) -> WatchEvent:
        """The first event for which `check(event)` holds (a burst may be split in two)."""
        end = time.monotonic() + timeout
        while True:
            event = self.next(max(0.1, end - time.monotonic()))
            if check(event):  # type: ignore[operator]
                return event

    def quiet(self, seconds: float) -> list[WatchEvent]:
        """The events that came within `seconds`."""
        time.sleep(seconds)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def titles(self) -> list[str]:
        return sorted(p.title for p in self.lib.papers())


@pytest.fixture
def watcher(seeded: Path) -> Iterator[Watcher]:
    w = Watcher(seeded)
    w.thread.start()
    start = w.next()
    assert start.error is None and start.report is not None
    time.sleep(1.5)  # armed once the first (quiet) catch-up has run
    yield w
    w.stop.set()
    w.thread.join(10)
    w.lib.close()
    assert not w.thread.is_alive()


def papers(event: WatchEvent) -> int:
    return event.report.papers if event.report is not None else -1


def test_watch_rearms_when_notes_is_moved_away_and_back(watcher: Watcher, seeded: Path) -> None:
    notes = seeded / "notes"
    shutil.move(notes, seeded / "notes-away")
    gone = watcher.until(lambda e: e.notice is not None)
    assert "notes" in gone.notice and "waiting" in describe(gone)
    # A restore: a new folder (a new inode), put in place at once.
    shutil.copytree(seeded / "notes-away", seeded / "notes-restored")
    os.rename(seeded / "notes-restored", notes)
    back = watcher.until(lambda e: e.report is not None)
    assert back.error is None
    time.sleep(2.0)  # re-armed (a file written before that is read by the catch-up rebuild)
    (notes / "late.md").write_text("# L\n\n- Narwhal tusks as sensors\n")
    late = watcher.until(lambda e: papers(e) == 17)
    assert "notes/late.md" in late.changed
    assert "Narwhal tusks as sensors" in watcher.titles()


def test_watch_rearms_when_a_subfolder_is_moved_away_and_back(
    watcher: Watcher, seeded: Path
) -> None:
    sub = seeded / "notes" / "sub"
    sub.mkdir()
    (sub / "a.md").write_text("# A\n\n- Axolotl regrowth imaging\n")
    watcher.until(lambda e: papers(e) == 17)
    shutil.move(sub, seeded / "sub-away")
    watcher.until(lambda e: papers(e) == 16)
    shutil.move(seeded / "sub-away", sub)
    watcher.until(lambda e: papers(e) == 17)
    (sub / "b.md").write_text("# B\n\n- Beluga song maps\n")
    watcher.until(lambda e: papers(e) == 18)


def test_an_exception_in_one_rebuild_is_reported_and_watch_goes_on(
    watcher: Watcher, seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = watcher.lib.rebuild
    calls = {"n": 0}

    def flaky(**kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher.lib, "rebuild", flaky)
    (seeded / "notes" / "a.md").write_text("# A\n\n- Quokka counting with drones\n")
    failed = watcher.until(lambda e: e.error is not None)
    assert "UnicodeEncodeError" in failed.error and "previous index" in describe(failed)
    (seeded / "notes" / "b.md").write_text("# B\n\n- Wombat burrows from space\n")
    watcher.until(lambda e: papers(e) == 18)


def test_a_file_name_that_is_not_utf8_does_not_stop_watch(watcher: Watcher, seeded: Path) -> None:
    bad = os.fsencode(seeded / "notes") + b"/bad\xff.md"
    with open(bad, "w") as f:
        f.write("# X\n\n- Hidden under a bad name\n")
    event = watcher.until(lambda e: e.report is not None or e.error is not None)
    assert event.error is None and event.report is not None
    (seeded / "notes" / "ok.md").write_text("# OK\n\n- Okapi stripes explained\n")
    watcher.until(lambda e: papers(e) == 17)


def test_the_watcher_thread_survives_what_watch_raises(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --watch`, `mcp --watch`: even an error outside one rebuild is reported, and the
    thread starts watching again."""
    lib = Library(seeded, model="fake")
    events: queue.Queue[WatchEvent] = queue.Queue()
    real = watch_module.watch
    calls = {"n": 0}

    def broken_once(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the watcher broke")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(watch_module, "watch", broken_once)
    monkeypatch.setattr(watch_module, "RESTART_S", 0.1)
    stop = watch_in_thread(lib, events.put)
    try:
        broke = events.get(timeout=30)
        assert broke.error is not None and "the watcher broke" in broke.error
        time.sleep(2.5)
        (seeded / "notes" / "a.md").write_text("# A\n\n- Quokka counting with drones\n")
        end = time.monotonic() + 120
        while True:
            e = events.get(timeout=max(0.1, end - time.monotonic()))
            if e.report is not None and e.report.papers == 17:
                break
    finally:
        stop.set()
        time.sleep(0.5)
        lib.close()


def test_watch_does_not_follow_links_out_of_the_library(tmp_path: Path, seeded: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (seeded / "notes" / "usrlink").symlink_to(outside)
    (seeded / "notes" / "inside").mkdir()
    assert folders_read(seeded / "notes") == [seeded / "notes", seeded / "notes" / "inside"]
    w = Watcher(seeded)
    w.thread.start()
    try:
        assert w.next().report is not None
        time.sleep(1.5)
        (outside / "deep" / "x.md").write_text("# X\n\n- Outside paper\n")
        assert [e for e in w.quiet(3.0) if e.report is None or not e.report.nothing_changed] == []
        (seeded / "notes" / "inside" / "y.md").write_text("# Y\n\n- Inside paper\n")
        w.until(lambda e: papers(e) == 17)
    finally:
        w.stop.set()
        w.thread.join(10)
        w.lib.close()
