"""The notes reader on hand-written examples of the shapes people write notes in: structure
from evidence across the whole file, titles as people write them, links between files,
papers.toml, and `papers list --files`. (Real repositories: tests/test_notes_real.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from search.build import collect_papers, read_notes_dir
from search.faces.cli import cli
from search.readers.config import ConfigError, load_config
from search.readers.markdown import parse_markdown
from search.readers.records import Record


def parse(text: str, rel: str = "n.md") -> list[Record]:
    return parse_markdown(text, rel).records


def titles(records: list[Record]) -> list[str]:
    return [r.title for r in records]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


# ---------------------------------------------------------------------------- a README after prose

BIG_README = """# Paper notes

I keep notes on papers about perception for self-driving cars here. Most of them are about
monocular 3D detection, and I try to write one note a week, with a tl;dr and key ideas.

These notes are mine; if you find a mistake, open an issue. The list below is by month.

## About me

- [My blog](https://blog.example.com)
- [Twitter](https://twitter.example.com/me)

## 2019-02

- [Aggregated Residual Transformations for Deep Neural Networks](https://arxiv.org/abs/1611.05431) [[Notes](paper_notes/resnext.md)] [backbone] <kbd>CVPR 2017</kbd>
- [Squeeze-and-Excitation Networks](https://arxiv.org/abs/1709.01507) [[Notes](paper_notes/senet.md)] <kbd>CVPR 2018</kbd>
- [Focal Loss for Dense Object Detection](https://arxiv.org/abs/1708.02002) [mono3D, loss]

## 2019-01

- [Feature Pyramid Networks for Object Detection](https://arxiv.org/abs/1612.03144) <kbd>ICLR 2026</kbd>
"""  # noqa: E501

RESNEXT = """# [Aggregated Residual Transformations for Deep Neural Networks](https://arxiv.org/pdf/1611.05431.pdf) (ResNeXt)

_Feb 2019_

tl;dr: Introduce a new dimension, cardinality, besides depth and width.

#### Overall impression
Simple and strong.

#### Key ideas
- **Cardinality** is the size of the set of transformations.
- [Inception](https://arxiv.org/abs/1409.4842) did this by hand.
- [ResNet](https://arxiv.org/abs/1512.03385) gives the shortcut.
"""  # noqa: E501

SENET = """# Squeeze-and-Excitation Networks

Reweight channels. Close to:

- [One](https://arxiv.org/abs/1709.00001)
- [Two](https://arxiv.org/abs/1709.00002)
- [Three](https://arxiv.org/abs/1709.00003)
- [Four](https://arxiv.org/abs/1709.00004)
- [Five](https://arxiv.org/abs/1709.00005)
"""


def test_reading_list_after_an_introduction_with_per_paper_notes(tmp_path: Path) -> None:
    notes = write(
        tmp_path / "notes",
        {"README.md": BIG_README, "paper_notes/resnext.md": RESNEXT, "paper_notes/senet.md": SENET},
    )
    readings, _ = read_notes_dir(notes)
    how = {r.rel: (r.final.reading, r.final.reason) for r in readings}
    assert how["README.md"][0] == "list of 4 papers"
    assert how["paper_notes/resnext.md"] == (
        "one paper",
        "its first heading or line links the paper",
    )
    # On its own it would be a list of five linked bullets; the README links it as a note.
    assert how["paper_notes/senet.md"] == ("one paper", "linked as a note from README.md:16")

    papers = collect_papers(notes)
    assert titles([p.records[0] for p in papers]) == [
        "Aggregated Residual Transformations for Deep Neural Networks",
        "Squeeze-and-Excitation Networks",
        "Focal Loss for Dense Object Detection",
        "Feature Pyramid Networks for Object Detection",
    ]
    resnext = papers[0]
    assert [r.file for r in resnext.records] == ["README.md", "paper_notes/resnext.md"]
    assert resnext.aliases == ["ResNeXt"]
    assert (resnext.arxiv, resnext.venue, resnext.year) == ("1611.05431", "CVPR", 2017)
    assert resnext.tags == ["backbone"]
    assert resnext.section == ["2019-02"]
    note = resnext.records[1]
    assert note.year == 2019  # from "_Feb 2019_", which is not note text
    assert note.note.startswith("tl;dr: Introduce a new dimension")
    assert "Feb 2019" not in note.note and "Cardinality is the size" in note.note
    assert papers[2].tags == ["mono3D", "loss"]
    assert (papers[3].venue, papers[3].year) == ("ICLR", 2026)


def test_sections_without_paper_entries_contribute_none() -> None:
    text = (
        "# Notes\n\n## About me\n\n- PhD student\n- Likes robots\n\n## Podcasts\n\n"
        "- [A podcast](https://pod.example.com)\n\n## Papers\n\n"
        "- Attention Is All You Need [[arXiv](https://arxiv.org/abs/1706.03762)]\n"
        "- Deep Residual Learning [[pdf](https://example.org/resnet.pdf)]\n"
    )
    result = parse_markdown(text, "n.md")
    assert titles(result.records) == ["Attention Is All You Need", "Deep Residual Learning"]
    assert result.reading == "list of 2 papers"


def test_plain_title_list_without_any_links_is_still_a_list() -> None:
    text = "# Good papers\n\n## Vision\n\n* Hyperbolic Image Embeddings\n> nice\n\n* Circle Loss\n"
    records = parse(text)
    assert titles(records) == ["Hyperbolic Image Embeddings", "Circle Loss"]
    assert records[0].note == "nice"


def test_bullets_continuing_a_sentence_or_labelled_are_not_papers() -> None:
    text = (
        "# My repository\n\nHere you will find, in the folders below, all of these things:\n\n"
        "- Concise notes and summaries\n- Guides for reading papers\n\n## Structure\n\n"
        "- `guides/` holds guides\n- **Notes:** one file per paper.\n"
    )
    result = parse_markdown(text, "README.md")
    assert result.records == [] and result.reading == "skipped"


def test_a_root_readme_with_a_heading_and_prose_is_not_a_paper() -> None:
    text = "# Paper notes\n\nA messy drawer of notes on papers I read.\n"
    assert parse_markdown(text, "README.md").reading == "skipped"
    assert titles(parse(text, "drawer.md")) == ["Paper notes"]


def test_category_bullets_with_linked_sub_items() -> None:
    text = (
        "- Vision\n  - [ViT](https://arxiv.org/abs/2010.11929)\n"
        "  - [DETR](https://arxiv.org/abs/2005.12872)\n- Language\n"
        "  - [BERT](https://arxiv.org/abs/1810.04805)\n"
    )
    records = parse(text)
    assert [(r.title, r.section) for r in records] == [
        ("ViT", ["Vision"]),
        ("DETR", ["Vision"]),
        ("BERT", ["Language"]),
    ]


# ---------------------------------------------------------------------------- other list shapes


def test_table_rows_with_a_title_column_are_papers() -> None:
    text = """# Papers

Ordered by topic:

- GANs

## GANs

| Title | Authors | In One Sentence | Summary | Link | Conference |
| --- | --- | --- | --- | --- | --- |
| Progressive Growing of GANs | Tero Karras et al. | Grow both networks. | [Summary](./summaries/pggan.md) | [Paper](https://arxiv.org/pdf/1710.10196.pdf) | ICLR 2018 |
| A Made-Up Paper Without Links | Some One | Short. | | | NeurIPS 2020 |
"""  # noqa: E501
    result = parse_markdown(text, "README.md")
    assert result.reading == "list of 2 papers"
    first, second = result.records
    assert first.title == "Progressive Growing of GANs"
    assert (first.arxiv, first.venue, first.year) == ("1710.10196", "ICLR", 2018)
    assert first.authors == ["Tero Karras et al."]
    assert first.extra["note_file"] == "summaries/pggan.md"
    assert first.note == "Grow both networks." and first.section == ["GANs"]
    assert first.line == 11
    assert (second.title, second.venue, second.year) == (
        "A Made-Up Paper Without Links",
        "NeurIPS",
        2020,
    )


def test_citation_bullets_give_the_title_sentence() -> None:
    text = """Information Extraction
======================

General
-------

* Ann Author and Bo B. Writer. Extracting Things from Text. ACL 2011. http://aclweb.org/anthology/P11-1.pdf
    - a note on it
* Cy Someone, et al. ICLR 2013. Vectors of Words in Space.
* Di Person. Do Nets Need to be Deep? ICLR 2014. http://arxiv.org/pdf/1312.6184v5.pdf
* Ed Quoter "Do Investors Trade Too Much?" Some Review, 1999.
"""  # noqa: E501
    records = parse(text, "ie.md")
    assert titles(records) == [
        "Extracting Things from Text",
        "Vectors of Words in Space",
        "Do Nets Need to be Deep?",
        "Do Investors Trade Too Much?",
    ]
    first = records[0]
    assert first.authors == ["Ann Author", "Bo B. Writer"]
    assert (first.venue, first.year, first.note) == ("ACL", 2011, "a note on it")
    assert first.section == ["General"]  # setext headings: the lone H1 names the file
    assert records[1].year == 2013 and records[2].arxiv == "1312.6184"
    assert records[3].year == 1999


def test_numbered_items_with_note_and_paper_links_written_loosely() -> None:
    text = """### Vision
1. Deep Residual Learning [[note](./ResNet/resnet.md)][[paper](https://arxiv.org/abs/1512.03385)]
2. Temporal Ensembling [[paper](https://arxiv.org/abs/1610.02242)[note][./TE/te.md]]
3. Filter Response Normalization [[note][./FRN/frn.md][paper][https://arxiv.org/abs/1911.09737]]
4. Non-Local Neural Networks [[note](./Non Local/nl.md)[paper](https://arxiv.org/abs/1711.07971)]
5. Photo-Realistic Super-Resolution Using a Generative Adversarial
    Network [[note](./SR/sr.md)][[paper](https://arxiv.org/pdf/1609.04802.pdf)]
"""
    records = parse(text, "README.md")
    assert [(r.title, r.extra.get("note_file")) for r in records] == [
        ("Deep Residual Learning", "ResNet/resnet.md"),
        ("Temporal Ensembling", "TE/te.md"),
        ("Filter Response Normalization", "FRN/frn.md"),
        ("Non-Local Neural Networks", "Non Local/nl.md"),
        ("Photo-Realistic Super-Resolution Using a Generative Adversarial Network", "SR/sr.md"),
    ]
    assert records[0].arxiv == "1512.03385" and records[1].arxiv == "1610.02242"


def test_broken_note_links_join_when_one_file_fits(tmp_path: Path) -> None:
    readme = (
        "1. Case Paper [[note](./Case/Note.md)][[paper](https://arxiv.org/abs/1)]\n"
        "2. Folder Paper [[note](./Folder/wrong-name.md)][[paper](https://arxiv.org/abs/2)]\n"
        "3. Name Paper [[note](unique.md)][[paper](https://arxiv.org/abs/3)]\n"
        "4. Lost Paper [[note](./Nowhere/gone.md)][[paper](https://arxiv.org/abs/4)]\n"
    )
    body = "\n\n### Motivation\n\nWords.\n"
    notes = write(
        tmp_path / "notes",
        {
            "README.md": readme,
            "Case/note.md": "# Case Heading" + body,
            "Folder/right-name.md": "# Folder Heading" + body,
            "deep/er/unique.md": "# Unique Heading" + body,
            "Alone/alone.md": "# A Paper Nobody Links" + body,
        },
    )
    papers = collect_papers(notes)
    files = {p.title: sorted(r.file for r in p.records) for p in papers}
    assert files == {
        "Case Paper": ["Case/note.md", "README.md"],
        "Folder Paper": ["Folder/right-name.md", "README.md"],
        "Name Paper": ["README.md", "deep/er/unique.md"],
        "Lost Paper": ["README.md"],
        "A Paper Nobody Links": ["Alone/alone.md"],
    }


def test_headings_with_year_tags_are_papers_with_their_text_as_note() -> None:
    text = (
        "# To Read\n\n## Attention is not Explanation (2019)\n\nSarthak Jain\n\n---\n\n"
        "- https://blog.example.com/post\n\n## Dynamic Capsules (2017)\n\nSara Sabour\n"
    )
    records = parse(text, "to-read.md")
    assert [(r.title, r.year, r.note) for r in records] == [
        ("Attention is not Explanation", 2019, "Sarthak Jain\n\nhttps://blog.example.com/post"),
        ("Dynamic Capsules", 2017, "Sara Sabour"),
    ]


# ---------------------------------------------------------------------------- titles


def test_title_trailers_become_fields() -> None:
    text = (
        "## 1911\n\n- [Attention is All You Need (2017) - Vaswani, Shazeer](notes/att.md)\n"
        "  - transformer, nlp\n"
        "- [Temporal Differences (Sutton 1988)](notes/td.md)\n"
        "- **2026-08-03** — [Critique of Agent Model](reviews/critique.md) — *arXiv* — "
        "[Source](https://arxiv.org/abs/2606.23991)\n"
        "- Mask R-CNN [ICCV 2017] [[arXiv](https://arxiv.org/abs/1703.06870)]\n"
    )
    att, td, critique, mask = parse(text, "README.md")
    assert (att.title, att.year, att.authors) == (
        "Attention is All You Need",
        2017,
        ["Vaswani", "Shazeer"],
    )
    assert att.note == "transformer, nlp"
    assert (td.title, td.year, td.authors, td.venue) == (
        "Temporal Differences",
        1988,
        ["Sutton"],
        None,
    )
    assert critique.title == "Critique of Agent Model"
    assert critique.extra["note_file"] == "reviews/critique.md"
    assert (mask.title, mask.venue, mask.year) == ("Mask R-CNN", "ICCV", 2017)


def test_invalid_heading_on_the_first_line_still_gives_the_title() -> None:
    for first in (
        "#[Correlated Q-learning](https://x.org/q.pdf)",
        "#![Cellular Disco](https://x.org/d.pdf)",
    ):
        [r] = parse(first + "\n\n## Key ideas\n\n- a\n- b\n")
        assert r.title in ("Correlated Q-learning", "Cellular Disco")
        assert r.url is not None and r.note == "Key ideas\n\na\nb"


def test_indented_line_under_a_bullet_is_the_note_d12() -> None:
    [walrus, other] = parse("* Walrus Paper\n  my note on it\n* Other Paper\n")
    assert (walrus.title, walrus.note) == ("Walrus Paper", "my note on it")
    assert other.title == "Other Paper"
    # A title wrapped onto the next line, the links after it, is one title.
    [r] = parse(
        "- Scalable and accurate\n  deep learning [[arXiv](https://arxiv.org/abs/1801.07860)]\n"
    )
    assert (r.title, r.note) == ("Scalable and accurate deep learning", "")


def test_front_matter_author_year_title_takes_the_description() -> None:
    text = (
        '---\ntitle: "Bazil 2010"\ndescription: "Modeling mitochondrial bioenergetics"\n'
        "tags: [mito]\n---\n\nSome notes.\n"
    )
    [r] = parse(text, "posts/bazil-2010.md")
    assert (r.title, r.aliases) == ("Modeling mitochondrial bioenergetics", ["Bazil 2010"])
    # A real title keeps its place; the description is only kept as a field.
    text = '---\ntitle: "Deep Learning"\ndescription: "A review"\n---\nText.\n'
    [r] = parse(text)
    assert (r.title, r.aliases, r.extra["description"]) == ("Deep Learning", [], "A review")


def test_generic_heading_under_front_matter_title_is_note_text() -> None:
    text = (
        '---\ntitle: "AI Agents and Infrastructure"\n---\n\n# Paper Review\n\n## Review\n\nText.\n'
    )
    [r] = parse(text)
    assert r.title == "AI Agents and Infrastructure"


def test_note_headings_are_not_titles_of_a_note() -> None:
    text = (
        "| Title | Authors |\n| --- | --- |\n| Continual Learning with Hypernetworks | X |\n"
        "\n### Abstract\n- a\n"
    )
    result = parse_markdown(text, "cl.md", read_as="paper")
    assert titles(result.records) == ["Continual Learning with Hypernetworks"]
    text = "### Introduction\n- a\n\n### Elastic Weight Consolidation\n- b\n"
    assert titles(parse_markdown(text, "Overcoming_forgetting.md", "paper").records) == [
        "Overcoming forgetting"
    ]


# ---------------------------------------------------------------------------- between files


def test_notes_among_one_paper_notes_are_papers_titled_by_file_name(tmp_path: Path) -> None:
    one = "## {}\n\n### Links\n\n* https://arxiv.org/abs/2412.19419\n\n### Notes\n\nTODO\n"
    notes = write(
        tmp_path / "notes",
        {
            "README.md": "# Papers I read\n\nWelcome.\n",
            "papers/graph_networks.md": one.format("Graph Networks"),
            "papers/bigtable.md": one.format("Bigtable"),
            "papers/bitcoin_paper.md": "https://bitcoin.org/bitcoin.pdf\n",
            "papers/box_plots.md": "More than a century ago, someone drew a plot. It was nice.\n",
        },
    )
    readings, _ = read_notes_dir(notes)
    how = {r.rel: r.final.reading for r in readings}
    assert how == {
        "README.md": "skipped",
        "papers/bigtable.md": "one paper",
        "papers/bitcoin_paper.md": "one paper",
        "papers/box_plots.md": "one paper",
        "papers/graph_networks.md": "one paper",
    }
    names = sorted(p.title for p in collect_papers(notes))
    assert names == ["Bigtable", "Graph Networks", "bitcoin paper", "box plots"]


# ---------------------------------------------------------------------------- papers.toml


def test_config_include_exclude_and_read_as(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "papers.toml": 'exclude = ["drafts/scratch.md"]\n\n[[files]]\nglob = "drafts/*"\n'
            'read_as = "paper"\n\n[[files]]\nglob = "lists/*.md"\nread_as = "list"\n',
        },
    )
    config = load_config(tmp_path)
    assert not config.included("drafts/scratch.md") and config.included("drafts/a.md")
    assert config.read_as("drafts/sub/a.md") == "paper"
    assert config.read_as("lists/x.md") == "list" and config.read_as("x.md") == "auto"
    assert config.rule_for("lists/x.md") is not None


@pytest.mark.parametrize(
    "text, says",
    [
        ("include = [\n", "not valid TOML"),
        ('include = "x"\nexclude = [1]\n', "`exclude` must be a list"),
        ('[[files]]\nglob = "a"\nread_as = "book"\n', 'read_as must be "list"'),
        ('[[files]]\nread_as = "list"\n', "needs a `glob`"),
        ("colour = 3\n", "unknown setting 'colour'"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "papers.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        load_config(tmp_path)


def run(*args: str, ok: bool = True) -> click.testing.Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.stderr
    return result


DRAFT = """# My draft notes on Dropout

Dropout: A Simple Way to Prevent Overfitting [[pdf](https://jmlr.org/papers/v15/srivastava14a.pdf)]

- [Related: Batch Norm](https://arxiv.org/abs/1502.03167)
- [Related: Layer Norm](https://arxiv.org/abs/1607.06450)
"""


def test_a_misread_file_is_fixed_by_config_alone(library: Path) -> None:
    write(
        library / "notes", {"drafts/dropout.md": DRAFT, "list.md": "- Some Paper\n- Other Paper\n"}
    )
    run("rebuild", "--model", "fake")
    listed = json.loads(run("list", "--files", "--json").stdout)
    assert {r["file"]: r["reading"] for r in listed} == {
        "notes/drafts/dropout.md": "list of 2 papers",
        "notes/list.md": "list of 2 papers",
    }
    (library / "papers.toml").write_text(
        '[[files]]\nglob = "drafts/*.md"\nread_as = "paper"\n', encoding="utf-8"
    )
    result = run("rebuild", "--model", "fake")
    assert "(1 parsed)" in result.stderr  # only the file whose reading changed
    listed = json.loads(run("list", "--files", "--json").stdout)
    draft = next(r for r in listed if r["file"] == "notes/drafts/dropout.md")
    assert draft["reading"] == "one paper" and draft["papers"] == 1
    assert draft["reason"] == 'papers.toml: read_as = "paper" (glob "drafts/*.md")'
    titles_now = [p["title"] for p in json.loads(run("list", "--json").stdout)]
    assert "My draft notes on Dropout" in titles_now and "Related: Batch Norm" not in titles_now
    text = run("list", "--files").stdout
    assert "notes/drafts/dropout.md  one paper (papers.toml" in text
    (library / "papers.toml").write_text('exclude = ["drafts/*"]\n', encoding="utf-8")
    run("rebuild", "--model", "fake")
    assert [r["file"] for r in json.loads(run("list", "--files", "--json").stdout)] == [
        "notes/list.md"
    ]


def test_bad_config_stops_rebuild_with_one_line(library: Path) -> None:
    write(library / "notes", {"list.md": "- Some Paper\n"})
    (library / "papers.toml").write_text("read_as = [\n", encoding="utf-8")
    result = run("rebuild", "--model", "fake", ok=False)
    assert result.exit_code == 1
    [line] = [x for x in result.stderr.splitlines() if x.strip()]
    assert "papers.toml is not valid TOML" in line


def test_cache_follows_links_between_files(library: Path) -> None:
    """A note read as one paper because a list links it goes back to being read on its own
    when the link goes, even though the note itself did not change (and the cache held it)."""
    five = "".join(f"- [Paper {n}](https://arxiv.org/abs/1709.0000{n})\n" for n in range(1, 6))
    write(library / "notes", {"README.md": "- [Linked](x.md) [2019]\n", "x.md": five})
    run("rebuild", "--model", "fake")
    assert len(json.loads(run("list", "--json").stdout)) == 1
    write(library / "notes", {"README.md": "- Unlinked [[pdf](https://example.org/u.pdf)]\n"})
    result = run("rebuild", "--model", "fake")
    assert "(1 parsed)" in result.stderr  # x.md's own reading came from the cache
    assert len(json.loads(run("list", "--json").stdout)) == 6
    write(library / "notes", {"README.md": "- [Linked](x.md) [2019]\n"})
    run("rebuild", "--model", "fake")
    fresh = json.loads(run("list", "--json").stdout)
    assert [p["title"] for p in fresh] == ["Linked"]


def test_list_files_needs_an_index(library: Path) -> None:
    result = run("list", "--files", ok=False)
    assert result.exit_code == 1 and "papers rebuild" in result.stderr


def test_a_paper_is_found_by_its_alias(library: Path) -> None:
    write(
        library / "notes",
        {
            "resnext.md": RESNEXT,
            "list.md": "- Squeeze-and-Excitation Networks [[arXiv](https://arxiv.org/abs/1709.01507)]\n",
        },
    )
    run("rebuild", "--model", "fake")
    shown = json.loads(run("show", "resnext", "--json").stdout)
    assert shown["title"] == "Aggregated Residual Transformations for Deep Neural Networks"
    listed = {p["title"]: p.get("aliases") for p in json.loads(run("list", "--json").stdout)}
    assert listed == {
        "Aggregated Residual Transformations for Deep Neural Networks": ["ResNeXt"],
        "Squeeze-and-Excitation Networks": None,
    }
    result = run("similar", "ResNeXt")
    assert "papers similar to: Aggregated Residual" in result.stderr


def test_more_entry_shapes_wiki_links_checkboxes_bold_titles_and_link_first() -> None:
    text = (
        "- [[Attention Is All You Need]]\n- [[resnet|Deep Residual Learning]]\n"
        "- [ ] Unread Paper Title\n- [x] Read Paper Title\n"
    )
    records = parse(text, "lists/reading.md")
    assert [(r.title, r.extra.get("note_file")) for r in records] == [
        ("Attention Is All You Need", "lists/Attention Is All You Need.md"),
        ("Deep Residual Learning", "lists/resnet.md"),
        ("Unread Paper Title", None),
        ("Read Paper Title", None),
    ]
    text = (
        "- **Deep Residual Learning** - He et al. CVPR 2016 [[pdf](https://x.org/a.pdf)]\n"
        "- **Attention Is All You Need**, Vaswani et al., NeurIPS 2017. "
        "[[arXiv](https://arxiv.org/abs/1706.03762)]\n"
        "1. [Vision Transformers](https://arxiv.org/abs/2010.11929), Dosovitskiy et al., "
        "ICLR 2021.\n"
    )
    assert [(r.title, r.venue, r.year) for r in parse(text)] == [
        ("Deep Residual Learning", "CVPR", 2016),
        ("Attention Is All You Need", "NeurIPS", 2017),
        ("Vision Transformers", "ICLR", 2021),
    ]


def test_headings_linking_papers_at_one_level_are_entries() -> None:
    text = (
        "## [Paper A](https://arxiv.org/abs/1)\n\nnote a\n\n## [Paper B](https://arxiv.org/abs/2)\n"
    )
    assert [(r.title, r.note) for r in parse(text)] == [("Paper A", "note a"), ("Paper B", "")]
    # A title heading over a heading linking a related paper is one paper's note.
    text = (
        "# [Paper A](https://arxiv.org/abs/1)\n\ntext\n\n## [Related B](https://arxiv.org/abs/2)\n"
    )
    [r] = parse(text)
    assert (r.title, r.note) == ("Paper A", "text\n\nRelated B")


def test_field_bullets_of_a_note_are_not_entries() -> None:
    text = (
        "# Deep Residual Learning\n\n- Authors: He, Zhang\n- Venue: CVPR 2016\n"
        "- Paper: [arXiv](https://arxiv.org/abs/1512.03385)\n\nSome prose here.\n"
    )
    result = parse_markdown(text, "x/resnet.md")
    assert result.reading == "one paper" and titles(result.records) == ["Deep Residual Learning"]
    # A README in a paper's own folder is that paper's note; the one at the root is not.
    text = "# ResNet\n\nThis paper adds shortcuts.\n"
    assert parse_markdown(text, "papers/resnet/README.md").reading == "one paper"
    assert parse_markdown(text, "README.md").reading == "skipped"


def test_table_title_column_by_its_first_word() -> None:
    text = (
        "| Title & Authors | Paper link |\n| --- | --- |\n"
        "| Deep Residual Learning | [pdf](https://x.org/a.pdf) |\n"
        "| Other Title Here | [pdf](https://x.org/b.pdf) |\n"
    )
    assert titles(parse(text, "README.md")) == ["Deep Residual Learning", "Other Title Here"]


def test_a_first_heading_linking_a_web_page_over_many_entries_is_a_list() -> None:
    bullets = "".join(
        f"- Paper {n} [[arXiv](https://arxiv.org/abs/1709.0000{n})]\n" for n in range(6)
    )
    result = parse_markdown(
        "# [Awesome Papers](https://github.com/me/awesome)\n\n" + bullets, "a.md"
    )
    assert result.reading == "list of 6 papers"
    # ... but a heading linking the paper itself is one paper's note, whatever follows.
    result = parse_markdown("# [A Paper](https://arxiv.org/abs/1706.03762)\n\n" + bullets, "b.md")
    assert result.reading == "one paper"


def test_links_to_other_reading_lists_are_not_papers(tmp_path: Path) -> None:
    six = "".join(
        f"- Vision paper {n} [[arXiv](https://arxiv.org/abs/1709.0000{n})]\n" for n in range(6)
    )
    notes = write(
        tmp_path / "notes",
        {
            "README.md": "# Lists\n\n- [Vision](vision.md)\n- [A Real Paper](paper.md) (2020)\n",
            "vision.md": "# Vision\n\n" + six,
            "paper.md": "- point one\n- point two\n",
        },
    )
    readings, _ = read_notes_dir(notes)
    how = {r.rel: (r.final.reading, r.final.reason) for r in readings}
    assert how["vision.md"][0] == "list of 6 papers"
    assert how["README.md"] == (
        "list of 1 paper",
        "2 list items in 1 list link papers or notes or carry year tags; 1 link to other lists "
        "left out",
    )
    assert how["paper.md"] == ("one paper", "linked as a note from README.md:4")
    papers = collect_papers(notes)
    assert len(papers) == 7 and papers[0].title == "A Real Paper"
    assert papers[0].notes == ["point one\npoint two"]


def test_a_note_with_prose_then_plain_bullets_is_one_paper() -> None:
    text = (
        "# The Measure of Intelligence (2019)\n\nFrancois Chollet\n\n---\n\n"
        "This paper argues that intelligence should be measured by skill-acquisition "
        "efficiency, and proposes priors that a test should control for.\n\n"
        "- objectness and physics\n- agentness and goal-directedness\n- arithmetic\n"
    )
    result = parse_markdown(text, "notes/measure.md")
    assert result.reading == "one paper"
    assert titles(result.records) == ["The Measure of Intelligence"]
    assert result.records[0].year == 2019


def test_a_linked_note_with_many_plain_bullets_is_still_one_paper(tmp_path: Path) -> None:
    bullets = "".join(f"- point {n}\n" for n in range(10))
    notes = write(
        tmp_path / "notes",
        {"README.md": "- [Style Analyzer](style.md) (2019)\n", "style.md": bullets},
    )
    [paper] = collect_papers(notes)
    assert paper.title == "Style Analyzer" and len(paper.records) == 2


def test_read_as_list_makes_plain_headings_papers_when_there_are_no_bullets() -> None:
    text = (
        "# My paper notes\n\n## Deep Residual Learning\n\n**Summary:** shortcuts help.\n\n"
        "## Attention Is All You Need\n\n**Summary:** attention only.\n\n### Method\n\nmore\n"
    )
    assert parse_markdown(text, "papers.md").reading == "one paper"  # the guess: a summary
    result = parse_markdown(text, "papers.md", read_as="list")
    assert [(r.title, r.note) for r in result.records] == [
        ("Deep Residual Learning", "Summary: shortcuts help."),
        ("Attention Is All You Need", "Summary: attention only.\n\nMethod\n\nmore"),
    ]


def test_front_matter_title_decides_before_a_badge_link() -> None:
    text = (
        '---\ntitle: "Alberty 2006"\ndescription: "Relations between thermodynamics and kinetics"'
        "\n---\n\n[![badge](https://hackmd.io/x/badge)](https://hackmd.io/x)\n\n## Introduction\n\n"
        "* one\n* two\n"
    )
    result = parse_markdown(text, "posts/alberty-2006.md")
    assert (result.reading, result.reason) == ("one paper", "front matter has a title")
    assert titles(result.records) == ["Relations between thermodynamics and kinetics"]
