"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright (pointed at
the system binary: Playwright's own browser download is not reachable). Skips, saying why,
when Chromium or Playwright is absent; `make test` installs Chromium when it can."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search.api import Library

from .web_support import PAPERS, build_topic_library

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent")
pytest.importorskip("uvicorn")
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is absent (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(root: Path) -> Iterator[str]:
    """`papers serve`'s app over the library at `root` (fake encoder), on a free loopback
    port in a thread, for as long as the block runs: its base URL."""
    import uvicorn

    from search.encoders.encoder import register_encoder, unregister_encoder
    from search.faces.web.app import create_app

    from .conftest import FakeEncoder

    register_encoder("fake", FakeEncoder)
    lib = Library(root, model="fake")
    port = free_port()
    config = uvicorn.Config(create_app(lib), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        lib.close()
        unregister_encoder("fake")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`papers serve`'s app on a free loopback port, in a thread, over the topic library."""
    with served(build_topic_library(tmp_path_factory.mktemp("browser") / "library")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def non_blank(png: Path) -> tuple[int, int, int]:
    """(width, height, pixels that differ from the background) of a screenshot."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int32)
    height, width, _ = pixels.shape
    return width, height, int((np.abs(pixels - pixels[0, 0]).sum(axis=2) > 30).sum())


def test_search_ask_and_open_a_result(server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(server + "/")
    page.fill("input[name=q]", "robot grasp torque")
    page.click("button[type=submit]")
    page.wait_for_selector("li.hit")
    assert page.locator("li.hit").count() == 10
    first = page.locator("li.hit a.title").first
    title = first.inner_text()
    first.click()
    page.wait_for_selector("article.paper h1")
    assert page.locator("article.paper h1").inner_text() == title
    assert page.locator("ol.similar li").count() == 10
    page.close()


def test_map_draws_points_and_labels(server: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    page.wait_for_selector("body[data-map-ready='1']", timeout=20000)
    canvas = page.locator("canvas#map")
    assert canvas.get_attribute("data-points") == str(PAPERS)
    n_clusters = int(canvas.get_attribute("data-clusters") or 0)
    assert n_clusters >= 2
    assert page.locator("#legend .key").count() == n_clusters
    shot = tmp_path / "map.png"
    canvas.screenshot(path=str(shot))
    width, height, drawn = non_blank(shot)
    assert width >= 320 and height >= 320
    # points (r=3.5 px: ~38 px each) and labels: well over what a blank canvas has
    assert drawn > PAPERS * 15
    # hovering a point shows its title; the search box highlights the answers
    box = canvas.bounding_box()
    assert box is not None
    data = page.evaluate("() => fetch('/api/map').then(r => r.json())")
    pad, w, h = 24, box["width"], box["height"]
    x = box["x"] + pad + (data["x"][0] + 1) / 2 * (w - 2 * pad)
    y = box["y"] + pad + (1 - (data["y"][0] + 1) / 2) * (h - 2 * pad)
    page.mouse.move(x, y)
    page.wait_for_selector("#tip:not([hidden])")
    assert page.inner_text("#tip b") in data["titles"]
    page.fill("#map-search", "robot grasp")
    page.press("#map-search", "Enter")
    page.wait_for_function(
        "document.getElementById('map-status').textContent.includes('highlighted')"
    )
    assert page.inner_text("#map-status") == "30 papers highlighted"
    page.check("#by-section")
    assert page.locator("#legend .key").count() == len(data["sections"])
    # clicking the hovered point opens its paper
    page.mouse.click(x, y)
    page.wait_for_selector("article.paper h1")
    assert page.url.startswith(server + "/paper/")
    assert not errors
    page.close()
