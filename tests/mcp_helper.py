"""`papers ...` (the CLI's own entry point) in a subprocess with the fake encoder registered:
the MCP tests start `python tests/mcp_helper.py --library LIB mcp` as their server.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.encoders.encoder import register_encoder  # noqa: E402
from search.faces.cli import main  # noqa: E402
from tests.conftest import FakeEncoder  # noqa: E402

if __name__ == "__main__":
    register_encoder("fake", FakeEncoder)
    sys.argv[0] = "papers"
    main()
