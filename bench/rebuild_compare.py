"""One "one note changed" rebuild of a bench library with the code of another checkout, to
compare two versions of the rebuild in the same run (same library, same machine load).

    git archive OLD_COMMIT | tar -x -C /tmp/old
    for v in 601 602 603; do
        .venv/bin/python bench/rebuild_compare.py . LIB $v
        .venv/bin/python bench/rebuild_compare.py /tmp/old LIB_COPY $v
    done

LIB is a library bench/rebuild.py made (notes/big.jsonl + notes/mine.md, built once with
model "bench"); LIB_COPY a copy of it (`cp -a`), so that each version edits its own. Each call
runs in a fresh process: it edits notes/mine.md (version V) and rebuilds with TREE's code and
TREE's bench encoder. The map (search/map.py) is left out: the same code in both versions, and
bench/rebuild.py times it on its own. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    tree, lib, version = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3])
    sys.path[:0] = [str(tree), str(tree / "bench")]
    import rebuild as bench  # TREE's bench/rebuild.py: its library layout and encoder

    bench.write_mine(lib, version)
    import search.map
    from search.build import rebuild
    from search.encoder import register_encoder
    from search.library import library_paths

    search.map.build_for_generation = lambda *args, **kwargs: None
    register_encoder("bench", bench.BenchEncoder)
    t = time.perf_counter()
    report = rebuild(library_paths(lib), model="bench")
    total = time.perf_counter() - t
    embed = bench.EMBED_SECONDS[0]
    print(
        json.dumps(
            {
                "tree": str(tree),
                "rebuild_s": round(total, 3),
                "embed_s": round(embed, 3),
                "beyond_embed_and_map_s": round(total - embed, 3),
                "embedded": report.chunks_embedded,
                "papers": report.papers,
            }
        )
    )


if __name__ == "__main__":
    main()
