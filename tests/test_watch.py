"""`papers watch`: a change under notes/ triggers one (debounced) rebuild; a failed rebuild is
reported and the previous index keeps answering."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import pytest

from search.api import Library
from search.faces.watch import WatchEvent, describe, watch

pytest.importorskip("watchfiles")


def next_event(events: queue.Queue[WatchEvent], timeout: float = 120.0) -> WatchEvent:
    return events.get(timeout=timeout)


def test_changes_rebuild_and_a_failure_leaves_the_index_answering(seeded: Path) -> None:
    lib = Library(seeded, model="fake")
    events: queue.Queue[WatchEvent] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=watch, args=(lib, events.put, stop), kwargs={"debounce_ms": 300}, daemon=True
    )
    thread.start()
    try:
        start = next_event(events)
        assert start.error is None and start.report is not None and start.report.papers == 16
        time.sleep(0.5)  # the watcher is set up once the first rebuild is done
        # two files saved together: one debounced rebuild
        (seeded / "notes" / "a.md").write_text("# A\n\n- Quokka counting with drones\n")
        (seeded / "notes" / "b.md").write_text("# B\n\n- Wombat burrows from space\n")
        added = next_event(events)
        assert added.error is None and added.report is not None
        assert added.report.papers == 18
        assert set(added.changed) <= {"notes/a.md", "notes/b.md"}
        assert "re-indexed" in describe(added)
        assert lib.ask("quokka", mode="keyword")[0].paper.title == "Quokka counting with drones"
        # a rebuild that fails (notes/ holds no notes now) is reported; the index still answers
        for f in (seeded / "notes").iterdir():
            f.rename(seeded / f.name)
        failed = next_event(events)
        while failed.error is None:  # a burst may be split in two; wait for the failure
            failed = next_event(events)
        assert "no notes" in failed.error
        assert "previous index keeps answering" in describe(failed)
        assert lib.ask("wombat", mode="keyword")[0].paper.title == "Wombat burrows from space"
    finally:
        stop.set()
        thread.join(10)
        lib.close()
    assert not thread.is_alive()
