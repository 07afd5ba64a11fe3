"""Import paper lists into notes/imported/ as files (`papers import`), and read a .bib or .jsonl
file under notes/ by its kind (readers/bibtex.py, readers/jsonl.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import ImportFailed
from search.readers.bibtex import read_bibtex
from search.readers.fields import one_line, opt_str, read_text
from search.readers.jsonl import (
    CANONICAL_KEYS,
    SURROGATE_ESCAPE,
    iter_json_lines,
    read_jsonl,
    record_from_object,
    scrub_json,
)
from search.readers.records import (
    SURROGATE_MESSAGE,
    FileResult,
    Problem,
    Record,
    normalise_doi,
    normalise_title,
    parse_arxiv_id,
    summarise_problems,
)

IMPORTED_DIR = "imported"
# Which imported file came from which input file, so a re-import rewrites its own file and a
# different file with the same stem gets another name instead of overwriting it.
ORIGINS_FILE = ".origins.json"
# Held while an import picks names and writes (hidden, so rebuild never reads it).
LOCK_FILE = ".import.lock"


def read_note_data(path: Path, rel: str) -> FileResult:
    """Records of a .bib or .jsonl file under notes/ (what rebuild calls for those files)."""
    suffix = path.suffix.lower()
    if suffix == ".bib":
        return read_bibtex(path, rel)
    if suffix == ".jsonl":
        return read_jsonl(path, rel)
    return FileResult(problems=[Problem(rel, None, f"not a paper-list file ({suffix or 'none'})")])


# --- import ---------------------------------------------------------------------------------


@dataclass
class ImportedFile:
    """What importing one input file did."""

    name: str
    written: Path | None
    read: int
    written_records: int
    problems: list[Problem] = field(default_factory=list)
    message: str = ""
    # A re-import merges into the file already there (see _merge_into):
    edits_kept: int = 0  # papers where something written by hand was kept over the source
    added: int = 0  # papers new in the source
    removed: int = 0  # papers gone from the source, untouched by hand, so dropped


@dataclass
class ImportReport:
    """What `import_files` did, one entry per input file."""

    files: list[ImportedFile] = field(default_factory=list)


def _sniff_format(path: Path, text: str) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".bib":
        return "bib"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    head = text.lstrip()[:1]
    if head in ("@", "%"):
        return "bib"
    if head == "[":
        return "json-array"
    if head == "{":
        return "jsonl"
    return None


def _read_json_array(path: Path, text: str, rel: str) -> FileResult:
    try:
        items = json.loads(text)
    except ValueError as e:
        raise ImportFailed(f"{path}: not valid JSON ({e})") from None
    if not isinstance(items, list):
        raise ImportFailed(f"{path}: expected a JSON list of objects")
    # ensure_ascii keeps escapes such as \ud800 as they were, for read_jsonl's checks.
    lines = "\n".join(json.dumps(i) for i in items)
    result = FileResult()
    for number, line in iter_json_lines(lines):
        obj = json.loads(line)
        if SURROGATE_ESCAPE.search(line):
            obj, scrubbed = scrub_json(obj)
            if scrubbed:
                result.problems.append(Problem(rel, None, f"item {number}: {SURROGATE_MESSAGE}"))
        record = record_from_object(obj, rel, number) if isinstance(obj, dict) else None
        if record is None or not record.title:
            result.problems.append(Problem(rel, None, f"item {number}: no paper title"))
        else:
            result.records.append(record)
    return result


def canonical(record: Record) -> dict[str, Any]:
    """A record as one object of the canonical format (empty values left out)."""
    values: dict[str, Any] = {
        "title": record.title,
        "abstract": record.abstract,
        "authors": record.authors,
        "year": record.year,
        "venue": record.venue,
        "arxiv": record.arxiv,
        "doi": record.doi,
        "url": record.url,
        "id": record.extra.get("id"),
        "note": record.note,
        "tags": record.tags,
        "source": record.extra.get("source"),
    }
    return {k: values[k] for k in CANONICAL_KEYS if values[k] not in (None, "", [])}


def _dedupe(records: Iterable[Record]) -> list[Record]:
    """One record per paper: later duplicates (same title, id, arXiv id or DOI) only fill gaps."""
    kept: list[Record] = []
    index: dict[str, int] = {}
    for r in records:
        keys = ["t:" + normalise_title(r.title)]
        if r.extra.get("id"):
            keys.append("i:" + r.extra["id"])
        if r.arxiv:
            keys.append("a:" + r.arxiv)
        if r.doi:
            keys.append("d:" + r.doi)
        hit = next((index[k] for k in keys if k in index), None)
        if hit is None:
            hit = len(kept)
            kept.append(r)
        else:
            first = kept[hit]
            for name in ("abstract", "note", "arxiv", "doi", "url", "year", "venue"):
                if not getattr(first, name) and getattr(r, name):
                    setattr(first, name, getattr(r, name))
            if not first.authors:
                first.authors = r.authors
        for k in keys:
            index.setdefault(k, hit)
    return kept


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_origins(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / ORIGINS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _output_name(stem: str, origin: str, origins: dict[str, str], folder: Path) -> str:
    """`<stem>.jsonl`, or `<stem>-2.jsonl`, ... when that name holds another input's records.

    A name is ours if the origins list says it came from this input; a free name is one that
    neither exists nor is listed. Files nobody listed (placed by hand) are never overwritten.
    """
    safe = re.sub(r"[^\w.\-]+", "-", stem).strip("-.") or "import"
    n = 1
    while True:
        name = f"{safe}.jsonl" if n == 1 else f"{safe}-{n}.jsonl"
        if origins.get(name) == origin:
            return name
        if name not in origins and not (folder / name).exists():
            return name
        n += 1


# --- re-import: merging into a file the user may have edited ---------------------------------
#
# notes/imported/<name>.jsonl is the user's to edit. Beside it, the hidden `.<name>.base`
# records what the last import wrote (per paper: its keys and a hash of each field), so a
# re-import can tell a field the user changed from one the source changed: per paper and field,
# an untouched field takes the source's new value; a field added, changed or deleted by hand
# stays as the user left it. Papers new in the source are added at the end; a paper gone from
# the source is dropped only if the user never touched it. Lines that are not JSON objects
# (a half-typed edit) are kept verbatim. Without a base (a file imported by an older version)
# every existing field counts as the user's.


def _base_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.base")


def _staged_base_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.base.next")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _settle_base(target: Path) -> None:
    """Finish or undo what a killed import left: a staged base describes the data written
    with it, so it is the base when the file holds exactly that data, and is dropped when
    the file is still the one before (the previous base stays right for it)."""
    staged = _staged_base_path(target)
    try:
        first = staged.read_text(encoding="utf-8").split("\n", 1)[0]
        written = json.loads(first).get("written")
    except (OSError, ValueError, AttributeError):
        staged.unlink(missing_ok=True)
        return
    try:
        current = _sha256(target.read_bytes())
    except OSError:
        current = None
    if current == written:
        os.replace(staged, _base_path(target))
    else:
        staged.unlink(missing_ok=True)


def _obj_keys(obj: dict[str, Any]) -> list[str]:
    """The keys a paper is matched by across imports: id, arXiv id, DOI, normalised title."""
    keys = []
    ext_id = opt_str(obj.get("id"))
    if ext_id:
        keys.append("i:" + ext_id)
    arxiv_raw = opt_str(obj.get("arxiv"))
    arxiv = parse_arxiv_id(arxiv_raw) if arxiv_raw else None
    if arxiv:
        keys.append("a:" + arxiv)
    doi = normalise_doi(opt_str(obj.get("doi")))
    if doi:
        keys.append("d:" + doi)
    title = obj.get("title")
    if isinstance(title, str) and title.strip():
        keys.append("t:" + normalise_title(one_line(title)))
    return keys


def _hash(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _field_hashes(obj: dict[str, Any]) -> dict[str, str]:
    return {k: _hash(v) for k, v in obj.items()}


def _load_base(target: Path) -> list[tuple[list[str], dict[str, str]]]:
    try:
        text = _base_path(target).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            keys = [str(k) for k in entry["keys"]]
            fields = {str(k): str(v) for k, v in entry["fields"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        out.append((keys, fields))
    return out


class _KeyIndex:
    """First unused item matching any of a paper's keys."""

    def __init__(self, keyed: list[list[str]]) -> None:
        self.by_key: dict[str, list[int]] = {}
        for i, keys in enumerate(keyed):
            for k in keys:
                self.by_key.setdefault(k, []).append(i)
        self.used: set[int] = set()

    def take(self, keys: list[str]) -> int | None:
        for k in keys:
            for i in self.by_key.get(k, ()):
                if i not in self.used:
                    self.used.add(i)
                    return i
        return None


