"""How a rebuild moves through the package: which modules call which, and how often a call goes
back up into a module that is already further up the call stack (a step calling back into its
caller's module, the sign of a concern split over two places).

    .venv/bin/python bench/rebuild_path.py [--code CHECKOUT] [--edit]

Rebuilds the seed notes (notes/cvpr2020.md) in a temporary library with the project's fake
encoder (tests/fake_encoder.py) under `sys.setprofile`, once from nothing and, with --edit, once
more after one note changed (the patch path). Counted over distinct calls between functions of
`search` (a call made in a loop counts once):

- moves: calls from a function of one module to a function of another;
- modules: how many modules the rebuild runs code in;
- back up: moves into a module that is already on the stack below the caller's frame, not
  counting the module the caller itself is in (e.g. build -> store -> build);
- streamed: generators of one module consumed by another (rows handed to the writer a few at a
  time, so that memory does not grow with the library). Resuming a generator is not a call the
  consumer makes into its caller's logic, so these are counted apart from moves and back up.

--code measures another checkout's search/ (for a before/after in the same run). Prints JSON.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fake_encoder import HashingEncoder  # noqa: E402


def _module(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__", "")
    return name if name == "search" or name.startswith("search.") else None


class PathRecorder:
    def __init__(self) -> None:
        self.moves: set[tuple[str, str, str, str]] = set()
        self.back_up: set[tuple[str, str, str, str]] = set()
        self.modules: set[str] = set()
        self.streamed: set[tuple[str, str, str, str]] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = _module(frame)
        if callee is None:
            return
        self.modules.add(callee)
        # The nearest caller inside the package (skipping library code in between).
        up = frame.f_back
        while up is not None and _module(up) is None:
            up = up.f_back
        if up is None:
            return
        caller = _module(up)
        assert caller is not None
        if caller == callee:
            return
        edge = (caller, up.f_code.co_name, callee, frame.f_code.co_name)
        if frame.f_code.co_flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
            self.streamed.add(edge)
            return
        self.moves.add(edge)
        below = up.f_back
        while below is not None:
            if _module(below) == callee:
                self.back_up.add(edge)
                break
            below = below.f_back

    def summary(self) -> dict[str, Any]:
        return {
            "moves": len(self.moves),
            "modules": len(self.modules),
            "back_up": len(self.back_up),
            "streamed": len(self.streamed),
            "back_up_edges": sorted(f"{a}.{b} -> {c}.{d}" for a, b, c, d in self.back_up),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose search/ is measured")
    ap.add_argument("--edit", action="store_true", help="also rebuild after one note changed")
    ap.add_argument("--edges", action="store_true", help="list the calls that go back up")
    args = ap.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from search.build import rebuild
    from search.library import library_paths

    if (args.code / "search" / "encoders").is_dir():
        from search.encoders.encoder import register_encoder
    else:  # a checkout from before the subpackages
        from search.encoder import register_encoder  # type: ignore[no-redef]

    register_encoder("fake", HashingEncoder)
    out: dict[str, Any] = {"code": str(args.code)}
    with tempfile.TemporaryDirectory(prefix="papers-path-") as tmp:
        lib = Path(tmp)
        (lib / "notes").mkdir()
        seed = lib / "notes" / "cvpr2020.md"
        shutil.copy(ROOT / "notes" / "cvpr2020.md", seed)
        runs = [("first build", None)]
        if args.edit:
            runs.append(("one note changed", "\n* A Paper Added By The Bench (2024)\n"))
        for name, append in runs:
            if append:
                with seed.open("a", encoding="utf-8") as f:
                    f.write(append)
            recorder = PathRecorder()
            sys.setprofile(recorder)
            try:
                rebuild(library_paths(lib), model="fake")
            finally:
                sys.setprofile(None)
            result = recorder.summary()
            if not args.edges:
                del result["back_up_edges"]
            out[name] = result
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
