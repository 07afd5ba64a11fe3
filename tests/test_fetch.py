"""Tests for fetching abstracts, against local servers speaking each service's format."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Response

from search import build
from search.errors import FetchError
from search.faces.cli_import import fetch_command, import_command
from search.library import Paper, library_paths, merge
from search.readers import fetch
from search.readers.fetch import abstract_from_inverted_index, fetch_abstracts, similarity
from search.readers.jsonl import read_jsonl
from search.readers.records import Record

# --- documented response shapes ------------------------------------------------------------

# Shape of export.arxiv.org/api/query answers (arXiv API User's Manual, section 3.3).
ATOM_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?id_list=x" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: search_query=&amp;id_list=x</title>
  <id>http://arxiv.org/api/cHxbiOdZaP56ODnBPIenZhzg5f8</id>
  <updated>2017-10-10T00:00:00-04:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
    >{total}</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
    >0</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
    >1</opensearch:itemsPerPage>
"""

ATOM_ENTRY = """  <entry>
    <id>http://arxiv.org/abs/{id}v3</id>
    <updated>2018-02-23T18:23:44Z</updated>
    <published>2017-07-05T17:55:01Z</published>
    <title>{title}</title>
    <summary>  {summary}
</summary>
    <author><name>Marcin Andrychowicz</name></author>
    <arxiv:doi xmlns:arxiv="http://arxiv.org/schemas/atom">{doi}</arxiv:doi>
    <link href="http://arxiv.org/abs/{id}v3" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/{id}v3" rel="related" type="application/pdf"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.LG"
      scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
"""

ATOM_ERROR_ENTRY = """  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.123456</id>
    <title>Error</title>
    <summary>incorrect id format for 1234.123456</summary>
    <updated>2007-10-12T00:00:00-04:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_1234.123456"
      rel="alternate" type="text/html"/>
    <author><name>arXiv api core</name></author>
  </entry>
"""

HER_SUMMARY = (
    "Dealing with sparse rewards is one of the biggest challenges in\n"
    "Reinforcement Learning (RL). We present a novel technique called Hindsight\n"
    "Experience Replay which allows sample-efficient learning.\n"
    "  The second paragraph of the\nabstract."
)


def atom(*entries: str) -> str:
    return ATOM_HEAD.format(total=len(entries)) + "".join(entries) + "</feed>\n"


def atom_entry(arxiv_id: str, title: str, summary: str, doi: str = "10.5555/her") -> str:
    return ATOM_ENTRY.format(id=arxiv_id, title=title, summary=summary, doi=doi)


def openalex_work(title: str, abstract: str | None, doi: str = "10.1109/cvpr.2016.90") -> dict:
    # Shape of api.openalex.org/works/... (OpenAlex docs, Work object).
    index: dict[str, list[int]] | None = None
    if abstract is not None:
        index = {}
        for pos, word in enumerate(abstract.split()):
            index.setdefault(word, []).append(pos)
    return {
        "id": "https://openalex.org/W2194775991",
        "doi": f"https://doi.org/{doi}",
        "title": title,
        "display_name": title,
        "publication_year": 2016,
        "ids": {"openalex": "https://openalex.org/W2194775991", "doi": f"https://doi.org/{doi}"},
        "primary_location": {"landing_page_url": f"https://doi.org/{doi}"},
        "locations": [{"landing_page_url": "http://arxiv.org/abs/1512.03385"}],
        "abstract_inverted_index": index,
    }


def s2_paper(title: str, abstract: str | None) -> dict:
    # Shape of api.semanticscholar.org/graph/v1/paper/... with fields=title,abstract,externalIds.
    return {
        "paperId": "649def34f8be52c8b66281af98ae884c09aef38b",
        "externalIds": {
            "ArXiv": "1707.01495",
            "DBLP": "conf/nips/AndrychowiczCRSW17",
            "CorpusId": 3532908,
        },
        "url": "https://www.semanticscholar.org/paper/649def34f8be52c8b66281af98ae884c09aef38b",
        "title": title,
        "abstract": abstract,
        "year": 2017,
    }


# --- helpers -------------------------------------------------------------------------------


def paper(title: str, **kw: Any) -> Paper:
    [p] = merge([Record(title=title, file="notes.md", line=1, **kw)])
    return p


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(fetch, "_sleep", recorded.append)
    return recorded


def run(httpserver: HTTPServer, papers: list[Paper], out: Path, **kw: Any) -> fetch.FetchReport:
    base = kw.pop("base", "/api/query")
    kw.setdefault("delay", 0)
    return fetch_abstracts(papers, out, base_url=httpserver.url_for(base), **kw)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- arXiv ---------------------------------------------------------------------------------


