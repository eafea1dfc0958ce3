"""Commands that read leaderboards: list, show, compare, the studies, curves, plot, site, merge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.console import Console

from ..core.plaintext import json_text, printable, text
from .app import (
    CONFIG_DIRS,
    _csv,
    _Fail,
    _friendly,
    cli,
)
from .catalogue import SECTIONS, table
from .types import FiniteFloat


@cli.command(name="list")
@click.argument("what", type=click.Choice(SECTIONS), required=False)
@CONFIG_DIRS
@_friendly
def list_(what, config_dirs) -> None:
    """List what can be named in `ssrbench run` (everything when WHAT is omitted)."""
    from ..leaderboard.render import wide_console

    console = wide_console()
    for section in [what] if what else SECTIONS:
        console.print(table(section, list(config_dirs)))


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown", "json"]),
    default="rich",
    show_default=True,
    help="terminal tables, Markdown (README/paper ready) or JSON",
)


@cli.command()
@click.argument("file")
@FORMAT
@click.option("--per-seed", is_flag=True, help="every seed's cells instead of the aggregate across seeds")
@_friendly
def show(file: str, fmt: str, per_seed: bool) -> None:
    """Render a leaderboard FILE (a path, or REV:PATH from git history); validated and migrated on load.

    A leaderboard of several seeds is shown aggregated (mean, sd and interval across seeds); --per-seed
    shows every seed's cells.
    """
    from ..leaderboard import render, store
    from ..leaderboard.compare import load_side

    board = load_side(file)
    if fmt == "rich":
        render.render(board, per_seed=per_seed)
    elif fmt == "markdown":
        click.echo(render.markdown(board, per_seed=per_seed))
    else:
        click.echo(json_text(store.dumps(board)), nl=False)


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--threshold",
    type=FiniteFloat(ge=0, le=100),
    default=1.0,
    show_default=True,
    help="smallest change, in accuracy points, that can count as better/worse",
)
@click.option(
    "--alpha",
    type=FiniteFloat(gt=0, le=1),
    default=0.05,
    show_default=True,
    help="significance level of the paired McNemar test",
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="exit 1 when any comparable cell gets significantly worse, or when no cell could be compared at all (for CI)",
)
@click.option(
    "--allow-no-comparable",
    is_flag=True,
    help="with --fail-on-regression: pass even when the two files share no comparable cell",
)
@FORMAT
@_friendly
def compare(
    old: str, new: str, threshold: float, alpha: float, fail_on_regression: bool, allow_no_comparable: bool, fmt: str
) -> None:
    """Compare two leaderboards cell by cell. Each side is a file or REV:PATH (e.g. HEAD~3:leaderboards/quick.json).

    Cells are matched by task, attack, mode, backbone, dataset and preset. A metric is shown as better
    or worse only when it moves by at least --threshold points AND a paired test on the same images
    says so; cells computed differently are marked not comparable with the reason.
    """
    from ..leaderboard.compare import compare as run_compare
    from ..leaderboard.compare import load_side
    from ..leaderboard.render import render_comparison

    result = run_compare(load_side(old), load_side(new), threshold=threshold, alpha=alpha)
    shown = render_comparison(result, fmt, threshold=threshold, alpha=alpha)
    if shown is not None:
        click.echo(shown)
    regressed = [r for r in result if r.regressed]
    if fail_on_regression and regressed:
        raise _Fail(f"{len(regressed)} cell(s) regressed: " + ", ".join("/".join(r.key[:3]) for r in regressed), 1)
    if fail_on_regression and not allow_no_comparable and not any(r.status == "compared" for r in result):
        statuses = ", ".join(f"{n} {s}" for s, n in Counter(r.status for r in result).items()) or "no cells"
        raise _Fail(
            f"no comparable cells between {old} and {new} ({statuses}): nothing was checked; compare files "
            f"of the same configuration, or pass --allow-no-comparable",
            1,
        )


def _echo_markdown(body: str, fmt: str) -> None:
    """A study's Markdown as it is (ready for the docs), or rendered for the terminal. Each study escapes the file's
    strings in its cells; no control character reaches the terminal even if one is missed."""
    body = printable(body, keep="\n")
    if fmt == "markdown":
        click.echo(body)
        return
    from rich.markdown import Markdown

    from ..leaderboard.render import wide_console

    wide_console().print(Markdown(body))


# the study commands: a leaderboard (or several) turned into a generated docs section
STUDY_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown"]),
    default="rich",
    show_default=True,
    help="terminal or Markdown (the docs' sections are this output, unedited)",
)


def _print_study(make, fmt: str) -> None:
    """Print ``make()``'s Markdown; a leaderboard the study cannot use (ValueError) is exit 2."""
    try:
        body = make()
    except ValueError as exc:
        raise _Fail(str(exc), 2) from exc
    _echo_markdown(body, fmt)


