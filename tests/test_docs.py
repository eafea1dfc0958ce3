"""The documentation cannot drift: every generated block is its command's output, every figure was drawn from
the committed file it shows, every page is in the site's navigation, and the README stays a front page."""

from __future__ import annotations

import hashlib
import importlib.util
import re

import pytest

from .conftest import REPO
from .helpers import doc_pages

spec = importlib.util.spec_from_file_location("regenerate_docs", REPO / "scripts" / "regenerate_docs.py")
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)

BLOCKS = [(p.relative_to(REPO).as_posix(), *b) for p in doc_pages() for b in regenerate.blocks(p.read_text("utf-8"))]

# what the pages must show at least (a block deleted by mistake fails here, not silently)
REQUIRED = {
    ("show", "leaderboards/quick.json"),
    ("show", "leaderboards/quick-robust.json"),
    ("versus-report", "leaderboards/seed.json"),
    ("seed-findings", "leaderboards/quick-seeds.json"),
    ("base-findings", "leaderboards/quick-robust.json"),
    ("zoo", "list"),
}


def test_the_pages_hold_every_required_block_and_the_script_finds_them_all():
    found = {(command, args.split()[0]) for _, command, args, _ in BLOCKS}
    assert REQUIRED <= found, REQUIRED - found
    assert {"task-ranking", "curves"} <= {command for command, _ in found}
    # a block the script's pattern misses would never be regenerated or checked: count the markers by hand
    opened = sum(
        len(re.findall(r"<!-- (?:" + "|".join(regenerate.COMMANDS) + r"): ", p.read_text("utf-8"))) for p in doc_pages()
    )
    assert opened == len(BLOCKS)


@pytest.mark.parametrize("page,command,args,body", BLOCKS, ids=[f"{p}:{c}:{a}" for p, c, a, _ in BLOCKS])
def test_every_generated_block_is_its_command_output_unedited(monkeypatch, page, command, args, body):
    monkeypatch.chdir(REPO)
    assert body.strip() == regenerate.generated(command, args), (
        f"{page}: the {command} block for {args} is stale: python scripts/regenerate_docs.py"
    )


def test_every_figure_was_drawn_from_the_committed_leaderboard_as_it_is():
    from PIL import Image

    from ssrbench.studies.plots import source_of

    figures = [(p, m) for p in doc_pages() for m in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", p.read_text("utf-8"))]
    assert figures, "no page shows a figure"
    for page, link in figures:
        fig = (page.parent / link).resolve()
        assert fig.is_file(), f"{page.name} links {link}, which is not there"
        if "Screenshot" in Image.open(fig).text:  # a page of `ssrbench site`: tests/test_site.py checks it
            continue
        path, digest = source_of(fig)
        assert hashlib.sha256((REPO / path).read_bytes()).hexdigest() == digest, (
            f"{link} was drawn from another version of {path}: make figures"
        )


def test_every_page_is_in_the_sites_navigation_and_the_readme_is_a_front_page():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.MULTILINE))
    docs = {p.relative_to(REPO / "docs").as_posix() for p in doc_pages()[1:]}
    assert docs - nav == set(), f"pages missing from mkdocs.yml's nav: {sorted(docs - nav)}"
    # built by scripts/docs_pages.py: README as the front page, CONTRIBUTING, the index of committed files
    assert nav - docs == {"index.md", "contributing.md", "results/files/index.md"}, nav - docs
    lines = (REPO / "README.md").read_text("utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; the front page keeps to 200 (move the rest to docs/)"


def test_the_readmes_links_into_the_docs_resolve():
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", (REPO / "README.md").read_text("utf-8"))
    assert links, "the README links no page of the docs"
    for link in links:
        assert (REPO / link).is_file(), link


def test_a_leaderboards_page_is_its_file_and_no_string_of_it_opens_an_html_tag():
    from ssrbench.leaderboard import render, store
    from ssrbench.leaderboard.page import page

    from .helpers import FIXTURE

    board = store.load(FIXTURE)
    board.notes.append("<script>alert(1)</script> | `x`")
    text = page(board, "leaderboards/x.json", json_link="x.json")
    assert "<script>" not in text and "&lt;script>" in text
    assert f"`` {board.command[0]}" in text and f"{len(board.cells)}" in text
    body = render.markdown(board).split("\n", 1)[1].replace("<", "&lt;")
    assert text.endswith(body.rstrip() + "\n")  # the tables are show's, unedited


def _named_paths(table: str) -> set[str]:
    """The paths a Markdown table names in backticks, brace groups expanded (`ssrbench/{a,b}.py`)."""
    out = set()
    for ref in re.findall(r"`([^`\s]+)`", table):
        for part in ref.split(", "):
            m = re.match(r"^(.*)\{([^}]*)\}(.*)$", part)
            out |= {m.group(1) + x + m.group(3) for x in m.group(2).split(",")} if m else {part}
    return out


def test_the_architecture_map_names_every_module_and_only_what_exists():
    page = (REPO / "docs" / "architecture.md").read_text("utf-8")
    table = "\n".join(line for line in page.splitlines() if line.startswith("| `"))
    named = _named_paths(table)
    # a path is the repository's, or inside ssrbench/ when the row already says so (`studies/source_report.py`)
    paths = {p.rstrip("/") if (REPO / p).exists() else f"ssrbench/{p.rstrip('/')}" for p in named if "/" in p}
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"the map names what is not there: {missing}"
    top = {
        p.relative_to(REPO).as_posix()
        for p in (REPO / "ssrbench").iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())
    }
    unnamed = sorted(t for t in top if t not in paths)
    assert not unnamed, f"docs/architecture.md does not place {unnamed} in a layer"
