"""The page at phone (400 px) and desktop (1,400 px) widths in Chromium: screenshots taken,
nothing wider than the screen, the Ask button on screen, notes rendered, places linked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_browser import ARGS, CHROMIUM, non_blank, served, sync_api
from .web_support import build_topic_library

NOTE = {
    "title": "Denoising Diffusion Probabilistic Models with a Long Title That Must Wrap on a Phone",
    "note": "**Key idea**: reverse a *noising* process; code at "
    "https://github.com/hojonathanho/diffusion/blob/master/a_very_long_path_name_indeed.py\n\n"
    "- forward: add Gaussian noise\n- reverse: predict the noise",
    "url": "https://arxiv.org/abs/2006.11239",
}
WIDTHS = (400, 1400)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("layout") / "library"
    (root / "notes" / "deep" / "folder" / "with-a-long-name").mkdir(parents=True)
    note_file = root / "notes" / "deep" / "folder" / "with-a-long-name" / "diffusion.jsonl"
    note_file.write_text(json.dumps(NOTE) + "\n", encoding="utf-8")
    build_topic_library(root)
    with served(root) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def check_page(page: Any, shot: Path, width: int) -> None:
    assert page.evaluate(OVERFLOW) <= 0, f"wider than {width} px: {shot.name}"
    page.screenshot(path=str(shot), full_page=True)
    w, _h, drawn = non_blank(shot)
    assert w == width and drawn > 2000, shot.name


@pytest.mark.parametrize("width", WIDTHS)
def test_pages_fit_the_screen_with_notes_rendered_and_links(
    server: str, browser: Any, width: int, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(server + "/")
    assert "papers in your notes" in page.inner_text("p.count")
    assert page.locator(".browse a[href^='/paper/']").count() > 0
    check_page(page, tmp_path / f"home-{width}.png", width)

    page.fill("input[name=q]", "denoising diffusion noise")
    button = page.locator("button[type=submit]")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    button.click()
    page.wait_for_selector("li.hit")
    assert page.locator("li.hit a.where[href^='/note/notes/']").count() > 0
    check_page(page, tmp_path / f"answers-{width}.png", width)

    page.locator("li.hit a.title", has_text="Denoising Diffusion").first.click()
    page.wait_for_selector("article.paper h1")
    note = page.locator(".note.md")
    assert note.locator("strong", has_text="Key idea").count() == 1
    assert note.locator("li").count() == 2
    assert note.locator("a[href^='https://github.com/']").count() == 1
    assert page.locator("dd a[href='https://arxiv.org/abs/2006.11239']").count() >= 1
    assert page.locator("ul.sources a.where[href*='diffusion.jsonl#L1']").count() == 1
    check_page(page, tmp_path / f"paper-{width}.png", width)

    page.goto(server + "/map")
    page.wait_for_selector("body[data-map-ready='1']", timeout=20000)
    check_page(page, tmp_path / f"map-{width}.png", width)
    # the map uses at most nine colours plus grey, and its labels never overlap
    colours = page.evaluate(
        "() => new Set([...document.querySelectorAll('#legend i')].map(i => i.style.background))"
        ".size"
    )
    assert colours <= 10
    boxes = json.loads(page.get_attribute("canvas#map", "data-labels") or "[]")
    assert boxes
    for i, (x1, y1, w1) in enumerate(boxes):
        for x2, y2, w2 in boxes[i + 1 :]:
            assert abs(x1 - x2) >= (w1 + w2) / 2 - 1 or abs(y1 - y2) >= 16, (boxes, i)
    page.close()
