"""Leaderboards as a self-contained static site: `ssrbench site FILES --out DIR`.

Every page is plain HTML with its style and a small script inline, so the folder opens from ``file://`` with no
server and no network. Every number on a page is a string made in Python by the functions that render
``ssrbench show`` (``leaderboard.render``) and ``base-findings`` (``studies.robust_base``); the script only
sorts and filters the rows it is given, by the sort keys written beside them, and never computes a value.
Every string of a file is HTML-escaped, so a leaderboard cannot put markup or script on a page.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.budget import format_budget
from ..core.extras import MissingExtraError
from ..core.plaintext import printable
from ..leaderboard import render
from ..leaderboard.compare import METRICS, compare, reverse_effects
from ..leaderboard.page import provenance_rows
from ..leaderboard.schema import Cell, Leaderboard
from .curves import MissingCellsError
from .robust_base import verdict_columns, verdict_row

FIGURES = ("pareto", "eps", "reverse", "roc")


@dataclass
class Table:
    """A table as the site shows it: each cell a (text, sort key) pair; ``key`` None sorts by the text."""

    id: str
    title: str
    caption: str
    columns: list[str]
    rows: list[list[tuple[str, float | str | None]]] = field(default_factory=list)
    links: list[str | None] = field(default_factory=list)  # per row: where its first column links to
    filterable: bool = True


def _e(value: object) -> str:
    return html.escape(printable(value), quote=True)


def _plain(text: str) -> str:
    """A Markdown answer (``**no**, worse than its base``) as text: the site shows it without the asterisks."""
    return text.replace("**", "")


def slug(name: str) -> str:
    """A file name for a leaderboard's page: its path without .json, folders joined by ``--``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name.removesuffix(".json").replace("/", "--")) or "leaderboard"


# -- one leaderboard ---------------------------------------------------------------------------------------------


def _acc_cell(a) -> tuple[str, float]:
    return render._acc(a), a.percent


def _delta_cell(effects, c: Cell, clean: bool) -> tuple[str, float]:
    d, sig = render._delta(effects, c, clean)
    return f"{d:+.2f}{'*' if sig else ''}", d


def cell_id(c: Cell) -> str:
    return slug(f"cell-{c.task.name}-{c.mode}-{c.attack.name}-seed{c.seed}")


def cells_table(board: Leaderboard) -> Table:
    """Every cell: the four accuracies with intervals, both effects, its model's worst case and verdict, cost."""
    effects = reverse_effects(board.cells)
    worst = {(w.task, w.mode, w.seed): w for w in board.worst_case}
    base = {(v.task, v.mode, v.seed): v for v in board.versus_base}
    t = Table(
        "cells",
        "cells",
        render._caption(board, board.cells[0].mode, False, effects).replace("\n", "; ")
        + "; worst case and vs static base: of the cell's (task, mode), over every attack of the file",
        [
            "task",
            "mode",
            "attack",
            "seed",
            "Clean",
            "Clean+Rev",
            "Δ clean",
            "Adv",
            "Adv+Rev",
            "Δ adv",
            "worst case Adv+Rev",
            "vs static base",
            "passes / image",
            "ms / image",
        ],
    )
    for c in board.cells:
        w, v = worst.get((c.task.name, c.mode, c.seed)), base.get((c.task.name, c.mode, c.seed))
        t.rows.append(
            [
                (c.task.name, None),
                (c.mode, None),
                (c.attack.name, None),
                (str(c.seed), c.seed),
                _acc_cell(c.clean),
                _acc_cell(c.clean_rev),
                _delta_cell(effects, c, True),
                _acc_cell(c.adv),
                _acc_cell(c.adv_rev),
                _delta_cell(effects, c, False),
                _acc_cell(w.defended) if w else ("—", None),
                (render._versus(v), v.points) if v else ("—", None),
                (f"{c.cost.passes_per_image:.0f}", c.cost.passes_per_image) if c.cost else ("—", None),
                (f"{1000 * c.cost.seconds_per_image:.1f}", c.cost.seconds_per_image) if c.cost else ("—", None),
            ]
        )
        t.links.append(f"#{cell_id(c)}")
    return t


def _text_table(
    id_: str, title: str, caption: str, columns: Iterable[str], rows: Iterable[Iterable[str]], left: int
) -> Table:
    """A table of already formatted strings; columns after the first ``left`` sort by their leading number."""
    t = Table(id_, title, caption, list(columns))
    for r in rows:
        t.rows.append([(x, None if i < left else _leading_number(x)) for i, x in enumerate(r)])
        t.links.append(None)
    return t


