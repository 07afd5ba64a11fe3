"""Resource limits: a small or hostile input must not cost hours, gigabytes or a screenful per
bad record (D5, D6, D16, long lists)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from search.readers import fields
from search.readers.markdown import blocks as notes
from search.readers.markdown import parse_markdown

from .test_cli import rebuild_fake, run

GOOD = '{"title": "A good paper", "abstract": "about graphs"}\n'


def stderr_lines_about(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line]


# -- D6: data files get the limits notes get; problems are summarised ----------------------------


def test_binary_jsonl_and_bib_are_one_problem_each(library: Path) -> None:
    notes = library / "notes"
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(300_000)) + b"\x00"
    (notes / "huge.jsonl").write_bytes(noise)
    (notes / "refs.bib").write_bytes(b"@article{a, title={T}}\n\x00\x01\x02" + noise)
    (notes / "ok.jsonl").write_text(GOOD, encoding="utf-8")
    result = rebuild_fake("--json")
    problems = json.loads(result.stdout)["problems"]
    assert [p for p in problems if p.startswith("huge.jsonl")] == [
        "huge.jsonl: binary file (NUL byte), not a text note"
    ]
    assert [p for p in problems if p.startswith("refs.bib")] == [
        "refs.bib: binary file (NUL byte), not a text note"
    ]
    assert json.loads(run("list", "--json").stdout)[0]["title"] == "A good paper"


def test_jsonl_that_is_not_utf8_is_one_problem(library: Path) -> None:
    notes = library / "notes"
    rng = random.Random(8)
    (notes / "noise.jsonl").write_bytes(bytes(rng.randrange(1, 256) for _ in range(100_000)))
    (notes / "ok.jsonl").write_text(GOOD, encoding="utf-8")
    problems = json.loads(rebuild_fake("--json").stdout)["problems"]
    mine = [p for p in problems if p.startswith("noise.jsonl")]
    assert len(mine) == 1 and "not valid UTF-8" in mine[0]


def test_data_file_over_the_size_cap_is_skipped(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fields, "MAX_DATA_BYTES", 10_000)
    notes = library / "notes"
    (notes / "big.jsonl").write_text(GOOD * 1000, encoding="utf-8")
    (notes / "big.bib").write_text("@misc{k, title={T}}\n" * 1000, encoding="utf-8")
    (notes / "ok.md").write_text("* A note paper\n", encoding="utf-8")
    problems = json.loads(rebuild_fake("--json").stdout)["problems"]
    for name in ("big.jsonl", "big.bib"):
        [p] = [p for p in problems if p.startswith(name)]
        assert "over the" in p and "limit" in p


def test_many_bad_records_are_summarised_in_rebuild_and_import(
    library: Path, tmp_path: Path
) -> None:
    bad = "".join(f"not json {i}\n" for i in range(5000)) + GOOD
    (library / "notes" / "bad.jsonl").write_text(bad, encoding="utf-8")
    result = rebuild_fake("--json")
    problems = [p for p in json.loads(result.stdout)["problems"] if p.startswith("bad.jsonl")]
    assert 2 <= len(problems) <= 10
    assert any("4995 more" in p or "more problems" in p for p in problems), problems
    assert len(stderr_lines_about(result.stderr, "bad.jsonl")) <= 10
    # A rebuild with nothing changed does not print them again, one per line.
    again = rebuild_fake()
    assert len(stderr_lines_about(again.stderr, "bad.jsonl")) <= 1
    assert "up to date" in again.stderr

    src = tmp_path / "in" / "bad.jsonl"
    src.parent.mkdir()
    src.write_text(bad, encoding="utf-8")
    imported = run("import", str(src), "--json")
    assert len(imported.stderr.splitlines()) <= 12
    assert len(json.loads(imported.stdout)["files"][0]["problems"]) <= 10


def test_import_refuses_binary_input(library: Path, tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"title": "x"}\n\x00\x00garbage')
    result = run("import", str(src), ok=False)
    assert "binary" in result.stderr
    assert not (library / "notes" / "imported").exists()


# -- D5: markdown that makes the parser work per character ---------------------------------------


class CountCalls:
    """Counts calls of markdown-it's inline skipToken: the unit of work a '[' costs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from markdown_it.parser_inline import ParserInline

        self.calls = 0
        original = ParserInline.skipToken

        def counted(parser: ParserInline, state: object) -> None:
            self.calls += 1
            original(parser, state)  # type: ignore[arg-type]

        monkeypatch.setattr(ParserInline, "skipToken", counted)


@pytest.mark.parametrize("bomb", ["[", "[a", "![", "*["])
def test_bracket_bomb_costs_linear_work_and_is_reported(
    monkeypatch: pytest.MonkeyPatch, bomb: str
) -> None:
    text = "# Notes\n\n* A normal paper [[arXiv](https://arxiv.org/abs/1707.01495)]\n" + (
        "* " + bomb * 20_000 + "\n"
    )
    counter = CountCalls(monkeypatch)
    result = parse_markdown(text, "bomb.md")
    # Before the fix each '[' cost about maxNesting (256) skipToken calls: 5 million here.
    assert counter.calls < 10 * len(text), counter.calls
    assert any(
        p.line == 4 and "nested" in p.message and "plain text" in p.message for p in result.problems
    ), result.problems
    titles = [r.title for r in result.records]
    assert titles[0] == "A normal paper"
    assert result.records[0].arxiv == "1707.01495"
    # The bomb's bullet is a paper titled by its text, or (when nothing of it is title text once
    # brackets are stripped) a bullet without a title, reported; never anything else.
    assert titles[1:] == [] or (len(titles) == 2 and titles[1].startswith(bomb))
    if len(titles) == 1:
        assert any(p.line == 4 and "without title" in p.message for p in result.problems)


def test_links_nested_a_few_levels_still_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "* **[_Deep [nested] title_](https://example.org/paper)** [[code](https://c.org)]\n"
    [record] = parse_markdown(text, "x.md").records
    assert record.title == "Deep [nested] title"
    assert record.url == "https://example.org/paper"


def test_inline_parser_checks_the_deadline_too() -> None:
    # One long paragraph is a single inline parse: it must stop there as well.
    env = {notes._DEADLINE_KEY: -1.0}
    with pytest.raises(notes._OutOfTime):
        notes._MD_INLINE.inline.parse("[a](" * 100, notes._MD_INLINE, env, [])


def test_parse_time_budget_skips_the_file_with_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "* First [paper](https://a.org)\n* Second *paper*\n"
    # No input known to this test is slow enough for the real budget: one already spent
    # shows what happens when it is.
    monkeypatch.setattr(notes, "PARSE_SECONDS", -1.0)
    result = parse_markdown(text, "slow.md")
    assert result.records == []
    [problem] = result.problems
    assert problem.file == "slow.md" and "to parse" in problem.message
    assert "skipped" in problem.message


# -- D16: the text embedded per paper and per query is capped ------------------------------------


def _long_text(chars: int) -> str:
    words = [f"word{i % 997}" for i in range(chars // 8 + 1)]
    return " ".join(words)[:chars]


def test_a_huge_abstract_is_cut_to_the_cap_and_reported(library: Path) -> None:
    from search.storage.chunking import MAX_EMBED_CHARS

    big = _long_text(3 * MAX_EMBED_CHARS)
    lines = [
        json.dumps({"title": "Small paper", "abstract": "short"}),
        json.dumps({"title": "Huge paper", "abstract": big}),
    ]
    (library / "notes" / "big.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = json.loads(rebuild_fake("--json").stdout)
    [cut] = [p for p in report["problems"] if "Huge paper" in p]
    assert cut.startswith("big.jsonl:2:")
    assert f"only the first {MAX_EMBED_CHARS:,} are embedded" in cut
    # The fake encoder's window is 48 words: the whole text would make about 40,000 chunks.
    capped = MAX_EMBED_CHARS // 8 // (48 - 2 - 4 - 1 - 32) + 2
    assert report["chunks"] <= capped + 1
    shown = json.loads(run("show", "Huge paper", "--json").stdout)
    assert shown["abstract"] == big  # the stored abstract is whole


def test_similar_to_a_huge_text_is_cut_and_says_so(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from search.query import MAX_QUERY_CHARS

    (library / "notes" / "a.md").write_text("* Paper about word1 and word2\n", encoding="utf-8")
    rebuild_fake()
    from .conftest import FakeEncoder

    seen: list[int] = []
    encode = FakeEncoder.encode

    def counting(self: FakeEncoder, texts: list[str], **kw: object) -> object:
        seen.append(sum(len(t) for t in texts))
        return encode(self, texts, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(FakeEncoder, "encode", counting)
    result = run("similar", "--text", _long_text(1_000_000), "--json")
    assert f"only the first {MAX_QUERY_CHARS:,} characters are used" in result.stderr
    assert json.loads(result.stdout)[0]["title"] == "Paper about word1 and word2"
    # Overlapping chunks repeat text (3.5 times over with the fake encoder's 48-word window),
    # but nothing near the 1 MB given (3.5 MB encoded before the cap).
    assert sum(seen) < 5 * MAX_QUERY_CHARS
