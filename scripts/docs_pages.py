"""Build-time pages of the docs site (mkdocs-gen-files): the front page and Contributing from README.md and
CONTRIBUTING.md (one text, two places: their links into docs/ rewritten for the site), one page per
committed leaderboard, from the file, and the leaderboard explorer (`ssrbench site`) of every committed file.

A leaderboard's page is `ssrbench.leaderboard.page.page` of the file, and the JSON file itself is copied beside
it, so the site's results are the committed files and nothing else.
"""

import os
import tempfile
from pathlib import Path

import mkdocs_gen_files

from ssrbench.leaderboard import store
from ssrbench.leaderboard.page import page
from ssrbench.studies import site

REPO = Path(__file__).resolve().parents[1]


def for_the_site(markdown: str) -> str:
    """A top-level page's links as the site has them: docs/x.md is x.md there, CONTRIBUTING.md contributing.md."""
    return markdown.replace("](docs/", "](").replace("](CONTRIBUTING.md)", "](contributing.md)")


for source, target in (("README.md", "index.md"), ("CONTRIBUTING.md", "contributing.md")):
    with mkdocs_gen_files.open(target, "w") as out:
        out.write(for_the_site((REPO / source).read_text(encoding="utf-8")))

files = sorted((REPO / "leaderboards").rglob("*.json"))
index = [
    "# Every committed leaderboard",
    "",
    "One page per file under `leaderboards/`, generated from it when the site is built.",
    "",
    "| file | preset | cells | images | commit |",
    "|---|---|---:|---:|---|",
]
for f in files:
    rel = f.relative_to(REPO).as_posix()  # leaderboards/quick.json
    name = f.relative_to(REPO / "leaderboards").with_suffix("").as_posix()  # quick, quick-seeds/seed0
    board = store.load(f)
    with mkdocs_gen_files.open(f"results/files/{name}.json", "wb") as out:
        out.write(f.read_bytes())
    with mkdocs_gen_files.open(f"results/files/{name}.md", "w") as out:
        out.write("---\nhide: [toc]\n---\n\n" + page(board, rel, json_link=f"{Path(name).name}.json"))  # wide tables
    index.append(
        f"| [{rel}]({name}.md) | {board.preset} | {len(board.cells)} | {board.dataset.eval_images} | "
        f"`{(board.git_commit or 'unknown')[:7]}` |"
    )
with mkdocs_gen_files.open("results/files/index.md", "w") as out:
    out.write("\n".join(index) + "\n")

# the explorer, as `ssrbench site leaderboards --no-figures` writes it (the figures are on the results pages)
here = os.getcwd()
os.chdir(REPO)  # the files named as the repository names them
try:
    with tempfile.TemporaryDirectory() as tmp:
        site.build(["leaderboards"], Path(tmp), figures=False)
        for f in sorted(Path(tmp).iterdir()):
            with mkdocs_gen_files.open(f"explorer/{f.name}", "wb") as out:
                out.write(f.read_bytes())
finally:
    os.chdir(here)