def _leading_number(text: str) -> float | None:
    m = re.match(r"\s*\(?b?\)?\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text.replace("−", "-"))
    return float(m.group(1)) if m else None


def board_tables(board: Leaderboard) -> list[Table]:
    tables = [cells_table(board)] if board.cells else []  # a cascade file has none (its tables come below)
    several = len(board.seeds) > 1
    if board.versus_base:
        tables.append(
            _text_table(
                "verdicts",
                "the reverse attack against its static base",
                "as `ssrbench base-findings` judges it: two-sided, Holm-adjusted over the file's "
                "verdicts; (b) one draw, (c) every draw of a randomised defense",
                verdict_columns(several),
                ([_plain(x) for x in verdict_row(v, several)] for v in board.versus_base),
                2,
            )
        )
    if board.worst_case:
        tables.append(
            _text_table(
                "worst-case",
                "worst case over attacks",
                render.RANK_CAPTION,
                render.RANK_COLUMNS,
                render.ranking(board, per_seed=True),
                2,
            )
        )
    for title, columns, rows, caption, left in render._extra_tables(board):
        tables.append(_text_table(slug(title), title, caption, columns, rows, left))
    return tables


def _details(board: Leaderboard, c: Cell) -> str:
    """One cell's particulars: threat model, reverse settings, components, per-image agreement counts."""
    pairs = [
        ("clean → clean+rev", c.clean.flags(), c.clean_rev.flags()),
        ("adv → adv+rev", c.adv.flags(), c.adv_rev.flags()),
    ]
    agree = "; ".join(
        f"{name}: {int((a & ~b).sum())} lost, {int((~a & b).sum())} gained, {int((a == b).sum())} the same"
        for name, a, b in pairs
    )
    threat = (
        (
            f"{c.threat.norm} ε = {format_budget(c.threat.eps)}, {c.threat.steps} steps"
            f"{', probe' if c.threat.probe else ''}"
        )
        if c.threat
        else "undeclared"
    )
    rev = ", ".join(
        f"{k} = {format_budget(v)}" if k in ("eps", "step_size") and isinstance(v, float) else f"{k} = {v}"
        for k, v in c.reverse.model_dump().items()
    )
    rows = [
        ("threat model", threat + ("; adaptive (sees the defense)" if c.adaptive else "")),
        ("reverse attack", rev + ("; randomised" if c.reverse_randomized else "; deterministic")),
        (
            "task",
            f"{c.task.name} ({c.task.kind} {c.task.version}, {c.task.distribution} "
            f"{c.task.distribution_version}); params {c.task.params}",
        ),
        (
            "attack",
            f"{c.attack.name} ({c.attack.kind} {c.attack.version}, {c.attack.distribution} "
            f"{c.attack.distribution_version}); params {c.attack.params}",
        ),
        ("model", f"{c.backbone}, seed {c.seed}, weights {(c.weights_sha256 or 'unknown')[:16]}"),
        ("images", f"{c.clean.n}; per image, paired: {agree}"),
        ("pretext", f"{c.pretext.metric}: {render._pretext(c)}"),
    ]
    if c.randomized:
        r = c.randomized
        rows.append(
            (
                "randomised defense",
                f"(a) fixed draw {render._acc(r.fixed_draw)}, (b) one draw "
                f"{render._acc(c.adv_rev)}, (c) all {r.draws} draws "
                f"{render._acc(r.all_draws)}",
            )
        )
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (
        f'<section class="cell" id="{cell_id(c)}"><h3>{_e(c.task.name)} · {_e(c.mode)} · {_e(c.attack.name)}'
        f' · seed {c.seed}</h3><table class="details">{body}</table></section>'
    )


# -- HTML ----------------------------------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1f;background:#fff}
header{background:#3f51b5;color:#fff;padding:10px 24px}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:12px 24px;max-width:1600px}h1{font-size:22px;font-weight:500}h2{font-size:17px;margin-top:28px}
h3{font-size:14px;margin:18px 0 4px}table{border-collapse:collapse;margin:6px 0}
th,td{border-bottom:1px solid #ddd;padding:3px 9px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}td.num{white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none;background:#f3f3f6}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
.caption{color:#555;font-size:12px;max-width:1100px}input.filter{padding:4px 8px;width:340px;margin:4px 0}
.count{color:#555;font-size:12px;margin-left:8px}code{background:#f3f3f6;padding:1px 4px}
table.details th{font-weight:500;color:#555;width:150px}img{max-width:100%;border:1px solid #eee}
.note{color:#8a4b00}
"""

# Sorting and filtering only: every value shown and every sort key is written into the page by Python.
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var up = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var kx = x.getAttribute('data-key'), ky = y.getAttribute('data-key');
        var c;
        if (kx !== null && ky !== null) { c = parseFloat(kx) - parseFloat(ky); }
        else if (kx !== null) { c = -1; } else if (ky !== null) { c = 1; }
        else { c = x.textContent.localeCompare(y.textContent); }
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('input.filter').forEach(function (input) {
  var table = document.getElementById(input.getAttribute('data-table'));
  var count = document.getElementById(input.getAttribute('data-count'));
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(Boolean), shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      var keep = terms.every(function (t) { return text.indexOf(t) >= 0; });
      row.hidden = !keep; if (keep) { shown += 1; }
    });
    count.textContent = shown + ' of ' + table.tBodies[0].rows.length + ' rows';
  }
  input.addEventListener('input', apply); apply();
});
"""


def _table_html(t: Table) -> str:
    numeric = [any(isinstance(r[i][1], (int, float)) for r in t.rows) for i in range(len(t.columns))]
    head = "".join(f"<th{' class=num' if numeric[i] else ''}>{_e(col)}</th>" for i, col in enumerate(t.columns))
    body = []
    for row, link in zip(t.rows, t.links):
        tds = []
        for i, (value, key) in enumerate(row):
            shown = _e(value)
            if i == 0 and link:
                shown = f'<a href="{_e(link)}">{shown}</a>'
            attr = f' data-key="{key!r}"' if isinstance(key, (int, float)) else ""
            tds.append(f"<td{' class=num' if numeric[i] else ''}{attr}>{shown}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    filt = (
        (
            f'<input class="filter" type="search" placeholder="filter rows: words, all must match" '
            f'data-table="{t.id}" data-count="{t.id}-count" aria-label="filter {_e(t.title)}">'
            f'<span class="count" id="{t.id}-count"></span>'
        )
        if t.filterable
        else ""
    )
    return (
        f'<h2 id="{t.id}-title">{_e(t.title)}</h2>{filt}<table class="sortable" id="{t.id}"><thead><tr>{head}'
        f'</tr></thead><tbody>{"".join(body)}</tbody></table><p class="caption">{_e(t.caption)}</p>'
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)} · ssrbench</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f'<body><header><a href="index.html">ssrbench leaderboards</a></header><main>{body}</main>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


@dataclass
class Source:
    """A leaderboard as the site shows it: the name it was given by, its bytes' SHA-256, the parsed file."""

    name: str
    digest: str
    board: Leaderboard

    @property
    def page(self) -> str:
        return slug(self.name) + ".html"


def leaderboard_page(src: Source, figures: dict[str, str], not_drawn: list[str]) -> str:
    b = src.board
    prov = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v.replace('``', '').replace('`', ''))}</td></tr>" for k, v in provenance_rows(b)
    )
    parts = [
        f"<h1>{_e(src.name)}</h1>",
        f'<table class="details">{prov}<tr><th>sha256</th><td><code>{src.digest}</code></td></tr></table>',
    ]
    parts += [_table_html(t) for t in board_tables(b)]
    parts += [f'<p class="note">sanity check: {_e(w)}</p>' for w in b.warnings]
    parts += [f'<p class="note">note: {_e(n)}</p>' for n in b.notes]
    if figures or not_drawn:
        parts.append('<h2 id="figures">figures</h2>')
        parts += [
            f'<p><img src="{_e(f)}" alt="{_e(kind)} figure of {_e(src.name)}"></p>' for kind, f in figures.items()
        ]
        parts += [f'<p class="caption">{_e(n)}</p>' for n in not_drawn]
    parts.append('<h2 id="cell-details">cell details</h2>')
    parts += [_details(b, c) for c in b.cells]
    return _page(src.name, "".join(parts))


def index_page(sources: list[Source], compared: tuple[str, str] | None) -> str:
    t = Table(
        "leaderboards",
        "leaderboards",
        "one page per file; the verdicts count the reverse attack against its "
        "static base (two-sided, Holm-adjusted over the file's verdicts)",
        ["file", "preset", "cells", "images", "seeds", "verdicts: better / worse / undecided", "commit", "created"],
    )
    for s in sources:
        b, vs = s.board, [v.verdict for v in s.board.versus_base]
        t.rows.append(
            [
                (s.name, None),
                (b.preset, None),
                (str(len(b.cells)), len(b.cells)),
                (str(b.dataset.eval_images), b.dataset.eval_images),
                (", ".join(map(str, b.seeds)), len(b.seeds)),
                (
                    f"{vs.count('beats its base')} / {vs.count('worse than its base')} / "
                    f"{vs.count('no significant difference')}"
                    if vs
                    else "—",
                    len(vs) or None,
                ),
                ((b.git_commit or "unknown")[:7], None),
                (f"{b.created:%Y-%m-%d %H:%M}", None),
            ]
        )
        t.links.append(s.page)
    body = _table_html(t)
    if compared:
        body += f'<p><a href="compare.html">compare {_e(compared[0])} → {_e(compared[1])}</a></p>'
    return _page("leaderboards", "<h1>ssrbench leaderboards</h1>" + body)


def compare_page(old: Source, new: Source, threshold: float, alpha: float) -> str:
    rows = render.comparison_rows(compare(old.board, new.board, threshold, alpha))
    t = Table(
        "comparison",
        "comparison (old → new)",
        f"a change counts only when |Δ| ≥ {threshold:g} points and the Holm-adjusted p < {alpha:g}; "
        f"with other weights a side needs two seeds or more, else the cell is undecided",
        ["task", "attack", "mode", "status", *METRICS],
    )
    for r in rows:
        status = r["status"] + (f" ({'; '.join(r['reasons'])})" if r["reasons"] else "")
        cells = [(r["task"], None), (r["attack"], None), (r["mode"], None), (status, None)]
        for m in METRICS:
            cells.append((_plain(render._change_text(r, m, False)), r[m]["delta"]) if m in r else ("", None))
        t.rows.append(cells)
        t.links.append(None)
    head = (
        f"<h1>{_e(old.name)} → {_e(new.name)}</h1><p>as <code>ssrbench compare {_e(old.name)} "
        f'{_e(new.name)}</code> judges it; the pages: <a href="{_e(old.page)}">{_e(old.name)}</a>, '
        f'<a href="{_e(new.page)}">{_e(new.name)}</a></p>'
    )
    return _page(f"{old.name} → {new.name}", head + _table_html(t))


def figure_files(src: Source, path: Path, out: Path) -> tuple[dict[str, str], list[str]]:
    """Draw each figure kind the file has cells for into ``out``; the ones that cannot be drawn, and why."""
    from .plots import plot

    drawn, why = {}, []
    for kind in FIGURES:
        name = f"{slug(src.name)}-{kind}.png"
        try:
            plot(src.board, path, kind, out / name, digest=src.digest)
        except MissingExtraError as exc:
            return {}, [f"no figures: {exc}"]
        except (MissingCellsError, ValueError, KeyError, StopIteration) as exc:
            why.append(f"{kind}: not drawn ({exc or 'no cells for it'})")
            continue
        drawn[kind] = name
    return drawn, why


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the whole site ------------------------------------------------------------------------------------------------


def expand(specs: Iterable[str]) -> list[str]:
    """Files as given; a folder stands for every ``*.json`` under it (sorted); ``REV:PATH`` passes through."""
    out: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.json") if f.is_file())
            if not found:
                raise MissingCellsError(f"{spec}: a folder with no leaderboard (*.json) in it")
            out += [f.as_posix() for f in found]
        else:
            out.append(spec)
    if len(set(out)) != len(out):
        raise MissingCellsError("a leaderboard is given twice: name each file once")
    return out


def load(spec: str) -> Source:
    """A leaderboard file or ``REV:PATH``, validated as every reader validates it, with its bytes' SHA-256."""
    from ..core.fileio import read_regular_file
    from ..leaderboard.compare import _exists, _git_show, load_side
    from ..leaderboard.store import loads

    if _exists(spec):
        data = read_regular_file(spec)
        return Source(spec, digest_of(data), loads(data, spec))
    board = load_side(spec)  # refuses a revision that git would read as an option, or a missing file
    return Source(spec, digest_of(_git_show(spec, None)), board)


def build(
    specs: Iterable[str],
    out: Path,
    *,
    versus: tuple[str, str] | None = None,
    figures: bool = True,
    threshold: float = 1.0,
    alpha: float = 0.05,
) -> list[str]:
    """Write the site into ``out``: index.html, a page per leaderboard (and its figures), compare.html for
    ``versus`` (OLD, NEW). Every file is read and validated before anything is written, and each page and
    figure is written atomically, so a bad input leaves ``out`` as it was. Returns what was left out, and why."""
    from ..core.fileio import atomic_write_text

    sources = [load(s) for s in expand(specs)]
    pages: dict[str, str] = {}
    left_out: list[str] = []
    drawn: dict[str, tuple[dict[str, str], list[str]]] = {}
    if versus:
        old, new = (next((s for s in sources if s.name == v), None) or load(v) for v in versus)
        pages["compare.html"] = compare_page(old, new, threshold, alpha)
        sources += [s for s in (old, new) if s not in sources]
    if len({s.page for s in sources}) != len(sources):
        raise MissingCellsError("two leaderboards would get the same page name: give them different paths")
    for s in sources:
        drawn[s.page] = ({}, ["figures: not drawn (--no-figures)"]) if not figures else ({}, [])
    out.mkdir(parents=True, exist_ok=True)
    for s in sources:
        if figures:
            drawn[s.page] = figure_files(s, Path(s.name), out)
        left_out += [f"{s.name}: {why}" for why in drawn[s.page][1]]
        pages[s.page] = leaderboard_page(s, *drawn[s.page])
    pages["index.html"] = index_page(sources, versus)
    for name, text in pages.items():
        atomic_write_text(out / name, text)
    return left_out
