"""Leaderboards across commits, the asv way: a change is reported only when it is larger than a
threshold *and* significant under a paired test on the same images; cells that were not computed
the same way are marked not comparable, with the reason, and never diffed."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.fileio import UnreadableError, read_capped
from ..core.stats import ALPHA, holm, mcnemar_exact
from .schema import Cell, Leaderboard
from .seeds import by_group, seed_differences
from .store import LeaderboardError, load, loads

METRICS = ("clean", "clean_rev", "adv", "adv_rev")


def _exists(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte: no file of that name
        return False


def load_side(spec: str, repo: Path | None = None) -> Leaderboard:
    """A leaderboard file, or ``REV:PATH`` read through git (no checkout needed)."""
    if _exists(spec):
        return load(spec)
    if ":" in spec:
        rev, _, _path = spec.partition(":")
        if rev.startswith("-"):  # git would take it for an option (--output=FILE writes FILE)
            raise LeaderboardError(
                f"{spec}: a revision cannot start with '-'; give a file path, or REV:PATH with "
                f"a revision such as HEAD~1"
            )
        return loads(_git_show(spec, repo), spec)
    raise LeaderboardError(f"{spec}: no such file (use a path, or REV:PATH for a file in git history)")


def _git_show(spec: str, repo: Path | None) -> bytes:
    """The bytes git holds for ``REV:PATH``, at most ``fileio.MAX_READ_BYTES`` of them (a huge blob is refused while
    it streams, not after). ``--end-of-options`` (git 2.24) keeps even a revision that passed the check above
    from being read as an option."""
    with tempfile.TemporaryFile() as err:  # git's messages, apart from its output: neither pipe can fill and block
        proc = subprocess.Popen(
            ["git", "show", "--end-of-options", spec],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            data = read_capped(proc.stdout, spec)
        except UnreadableError as exc:
            proc.kill()
            raise LeaderboardError(str(exc)) from exc
        finally:
            proc.stdout.close()
            proc.wait()
        if proc.returncode != 0:
            err.seek(0)
            why = "; ".join(
                line.strip() for line in err.read(4000).decode("utf-8", "replace").splitlines() if line.strip()
            )
            raise LeaderboardError(f"{spec}: git cannot read it ({why or 'unknown error'})")
    return data


@dataclass
class MetricChange:
    metric: str
    old: float
    new: float
    lost: int
    gained: int
    p_value: float
    verdict: str  # better | worse | unchanged | undecided
    alpha: float = ALPHA  # the level the verdict was judged at
    threshold: float = 1.0  # the smallest |delta| (points) that could count
    test: str = "McNemar"  # what the verdict rests on
    p_adjusted: float | None = None  # Holm-adjusted over every judged metric of the comparison; the verdict reads it

    @property
    def delta(self) -> float:
        return self.new - self.old


@dataclass
class CellComparison:
    key: tuple[str, ...]  # the cell without its seed (Cell.group)
    status: str  # compared | not comparable | only old | only new
    reasons: list[str] = field(default_factory=list)
    changes: list[MetricChange] = field(default_factory=list)
    weights: str = ""  # same | differ | unknown: whether both sides evaluated the same trained models

    @property
    def regressed(self) -> bool:
        return any(c.verdict == "worse" for c in self.changes)


def why_not_comparable(old: Cell, new: Cell, old_board: Leaderboard, new_board: Leaderboard) -> list[str]:
    reasons = []  # both sides are migrated to the current schema on load, so their versions may differ
    if old_board.dataset.fingerprint != new_board.dataset.fingerprint:
        reasons.append("data fingerprint differs")
    if (old.clean.n, old_board.dataset.eval_selection) != (new.clean.n, new_board.dataset.eval_selection):
        reasons.append(
            f"evaluated images differ ({old_board.dataset.eval_selection} vs {new_board.dataset.eval_selection})"
        )
    if old.task.version != new.task.version:
        reasons.append(f"task version {old.task.version} vs {new.task.version}")
    if (old.task.kind, old.task.params, old.task.details) != (new.task.kind, new.task.params, new.task.details):
        reasons.append("task config differs")
    if (old.attack.kind, old.attack.version, old.attack.params) != (
        new.attack.kind,
        new.attack.version,
        new.attack.params,
    ):
        reasons.append("attack config differs")
    if old.reverse != new.reverse:
        reasons.append("reverse-attack settings differ")
    return reasons


def _weights(o: dict[int, Cell], n: dict[int, Cell]) -> str:
    """``same`` when both sides evaluated byte-identical models for the same seeds."""
    if set(o) != set(n) or any(c.weights_sha256 is None for c in [*o.values(), *n.values()]):
        return "unknown" if set(o) == set(n) else "differ"
    return "same" if all(o[s].weights_sha256 == n[s].weights_sha256 for s in o) else "differ"


def _judge(delta: float, p: float, threshold: float, alpha: float) -> str:
    if abs(delta) >= threshold and p < alpha:
        return "better" if delta > 0 else "worse"
    return "unchanged"


def _compare_group(
    o: dict[int, Cell], n: dict[int, Cell], threshold: float, alpha: float
) -> tuple[str, list[MetricChange]]:
    """One cell group across files. Same weights: an exact paired test on the same images (McNemar, pooled
    over seeds) says whether the *evaluation* changed. Other weights: the difference must stand out against
    seed-to-seed variation, which needs at least two seeds a side; with fewer there is no verdict."""
    weights = _weights(o, n)
    by_seeds = seed_differences(o, n) if weights != "same" and len(o) >= 2 and len(n) >= 2 else {}
    changes = []
    for m in METRICS:
        a_flags = np.concatenate([getattr(o[s], m).flags() for s in sorted(o)])
        b_flags = np.concatenate([getattr(n[s], m).flags() for s in sorted(n)])
        old_pct, new_pct = 100 * a_flags.mean(), 100 * b_flags.mean()
        if weights == "same" or (set(o) == set(n) and np.array_equal(a_flags, b_flags)):
            lost, gained, p = mcnemar_exact(a_flags, b_flags)
            test = "McNemar, same weights" if weights == "same" else "identical per-image results"
            verdict = _judge(new_pct - old_pct, p, threshold, alpha)
        elif by_seeds:
            delta, p = by_seeds[m]
            lost = gained = 0
            test = f"hierarchical bootstrap over seeds ({len(o)} old, {len(n)} new) and images"
            verdict = _judge(delta, p, threshold, alpha)
        else:
            lost, gained, p = mcnemar_exact(a_flags, b_flags) if a_flags.shape == b_flags.shape else (0, 0, 1.0)
            test = (
                f"none: models retrained (weights {weights}) and {min(len(o), len(n))} seed a side is not enough "
                f"to judge against seed variation; run --seeds 3 on both"
            )
            verdict = "undecided"
        changes.append(MetricChange(m, old_pct, new_pct, lost, gained, p, verdict, alpha, threshold, test))
    return weights, changes


def compare(old: Leaderboard, new: Leaderboard, threshold: float = 1.0, alpha: float = ALPHA) -> list[CellComparison]:
    """Match cells by (task, attack, mode, backbone, dataset, preset) and judge every metric over their seeds."""
    olds, news = by_group(old.cells), by_group(new.cells)
    out = []
    for key in list(dict.fromkeys([*olds, *news])):
        if key not in news:
            out.append(CellComparison(key, "only old"))
            continue
        if key not in olds:
            out.append(CellComparison(key, "only new"))
            continue
        o, n = olds[key], news[key]
        reasons = why_not_comparable(next(iter(o.values())), next(iter(n.values())), old, new)
        if reasons:
            out.append(CellComparison(key, "not comparable", reasons))
            continue
        weights, changes = _compare_group(o, n, threshold, alpha)
        out.append(CellComparison(key, "compared", changes=changes, weights=weights))
    return _holm_verdicts(out, threshold, alpha)


def _holm_verdicts(result: list[CellComparison], threshold: float, alpha: float) -> list[CellComparison]:
    """Every judged metric of every compared cell is one test of one family: its verdict is re-judged on the
    Holm-adjusted p (kept beside the raw one), so a regression gate over many cells does not fire by chance."""
    judged = [ch for r in result for ch in r.changes if ch.verdict != "undecided"]
    for ch, p in zip(judged, holm([ch.p_value for ch in judged])):
        ch.p_adjusted = p
        ch.verdict = _judge(ch.delta, p, threshold, alpha)
    return result


@dataclass(frozen=True)
class Effect:
    """The reverse attack's own effect inside one cell, judged once here; renderers only display it.
    ``p_adjusted``: Holm-adjusted over the file's effects (``reverse_effects``); significance reads it."""

    points: float
    p_value: float
    alpha: float
    p_adjusted: float | None = None

    @property
    def significant(self) -> bool:
        return (self.p_value if self.p_adjusted is None else self.p_adjusted) < self.alpha


