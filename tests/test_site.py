"""`ssrbench site`: a static site of leaderboards. Its pages are checked as HTML here, and driven in a real
headless Chromium (Playwright on the system's browser): the cells table sorts and filters, a cell's numbers
are the JSON file's, every link resolves, and the screenshot the docs show is of the page as it is now."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store

from .conftest import REPO
from .helpers import FIXTURE, error_line

SHOWN = ["leaderboards/quick.json", "leaderboards/quick-robust.json"]
SCREENSHOT = REPO / "docs" / "figures" / "site-quick-robust.png"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids, self.srcs, self.scripts = [], set(), [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag == "img":
            self.srcs.append(a["src"])
        if tag == "script":
            self.scripts += 1


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _build(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "site"
    res = CliRunner().invoke(cli, ["site", *SHOWN, "--out", str(out), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory, request) -> Path:
    os.chdir(REPO)  # the leaderboards are named as the repository names them
    request.addfinalizer(lambda: os.chdir(REPO))
    return _build(
        tmp_path_factory.mktemp("site"), "--no-figures", "--compare", SHOWN[0], "leaderboards/quick-seeds/seed0.json"
    )


def test_every_page_and_link_of_the_site_resolves_offline(site):
    pages = {p.name for p in site.glob("*.html")}
    assert {
        "index.html",
        "compare.html",
        "leaderboards--quick.html",
        "leaderboards--quick-robust.html",
        "leaderboards--quick-seeds--seed0.html",
    } <= pages
    for page in site.glob("*.html"):
        parsed = _parse(page)
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f"{page.name} reaches the network"
        for href in parsed.hrefs:
            target, _, anchor = href.partition("#")
            doc = site / target if target else page
            assert doc.is_file(), f"{page.name}: {href}"
            assert not anchor or anchor in _parse(doc).ids, f"{page.name}: {href}"
        assert all((site / src).is_file() for src in parsed.srcs)


def test_a_page_holds_every_cell_with_the_numbers_show_prints(site):
    from ssrbench.leaderboard import render

    board = store.load(REPO / SHOWN[1])
    page = (site / "leaderboards--quick-robust.html").read_text(encoding="utf-8")
    body = page.split('<table class="sortable" id="cells">')[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(board.cells) + 1  # the header row, then a row per cell
    for c in board.cells:
        assert render._acc(c.adv_rev) in body and render._acc(c.clean) in body
    assert "the reverse attack against its static base" in page and "worse than its base" in page
    assert "figures: not drawn (--no-figures)" in page


def test_no_string_of_a_leaderboard_reaches_the_page_as_markup(tmp_path):
    board = store.load(FIXTURE)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    board.notes.append(hostile)
    board.command.append(hostile)
    path = tmp_path / "hostile.json"
    store.save(board, path)
    out = tmp_path / "site"
    res = CliRunner().invoke(cli, ["site", str(path), "--out", str(out), "--no-figures"])
    assert res.exit_code == 0, res.output
    for page in out.glob("*.html"):
        parsed = _parse(page)
        assert parsed.scripts == 1 and not parsed.srcs, page.name  # only the page's own script, no injected tag
        assert "&lt;script&gt;" in page.read_text() or page.name == "index.html"


def test_bad_inputs_are_one_line_and_exit_2_and_write_nothing(tmp_path):
    cases = [
        ([str(tmp_path / "missing.json")], "no such file"),
        ([str(tmp_path)], "no leaderboard"),
        ([str(FIXTURE), str(FIXTURE)], "given twice"),
    ]
    for files, needs in cases:
        out = tmp_path / f"out{len(files)}{needs[:2]}"
        res = CliRunner().invoke(cli, ["site", *files, "--out", str(out)])
        assert res.exit_code == 2 and needs in error_line(res), res.output
        assert not out.exists() or not any(out.iterdir())
    afile = tmp_path / "a-file"
    afile.write_text("x")
    res = CliRunner().invoke(cli, ["site", str(FIXTURE), "--out", str(afile)])
    assert res.exit_code == 2 and "a-file" in res.output
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema_version": 6}))
    res = CliRunner().invoke(cli, ["site", str(FIXTURE), str(broken), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "broken.json" in res.output and not (tmp_path / "o" / "index.html").exists()


def test_without_the_plot_extra_the_site_is_written_and_says_why_it_has_no_figures(tmp_path, without_module):
    without_module("matplotlib")
    res = CliRunner().invoke(cli, ["site", str(FIXTURE), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0 and "ssrbench[plot]" in res.output
    assert "ssrbench[plot]" in next((tmp_path / "s").glob("*fixtures*.html")).read_text()


# -- in a real browser -------------------------------------------------------------------------------------------


def _browser():
    """Playwright driving the system's Chromium, or the reason it cannot run here (a skip that says it; CI sets
    SSRBENCH_REQUIRE_BROWSER=1, which turns the reason into a failure)."""
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed (the test extra installs it)"
    exe = os.environ.get("SSRBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if why is None and not exe:
        why = "no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)"
    if why:
        if os.environ.get("SSRBENCH_REQUIRE_BROWSER"):
            pytest.fail(why)
        pytest.skip(why)
    return sync_playwright, exe


ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]


def _visible_column(page, column: int) -> list[str]:
    return page.eval_on_selector_all(
        "#cells tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{column}].textContent)"
    )


def test_in_chromium_the_cells_table_sorts_filters_and_shows_the_files_numbers(site, tmp_path):
    sync_playwright, exe = _browser()
    raw = json.loads((REPO / SHOWN[1]).read_text())  # the JSON itself, not ssrbench's reading of it
    cols = ["task", "mode", "attack", "seed", "Clean", "Clean+Rev", "Δ clean", "Adv", "Adv+Rev"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((site / "leaderboards--quick-robust.html").as_uri())
        assert page.inner_text("#cells-count") == f"{len(raw['cells'])} of {len(raw['cells'])} rows"

        # a cell's numbers are the JSON's: percent with the 95% interval's half-width
        first = raw["cells"][0]
        row = page.locator("#cells tbody tr").first
        cells = row.locator("td").all_inner_texts()
        assert cells[:3] == [first["task"]["name"], first["mode"], first["attack"]["name"]]
        for name, key in (("Clean", "clean"), ("Adv", "adv"), ("Adv+Rev", "adv_rev")):
            acc = first[key]
            half = (acc["ci95"][1] - acc["ci95"][0]) / 2
            assert cells[cols.index(name)] == f"{acc['percent']:.2f}±{half:.1f}", name

        # sorting: Adv+Rev descending (two clicks), in the JSON's order of percent
        header = page.locator("#cells thead th", has_text=re.compile(r"^Adv\+Rev$"))
        header.click()
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        shown = [float(t.split("±")[0]) for t in _visible_column(page, cols.index("Adv+Rev"))]
        assert shown == sorted((c["adv_rev"]["percent"] for c in raw["cells"]), reverse=True)

        # filtering: every word must match; the count follows
        page.fill('input[data-table="cells"]', "rotation multitask")
        want = [c for c in raw["cells"] if c["task"]["name"] == "rotation" and c["mode"] == "multitask"]
        assert len(_visible_column(page, 0)) == len(want) > 0
        assert page.inner_text("#cells-count") == f"{len(want)} of {len(raw['cells'])} rows"
        assert set(_visible_column(page, 2)) == {c["attack"]["name"] for c in want}

        # a cell's row links to its details
        page.fill('input[data-table="cells"]', "")
        page.locator("#cells tbody tr").first.locator("a").click()
        assert page.url.endswith("#" + page.locator("#cells tbody tr").first.locator("a").get_attribute("href")[1:])
        page.goto((site / "index.html").as_uri())
        page.get_by_role("link", name=SHOWN[0], exact=True).click()
        assert page.url.endswith("leaderboards--quick.html")
        assert not errors, errors

        # the screenshot the docs show (its HTML's SHA-256 in the PNG's metadata; the next test checks it)
        html_bytes = (site / "leaderboards--quick-robust.html").read_bytes()
        page.goto((site / "leaderboards--quick-robust.html").as_uri())
        shot = tmp_path / "shot.png"
        page.screenshot(path=str(shot))
        browser.close()
    from PIL import Image, PngImagePlugin

    image = Image.open(shot)
    assert image.size == (1500, 1100)
    digest = hashlib.sha256(html_bytes).hexdigest()
    if os.environ.get("SSRBENCH_KEEP_SCREENSHOT"):  # make site-screenshot: the docs' copy, from this test
        meta = PngImagePlugin.PngInfo()
        meta.add_text("Screenshot", f"ssrbench site {SHOWN[1]}: page sha256={digest}")
        image.save(SCREENSHOT, pnginfo=meta)


def test_the_docs_screenshot_is_of_the_page_as_it_is_now(site):
    """The browser test took it (`make site-screenshot`) of the page this code writes now: its HTML's SHA-256."""
    from PIL import Image

    digest = hashlib.sha256((site / "leaderboards--quick-robust.html").read_bytes()).hexdigest()
    kept = Image.open(SCREENSHOT).text.get("Screenshot", "")
    assert kept.endswith(f"sha256={digest}"), (
        "docs/figures/site-quick-robust.png shows another version of the page: make site-screenshot"
    )
    assert any("figures/site-quick-robust.png" in p.read_text("utf-8") for p in (REPO / "docs").rglob("*.md"))
