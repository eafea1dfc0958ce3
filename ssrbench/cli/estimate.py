"""``run --estimate``: the cost table. Only prints; ``ssrbench.run.estimate`` computes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..run.estimate import Estimate
from ..run.spec import RunSpec


def _minutes(m: float) -> str:
    if m >= 600:
        return f"{m / 60:,.0f} h"
    if m >= 60:
        return f"{m / 60:.1f} h"
    return f"{m:.1f}" if m >= 0.1 else f"{m:.2f}"


def render_estimate(est: Estimate, spec: RunSpec, console: Console) -> None:
    gpus = list(est.gpus)
    where = [f"here: {est.here}, timed now"] if est.here else []
    where += [f"{gpu}: kept measurement" for gpu in gpus]
    table = Table(
        title=f"estimated cost of the run (preset {spec.preset_name}, {len(spec.seeds)} seed(s))",
        caption="minutes -- " + "; ".join(where),
    )
    table.add_column("work", ratio=1)  # wraps on a narrow terminal; the numbers never do
    for header in ["images", "passes", "TFLOP", "here", *(g.removeprefix("NVIDIA ") for g in gpus)]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in est.rows:
        cells = [row.what, f"{row.images:,}", _passes(row.passes), _tflop(row.flops)]
        cells.append(_minutes(est.minutes_here(row)) if est.here_flops_per_s else "-")
        cells += [_minutes(est.minutes_on(g, row)) for g in gpus]
        table.add_row(*cells)
    footer = ["total", "", "", _tflop(est.total_flops)]
    footer.append(_minutes(sum(est.minutes_here(r) for r in est.rows)) if est.here_flops_per_s else "-")
    footer += [_minutes(sum(est.minutes_on(g, r) for r in est.rows)) for g in gpus]
    table.add_row(*footer, style="bold")
    console.print(table)
    for gpu in gpus:
        rates = est.gpus[gpu]
        console.print(
            f"{gpu}: {rates['fp32'] / 1e12:.1f} TFLOP/s fp32, {rates['bf16'] / 1e12:.1f} bf16 -- what a ResNet-18 "
            f"training step achieved there (kept measurement); other models achieve other rates: an estimate"
        )
    if est.here_flops_per_s:
        console.print(
            f"here: {est.here_train_flops_per_s / 1e9:.1f} GFLOP/s in a training step, "
            f"{est.here_flops_per_s / 1e9:.1f} in an attack's pass, timed now on the run's classifier"
        )
    for note in est.notes:
        console.print(f"note: {note}")


def _passes(p: float) -> str:
    return f"{p:,.0f}" if p >= 10 else f"{p:.2g}"


def _tflop(flops: float) -> str:
    t = flops / 1e12
    return f"{t:,.0f}" if t >= 100 else f"{t:.3g}"


def markdown_estimate(est: Estimate, spec: RunSpec) -> str:
    """The table for a page: the kept GPUs' minutes only (this machine's timing differs from run to run, a page
    must not)."""
    gpus = list(est.gpus)
    head = ["work", "images", "passes / image", "TFLOP", *(f"min on {g}" for g in gpus)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for row in est.rows:
        cells = [row.what, f"{row.images:,}", _passes(row.passes), _tflop(row.flops)]
        lines.append("| " + " | ".join(cells + [_minutes(est.minutes_on(g, row)) for g in gpus]) + " |")
    total = [_minutes(sum(est.minutes_on(g, r) for r in est.rows)) for g in gpus]
    lines.append("| " + " | ".join(["**total**", "", "", _tflop(est.total_flops), *(f"**{t}**" for t in total)]) + " |")
    rates = "; ".join(
        f"{g}: {r['fp32'] / 1e12:.1f} TFLOP/s fp32, {r['bf16'] / 1e12:.1f} bf16 (a ResNet-18 training step there)"
        for g, r in est.gpus.items()
    )
    lines += ["", f"Preset `{spec.preset_name}`, {len(spec.seeds)} seed(s). Rates: {rates}."]
    lines += [f"{n[0].upper()}{n[1:]}." for n in est.notes]
    return "\n".join(lines)
