"""What the integrity checks of issue 10 cost: the sha256 the parse cache keeps for every file
it parses (against parsing those files), and the CRC-32 every rebuild computes over the ONNX
export (against the rest of a rebuild that finds nothing changed). Best of --repeat runs.

    python bench/integrity.py --notes DIR [DIR ...] [--library LIB]

LIB: a library already built with a model that has an ONNX export (e.g. the default model).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.build import read_file, rebuild  # noqa: E402
from search.encoders.onnx_encoder import export_problem  # noqa: E402
from search.library import library_paths  # noqa: E402
from search.readers.incremental import content_hash  # noqa: E402
from search.readers.markdown import list_note_files  # noqa: E402


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notes", type=Path, nargs="*", default=[])
    ap.add_argument("--library", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    for d in args.notes:
        files, _ = list_note_files(d, follow_links=True)
        size = sum(f.stat().st_size for f in files) / 1e6
        parse = best(lambda files=files: [read_file(f, f.name) for f in files], args.repeat)
        digest = best(lambda files=files: [content_hash(f) for f in files], args.repeat)
        print(
            f"{d.name}: {len(files)} files, {size:.1f} MB: parse {parse:.3f} s, "
            f"sha256 {digest:.4f} s ({100 * digest / parse:.1f}% of parsing)"
        )

    if args.library:
        paths = library_paths(args.library)
        (folder,) = (paths.index / "encoders").iterdir()
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        crc = best(lambda: export_problem(folder, verify=True), args.repeat)
        sizes = best(lambda: export_problem(folder, verify=False), args.repeat)
        report = rebuild(paths)
        assert report.nothing_changed, "the library has changes: rebuild it first"
        whole = best(lambda: rebuild(paths), args.repeat)
        print(
            f"ONNX export {size:.0f} MB: CRC-32 check {crc:.3f} s (size check {sizes:.4f} s); "
            f"a no-change rebuild, which includes it, {whole:.3f} s "
            f"(the CRC is {100 * crc / whole:.0f}% of it)"
        )


if __name__ == "__main__":
    main()