def test_arxiv_by_id(httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]) -> None:
    httpserver.expect_request(
        "/api/query", query_string={"id_list": "1707.01495", "max_results": "1"}
    ).respond_with_data(
        atom(atom_entry("1707.01495", "Hindsight Experience\n  Replay", HER_SUMMARY)),
        content_type="application/atom+xml",
    )
    note = Record(
        title="Hindsight Experience Replay",
        file="rl.md",
        line=3,
        arxiv="1707.01495",
        note="Relabel goals.",
    )
    [p] = merge([note])
    out = tmp_path / "notes" / "abstracts.jsonl"
    report = run(httpserver, [p], out, contact="me@example.org")
    assert (report.found, report.looked_up) == (1, 1)
    [line] = lines(out)
    assert line["title"] == "Hindsight Experience Replay"
    assert line["matched_title"] == "Hindsight Experience Replay"
    assert line["arxiv"] == "1707.01495" and line["doi"] == "10.5555/her"
    assert line["source"] == "arxiv" and line["lookup"] == "arxiv id" and line["score"] == 100
    assert line["fetched"].startswith("20")
    assert line["abstract"] == (
        "Dealing with sparse rewards is one of the biggest challenges in Reinforcement Learning "
        "(RL). We present a novel technique called Hindsight Experience Replay which allows "
        "sample-efficient learning.\n\nThe second paragraph of the abstract."
    )
    ua = httpserver.log[0][0].headers["User-Agent"]
    assert ua == "papers/0.1.0 (mailto:me@example.org)"
    # What was written is read back as a record that joins the paper.
    back = read_jsonl(out, "abstracts.jsonl")
    [joined] = merge([note, *back.records])
    assert joined.abstract.startswith("Dealing with sparse rewards")
    assert joined.notes == ["Relabel goals."]
    assert sleeps == []


