"""One score a person can read: `relevance`, 0 to 1, in tables and JSON; raw scores kept."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import FAKE, rebuild_fake, run


def test_ask_json_has_relevance_between_0_and_1_and_keeps_raw_score(seeded: Path) -> None:
    rebuild_fake()
    for mode in ("hybrid", "semantic", "keyword"):
        hits = json.loads(run("ask", "single image denoising", "--json", "--mode", mode).stdout)
        assert hits, mode
        for h in hits:
            assert 0.0 <= h["relevance"] <= 1.0, (mode, h)
            assert "score" in h  # the raw fused score stays for scripts
        assert hits[0]["relevance"] > 0, mode


def test_similar_relevance_is_never_negative(seeded: Path) -> None:
    rebuild_fake()
    hits = json.loads(run("similar", "Circle Loss", "--json", "-k", "16").stdout)
    assert all(0.0 <= h["relevance"] <= 1.0 for h in hits)


def test_table_shows_relevance_and_help_says_what_it_means(seeded: Path) -> None:
    rebuild_fake()
    hits = json.loads(run("ask", "single image denoising", "--json", "-k", "3").stdout)
    table = run("ask", "single", "image", "denoising", "-k", "3", *FAKE).stdout.splitlines()
    assert table[0].split()[:3] == ["#", "relevance", "title"]
    assert table[1].split()[1] == f"{hits[0]['relevance']:.2f}"
    explained = run("ask", "single image denoising", "-k", "1", "--explain").stdout
    assert f"score {hits[0]['score']:.3f}" in explained  # the raw one, with --explain
    assert "relevance" in run("ask", "--help").stdout
    assert "0 to 1" in run("ask", "--help").stdout
