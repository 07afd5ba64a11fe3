"""Tests for search.readers.markdown: list notes, reading lists, one-paper files, bad input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.library import merge
from search.readers.markdown import files as note_files
from search.readers.markdown import list_note_files, parse_markdown, read_markdown_file
from search.readers.records import FileResult, Record, normalise_title

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "notes" / "cvpr2020.md"
DENNYBRITZ = ROOT.parent / "shared" / "data" / "notes-dennybritz"


def parse(text: str, rel: str = "n.md") -> FileResult:
    return parse_markdown(text, rel)


def titles(records: list[Record]) -> list[str]:
    return [r.title for r in records]


# ---------------------------------------------------------------------------- cvpr2020 seed

EMB = ["Embedding"]
KD = ["knowledge Distillation"]
UNS = ["Unsupervised/Self-supervised Learning"]
REP = ["Representation Learning"]
DATA = ["Datasets"]
MISC = ["Misc"]
CVPR = [
    (6, EMB, "Fashion Outfit Complementary Item Retrieval", "lsd, Straight forward supervised setting"),  # noqa: E501
    (9, EMB, "Proxy Anchor Loss for Deep Metric Learning", "Proxy-NCA + Lifted Structuered; converges faster"),  # noqa: E501
    (12, EMB, "Moving in the Right Direction: A Regularization for Deep Metric Learning", "Angular loss combined with triplet loss"),  # noqa: E501
    (15, EMB, "Embedding Expansion: Augmentation in Embedding Space for Deep Metric Learning", ""),
    (16, EMB, "Uninformed Students: Student\u2013Teacher Anomaly Detection with Discriminative Latent Embeddings", "Nice anomaly detection application for feature embedding"),  # noqa: E501
    (19, EMB, "Circle Loss: A Unified Perspective of Pair Similarity Optimization", "Dynamic similarity weighting (similar to weighting samples hard/easy)"),  # noqa: E501
    (22, EMB, "Hyperbolic Image Embeddings", "Interesting !"),
    (26, KD, "Regularizing Class-wise Predictions via Self-knowledge Distillation", "Simple and seems to be working"),  # noqa: E501
    (29, KD, "Revisiting Knowledge Distillation via Label Smoothing Regularization", "A network should never be over-confident about it output"),  # noqa: E501
    (34, UNS, "Large Scale Video Representation Learning via Relational Graph Clustering", "Technicalities for large video datasets"),  # noqa: E501
    (38, UNS, "Online Deep Clustering for Unsupervised Representation Learning", ""),
    (42, REP, "Self-Supervised Learning of Pretext-Invariant Representations", "Self-Supervised Representation Learning by Rotation Feature Decoupling\n\nMathematical notation!"),  # noqa: E501
    (47, REP, "ClusterFit: Improving Generalization of Visual Representations", "Deep Clustering for Unsupervised Learning of Visual Features"),  # noqa: E501
    (52, DATA, "Google Landmarks Dataset v2 A Large-Scale Benchmark for Instance-Level Recognition and Retrieval", ""),  # noqa: E501
    (53, DATA, "Scalability in Perception for Autonomous Driving: Waymo Open Dataset", ""),
    (57, MISC, "Self2Self With Dropout: Learning Self-Supervised Denoising From Single Image", 'Simple trick to create I/O pairs from single image, use "dropout as bayesian" to minimize variance in output'),  # noqa: E501
]  # fmt: skip


def test_cvpr2020_every_paper_title_section_note_and_line() -> None:
    result = read_markdown_file(SEED, "cvpr2020.md")
    assert result.problems == []
    got = [(r.line, r.section, r.title, r.note) for r in result.records]
    assert got == CVPR
    assert all(r.file == "cvpr2020.md" and "kind" not in r.extra for r in result.records)


def test_cvpr2020_lines_point_at_the_bullets() -> None:
    lines = SEED.read_text(encoding="utf-8").splitlines()
    for r in read_markdown_file(SEED, "cvpr2020.md").records:
        assert lines[r.line - 1].lstrip().startswith("*")
        assert r.title.split()[0] in lines[r.line - 1]


def test_mojibake_is_repaired_in_titles_and_notes() -> None:
    text = "# L\n\n- Studentâ€“Teacher Networks\n  > cafÃ© note\n"
    [r] = parse(text).records
    assert r.title == "Student\u2013Teacher Networks"
    assert r.note == "caf\u00e9 note"


def test_emphasis_markup_is_not_title_text() -> None:
    [r] = parse("- Google __Landmarks__ Dataset *v2* and `code` **bold**\n").records
    assert r.title == "Google Landmarks Dataset v2 and code bold"


def test_note_is_plain_text() -> None:
    text = "- Paper\n\n  > **Strong** and _em_ with [a link](http://x.org) and ![img](i.png)\n"
    [r] = parse(text).records
    assert r.note == "Strong and em with a link and img"


def test_lone_h1_is_not_a_section_and_levels_nest() -> None:
    text = """# My reading list

