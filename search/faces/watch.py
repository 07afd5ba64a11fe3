"""Live updates: rebuild the index whenever notes/ changes.

A coding agent or a browser tab keeps asking while the notes are edited; an index that follows
the edits by itself is what users expect. Changes are collected by `watchfiles` (inotify on
Linux) and debounced, so saving ten files (or an editor's write-rename dance) costs one rebuild.
A rebuild is atomic (search/storage/store.py): while it runs, and when it fails, the previous
generation keeps answering; a failure is reported and the next change tries again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from search.api import Library, PapersError, RebuildReport

# Milliseconds of quiet after a change before rebuilding (watchfiles' debounce), and how often
# the stop flag is looked at.
DEBOUNCE_MS = 800
STEP_MS = 200


@dataclass
class WatchEvent:
    """One rebuild triggered by changes: what changed, and its report or its error."""

    changed: list[str]
    report: RebuildReport | None = None
    error: str | None = None
    seconds: float = 0.0


def rebuild_once(library: Library, changed: list[str]) -> WatchEvent:
    """Rebuild now; a failure is returned, never raised (the previous index stays live)."""
    start = time.perf_counter()
    event = WatchEvent(changed=changed)
    try:
        event.report = library.rebuild(wait=True)
    except PapersError as e:
        event.error = str(e)
    except OSError as e:
        event.error = f"{e.strerror or e} ({e.filename})" if e.filename else str(e)
    event.seconds = round(time.perf_counter() - start, 3)
    return event


def describe(event: WatchEvent) -> str:
    """One line for the terminal."""
    what = ", ".join(event.changed[:3]) + (" …" if len(event.changed) > 3 else "")
    if event.error:
        return f"rebuild failed ({what}): {event.error}; the previous index keeps answering"
    r = event.report
    assert r is not None
    if r.nothing_changed:
        return f"{what}: nothing to re-index"
    return (
        f"re-indexed {what}: {r.papers} papers, {r.chunks_embedded} chunks embedded "
        f"in {event.seconds:.1f} s"
    )


def watch(
    library: Library,
    on_event: Callable[[WatchEvent], None],
    stop: threading.Event | None = None,
    debounce_ms: int = DEBOUNCE_MS,
    initial: bool = True,
) -> None:
    """Rebuild on every (debounced) change under notes/ until `stop` is set.

    Args:
        on_event: called after each rebuild with what happened.
        initial: rebuild once at the start, so the index matches the notes from then on.
    """
    from watchfiles import watch as watch_changes  # lazy: only watching needs it

    notes = library.notes_dir
    if not notes.is_dir():
        raise PapersError(f"no notes folder at {notes}: create it and add notes first")
    if initial:
        on_event(rebuild_once(library, ["(start)"]))
    for changes in watch_changes(
        notes,
        debounce=debounce_ms,
        step=STEP_MS,
        stop_event=stop,
        rust_timeout=STEP_MS * 5,
        yield_on_timeout=False,
    ):
        changed = sorted({_rel(Path(p), notes) for _, p in changes})
        on_event(rebuild_once(library, changed))


def _rel(path: Path, notes: Path) -> str:
    try:
        return "notes/" + path.relative_to(notes).as_posix()
    except ValueError:
        return str(path)


def watch_in_thread(library: Library, on_event: Callable[[WatchEvent], None]) -> threading.Event:
    """Watch in a daemon thread (for `serve --watch`, `mcp --watch`); set the event to stop."""
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(library, on_event, stop),
        kwargs={"initial": False},
        daemon=True,
        name="papers-watch",
    )
    thread.start()
    return stop
