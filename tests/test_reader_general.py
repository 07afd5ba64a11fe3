"""The reader on shapes of notes it was not tuned on (issue 18), each class shown by small files
written here: reading lists that link the author's own pages, vault pages titled by their file
name, rows linking a folder, absolute links to the same repository, per-paper notes full of
bullets. And stability (issue 24): one line added never flips how a whole file is read, and a
rebuild that drops most of a file's papers says so."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from search.build import collect_papers
from search.faces.cli import cli
from search.readers.markdown import parse_markdown
from tests.conftest import SEED
from tests.test_reader import write


def titles(notes: Path) -> list[str]:
    return sorted(p.title for p in collect_papers(notes))


NEW_SECTION = "\n\n### New\n* A New Paper On Contrastive Learning (2022)\n"


# ---------------------------------------------------------------------------- stability


def test_one_tagged_bullet_added_keeps_the_untagged_list() -> None:
    text = SEED.read_text(encoding="utf-8")
    before = parse_markdown(text, "cvpr2020.md")
    after = parse_markdown(text + NEW_SECTION, "cvpr2020.md")
    assert len(before.records) == 16
    assert [r.title for r in after.records][:16] == [r.title for r in before.records]
    assert after.records[16].title == "A New Paper On Contrastive Learning"
    assert after.records[16].year == 2022
    assert len(after.records) == 17


def test_one_linked_bullet_added_keeps_a_plain_title_list() -> None:
    plain = "".join(f"* Learning Something Useful Number {n}\n" for n in range(8))
    text = (
        f"# To read\n\n{plain}\n## Linked\n\n* [A Linked Paper](https://arxiv.org/abs/2001.00001)\n"
    )
    assert len(parse_markdown(text, "n.md").records) == 9


def test_a_rebuild_that_drops_most_of_a_file_names_it(library: Path) -> None:
    note = library / "notes" / "list.md"
    shutil.copy(SEED, note)
    runner = CliRunner()
    first = runner.invoke(cli, ["rebuild", "--model", "fake"])
    assert first.exit_code == 0, first.stderr
    note.write_text("# Interesting CVPR2020 papers\n\n* Proxy Anchor Loss (2020)\n", "utf-8")
    second = runner.invoke(cli, ["rebuild", "--model", "fake"])
    assert second.exit_code == 0, second.stderr
    assert "list.md: 1 paper now, 16 before" in second.stderr


# ---------------------------------------------------------------------------- 1. own-site links

OWN_SITE = (
    "# My reading\n\nPapers I read, with my notes on my blog.\n\n## List of papers\n\n"
    + "".join(
        f"- [{t}](https://someone.example.com/notes/{t.lower().replace(' ', '-')})\n"
        for t in [
            "Attention Is All You Need",
            "Deep Residual Learning for Image Recognition",
            "Generative Adversarial Networks",
            "Batch Normalization Accelerating Deep Network Training",
            "Neural Machine Translation by Jointly Learning to Align and Translate",
            "Dropout A Simple Way to Prevent Neural Networks from Overfitting",
            "Playing Atari with Deep Reinforcement Learning",
            "Sequence to Sequence Learning with Neural Networks",
            "Adam A Method for Stochastic Optimization",
            "Distilling the Knowledge in a Neural Network",
        ]
    )
)

RESOURCES = """# Machine learning

Some places I like to learn from.

