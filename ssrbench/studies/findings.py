"""The source report's four qualitative findings as data, and the one rule that judges them.

The same four claims are judged on one trained model (``source_report``: paired exact McNemar tests on the same
images) and across training seeds (``seed_findings``: intervals over seeds, then images). Only the evidence
differs -- an ``Estimate`` per (task, mode) -- so the claims, their bounds and what "holds" means are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..leaderboard.compare import ALPHA

SMALL_GAIN = 5.0  # finding (c): a gain below this many points is "small"


@dataclass(frozen=True)
class Finding:
    key: str  # "a" .. "d", as the report lists them
    claim: str
    side: Literal["<", ">"]  # the effect is claimed below / above ``bound`` (points)
    bound: float = 0.0


FINDINGS = {
    f.key: f
    for f in (
        Finding("a", "the reverse attack lowers clean accuracy", "<"),
        Finding("b", "it raises FGSM accuracy", ">"),
        Finding("c", "its gain under 2-step PGD is small", "<", SMALL_GAIN),  # and below its FGSM gain
        Finding("d", "classifier-first has higher clean accuracy than multitask", ">"),
    )
}


@dataclass(frozen=True)
class Estimate:
    """One (task, mode)'s evidence: an effect in accuracy points, with either its 95% interval (across seeds) or
    the exact paired test's p against no effect (one model)."""

    value: float
    interval: tuple[float, float] | None = None
    p: float | None = None

    def beyond(self, side: str, bound: float) -> bool:
        """On ``side`` of ``bound``: the whole interval (seeds); the estimate, significantly when the bound is
        zero (one model: the paired test is against no effect)."""
        if self.interval is not None:
            return self.interval[1] < bound if side == "<" else self.interval[0] > bound
        on_side = self.value < bound if side == "<" else self.value > bound
        return on_side and (bound != 0 or (self.p is not None and self.p < ALPHA))


def judge(finding: Finding, evidence: list[Estimate | None], also: list[bool] | None = None) -> tuple[bool, bool]:
    """(holds for every (task, mode) it speaks of, holds for some): an entry that was not evaluated (None) does not
    hold; ``also`` is a further condition per entry (finding (c): the gain is below the FGSM gain)."""
    holds = [
        e is not None and e.beyond(finding.side, finding.bound) and (also is None or also[i])
        for i, e in enumerate(evidence)
    ]
    return bool(holds) and all(holds), any(holds)
