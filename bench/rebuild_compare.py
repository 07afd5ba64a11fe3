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
TREE's bench encoder. The map (search/storage/map.py) is left out (bench/rebuild.py times it on its
own), unless --with-map: then the rebuild is timed whole, map included, for comparing two
versions of the map step (each library copy then keeps the map its own version made).
Prints one JSON line.

    .venv/bin/python bench/rebuild_compare.py TREE LIB V [--with-map]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", type=Path)
    ap.add_argument("lib", type=Path)
    ap.add_argument("version", type=int)
    ap.add_argument("--with-map", action="store_true")
    args = ap.parse_args()
    tree, lib, version = args.tree.resolve(), args.lib, args.version
    sys.path[:0] = [str(tree), str(tree / "bench")]
    import rebuild as bench  # TREE's bench/rebuild.py: its library layout and encoder

    bench.write_mine(lib, version)
    from search.build import rebuild
    from search.library import library_paths

    try:
        import search.storage.map as map_module
        from search.encoders.encoder import register_encoder
    except ImportError:  # TREE is a revision from before the subpackages
        import search.map as map_module  # type: ignore[no-redef]
        from search.encoder import register_encoder  # type: ignore[no-redef]

    if not args.with_map:
        # the map step, by its name in either tree (update_generation since the map moved
        # into the generation's tables)
        map_module.build_for_generation = lambda *args, **kwargs: None
        map_module.update_generation = lambda *args, **kwargs: None
        map_module.warm_up = lambda *args, **kwargs: None  # its background import
    register_encoder("bench", bench.BenchEncoder)
    t = time.perf_counter()
    report = rebuild(library_paths(lib), model="bench")
    total = time.perf_counter() - t
    # TREE's fake encoder keeps its embedding time (EMBED_SECONDS before tests/fake_encoder.py)
    embed = (
        bench.HashingEncoder.seconds if hasattr(bench, "HashingEncoder") else bench.EMBED_SECONDS[0]
    )
    print(
        json.dumps(
            {
                "tree": str(tree),
                "rebuild_s": round(total, 3),
                "embed_s": round(embed, 3),
                "with_map": args.with_map,
                ("beyond_embed_s" if args.with_map else "beyond_embed_and_map_s"): round(
                    total - embed, 3
                ),
                "embedded": report.chunks_embedded,
                "papers": report.papers,
            }
        )
    )


if __name__ == "__main__":
    main()