@cli.command("versus-report")
@click.argument("file", default="leaderboards/seed.json")
@STUDY_FORMAT
@_friendly
def versus_report(file: str, fmt: str) -> None:
    """Set a leaderboard FILE (default leaderboards/seed.json) beside the source report's Table I.

    Cell by cell with the difference, the reverse attack's effect in each cell with a paired test on
    the same images, and whether each of the report's four findings reproduces. Made for a run of
    `ssrbench run --preset seed --tasks inpaint --attacks fgsm,pgd2`.
    """
    from ..leaderboard.compare import load_side
    from ..studies.source_report import markdown

    _print_study(lambda: markdown(load_side(file), file), fmt)


@cli.command("seed-findings")
@click.argument("file", default="leaderboards/quick-seeds.json")
@STUDY_FORMAT
@_friendly
def seed_findings(file: str, fmt: str) -> None:
    """The source report's four findings judged across the training seeds of FILE (default
    leaderboards/quick-seeds.json): each reverse-attack effect as mean ± sd over seeds with a
    seeds-then-images interval, and whether each finding survives seed variation."""
    from ..leaderboard.compare import load_side
    from ..studies.seed_findings import markdown

    _print_study(lambda: markdown(load_side(file), file), fmt)


@cli.command("task-ranking")
@click.argument("files", nargs=-1, required=True)
@STUDY_FORMAT
@_friendly
def task_ranking(files: tuple[str, ...], fmt: str) -> None:
    """Tasks side by side across leaderboards FILES: clean cost, Adv+Rev gains and worst cases, recomputed
    from the per-image flags on the first images every file evaluated, so rows are comparable."""
    from ..leaderboard.compare import load_side
    from ..studies.task_ranking import markdown

    _print_study(lambda: markdown([(f, load_side(f)) for f in files]), fmt)


@cli.command("base-findings")
@click.argument("file", default="leaderboards/quick-robust.json")
@click.option(
    "--alpha",
    type=FiniteFloat(gt=0, le=1),
    default=0.05,
    show_default=True,
    help="family-wise significance level: verdicts are judged on Holm-adjusted p-values",
)
@STUDY_FORMAT
@_friendly
def base_findings(file: str, alpha: float, fmt: str) -> None:
    """Does the reverse attack beat its robust base? Per task, mode and seed of FILE (default
    leaderboards/quick-robust.json): the defended worst case over every attack against the classifier
    trained alone, undefended, attacked alike (its own attacks, AutoAttack, transfer both ways), on the same
    images; a randomised defense with one draw and with every draw; McNemar p-values, Holm-adjusted over the
    file's verdicts; the two-sided answer in words, and with several seeds whether it holds across them."""
    from ..leaderboard.compare import load_side
    from ..studies.robust_base import markdown

    _print_study(lambda: markdown(load_side(file), file, alpha), fmt)


# `plot` and `curves` draw or print only the named configs of a leaderboard
SELECT_TASKS = click.option(
    "--tasks",
    callback=_csv,
    default=None,
    help="only these task configs, as the leaderboard names them (a sweep point: inpaint@rev=8/255)",
)
SELECT_ATTACKS = click.option(
    "--attacks",
    callback=_csv,
    default=None,
    help="only these attack configs, as the leaderboard names them (a sweep point: pgd10@eps=8/255)",
)