def test_arxiv_by_title_search(httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]) -> None:
    title = "Self2Self With Dropout: Learning Self-Supervised Denoising From Single Image"
    query = 'ti:"self2self with dropout learning self supervised denoising from single image"'
    httpserver.expect_request(
        "/api/query", query_string={"search_query": query, "max_results": "5"}
    ).respond_with_data(
        atom(
            atom_entry("2001.00001", "Self-Supervised Denoising Elsewhere", "Other."),
            atom_entry(
                "2001.00002",
                "Self2Self with dropout -- learning self-supervised\n  denoising from single image",
                "We denoise from one image.",
            ),
        ),
        content_type="application/atom+xml",
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(httpserver, [paper(title)], out)
    assert report.found == 1
    [line] = lines(out)
    assert line["arxiv"] == "2001.00002" and line["lookup"] == "title search"
    assert line["title"] == title
    assert line["abstract"] == "We denoise from one image."


def test_arxiv_unknown_id_falls_back_to_title(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(
        "/api/query", query_string={"id_list": "1234.12345", "max_results": "1"}
    ).respond_with_data(atom(ATOM_ERROR_ENTRY), content_type="application/atom+xml")
    httpserver.expect_request(
        "/api/query", query_string={"search_query": 'ti:"some paper"', "max_results": "5"}
    ).respond_with_data(atom(), content_type="application/atom+xml")
    out = tmp_path / "abstracts.jsonl"
    report = run(httpserver, [paper("Some Paper", arxiv="1234.12345")], out)
    assert report.not_found == 1
    [line] = lines(out)
    assert line["status"] == "not_found"


def test_title_below_threshold_is_rejected(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        atom(atom_entry("2001.00003", "Attention Is Not All You Need", "Wrong paper.")),
        content_type="application/atom+xml",
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(httpserver, [paper("Attention Is All You Need")], out)
    assert (report.found, report.not_found) == (0, 1)
    assert report.items[0].score is not None and report.items[0].score < fetch.THRESHOLD
    [line] = lines(out)
    assert line["status"] == "not_found" and "abstract" not in line
    assert "Attention Is Not All You Need" in line["reason"]
    # A not-found line is no record (it would be a paper without notes or abstract).
    assert read_jsonl(out, "abstracts.jsonl").records == []
    # Not asked again from the same source ...
    assert run(httpserver, [paper("Attention Is All You Need")], out).looked_up == 0
    # ... but another source may know it.
    httpserver.expect_request("/works").respond_with_json({"meta": {}, "results": []})
    again = run(httpserver, [paper("Attention Is All You Need")], out, source="openalex", base="/")
    assert again.looked_up == 1


def test_similarity_ignores_case_punctuation_and_accents() -> None:
    assert (
        similarity("Self2Self With Dropout: Learning", "self2self with dropout -- learning") == 100
    )
    assert similarity("Schön Bayes", "Schon bayes") == 100
    assert similarity("Attention Is All You Need", "Attention Is Not All You Need") < 95


def test_429_then_200_honours_retry_after(
    httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/api/query").respond_with_response(
        Response("Rate exceeded.", status=429, headers={"Retry-After": "7"})
    )
    httpserver.expect_request("/api/query").respond_with_data(
        atom(atom_entry("1707.01495", "Hindsight Experience Replay", "Text.")),
        content_type="application/atom+xml",
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(httpserver, [paper("Hindsight Experience Replay", arxiv="1707.01495")], out)
    assert report.found == 1
    assert sleeps == [7.0]
    assert len(httpserver.log) == 2


def test_503_twice_then_200_backs_off(
    httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    for _ in range(2):
        httpserver.expect_oneshot_request("/api/query").respond_with_data("busy", status=503)
    httpserver.expect_request("/api/query").respond_with_data(
        atom(atom_entry("1707.01495", "Hindsight Experience Replay", "Text.")),
        content_type="application/atom+xml",
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(httpserver, [paper("Hindsight Experience Replay", arxiv="1707.01495")], out)
    assert report.found == 1
    assert sleeps == [fetch.RETRY_BASE, fetch.RETRY_BASE * 2]


def test_endless_503_stops_with_fetch_error(
    httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    httpserver.expect_request("/api/query").respond_with_data("busy", status=503)
    out = tmp_path / "abstracts.jsonl"
    with pytest.raises(FetchError, match="503"):
        run(httpserver, [paper("X", arxiv="1707.01495")], out)
    assert len(sleeps) == fetch.MAX_RETRIES
    assert not out.exists()


def test_delay_between_requests(
    httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        atom(), content_type="application/atom+xml"
    )
    out = tmp_path / "abstracts.jsonl"
    run(httpserver, [paper("Paper One"), paper("Paper Two")], out, delay=3.0)
    assert len(sleeps) == 1 and 2.5 < sleeps[0] <= 3.0


def test_resume_fetches_nothing_new(httpserver: HTTPServer, tmp_path: Path) -> None:
    for arxiv_id, title in (
        ("1707.01495", "Hindsight Experience Replay"),
        ("1512.03385", "Deep Residual Learning"),
    ):
        httpserver.expect_request(
            "/api/query", query_string={"id_list": arxiv_id, "max_results": "1"}
        ).respond_with_data(
            atom(atom_entry(arxiv_id, title, "Abstract of " + title)),
            content_type="application/atom+xml",
        )
    papers = [
        paper("Hindsight Experience Replay", arxiv="1707.01495"),
        paper("Deep Residual Learning", arxiv="1512.03385"),
        paper("Already Known", abstract="Has one."),
    ]
    out = tmp_path / "abstracts.jsonl"
    first = run(httpserver, papers, out, limit=1)
    assert (first.found, first.without_abstract) == (1, 2)
    second = run(httpserver, papers, out)
    assert (second.already_done, second.found) == (1, 1)
    data = out.read_bytes()
    requests = len(httpserver.log)
    third = run(httpserver, papers, out)
    assert (third.already_done, third.looked_up) == (2, 0)
    assert len(httpserver.log) == requests and out.read_bytes() == data
    assert [line["arxiv"] for line in lines(out)] == ["1707.01495", "1512.03385"]


def test_no_network_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "abstracts.jsonl"
    out.write_text('{"title": "Kept", "abstract": "x"}', encoding="utf-8")
    before = out.read_bytes()
    base = f"http://127.0.0.1:{closed_port()}/api/query"
    with pytest.raises(FetchError) as info:
        fetch_abstracts([paper("Some Paper")], out, base_url=base, delay=0)
    message = str(info.value)
    assert message.startswith("cannot reach 127.0.0.1: ") and message.endswith("nothing changed")
    assert "\n" not in message
    assert out.read_bytes() == before
    missing = tmp_path / "none.jsonl"
    with pytest.raises(FetchError):
        fetch_abstracts([paper("Some Paper")], missing, base_url=base, delay=0)
    assert not missing.exists()


def test_appends_after_a_line_without_newline(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        atom(atom_entry("1707.01495", "Hindsight Experience Replay", "Text.")),
        content_type="application/atom+xml",
    )
    out = tmp_path / "abstracts.jsonl"
    out.write_text('{"title": "Earlier", "abstract": "x"}', encoding="utf-8")
    run(httpserver, [paper("Hindsight Experience Replay", arxiv="1707.01495")], out)
    assert [line["title"] for line in lines(out)] == ["Earlier", "Hindsight Experience Replay"]


# --- OpenAlex ------------------------------------------------------------------------------


def test_openalex_by_doi(httpserver: HTTPServer, tmp_path: Path) -> None:
    abstract = "Deeper neural networks are more difficult to train. We present a residual"
    httpserver.expect_request(
        "/works/doi:10.1109/cvpr.2016.90", query_string={"mailto": "me@example.org"}
    ).respond_with_json(openalex_work("Deep Residual Learning for Image Recognition", abstract))
    out = tmp_path / "abstracts.jsonl"
    p = paper("Deep Residual Learning for Image Recognition", doi="10.1109/CVPR.2016.90")
    report = run(httpserver, [p], out, source="openalex", base="/", contact="me@example.org")
    assert report.found == 1
    [line] = lines(out)
    assert line["abstract"] == abstract
    assert line["doi"] == "10.1109/cvpr.2016.90" and line["arxiv"] == "1512.03385"
    assert line["openalex_id"] == "W2194775991" and line["lookup"] == "doi"


def test_openalex_title_search_and_missing_abstract(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(
        "/works",
        query_string={
            "filter": "title.search:deep residual learning for image recognition",
            "per-page": "5",
        },
    ).respond_with_json(
        {
            "meta": {"count": 2, "page": 1, "per_page": 5},
            "results": [
                openalex_work("Deep Residual Learning for Image Super-Resolution", "No."),
                openalex_work("Deep residual learning for image recognition", None),
            ],
        }
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(
        httpserver,
        [paper("Deep Residual Learning for Image Recognition")],
        out,
        source="openalex",
        base="/",
    )
    assert report.not_found == 1 and report.items[0].status == "no_abstract"
    [line] = lines(out)
    assert line["status"] == "no_abstract" and line["matched_title"].startswith("Deep residual")


def test_inverted_index_back_to_text() -> None:
    index = {
        "Despite": [0],
        "growing": [1],
        "interest": [2],
        "in": [3, 7],
        "the": [4],
        "field,": [5],
        "and": [6],
        "practice": [8],
    }
    assert abstract_from_inverted_index(index) == (
        "Despite growing interest in the field, and in practice"
    )
    assert abstract_from_inverted_index(None) == ""


# --- Semantic Scholar ----------------------------------------------------------------------


def test_semanticscholar_by_arxiv_id(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(
        "/graph/v1/paper/arXiv:1707.01495",
        query_string={"fields": "title,abstract,externalIds,year,url"},
    ).respond_with_json(s2_paper("Hindsight Experience Replay", "Dealing with sparse rewards."))
    out = tmp_path / "abstracts.jsonl"
    p = paper("Hindsight Experience Replay", arxiv="1707.01495")
    report = run(httpserver, [p], out, source="semanticscholar", base="/graph/v1")
    assert report.found == 1
    [line] = lines(out)
    assert line["abstract"] == "Dealing with sparse rewards."
    assert line["s2_id"] == "649def34f8be52c8b66281af98ae884c09aef38b"


def test_semanticscholar_title_search(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(
        "/graph/v1/paper/search",
        query_string={
            "query": "hindsight experience replay",
            "fields": "title,abstract,externalIds,year,url",
            "limit": "5",
        },
    ).respond_with_json(
        {
            "total": 2,
            "offset": 0,
            "next": 2,
            "data": [
                s2_paper("Hindsight Experience Replay", "Found by title."),
                s2_paper("Hindsight Experience Replay for Dummies", "No."),
            ],
        }
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(
        httpserver,
        [paper("Hindsight experience replay")],
        out,
        source="semanticscholar",
        base="/graph/v1",
    )
    assert report.found == 1
    assert lines(out)[0]["abstract"] == "Found by title."


def test_semanticscholar_404_then_title(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/graph/v1/paper/DOI:10.1145/3292500.3330701").respond_with_json(
        {"error": "Paper with id DOI:10.1145/3292500.3330701 not found"}, status=404
    )
    httpserver.expect_request("/graph/v1/paper/search").respond_with_json(
        {"total": 0, "offset": 0, "data": []}
    )
    out = tmp_path / "abstracts.jsonl"
    report = run(
        httpserver,
        [paper("Unknown", doi="10.1145/3292500.3330701")],
        out,
        source="semanticscholar",
        base="/graph/v1",
    )
    assert report.not_found == 1 and len(httpserver.log) == 2
    assert report.items[0].message == "no match by doi or title search"


def test_unknown_source() -> None:
    with pytest.raises(FetchError, match="unknown source"):
        fetch_abstracts([], Path("x"), source="google")


def test_uses_given_client(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        atom(), content_type="application/atom+xml"
    )
    with httpx.Client() as client:
        run(httpserver, [paper("A Paper")], tmp_path / "a.jsonl", client=client)
        assert not client.is_closed


# --- CLI -----------------------------------------------------------------------------------


def make_cli(root: Path) -> click.Group:
    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = {"paths": library_paths(root)}

    cli.add_command(import_command, "import")
    cli.add_command(fetch_command, "fetch-abstracts")
    return cli


@pytest.fixture
def fake_notes(monkeypatch: pytest.MonkeyPatch) -> list[Paper]:
    papers: list[Paper] = []
    monkeypatch.setattr(build, "collect_papers", lambda notes_dir: papers)
    return papers


def test_cli_import(tmp_path: Path) -> None:
    src = tmp_path / "lib.bib"
    src.write_text("@misc{a, title={Good}}\n\n@misc{b, title={Bad\n\n@misc{c, title={Also}}\n")
    runner = CliRunner()
    result = runner.invoke(make_cli(tmp_path), ["import", str(src)])
    assert result.exit_code == 0, result.output
    assert "notes/imported/lib.jsonl" in result.stdout
    assert "warning: lib.bib:3" in result.stderr
    assert (tmp_path / "notes" / "imported" / "lib.jsonl").is_file()
    as_json = runner.invoke(make_cli(tmp_path), ["import", str(src), "--json"])
    data = json.loads(as_json.stdout)
    assert data["files"][0]["written_records"] == 2
    missing = runner.invoke(make_cli(tmp_path), ["import", str(tmp_path / "nope.bib")])
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    assert missing.stdout == ""
    assert "Examples" in runner.invoke(make_cli(tmp_path), ["import", "--help"]).stdout


def test_cli_fetch(httpserver: HTTPServer, tmp_path: Path, fake_notes: list[Paper]) -> None:
    httpserver.expect_request("/api/query").respond_with_data(
        atom(atom_entry("1707.01495", "Hindsight Experience Replay", "Text.")),
        content_type="application/atom+xml",
    )
    fake_notes.append(paper("Hindsight Experience Replay", arxiv="1707.01495"))
    fake_notes.append(paper("Has An Abstract", abstract="Yes."))
    runner = CliRunner()
    args = ["fetch-abstracts", "--base-url", httpserver.url_for("/api/query"), "--delay", "0"]
    result = runner.invoke(make_cli(tmp_path), [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["found"] == 1 and data["without_abstract"] == 1
    assert "fetching abstracts" in result.stderr
    assert lines(tmp_path / "notes" / "abstracts.jsonl")[0]["abstract"] == "Text."
    again = runner.invoke(make_cli(tmp_path), args)
    assert again.exit_code == 0
    assert "0 abstracts fetched" in again.stdout and "1 already tried" in again.stdout


def test_cli_fetch_without_network(tmp_path: Path, fake_notes: list[Paper]) -> None:
    fake_notes.append(paper("Some Paper"))
    base = f"http://127.0.0.1:{closed_port()}/api/query"
    result = CliRunner().invoke(
        make_cli(tmp_path), ["fetch-abstracts", "--base-url", base, "--delay", "0"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach 127.0.0.1")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not (tmp_path / "notes" / "abstracts.jsonl").exists()
    help_text = CliRunner().invoke(make_cli(tmp_path), ["fetch-abstracts", "--help"]).stdout
    assert "papers fetch-abstracts --source openalex" in help_text


def test_retry_after_forms() -> None:
    assert fetch._retry_after("12") == 12.0
    assert fetch._retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert fetch._retry_after("soon") is None
    assert fetch._retry_after(None) is None


def test_long_retry_after_stops_the_run(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/api/query").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "3600"})
    )
    out = tmp_path / "abstracts.jsonl"
    with pytest.raises(FetchError, match="asks to wait 3600 s"):
        run(httpserver, [paper("X", arxiv="1707.01495")], out)
    assert not out.exists()


def test_backoff_is_not_added_to_the_delay(
    httpserver: HTTPServer, tmp_path: Path, sleeps: list[float]
) -> None:
    httpserver.expect_oneshot_request("/api/query").respond_with_data("busy", status=503)
    httpserver.expect_request("/api/query").respond_with_data(
        atom(), content_type="application/atom+xml"
    )
    run(httpserver, [paper("Paper One")], tmp_path / "a.jsonl", delay=3.0)
    assert sleeps == [3.0]  # max(backoff 1 s, delay 3 s), not 1 + 3
