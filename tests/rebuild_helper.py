"""Run a rebuild with the fake encoder in a subprocess (for kill and lock tests):

    python tests/rebuild_helper.py <library> [--wait] [--pause-at STAGE]

Prints the report as JSON on stdout. With --pause-at, the rebuild prints "PAUSED AT <stage>" on
stderr when it reaches STAGE and sleeps there, so the test can SIGKILL it at a known point
(stages: see `search.build.Pause`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.build import rebuild  # noqa: E402
from search.encoders.encoder import register_encoder  # noqa: E402
from search.errors import PapersError  # noqa: E402
from search.faces.output import rebuild_json  # noqa: E402
from search.library import library_paths  # noqa: E402
from tests.conftest import FakeEncoder  # noqa: E402


def pause_at(wanted: str | None) -> Callable[[str], None]:
    def pause(stage: str) -> None:
        if stage == wanted:
            sys.stderr.write(f"PAUSED AT {stage}\n")
            sys.stderr.flush()
            time.sleep(3600)

    return pause


if __name__ == "__main__":
    args = sys.argv[1:]
    wanted = args[args.index("--pause-at") + 1] if "--pause-at" in args else None
    register_encoder("fake", FakeEncoder)
    try:
        report = rebuild(
            library_paths(args[0]), model="fake", wait="--wait" in args, pause=pause_at(wanted)
        )
    except PapersError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(rebuild_json(report)))
