"""Live updates: rebuild the index whenever notes/ changes.

A coding agent or a browser tab keeps asking while the notes are edited; an index that follows
the edits by itself is what users expect. Changes are collected by `watchfiles` (inotify on
Linux) and debounced, so saving ten files (or an editor's write-rename dance) costs one rebuild.
A rebuild is atomic (search/storage/store.py): while it runs, and when it fails, the previous
generation keeps answering; a failure is reported and the next change tries again.

Watch is as careful as rebuild:
- It watches the folders a rebuild reads and no more: each one on its own (not recursively),
  so a symlink leading out of the library (`notes/usrlink -> /usr`) is never watched.
- When notes/ or one of its folders is replaced (moved away and back, a restore, a branch
  switch), the watches are set up again and a catch-up rebuild reads what changed meanwhile;
  while notes/ is missing it says so and waits for it to come back.
- Any exception from one rebuild is reported and the watcher goes on; the thread behind
  `serve --watch` and `mcp --watch` also reports and restarts after anything `watch` raises.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from search.api import Library, PapersError, RebuildReport
from search.readers.markdown.files import note_folders

# Milliseconds of quiet after a change before rebuilding (watchfiles' debounce), and how often
# the stop flag is looked at.
DEBOUNCE_MS = 800
STEP_MS = 200
# How often, with no change, notes/ is checked for having been replaced (milliseconds).
CHECK_MS = 1000
# Seconds before the watcher thread starts again after `watch` itself failed.
RESTART_S = 5.0


@dataclass
class WatchEvent:
    """One rebuild triggered by changes: what changed, and its report or its error; or a
    notice about the watch itself (notes/ went missing)."""

    changed: list[str]
    report: RebuildReport | None = None
    error: str | None = None
    seconds: float = 0.0
    notice: str | None = None


def rebuild_once(library: Library, changed: list[str]) -> WatchEvent:
    """Rebuild now; a failure, whatever it is, is returned, never raised (the previous index
    stays live)."""
    start = time.perf_counter()
    event = WatchEvent(changed=changed)
    try:
        event.report = library.rebuild(wait=True)
    except PapersError as e:
        event.error = str(e)
    except OSError as e:
        event.error = f"{e.strerror or e} ({e.filename})" if e.filename else str(e)
    except Exception as e:  # a bug or an input nobody foresaw: report it, keep watching
        event.error = f"{type(e).__name__}: {e}"
    event.seconds = round(time.perf_counter() - start, 3)
    return event


def describe(event: WatchEvent) -> str:
    """One line for the terminal."""
    if event.notice:
        return event.notice
    if event.error and not event.changed:
        return event.error
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


def folders_read(notes: Path) -> list[Path]:
    """The folders a rebuild reads under `notes` (with its default of not following links out
    of the library): the reader's own walk (readers/markdown/files.note_folders), so watch
    and rebuild never disagree on what is read. Never raises."""
    return note_folders(notes)


def _identity(folders: list[Path]) -> dict[Path, tuple[int, int]]:
    """Which folders these paths are now: a folder moved away and back is another inode."""
    out = {}
    for f in folders:
        try:
            st = os.stat(f)
        except OSError:
            continue
        out[f] = (st.st_dev, st.st_ino)
    return out


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
    notes = library.notes_dir
    if not notes.is_dir():
        raise PapersError(f"no notes folder at {notes}: create it and add notes first")
    stop = stop or threading.Event()
    if initial:
        on_event(rebuild_once(library, ["(start)"]))
    while not stop.is_set():
        folders = folders_read(notes)
        if not folders:
            if not _wait_for(notes, on_event, stop):
                return
            on_event(rebuild_once(library, ["(notes/ is back)"]))
            continue
        _watch_folders(library, notes, folders, on_event, stop, debounce_ms)


def _wait_for(notes: Path, on_event: Callable[[WatchEvent], None], stop: threading.Event) -> bool:
    """notes/ is gone (moved away, being restored): say so once and wait for it to come
    back. False when stopped first."""
    on_event(
        WatchEvent(
            changed=[],
            notice=f"the notes folder {notes} is gone; waiting for it to come back "
            "(the index keeps answering)",
        )
    )
    while not stop.wait(STEP_MS / 1000):
        if notes.is_dir():
            return True
    return False


def _watch_folders(
    library: Library,
    notes: Path,
    folders: list[Path],
    on_event: Callable[[WatchEvent], None],
    stop: threading.Event,
    debounce_ms: int,
) -> None:
    """Watch `folders` (each on its own) until stopped or until the folders a rebuild reads
    are no longer these ones; then return, so that the caller arms the watch again."""
    from watchfiles import watch as watch_changes  # lazy: only watching needs it

    armed = _identity(folders)
    catch_up = True  # the first yield comes once the watches are in place
    try:
        changes_seen = watch_changes(
            *folders,
            debounce=debounce_ms,
            step=STEP_MS,
            stop_event=stop,
            rust_timeout=CHECK_MS,
            yield_on_timeout=True,
            recursive=False,
            raise_interrupt=True,
        )
        for changes in changes_seen:
            if changes:
                changed = sorted({_rel(Path(p), notes) for _, p in changes})
                on_event(rebuild_once(library, changed))
            elif catch_up:
                # What changed between listing the folders and arming the watches.
                event = rebuild_once(library, ["(re-armed)"])
                if event.error or (event.report and not event.report.nothing_changed):
                    on_event(event)
            catch_up = False
            if changes:
                # A watched folder that came or went (even one moved away and back before
                # we look: its watch may be gone) or a new folder: arm the watch again.
                paths = {Path(p) for _, p in changes}
                if paths & set(armed) or any(p.is_dir() for p in paths):
                    return
                if _identity(folders_read(notes)) != armed:
                    return
            elif _identity([notes]).get(notes) != armed.get(notes):
                return
    except (FileNotFoundError, NotADirectoryError):
        return  # a folder went between listing and arming: list again
    except RuntimeError as e:
        if "decode" in str(e):
            # watchfiles cannot name a change whose path is not valid UTF-8 (and ends the
            # watch): something changed, so rebuild (it reports such a file), then re-arm.
            on_event(rebuild_once(library, [f"(a change watchfiles could not name: {e})"]))
            return
        # Anything else (the system's limit on watches, say) is said, then tried again later.
        on_event(WatchEvent(changed=[], error=f"cannot watch {notes}: {e}"))
        stop.wait(RESTART_S)
    except OSError as e:
        on_event(WatchEvent(changed=[], error=f"cannot watch {notes}: {e}"))
        stop.wait(RESTART_S)


def _rel(path: Path, notes: Path) -> str:
    try:
        inside = path.relative_to(notes).as_posix()
        rel = "notes/" + ("" if inside == "." else inside)
    except ValueError:
        rel = str(path)
    # A name that is not valid UTF-8 is shown with its bytes escaped, never raised on.
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def watch_in_thread(library: Library, on_event: Callable[[WatchEvent], None]) -> threading.Event:
    """Watch in a daemon thread (for `serve --watch`, `mcp --watch`); set the event to stop.

    Nothing ends the thread but `stop`: whatever `watch` raises is reported and it starts
    again after RESTART_S, so the server never answers from an index nobody updates."""
    stop = threading.Event()

    def run() -> None:
        initial = False
        while not stop.is_set():
            try:
                watch(library, on_event, stop, initial=initial)
            except Exception as e:
                on_event(
                    WatchEvent(
                        changed=[],
                        error=f"watching stopped ({type(e).__name__}: {e}); "
                        f"starting again in {RESTART_S:g} s",
                    )
                )
                stop.wait(RESTART_S)
                initial = True

    thread = threading.Thread(target=run, daemon=True, name="papers-watch")
    thread.start()
    return stop