def paired_effect(before: np.ndarray, after: np.ndarray, alpha: float = ALPHA) -> Effect:
    """``after`` vs ``before``, per-image correctness of the same images, paired (exact McNemar)."""
    _, _, p = mcnemar_exact(before, after)
    return Effect(100 * (float(np.mean(after)) - float(np.mean(before))), p, alpha)


def reverse_effect(cell: Cell, clean: bool, alpha: float = ALPHA) -> Effect:
    """Clean+Rev vs Clean (``clean``) or Adv+Rev vs Adv, on the same images."""
    before, after = (cell.clean, cell.clean_rev) if clean else (cell.adv, cell.adv_rev)
    return paired_effect(before.flags(), after.flags(), alpha)


def effect_key(cell: Cell, clean: bool) -> tuple:
    """A model's clean effect is one test, whichever attack's cell shows it; each cell's adversarial effect one."""
    return ("clean", cell.task.name, cell.mode, cell.seed) if clean else ("adv", *cell.id)


def reverse_effects(cells: list[Cell], alpha: float = ALPHA) -> dict[tuple, Effect]:
    """Every reverse-attack effect of a file (by ``effect_key``), Holm-corrected together: a table of dozens
    of cells marks an effect only when it survives the file's number of tests."""
    raw: dict[tuple, Effect] = {}
    for c in cells:
        for clean in (True, False):
            raw.setdefault(effect_key(c, clean), reverse_effect(c, clean, alpha))
    adjusted = holm([e.p_value for e in raw.values()])
    return {k: Effect(e.points, e.p_value, alpha, p) for (k, e), p in zip(raw.items(), adjusted)}
