"""`papers serve`: a busy port is one clear error before any "serving" line; the Host check
reads `[::1]:port` and accepts any loopback address the server was bound to."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.api import Library
from tests.test_cli import one_error_line, rebuild_fake, run

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from search.faces.web.app import create_app, hosts_for  # noqa: E402


@pytest.fixture
def lib(seeded: Path) -> Iterator[Library]:
    rebuild_fake()
    with Library(seeded, model="fake") as library:
        yield library


@pytest.mark.parametrize(
    ("bound", "base"),
    [
        ("::1", "http://[::1]:8765"),
        ("127.0.0.2", "http://127.0.0.2:8765"),
        ("127.0.0.1", "http://localhost:8765"),
        ("127.0.0.1", "http://[::1]:8765"),
    ],
)
def test_host_header_with_port_and_ipv6_is_accepted(lib: Library, bound: str, base: str) -> None:
    with TestClient(create_app(lib, hosts_for(bound)), base_url=base) as c:
        assert c.get("/api/papers").status_code == 200


@pytest.mark.parametrize("host", ["evil.example:8765", "[::2]:8765", "127.0.0.1.evil.com"])
def test_other_hosts_are_refused(lib: Library, host: str) -> None:
    with TestClient(create_app(lib, hosts_for("127.0.0.1"))) as c:
        assert c.get("/api/papers", headers={"host": host}).status_code == 400


def test_busy_port_is_one_error_line_and_no_success_line(lib: Library) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), ok=False)
    line = one_error_line(result)
    assert f"127.0.0.1:{port}" in line and "in use" in line
    assert "serving" not in result.stderr
