"""The source report's four findings, judged across training seeds instead of on one trained model.

A single model's paired test says whether *that* model's reverse attack changed its accuracy; whether
the method does needs the spread over retrained models. Each effect here is the mean over seeds with
its standard deviation and a hierarchical-bootstrap interval (seeds, then images); a finding survives
seed variation when every (task, mode) it speaks of has an interval on the claimed side of zero.
"""

from __future__ import annotations

from ..core.plaintext import md
from ..leaderboard.schema import Leaderboard
from ..leaderboard.seeds import Aggregate, Spread
from .findings import FINDINGS, SMALL_GAIN, Estimate, judge
from .source_report import report_row

MODES = ("multitask", "classifier-first")


def _fmt(s: Spread) -> str:
    return f"{s.mean:+.2f} ± {s.sd:.2f} [{s.ci95[0]:+.1f}, {s.ci95[1]:+.1f}]{'*' if s.excludes_zero else ''}"


def _find(aggs: list[Aggregate], task: str, mode: str, attack_kind: str, board: Leaderboard) -> Aggregate | None:
    """The aggregate of ``task``/``mode`` under the built-in attack of that kind (PGD: 2 steps)."""
    for a in aggs:
        cell = next(c for c in board.cells if (c.task.name, c.attack.name, c.mode) == (a.task, a.attack, a.mode))
        steps_ok = attack_kind != "pgd" or (cell.threat is not None and cell.threat.steps == 2)
        if a.task == task and a.mode == mode and cell.attack.kind == attack_kind and steps_ok:
            return a
    return None


def _verdict(all_ok: bool, some_ok: bool) -> str:
    if all_ok:
        return "**survives seed variation**"
    return "**partly survives**" if some_ok else "**does not survive seed variation**"


def markdown(board: Leaderboard, source: str) -> str:
    aggs = board.aggregates
    if not aggs:
        raise ValueError(f"{source}: one seed only; run `ssrbench run ... --seeds 3` (or merge runs of other seeds)")
    tasks = list(dict.fromkeys(a.task for a in aggs))
    shown = {t: md(t) for t in tasks}  # the findings' lines name tasks read from the file
    n = len(board.seeds)
    lines = [
        f"`{md(source)}`: {n} training seeds ({', '.join(map(str, board.seeds))}), {aggs[0].n_images} images, "
        f"device {md(board.environment.device_name)}. Each effect of the reverse attack is the mean over seeds "
        f"± sd [95% interval: bootstrap over seeds, then images]; * = the interval excludes 0.",
        "",
        "| task | mode | attack | on clean images (Clean+Rev − Clean) | on attacked images (Adv+Rev − Adv) |",
        "|---|---|---|---:|---:|",
    ]
    for a in aggs:
        lines.append(
            f"| {md(a.task)} | {md(a.mode)} | {md(a.attack)} | {_fmt(a.metrics['clean_effect'])} | "
            f"{_fmt(a.metrics['adv_effect'])} |"
        )
    lines.append("")

    def rows(kind: str):
        return [(t, m, _find(aggs, t, m, kind, board)) for t in tasks for m in MODES]

    def seeds(a: Aggregate, metric: str) -> Estimate:
        m = a.metrics[metric]
        return Estimate(m.mean, interval=m.ci95)

    def line(key: str, evidence, parts, also=None, claim: str | None = None) -> str:
        f = FINDINGS[key]
        every, some = judge(f, evidence, also)
        return f"- ({key}) {claim or f.claim}: {_verdict(every, some)} — {'; '.join(parts)}."

    # (a) the reverse attack lowers clean accuracy; (b) it raises FGSM accuracy
    found = [(t, m, a) for t, m, a in rows("fgsm") if a is not None]
    for key, metric in (("a", "clean_effect"), ("b", "adv_effect")):
        evidence = [seeds(a, metric) for _, _, a in found]
        lines.append(line(key, evidence, [f"{shown[t]} {m} {_fmt(a.metrics[metric])}" for t, m, a in found]))
    # (c) its gain under 2-step PGD is small: below SMALL_GAIN and below the FGSM gain
    fgsm = {(t, m): a for t, m, a in found}
    pgd2 = [(t, m, a) for t, m, a in rows("pgd") if a is not None]
    below, parts = [], []
    for t, m, a in pgd2:
        gain, f = a.metrics["adv_effect"], fgsm.get((t, m))
        below.append(f is None or gain.mean < f.metrics["adv_effect"].mean)
        parts.append(
            f"{shown[t]} {m} {_fmt(gain)}" + (f" against {f.metrics['adv_effect'].mean:+.2f} under FGSM" if f else "")
        )
    claim = (
        f"{FINDINGS['c'].claim} (interval below {SMALL_GAIN:g} points, mean below the FGSM gain; the report: "
        f"{report_row('multitask', 'pgd2').adv_effect:+.2f} against {report_row('multitask', 'fgsm').adv_effect:+.2f})"
    )
    lines.append(line("c", [seeds(a, "adv_effect") for _, _, a in pgd2], parts, below, claim))
    # (d) classifier-first has higher clean accuracy than multitask: their intervals apart
    evidence, parts = [], []
    for t in tasks:
        mt, cf = fgsm.get((t, "multitask")), fgsm.get((t, "classifier-first"))
        if mt is None or cf is None:
            continue
        a, b = mt.metrics["clean"], cf.metrics["clean"]
        evidence.append(Estimate(b.mean - a.mean, interval=(b.ci95[0] - a.ci95[1], b.ci95[1] - a.ci95[0])))
        parts.append(
            f"{shown[t]}: classifier-first {b.mean:.2f} ± {b.sd:.2f} [{b.ci95[0]:.1f}, {b.ci95[1]:.1f}] vs "
            f"multitask {a.mean:.2f} ± {a.sd:.2f} [{a.ci95[0]:.1f}, {a.ci95[1]:.1f}]"
        )
    lines.append(line("d", evidence, parts or ["needs both modes"], claim=f"{FINDINGS['d'].claim} (intervals apart)"))
    return "\n".join(lines)
