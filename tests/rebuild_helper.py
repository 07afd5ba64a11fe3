"""Run a rebuild with the fake encoder in a subprocess (for kill and lock tests):

    python tests/rebuild_helper.py <library> [--wait]

Prints the report as JSON on stdout. PAPERS_TEST_PAUSE_AT=<stage> makes it pause there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.conftest  # noqa: E402,F401  (registers the "fake" encoder)
from search.build import rebuild  # noqa: E402
from search.errors import PapersError  # noqa: E402
from search.library import library_paths  # noqa: E402

if __name__ == "__main__":
    try:
        report = rebuild(library_paths(sys.argv[1]), model="fake", wait="--wait" in sys.argv)
    except PapersError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(report.to_json()))