- [My blog](https://someone.example.com)
- [Twitter](https://twitter.example.com/me)
- [Course videos](https://videos.example.com/course)
- [GitHub](https://github.example.com/me)
"""


def test_a_long_regular_list_of_links_to_any_host_is_a_reading_list() -> None:
    result = parse_markdown(OWN_SITE, "README.md")
    assert result.reading == "list of 10 papers", result.reason
    assert result.records[0].title == "Attention Is All You Need"
    assert result.records[0].url == "https://someone.example.com/notes/attention-is-all-you-need"


def test_a_short_list_of_site_links_is_not_a_reading_list() -> None:
    assert parse_markdown(RESOURCES, "README.md").records == []


# ---------------------------------------------------------------------------- 2. vault pages

PROSE = (
    "This paper shows that a transformer trained on masked patches learns features that transfer "
    "well to detection and segmentation, with far less labelled data than before.\n\n"
    "The encoder sees only the visible quarter of the patches, which makes pre-training fast; "
    "the decoder is small and thrown away afterwards. I liked the ablations on the mask ratio.\n"
)


def test_a_vault_page_of_prose_without_heading_is_titled_by_its_file_name(tmp_path: Path) -> None:
    notes = write(
        tmp_path / "notes",
        {
            "vault/masked-autoencoders-are-scalable-vision-learners.md": PROSE,
            "vault/Learning Transferable Visual Models.md": "# CLIP\n\n" + PROSE,
            "vault/Yann LeCun.md": "[[masked-autoencoders-are-scalable-vision-learners]]\n",
            "vault/empty page.md": "",
            "vault/tags/vision.md": "#vision #papers\n\n[[Learning Transferable Visual Models]]\n",
        },
    )
    papers = {p.title: p for p in collect_papers(notes)}
    assert set(papers) == {
        "masked autoencoders are scalable vision learners",
        "Learning Transferable Visual Models",
    }, sorted(papers)
    assert "CLIP" in papers["Learning Transferable Visual Models"].aliases


def test_the_same_vault_page_in_two_folders_is_one_paper(tmp_path: Path) -> None:
    notes = write(
        tmp_path / "notes",
        {
            "a/masked-autoencoders-are-scalable-vision-learners.md": PROSE,
            "b/masked-autoencoders-are-scalable-vision-learners.md": PROSE,
        },
    )
    assert len(collect_papers(notes)) == 1


# ---------------------------------------------------------------------------- 3. folder links


def test_a_row_linking_a_folder_joins_the_note_inside(tmp_path: Path) -> None:
    table = "| # | Title | Authors | Notes |\n|---|---|---|---|\n" + "".join(
        f"| {n}. | {t} | A. Author | [open](./0{n}-slug/) |\n"
        for n, t in enumerate(["Paper One About Graphs", "Paper Two About Trees", "Paper Three"])
    )
    notes = write(
        tmp_path / "notes",
        {
            "README.md": "# Papers\n\n" + table,
            "00-slug/summary.md": "# Paper One About Graphs\n\nGraphs are fun.\n",
            "01-slug/README.md": "# Summary: Paper Two About Trees\n\nTrees too.\n",
            "02-slug/notes on it.md": "Just prose about the third paper, nothing else here.\n",
        },
    )
    papers = collect_papers(notes)
    assert sorted(p.title for p in papers) == [
        "Paper One About Graphs",
        "Paper Three",
        "Paper Two About Trees",
    ]
    for p in papers:
        assert len({r.file for r in p.records}) == 2, (p.title, [r.file for r in p.records])


# ---------------------------------------------------------------------------- 4. absolute links


def test_absolute_links_to_the_same_repository_join_like_relative_ones(tmp_path: Path) -> None:
    base = "https://github.com/someone/my-notes/blob/main"
    readme = "# Notes\n\n" + "".join(
        f"- [{t}]({base}/papers/{f}.md)\n"
        for t, f in [("Paper One", "one"), ("Paper Two", "two"), ("Paper Three", "three")]
    )
    note = "# {t}: The Long Title\n\nRelated:\n\n" + "".join(
        f"- Compared with [work {n}](https://arxiv.org/abs/2001.0000{n}) (2020), the method "
        "is faster on long inputs.\n"
        for n in range(8)
    )
    notes = write(
        tmp_path / "notes",
        {
            "README.md": readme,
            "papers/one.md": note.format(t="Paper One"),
            "papers/two.md": note.format(t="Paper Two"),
            "papers/three.md": note.format(t="Paper Three"),
        },
    )
    papers = collect_papers(notes)
    assert len(papers) == 3, sorted(p.title for p in papers)
    for p in papers:
        assert len({r.file for r in p.records}) == 2


# ---------------------------------------------------------------------------- 5. per-paper notes


def test_a_note_full_of_linked_bullets_named_as_its_heading_is_one_paper() -> None:
    note = "# Contrastive Predictive Coding\n\n" + "".join(
        f"- It builds on [work {n}](https://arxiv.org/abs/1807.0{n:04d}) (2018), which showed "
        f"that predicting the future in latent space works.\n"
        for n in range(9)
    )
    result = parse_markdown(note, "papers/contrastive-predictive-coding.md")
    assert result.reading == "one paper", result.reason
    assert result.records[0].title == "Contrastive Predictive Coding"


def test_note_prefixes_are_not_part_of_the_title() -> None:
    for heading in ("Summary: Deep Sets", "Notes on Deep Sets", "Paper: Deep Sets"):
        result = parse_markdown(f"# {heading}\n\nSets are permutation invariant.\n", "n.md")
        assert [r.title for r in result.records] == ["Deep Sets"], heading


# ---------------------------------------------------------------------------- other languages

CJK_NOTE = """# Deep Residual Learning for Image Recognition

[Paper](https://arxiv.org/abs/1512.03385) | [Talk](https://video.example.com/x)

## 摘要

- 更深的网络更难训练，本文提出残差学习的框架来简化训练。
- 残差网络更容易优化，并且可以从显著增加的深度中获得精度提升。
- 在ImageNet上，152层的残差网络比VGG深8倍，但复杂度仍然更低。
- 这个结果在ILSVRC 2015分类任务上获得了第一名。
"""


def test_sentences_in_chinese_are_a_note_not_a_list_of_titles() -> None:
    result = parse_markdown(CJK_NOTE, "notes/003_resnet.md")
    assert result.reading == "one paper", result.reason
    assert result.records[0].title == "Deep Residual Learning for Image Recognition"
    assert result.records[0].arxiv == "1512.03385"


def test_a_note_opening_with_a_paper_link_labelled_paper_is_titled_by_its_file_name() -> None:
    text = "[Paper](https://arxiv.org/abs/2005.12872) | [Code](https://code.example.com)\n\n" + (
        "## 摘要\n\n本文把目标检测看作集合预测问题。\n"
    )
    [record] = parse_markdown(text, "notes/012_detr.md").records
    assert record.title == "detr" and record.arxiv == "2005.12872"


def test_task_list_boxes_are_not_titles() -> None:
    text = "# Read\n\n" + "".join(
        f"- [{box}] [{t}](./notes/{n}.md)\n"
        for n, (box, t) in enumerate([("x", "BERT"), ("x", "ViT"), (" ", "MAE"), ("x", "MoCo")])
    )
    result = parse_markdown(text, "README.md")
    assert [r.title for r in result.records] == ["BERT", "ViT", "MAE", "MoCo"]


def test_bullets_under_a_heading_that_names_its_file_are_an_outline() -> None:
    text = "# Lessons From Thirty Years\n\n## Practical matters\n\n" + "".join(
        f"- {item}\n"
        for item in [
            "Choose the algorithm to suit the problem",
            "Learn the representation to suit the problem",
            "Multiagent interaction is complicated",
            "Interaction with people can be simplifying",
            "Decompose problems to use multiple algorithms",
        ]
    )
    result = parse_markdown(text, "talks/Lessons From Thirty Years.md")
    assert result.reading == "one paper", result.reason
    assert result.unsure
    # The same bullets in a file named otherwise stay a list of titles.
    assert parse_markdown(text, "talks/to-read.md").reading == "list of 5 papers"


# ---------------------------------------------------------------------------- unsure readings


def test_list_files_marks_unsure_readings_and_doubtful_shows_only_those(library: Path) -> None:
    write(
        library / "notes",
        {
            "reading.md": "# Reading\n\n"
            + "".join(f"- [Paper {n}](https://arxiv.org/abs/2001.0000{n})\n" for n in range(6)),
            "musings.md": "# Musings\n\nSome thoughts I had on a walk, not about any paper.\n",
        },
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["rebuild", "--model", "fake"]).exit_code == 0
    table = runner.invoke(cli, ["list", "--files"]).stdout
    [musings] = [line for line in table.splitlines() if "musings.md" in line]
    [reading] = [line for line in table.splitlines() if "reading.md" in line]
    assert "unsure:" in musings and "unsure:" not in reading
    doubtful = runner.invoke(cli, ["list", "--files", "--doubtful"])
    assert doubtful.exit_code == 0
    assert "musings.md" in doubtful.stdout and "reading.md" not in doubtful.stdout
    rows = json.loads(runner.invoke(cli, ["list", "--files", "--doubtful", "--json"]).stdout)
    assert [r["file"] for r in rows] == ["notes/musings.md"] and rows[0]["unsure"]
    bad = runner.invoke(cli, ["list", "--doubtful"])
    assert bad.exit_code == 2 and "--files" in bad.stderr
    # The next rebuild takes musings.md from the parse cache: the mark stays.
    with (library / "notes" / "reading.md").open("a", encoding="utf-8") as f:
        f.write("- [Paper 7](https://arxiv.org/abs/2001.00007)\n")
    again = runner.invoke(cli, ["rebuild", "--model", "fake"])
    assert again.exit_code == 0 and "(1 parsed)" in again.stderr
    assert "musings.md" in runner.invoke(cli, ["list", "--files", "--doubtful"]).stdout


# ---------------------------------------------------------------------------- the parse cache


def test_a_same_size_edit_with_its_mtime_put_back_is_read_again(library: Path) -> None:
    note = library / "notes" / "paper.md"
    note.write_text("# Alpha Paper Title\n\nA note.\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["rebuild", "--model", "fake"]).exit_code == 0
    st = note.stat()
    note.write_text("# Omega Paper Title\n\nA note.\n", encoding="utf-8")  # same size
    os.utime(note, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (note.stat().st_size, note.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = runner.invoke(cli, ["rebuild", "--model", "fake"])
    assert again.exit_code == 0, again.stderr
    listed = json.loads(runner.invoke(cli, ["list", "--json"]).stdout)
    assert [p["title"] for p in listed] == ["Omega Paper Title"]


def test_headings_opening_with_a_bracketed_date_are_dated_entries() -> None:
    text = "# Reinforcement Learning\n\n" + "".join(
        f"## [20{n:02d}-0{n % 9 + 1}] A Paper Title Number {n}\n\n[[A Paper Title Number {n}]]\n"
        "- It does one thing well and another thing badly\n- Results depend on the tuning\n\n"
        for n in range(10, 14)
    )
    result = parse_markdown(text, "papers/README.md")
    assert [(r.title, r.year) for r in result.records] == [
        (f"A Paper Title Number {n}", 2000 + n) for n in range(10, 14)
    ]