def _merge_into(target: Path, new_objs: list[dict[str, Any]], item: ImportedFile) -> list[str]:
    """The lines to write to `target`: `new_objs` merged with what is there (see above)."""
    fresh = [json.dumps(o, ensure_ascii=False) for o in new_objs]
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        item.added = len(new_objs)
        return fresh
    except (OSError, ValueError) as e:
        raise ImportFailed(
            f"{target}: cannot read the file to merge into ({e}); move it away to import anew"
        ) from None
    base = _load_base(target)
    base_index = _KeyIndex([keys for keys, _ in base])
    new_index = _KeyIndex([_obj_keys(o) for o in new_objs])
    rel = f"{IMPORTED_DIR}/{target.name}"
    out: list[str] = []
    for number, line in enumerate(existing.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            item.problems.append(
                Problem(rel, number, "not valid JSON or not an object; kept as written")
            )
            out.append(line)
            continue
        keys = _obj_keys(obj)
        b = base_index.take(keys)
        hashes = base[b][1] if b is not None else None
        n = new_index.take(keys)
        if n is None:
            untouched = hashes is not None and _field_hashes(obj) == hashes
            if untouched:
                item.removed += 1  # gone from the source and never edited
            else:
                out.append(line)  # added or edited by hand: the user's
            continue
        merged, edited = _merge_fields(obj, new_objs[n], hashes)
        item.edits_kept += edited
        out.append(line if merged == obj else json.dumps(merged, ensure_ascii=False))
    for n, line in enumerate(fresh):
        if n not in new_index.used:
            out.append(line)
            item.added += 1
    return out


def _merge_fields(
    mine: dict[str, Any], source: dict[str, Any], base: dict[str, str] | None
) -> tuple[dict[str, Any], bool]:
    """One paper: fields the user never touched follow the source; the user's edits win.
    Returns (merged object, whether any edit of the user's was kept)."""
    merged: dict[str, Any] = {}
    edited = False
    for k, v in mine.items():
        if base is not None and base.get(k) == _hash(v):
            if k in source:
                merged[k] = source[k]
        else:
            merged[k] = v
            edited = edited or source.get(k) != v
    for k, v in source.items():
        if k in mine:
            continue
        if base is not None and k in base:
            edited = True  # deleted by hand: stays deleted
            continue
        merged[k] = v
    return merged, edited


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def import_files(
    paths: list[Path], notes_dir: Path, log: Callable[[str], None] = lambda s: None
) -> ImportReport:
    """Import paper lists (.bib, JSON lines) into `notes_dir/imported/<stem>.jsonl`.

    Every input is read before anything is written, so an unreadable or unknown file
    (ImportFailed) leaves notes/ unchanged. Re-importing a file rewrites the same output with
    the same bytes; another input with the same stem gets `<stem>-2.jsonl` (see _output_name).
    """
    notes_dir = notes_dir.resolve()
    folder = notes_dir / IMPORTED_DIR
    report = ImportReport()
    planned: list[tuple[ImportedFile, str, list[Record]]] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if _is_inside(path, notes_dir):
            report.files.append(
                ImportedFile(
                    name=str(given),
                    written=None,
                    read=0,
                    written_records=0,
                    message="already in the notes folder; rebuild reads it as it is",
                )
            )
            continue
        if not path.exists():
            raise ImportFailed(f"{given}: no such file")
        if not path.is_file():
            raise ImportFailed(f"{given}: not a file")
        text, problem = read_text(path, path.name, strict=False)
        if text is None:
            why = problem.message if problem else "cannot read"
            raise ImportFailed(f"{given}: {why}; nothing was written")
        kind = _sniff_format(path, text)
        if kind is None:
            raise ImportFailed(
                f"{given}: unknown format (expected BibTeX .bib or JSON lines .jsonl)"
            )
        if kind == "bib":
            result = read_bibtex(path, path.name)
        elif kind == "json-array":
            result = _read_json_array(path, text, path.name)
        else:
            result = read_jsonl(path, path.name)
        if not result.records:
            why = f" ({result.problems[0]})" if result.problems else ""
            raise ImportFailed(f"{given}: no paper could be read{why}; nothing was written")
        records = _dedupe(result.records)
        item = ImportedFile(
            name=str(given),
            written=None,
            read=len(result.records),
            written_records=len(records),
            problems=summarise_problems(result.problems),
        )
        planned.append((item, str(path), records))
        report.files.append(item)

    if not planned:
        return report
    # Choosing the output name, merging and writing happen under one lock: two imports at
    # once would otherwise both pick the same free name and one's papers would be lost.
    folder.mkdir(parents=True, exist_ok=True)
    with _import_lock(folder, log):
        _write_planned(folder, planned)
    return report


@contextmanager
def _import_lock(folder: Path, log: Callable[[str], None]) -> Iterator[None]:
    """One import at a time writes into `folder`; others wait (imports are short). The lock
    dies with its process, even on SIGKILL."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"waiting for another import into {folder} to finish…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _pause(stage: str) -> None:
    # Test hook (as in build.py): PAPERS_TEST_PAUSE_AT=<stage> prints "PAUSED AT <stage>" on
    # stderr and sleeps PAPERS_TEST_PAUSE_SECONDS there, so tests can start a rival process.
    if os.environ.get("PAPERS_TEST_PAUSE_AT") == stage:
        sys.stderr.write(f"PAUSED AT {stage}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("PAPERS_TEST_PAUSE_SECONDS", "3600")))


def _write_planned(folder: Path, planned: list[tuple[ImportedFile, str, list[Record]]]) -> None:
    origins = _load_origins(folder)
    for item, origin, records in planned:
        name = _output_name(Path(origin).stem, origin, origins, folder)
        _pause("import-named")  # where a rival import could take the same name
        origins[name] = origin
        target = folder / name
        objs = [canonical(r) for r in records]
        _settle_base(target)
        lines = _merge_into(target, objs, item)
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        base = (
            json.dumps({"written": _sha256(data)})
            + "\n"
            + "".join(
                json.dumps({"keys": _obj_keys(o), "fields": _field_hashes(o)}, ensure_ascii=False)
                + "\n"
                for o in objs
            )
        ).encode("utf-8")
        base_path = _base_path(target)
        # Skipping an identical rewrite keeps the file's mtime, so rebuilds see nothing new.
        if not (target.is_file() and target.read_bytes() == data):
            # The base is staged first and put in place after the data: a kill at any moment
            # leaves a staged base that _settle_base adopts (the data was written) or drops.
            write_atomic(_staged_base_path(target), base)
            write_atomic(target, data)
            os.replace(_staged_base_path(target), base_path)
        elif not (base_path.is_file() and base_path.read_bytes() == base):
            write_atomic(base_path, base)
        item.written = target
    origins_data = (
        json.dumps(origins, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    ).encode()
    origins_path = folder / ORIGINS_FILE
    if not (origins_path.is_file() and origins_path.read_bytes() == origins_data):
        write_atomic(origins_path, origins_data)