@cli.command()
@click.argument("file")
@SELECT_TASKS
@SELECT_ATTACKS
@STUDY_FORMAT
@_friendly
def curves(file: str, tasks: list[str] | None, attacks: list[str] | None, fmt: str) -> None:
    """The numbers behind `plot --kind eps` and `--kind reverse`, as tables, from a sweep leaderboard FILE
    (`run --attack-eps ... --reverse-eps ...`): accuracy against the attack's eps -- Adv, Adv+Rev of each
    attack and their per-image worst case -- and the reverse attack's gain and clean cost against its eps."""
    from ..leaderboard.compare import load_side
    from ..studies.curves import markdown

    _print_study(lambda: markdown(load_side(file), file, tasks, attacks), fmt)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["eps", "reverse", "pareto", "roc"]),
    required=True,
    help="eps: accuracy vs attack eps; reverse: the reverse attack's gain and clean cost vs its eps; pareto: "
    "clean vs worst-case accuracy with the front; roc: the pretext metric as an attack detector",
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="figure to write (.png or .svg)"
)
@SELECT_TASKS
@SELECT_ATTACKS
@_friendly
def plot(file: Path, kind: str, out: Path, tasks: list[str] | None, attacks: list[str] | None) -> None:
    """Draw a figure from a leaderboard FILE (needs the `plot` extra: pip install 'ssrbench[plot]').

    The figure's caption names the leaderboard, commit, preset and images; its metadata holds the file's
    SHA-256, so a figure can be checked against the leaderboard it claims to show.
    """
    import hashlib

    from ..core.fileio import check_writable, read_regular_file
    from ..leaderboard import store
    from ..studies.plots import plot as draw

    check_writable(out)
    data = read_regular_file(file)  # read once: the figure's SHA-256 is of the bytes it shows
    try:
        draw(
            store.loads(data, str(file)),
            file,
            kind,
            out,
            tasks=tasks,
            attacks=attacks,
            digest=hashlib.sha256(data).hexdigest(),
        )
    except ValueError as exc:
        raise _Fail(f"{file}: {exc}", 2) from exc
    Console(stderr=True).print(text(f"figure written to {out}"))


@cli.command()
@click.argument("files", nargs=-1)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="folder to write the site into (created if missing; its pages are replaced one by one)",
)
@click.option(
    "--compare",
    "versus",
    nargs=2,
    default=None,
    metavar="OLD NEW",
    help="also a compare page of two leaderboards (files or REV:PATH), judged as `ssrbench compare` does",
)
@click.option(
    "--figures/--no-figures",
    default=True,
    show_default=True,
    help="draw each leaderboard's figures (the `plot` extra; without it the pages say so)",
)
@_friendly
def site(files: tuple[str, ...], out: Path, versus: tuple[str, str] | None, figures: bool) -> None:
    """Write leaderboards as a static site into --out: an index, one page per FILE (a file, REV:PATH, or a
    folder for every *.json under it; default leaderboards/), and with --compare a page of two files.

    The folder opens from file:// -- no server, no network. Each page holds the file's provenance, a sortable,
    filterable table of every cell (the four accuracies with intervals, both effects, its model's worst case and
    verdict against the static base, cost), the verdict, worst-case, randomised-defense, detection, gated and
    cost tables, the figures, and each cell's details. Every number is made by the code that renders `show`.
    """
    from ..core.fileio import check_writable_dir
    from ..studies import site as build_site

    check_writable_dir(out, "--out")
    try:
        left_out = build_site.build(files or ("leaderboards",), out, versus=versus, figures=figures)
    except ValueError as exc:
        raise _Fail(str(exc), 2) from exc
    err = Console(stderr=True)
    missing = [why for why in left_out if "no figures" in why]
    if missing:  # the extra is missing: one line, not one per file
        err.print(text(missing[0].split(": ", 1)[1]))
    elif left_out:
        err.print(text(f"{len(left_out)} figures not drawn where a file has no cells for them (each page says why)"))
    err.print(text(f"site written to {out / 'index.html'} (open it in a browser; it needs no server)"))


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="merged leaderboard to write"
)
@_friendly
def merge(files: tuple[str, ...], out: Path) -> None:
    """Combine leaderboards of the same configuration run separately (other tasks, other machines)."""
    from ..leaderboard import store
    from ..leaderboard.compare import load_side
    from ..leaderboard.merge import merge as run_merge

    board = run_merge([load_side(f) for f in files], list(files), ["ssrbench", "merge", *files, "--out", str(out)])
    store.save(board, out)
    Console(stderr=True).print(text(f"merged {len(files)} leaderboards ({len(board.cells)} cells) into {out}"))