- Top paper

## Vision

- Vision paper

### Detection

- Detection paper

## NLP

- NLP paper

#### Deep

- Deep paper

### Mid

- Mid paper
"""
    got = [(r.title, r.section) for r in parse(text).records]
    assert got == [
        ("Top paper", []),
        ("Vision paper", ["Vision"]),
        ("Detection paper", ["Vision", "Detection"]),
        ("NLP paper", ["NLP"]),
        ("Deep paper", ["NLP", "Deep"]),
        ("Mid paper", ["NLP", "Mid"]),
    ]


def test_two_h1_headings_are_both_sections() -> None:
    text = "# Vision\n\n- A paper\n\n# NLP\n\n- B paper\n"
    assert [r.section for r in parse(text).records] == [["Vision"], ["NLP"]]


def test_nested_bullets_and_indented_text_are_the_note() -> None:
    text = """## Sec

- Parent paper
  - a key point
  - another point

  Indented paragraph.
- Next paper
"""
    records = parse(text).records
    assert titles(records) == ["Parent paper", "Next paper"]
    assert records[0].note == "a key point\nanother point\n\nIndented paragraph."


def test_following_blocks_belong_to_the_bullet_before_them() -> None:
    text = """## Sec

- First paper
> quoted note

    indented code

A sentence about the first paper.

- Second paper
"""
    first, second = parse(text).records
    assert first.note == "quoted note\n\nindented code\n\nA sentence about the first paper."
    assert second.note == ""


def test_ordered_lists_are_papers_too() -> None:
    assert titles(parse("## S\n\n1. One\n2. Two\n").records) == ["One", "Two"]


# ---------------------------------------------------------------------------- reading lists

README = """#### 2018-02

