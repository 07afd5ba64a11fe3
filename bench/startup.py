"""Start-up cost of light commands, against a baseline revision measured in the same run.

    .venv/bin/python bench/startup.py --baseline 83103f3 --rounds 9

Each command runs in a fresh interpreter, alternating baseline and current code so that the
machine's noise hits both alike; prints the median wall time of each and the ratio. The library
is the seed notes indexed with a cheap hashing encoder (no model is loaded by these commands).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `papers` in any revision: search/faces/cli.py since the subpackages, search/cli.py before.
PAPERS_MAIN = (
    "try:\n    from search.faces.cli import main\n"
    "except ImportError:\n    from search.cli import main\n"
    "main()"
)

COMMANDS = {
    "--help": ["--help"],
    "list": ["list"],
    "ask --mode keyword": ["ask", "metric learning", "--mode", "keyword"],
}
_WORD = re.compile(r"\w+")


# The project's one fake encoder (tests/fake_encoder.py), whichever revision is measured.
sys.path.insert(0, str(ROOT / "tests"))


def run_once(code_dir: Path, library: Path, args: list[str]) -> float:
    prog = f"import sys; sys.argv = ['papers', *{args!r}]\n" + PAPERS_MAIN
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", prog],
        cwd=code_dir,
        env=_env(library),
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def build_library(code_dir: Path, library: Path) -> None:
    """The seed notes indexed by the code in `code_dir` (each revision reads only the index
    format it wrote), with the hashing encoder above."""
    (library / "notes").mkdir(parents=True)
    shutil.copy(ROOT / "notes" / "cvpr2020.md", library / "notes")
    prog = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
        "from startup import HashEncoder; "
        "from search.build import rebuild\n"
        "try: from search.encoders.encoder import register_encoder\n"
        "except ImportError: from search.encoder import register_encoder  # before subpackages\n"
        "from search.library import library_paths; "
        "register_encoder('hash', HashEncoder); "
        f"rebuild(library_paths({str(library)!r}), model='hash')"
    )
    subprocess.run([sys.executable, "-c", prog], cwd=code_dir, check=True, env=_env(library))


def _env(library: Path) -> dict[str, str]:
    return {"PAPERS_LIBRARY": str(library), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="papers-startup-") as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.baseline, "search"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        libraries = {"baseline": Path(tmp) / "lib-baseline", "current": Path(tmp) / "lib-current"}
        build_library(base, libraries["baseline"])
        build_library(ROOT, libraries["current"])

        print(f"{'command':<22} {'baseline':>9} {'current':>9} {'ratio':>6}")
        for name, cmd in COMMANDS.items():
            times: dict[str, list[float]] = {"baseline": [], "current": []}
            for _ in range(args.rounds):
                times["baseline"].append(run_once(base, libraries["baseline"], cmd))
                times["current"].append(run_once(ROOT, libraries["current"], cmd))
            b, c = (statistics.median(times[k]) for k in ("baseline", "current"))
            print(f"{name:<22} {b:>8.3f}s {c:>8.3f}s {c / b:>5.2f}×")


if __name__ == "__main__":
    main()