- The Matrix Calculus You Need For Deep Learning [[arXiv](https://arxiv.org/abs/1802.01528v2)]
- Behavior is Everything [[paper](https://example.org/p.pdf)] [[code](https://github.com/x/y)]
- [Hindsight Experience Replay](notes/hindsight-ep.md) [[arXiv](https://arxiv.org/abs/1707.01495)] [[article](https://blog.example/her)]
- SBNet: Sparse Blocks Network [[arXiv](https://arxiv.org/pdf/1801.02108.pdf)] [[code](https://github.com/uber/sbnet)]
- Fine-tuned Language Models [[arXiv](https://arxiv.org/abs/1801.06146)] [[code]()] (soon)
- Scalable and accurate deep learning for electronic health
records [[arXiv](https://arxiv.org/abs/1801.07860)]
- Learning to Compose Words[[OpenReview](http://openreview.net/forum?id=Skvgqgqxe)]
- [Third-Person Imitation Learning](../shared/third-person.md) [[OpenReview](http://openreview.net/forum?id=B16dGcqlx)]
- [Web Title](https://example.org/paper) [[code](https://github.com/a/b)]
- Plain Title [pdf](https://example.org/a.pdf) [code](https://github.com/c/d)
- [](https://example.org/empty)

#### 2016-11 (ICLR Edition)

Reinforcement Learning:

-Learning to reinforcement learn [[arXiv](https://arxiv.org/abs/1611.05763)]
- A Connection between GANs and IRL [[arXiv](https://arxiv.org/abs/1611.03852)]

Machine Translation & Dialog

- [Dual Learning for Machine Translation](notes/dual-learning-mt.md) [[arXiv](https://arxiv.org/abs/1611.00179)]
"""


def test_reading_list_titles_links_and_sections() -> None:
    result = parse(README, "lists/README.md")
    by_title = {r.title: r for r in result.records}
    assert titles(result.records) == [
        "The Matrix Calculus You Need For Deep Learning",
        "Behavior is Everything",
        "Hindsight Experience Replay",
        "SBNet: Sparse Blocks Network",
        "Fine-tuned Language Models",
        "Scalable and accurate deep learning for electronic health records",
        "Learning to Compose Words",
        "Third-Person Imitation Learning",
        "Web Title",
        "Plain Title",
        "A Connection between GANs and IRL",
        "Dual Learning for Machine Translation",
    ]
    matrix = by_title["The Matrix Calculus You Need For Deep Learning"]
    assert (matrix.arxiv, matrix.url) == ("1802.01528", "https://arxiv.org/abs/1802.01528")
    assert (matrix.line, matrix.section) == (3, ["2018-02"])
    assert by_title["SBNet: Sparse Blocks Network"].arxiv == "1801.02108"
    behavior = by_title["Behavior is Everything"]
    assert (behavior.arxiv, behavior.url) == (None, "https://example.org/p.pdf")
    her = by_title["Hindsight Experience Replay"]
    assert her.arxiv == "1707.01495" and her.url == "https://arxiv.org/abs/1707.01495"
    # The note file is resolved from the README's own folder, relative to the notes root.
    assert her.extra == {"note_file": "lists/notes/hindsight-ep.md"}
    assert (
        by_title["Third-Person Imitation Learning"].extra["note_file"] == "shared/third-person.md"
    )
    assert by_title["Web Title"].url == "https://example.org/paper"
    assert by_title["Plain Title"].url == "https://example.org/a.pdf"
    assert by_title["Scalable and accurate deep learning for electronic health records"].line == 8
    dual = by_title["Dual Learning for Machine Translation"]
    assert dual.section == ["2016-11 (ICLR Edition)", "Machine Translation & Dialog"]
    assert by_title["A Connection between GANs and IRL"].section == [
        "2016-11 (ICLR Edition)",
        "Reinforcement Learning",
    ]
    assert all(r.note == "" for r in result.records)


def test_reading_list_problems_for_empty_title_and_spaceless_bullet() -> None:
    problems = parse(README, "README.md").problems
    assert [(p.line, p.message.split(";")[0]) for p in problems] == [
        (14, "bullet without title text"),
        (20, "text with links outside any bullet, not read as a paper (a bullet needs a "
         "space after its '-', '*' or '+')"),
    ]  # fmt: skip


def test_note_file_outside_notes_or_not_markdown_is_not_linked() -> None:
    text = (
        "- [A](../../x.md)\n- [B](https://h.org/x.md)\n- [C](notes/c.pdf)\n- [D](n/My%20D.md#s)\n"
    )
    records = parse(text, "README.md").records
    assert [r.extra.get("note_file") for r in records] == [None, None, None, "n/My D.md"]


def test_bullet_linking_a_note_file_merges_with_that_files_paper(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "README.md").write_text(
        "## RL\n\n- [HER](notes/her.md) [[code](https://github.com/x)]\n- Other paper\n"
    )
    (tmp_path / "notes" / "her.md").write_text(
        "## [Hindsight Experience Replay](https://openreview.net/forum?id=1)\n\n"
        "TLDR; Replay with goals.\n\n#### Key Points\n\n- goals\n- replay\n"
    )
    files, problems = list_note_files(tmp_path)
    assert problems == []
    records = []
    for f in files:
        records += read_markdown_file(f, f.relative_to(tmp_path).as_posix()).records
    papers = merge(records)
    assert len(papers) == 2
    her = papers[0]
    assert [r.file for r in her.records] == ["README.md", "notes/her.md"]
    assert her.notes == ["TLDR; Replay with goals.\n\nKey Points\n\ngoals\nreplay"]


# ---------------------------------------------------------------------------- one paper per file


def test_front_matter_fields() -> None:
    text = """---
title: "Attention Is All You Need"
authors: Ashish Vaswani and Noam Shazeer
year: 2017
venue: NeurIPS
tags: [transformers, attention]
arxiv: 1706.03760
doi: https://doi.org/10.5555/3295222.3295349
abstract: We propose the Transformer.
rating: 5
nested: {a: 1}
---
# Attention Is All You Need

Self-attention only.

- multi-head
- positional encodings
"""
    result = parse(text, "papers/attention.md")
    assert result.problems == []
    [r] = result.records
    assert r.title == "Attention Is All You Need"
    assert (r.file, r.line, r.section) == ("papers/attention.md", 1, [])
    assert r.authors == ["Ashish Vaswani", "Noam Shazeer"]
    assert (r.year, r.venue, r.tags) == (2017, "NeurIPS", ["transformers", "attention"])
    # YAML would read 1706.03760 as the float 1706.0376; the id must survive as written.
    assert r.arxiv == "1706.03760" and r.url == "https://arxiv.org/abs/1706.03760"
    assert r.doi == "10.5555/3295222.3295349"
    assert r.abstract == "We propose the Transformer."
    assert r.extra == {"rating": "5", "kind": "paper-file"}
    # The heading repeating the title is not note text; the bullets are, not papers.
    assert r.note == "Self-attention only.\n\nmulti-head\npositional encodings"


def test_front_matter_author_list_and_comma_strings() -> None:
    text = "---\ntitle: T\nauthors: [A One, B Two]\ntags: x, y\n---\nbody\n"
    [r] = parse(text).records
    assert (r.authors, r.tags, r.note) == (["A One", "B Two"], ["x", "y"], "body")
    text = "---\ntitle: T\nauthor: A One, B Two\nurl: https://x.org/p\n---\n"
    [r] = parse(text).records
    assert (r.authors, r.url) == (["A One", "B Two"], "https://x.org/p")


def test_front_matter_is_loaded_safely() -> None:
    text = "---\ntitle: !!python/object/apply:os.system ['echo pwned']\n---\n# Fallback\n\nText.\n"
    # No object is built from the tag (nothing runs); the title is simply not a string.
    assert [r.title for r in parse(text).records] == ["Fallback"]


def test_broken_front_matter_is_a_problem_and_the_body_still_counts() -> None:
    result = parse("---\ntitle: [unclosed\n---\n# Heading Title\n\nSome prose.\n", "b.md")
    assert [r.title for r in result.records] == ["Heading Title"]
    assert result.records[0].line == 4
    [problem] = result.problems
    assert problem.line == 2 and "not valid YAML" in problem.message
    result = parse("---\n- just\n- a list\n---\n# H\n")
    assert "not a key: value mapping" in result.problems[0].message


def test_linked_heading_gives_title_arxiv_and_url() -> None:
    text = """## [Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift](http://arxiv.org/abs/1502.03167)

TLDR; Normalise activations.

#### Key Points

- Bullets here are key points, not papers.
- Another one.
"""  # noqa: E501
    [r] = parse(text, "notes/batch-normalization.md").records
    assert r.title.startswith("Batch Normalization: Accelerating")
    assert (r.arxiv, r.url, r.line) == ("1502.03167", "https://arxiv.org/abs/1502.03167", 1)
    assert r.extra == {"kind": "paper-file"}
    assert r.note == (
        "TLDR; Normalise activations.\n\nKey Points\n\n"
        "Bullets here are key points, not papers.\nAnother one."
    )


def test_heading_with_bracketed_arxiv_link_and_lone_link_paragraph() -> None:
    [r] = parse(
        "## A Structured Embedding [[arXiv](https://arxiv.org/abs/1703.03130)]\n\n- a\n- b\n"
    ).records
    assert (r.title, r.arxiv) == ("A Structured Embedding", "1703.03130")
    [r] = parse(
        "\n[Diverse Beam Search](https://arxiv.org/abs/1610.02424)\n\nTLDR; more.\n"
    ).records
    assert (r.title, r.arxiv, r.line, r.note) == (
        "Diverse Beam Search",
        "1610.02424",
        2,
        "TLDR; more.",
    )


def test_heading_and_summary_then_bullets_is_one_paper() -> None:
    text = (
        "## Dual Learning for Machine Translation\n\n"
        "TLDR; The authors finetune an NMT model using a dual game played between two agents.\n\n"
        "#### Key Points\n\n- one\n- two\n- three\n"
    )
    [r] = parse(text).records
    assert r.title == "Dual Learning for Machine Translation"
    assert r.extra["kind"] == "paper-file"


def test_list_with_a_short_intro_is_still_a_list() -> None:
    text = "# Reading list\n\nPapers I read.\n\n## Vision\n\n- A paper\n- B paper\n"
    assert titles(parse(text).records) == ["A paper", "B paper"]


def test_heading_and_prose_without_list_is_one_paper() -> None:
    [r] = parse("# Some Paper\n\nShort prose.\n").records
    assert (r.title, r.note, r.extra) == ("Some Paper", "Short prose.", {"kind": "paper-file"})


def test_untitled_prose_is_skipped_with_a_reason_and_empty_file_is_nothing() -> None:
    result = parse("just some words\n")
    assert result.records == [] and result.reading == "skipped"
    assert "no heading" in result.reason
    assert parse("").records == [] and parse("").problems == []
    assert parse("\n\n  \n").records == []


# ---------------------------------------------------------------------------- real data


def test_dennybritz_readme_and_notes() -> None:
    if not DENNYBRITZ.is_dir():
        pytest.skip(f"{DENNYBRITZ} is not available")
    files, problems = list_note_files(DENNYBRITZ)
    assert problems == []
    readme = read_markdown_file(DENNYBRITZ / "README.md", "README.md")
    assert len(readme.records) == 627  # one per bullet: `grep -c '^\s*- '`
    # "-Learning to reinforcement learn" has no space after '-': CommonMark reads a paragraph.
    assert [(p.line, "space after" in p.message) for p in readme.problems] == [(349, True)]
    note_records: dict[str, Record] = {}
    for path in sorted((DENNYBRITZ / "notes").glob("*.md")):
        rel = path.relative_to(DENNYBRITZ).as_posix()
        result = read_markdown_file(path, rel)
        assert result.problems == [], rel
        [record] = result.records  # every note is about one paper, whatever its bullets
        assert record.extra["kind"] == "paper-file" and record.title and record.note
        note_records[rel] = record
    assert len(note_records) == 99
    assert note_records["notes/copynet.md"].arxiv == "1603.06393"  # from a 'ttp://' link
    assert (
        note_records["notes/dual-learning-mt.md"].title == "Dual Learning for Machine Translation"
    )

    records = readme.records + list(note_records.values())
    papers = merge(records)
    from_readme = [p for p in papers if any(r.file == "README.md" for r in p.records)]
    # 627 bullets make 619 papers: five bullets are listed twice, and three pairs share an
    # arXiv id (two renamed papers, one copy-paste slip). Every note joins a bullet.
    assert len(from_readme) == len(papers) == 619
    assert len({id(p) for p in papers for r in p.records if r.file == "README.md"}) == 619

    linked = [r for r in readme.records if r.extra.get("note_file")]
    assert len(linked) == 99
    paper_of = {id(r): p for p in papers for r in p.records}
    joined = 0
    for bullet in linked:
        note = note_records.get(bullet.extra["note_file"])
        if note is None:  # two bullets link "x.md" where the file is notes/x.md
            assert not (DENNYBRITZ / bullet.extra["note_file"]).exists()
            continue
        assert note.note in paper_of[id(bullet)].notes
        joined += 1
    assert joined == 97

    seen_titles: set[str] = set()
    seen_arxiv: set[str] = set()
    for p in papers:
        norms = {normalise_title(r.title) for r in p.records}
        ids = {r.arxiv for r in p.records if r.arxiv}
        assert not norms & seen_titles and not ids & seen_arxiv, p.title
        seen_titles |= norms
        seen_arxiv |= ids


# ---------------------------------------------------------------------------- bad input


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_bytes(b"# Title\n\x00\x01\x02")
    result = read_markdown_file(path, "b.md")
    assert result.records == [] and "binary" in result.problems[0].message


def test_invalid_utf8_names_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "u.md"
    path.write_bytes(b"# Title\n\n- ok\n- bad \xff byte\n")
    result = read_markdown_file(path, "u.md")
    assert result.records == []
    [problem] = result.problems
    assert problem.line == 4 and "byte offset 20" in problem.message


def test_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf# L\n\n- Paper One\n")
    result = read_markdown_file(path, "bom.md")
    assert [(r.title, r.line) for r in result.records] == [("Paper One", 3)]


def test_oversize_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(note_files, "MAX_NOTE_BYTES", 100)
    path = tmp_path / "big.md"
    path.write_text("- paper\n" * 20)
    result = read_markdown_file(path, "big.md")
    assert result.records == [] and "limit" in result.problems[0].message


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    result = read_markdown_file(tmp_path / "missing.md", "missing.md")
    assert result.records == [] and "cannot read" in result.problems[0].message
    result = read_markdown_file(tmp_path, "dir.md")
    assert result.records == [] and result.problems
    if os.geteuid() == 0:
        pytest.skip("root can read files without read permission")
    path = tmp_path / "locked.md"
    path.write_text("- paper\n")
    path.chmod(0)
    try:
        result = read_markdown_file(path, "locked.md")
    finally:
        path.chmod(0o644)
    assert result.records == [] and "cannot read" in result.problems[0].message


def test_ten_thousand_bullets() -> None:
    # How fast this is belongs to bench/, not to a timed test on a shared machine.
    text = "## Sec\n\n" + "\n".join(
        f"- Paper number {i} on things [[arXiv](https://arxiv.org/abs/1707.{i:05d})]"
        for i in range(10_000)
    )
    result = parse(text)
    assert len(result.records) == 10_000 and result.problems == []
    assert result.records[-1].line == 10_002 and result.records[-1].arxiv == "1707.09999"


def test_lists_nested_100_deep() -> None:
    text = "## S\n\n" + "\n".join("  " * i + f"- item {i}" for i in range(100))
    text += "\n\n## After\n\n- later paper\n"
    result = parse(text)
    assert result.problems == []
    assert titles(result.records) == ["item 0", "later paper"]
    assert "item 99" in result.records[0].note


def test_nesting_past_the_parser_limit_is_reported() -> None:
    for text in (
        "\n".join("  " * i + f"- item {i}" for i in range(300)),
        ">" * 5000 + " deep",
        "- a\n" + "  " * 2000 + "- b\n",
    ):
        result = parse(text)
        assert all(r.title for r in result.records)
        assert all("internal error" not in p.message for p in result.problems)
    assert "nested more than" in parse(">" * 5000 + " deep").problems[0].message


def test_weird_input_does_not_raise() -> None:
    for text in (
        "- [unbalanced [[brackets](",
        "- ]]][[[ ((( )))",
        "- \u202e\u0000\ufffd\U0001f600 emoji \u0301",
        "[" * 5000 + "x" + "]" * 5000,
        "# \n\n##\n\n- \n",
        "---\n",
        "---\n---\n",
        "---\ntitle:\n---\n",
        "\r\n- a\r- b\r\n",
        "* * *\n- after rule",
    ):
        result = parse(text)
        assert all(r.title.strip() for r in result.records)
        assert all("internal error" not in p.message for p in result.problems)


def test_empty_titles_are_problems() -> None:
    result = parse("- [](https://x.org)\n-\n- **  **\n- Real\n")
    assert titles(result.records) == ["Real"]
    assert [p.line for p in result.problems] == [1, 2, 3]


# ---------------------------------------------------------------------------- listing files


def test_list_note_files(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    for name in ("a.md", "B.MD", "sub/c.markdown", "sub/deeper/d.Md", "x.bib", "y.jsonl"):
        (root / name).write_text("- p\n")
    for name in ("z.txt", ".hidden.md", ".git/e.md", "README"):
        (root / name).write_text("- p\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ext.md").write_text("- p\n")
    (root / "ext").symlink_to(outside)  # a linked folder outside notes is followed
    (root / "loop").symlink_to(root)  # a loop
    (root / "sub" / "up").symlink_to(root / "sub")  # another loop
    (root / "link.md").symlink_to(root / "a.md")  # a second path to one file
    (root / "dead.md").symlink_to(tmp_path / "nowhere.md")

    files, problems = list_note_files(root)
    rels = [f.relative_to(root).as_posix() for f in files]
    assert rels == sorted(rels)
    assert set(rels) == {
        "a.md",
        "B.MD",
        "ext/ext.md",
        "sub/c.markdown",
        "sub/deeper/d.Md",
        "x.bib",
        "y.jsonl",
    }
    assert sorted(p.file for p in problems) == ["dead.md", "loop", "sub/up"]
    assert all(p.line is None for p in problems)


def test_list_note_files_unreadable_folder_and_missing_root(tmp_path: Path) -> None:
    files, problems = list_note_files(tmp_path / "missing")
    assert files == [] and len(problems) == 1
    if os.geteuid() == 0:
        pytest.skip("root can list folders without read permission")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "a.md").write_text("- p\n")
    (tmp_path / "ok.md").write_text("- p\n")
    locked.chmod(0)
    try:
        files, problems = list_note_files(tmp_path)
    finally:
        locked.chmod(0o755)
    assert [f.name for f in files] == ["ok.md"]
    assert [p.file for p in problems] == ["locked"]


# ---------------------------------------------------------------------------- fuzzing


def _line_count(text: str) -> int:
    # markdown-it counts lines the way it splits them: \r\n, \r or \n.
    return len(re.split(r"\r\n|\r|\n", text))


def _check(text: str) -> None:
    for read_as in ("auto", "list", "paper"):
        result = parse_markdown(text, "fuzz.md", read_as)
        for r in result.records:
            assert r.title.strip() and r.title == r.title.strip(), r
            assert 1 <= r.line <= _line_count(text), (r.line, text)
            assert r.file == "fuzz.md"
            assert r.year is None or 1900 <= r.year <= 2099
        assert all("internal error" not in p.message for p in result.problems), result.problems
        # The reading says what was returned: a list of N papers, one paper, or nothing.
        n = len(result.records)
        if result.reading == "one paper":
            assert n == 1 and result.records[0].extra["kind"] == "paper-file"
        elif result.reading.startswith("list of"):
            assert result.reading.split()[2] == str(n)
        else:
            assert result.reading == "skipped" and n == 0, result
        assert result.reason
        if read_as == "paper":
            assert n <= 1


_PIECES = st.sampled_from(
    [
        "# ", "## ", "#### ", "- ", "* ", "1. ", "  ", "    ", "\t", "> ", "\n", "\n\n",
        "[", "]", "(", ")", "[[arXiv](https://arxiv.org/abs/1707.01495)]", "[T](notes/a.md)",
        "[](u)", "__", "**", "`", "```", "---", "---\ntitle: x\n---\n", "<b>", "&amp;",
        "Title", "words here", "â€“", "\u00e9", "\u200b", ":", "-x", "\\",
    ]
)  # fmt: skip
_MARKDOWNISH = st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=60).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_fuzz_any_text(text: str) -> None:
    _check(text)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MARKDOWNISH)
def test_fuzz_markdownish(text: str) -> None:
    _check(text)
