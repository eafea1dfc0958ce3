"""One (task, mode) model against every attack, on the same images: the four accuracies of each cell.

A randomised defense (a task that draws at test time, or a reverse attack with a random start) is
evaluated three ways (see ``RandomizedDefense``): one fresh draw (the cell's Adv+Rev), the draws fixed
and known to the attacker, and every one of ``DRAWS`` fresh draws correct.
"""

from __future__ import annotations

import math
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..adversarial.base import Attack
from ..core.budget import ReverseConfig
from ..core.progress import Reporter
from ..data.datasets import pixels
from ..defense.gate import gate_score, threshold_at
from ..defense.reverse import Defense
from ..leaderboard.records import AttackSplit
from ..models.environment import exact_fp32
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask
from .memory import AttackMemory

DRAWS = 5  # fresh draws of a randomised defense's prediction, all of which must be correct in (c)
FIXED_SEED = 0  # the fixed draw of (a): one seed, so the fixed defense is the same function for every attack


@dataclass
class AttackOutcome:
    adv: list[np.ndarray] = field(default_factory=list)
    adv_rev: list[np.ndarray] = field(default_factory=list)
    adv_rev_fixed: list[np.ndarray] = field(default_factory=list)  # randomised defenses only: (a)
    adv_rev_all: list[np.ndarray] = field(default_factory=list)  # and (c)
    to_base: list[np.ndarray] = field(default_factory=list)  # with a static base: it on this attack's images
    from_base: list[np.ndarray] = field(default_factory=list)  # (b) the defense on the attack made against the base
    from_base_all: list[np.ndarray] = field(default_factory=list)  # (c) the same, every draw (randomised defenses)
    pretext_adv: list[np.ndarray] = field(default_factory=list)
    pretext_adv_rev: list[np.ndarray] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"attack": 0.0, "reverse": 0.0})
    zero_grad: list[float] = field(default_factory=list)  # per batch: images whose input gradient was zero


@dataclass
class Outcome:
    clean: np.ndarray
    clean_rev: np.ndarray
    pretext_clean: np.ndarray
    attacks: dict[str, AttackOutcome]
    seconds_clean: dict[str, float]
    clean_rev_fixed: np.ndarray | None = None  # randomised defenses only
    clean_rev_all: np.ndarray | None = None
    defense_passes: int = 0  # backbone image-passes of one reverse attack on every clean image
    defense_seconds: float = 0.0  # and its seconds
    resumed_after: int = 0  # images taken from kept batches of an earlier, interrupted process
    randomized: bool = False  # the defense draws afresh at each call (then evaluated the three ways)
    splits: dict[str, AttackSplit] = field(default_factory=dict)  # attacks whose calls were split to fit in memory


@contextmanager
def counting_passes(model: nn.Module) -> Iterator[list[int]]:
    """Images through the backbone while inside (the first convolution sees every pass, also a task's own
    views, rotations or tiles; each pass of a PGD step is a forward and a backward)."""
    seen: list[int] = []
    body = getattr(model, "backbone", model)  # an SSRModel's backbone; any other classifier counts as itself
    stem = next((m for m in body.modules() if isinstance(m, nn.Conv2d)), body)
    handle = stem.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].shape[0]))
    try:
        yield seen
    finally:
        handle.remove()


GATE_IMAGES = 1000  # clean training images that fix the detection gate's threshold (never test images)
GATE_FPR = 0.05


def gate_threshold(
    model: SSRModel, task: PretextTask, x_train: torch.Tensor, *, batch_size: int, seed: int
) -> tuple[float, float]:
    """The detection gate's threshold: the pretext score (``gate_score``) that flags ``GATE_FPR`` of clean
    *training* images; and the share of them it does flag (0 on a discrete score whose top value is
    that common: such a gate cannot fire)."""
    dev = next(model.parameters()).device
    gen = _seeded(seed, "gate", dev)
    with exact_fp32():
        scores = np.concatenate(
            [
                gate_score(task, model, pixels(x_train[i : i + batch_size], dev), gen).cpu().numpy()
                for i in range(0, len(x_train), batch_size)
            ]
        )
    threshold = threshold_at(scores, GATE_FPR)
    return threshold, float((scores > threshold).mean())


def _pinned(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` in page-locked memory when it goes to a GPU, so its batches copy without a staging copy."""
    return x.pin_memory() if device.type == "cuda" and not x.is_pinned() else x


def _all_draws(
    model: nn.Module, defense: Defense, x: torch.Tensor, y: torch.Tensor, first: np.ndarray, generator: torch.Generator
) -> np.ndarray:
    """Correct in the first draw (already made) and in DRAWS - 1 more fresh draws of the defense."""
    ok = first.copy()
    for _ in range(DRAWS - 1):
        ok &= _correct(model, defense.purify(x, generator), y)
    return ok


def _seeded(seed: int, name: str, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


@dataclass
class Streams:
    """Every random stream of one model's evaluation, by what it draws for: one per attack (and one for the clean
    images), so adding an attack never changes the draws -- hence the numbers -- of a randomised reverse attack or
    pretext metric in the other cells. ``evaluate`` and the cascade both take theirs from here: an image meets the
    same draws in both."""

    reverse: torch.Generator  # the defense on the clean images (Clean+Rev)
    pretext: torch.Generator  # a randomised task's metric on the clean images
    redraw: torch.Generator | None  # a randomised defense's further draws on the clean images
    attack: dict[str, torch.Generator]  # each attack's own draws (its random start)
    attack_reverse: dict[str, torch.Generator]  # the defense on each attack's images
    attack_pretext: dict[str, torch.Generator]
    attack_redraw: dict[str, torch.Generator]  # randomised defenses: the further draws on each attack's images
    fixed: dict[str, torch.Generator]  # randomised defenses: each attack against the fixed draws
    base_attack: dict[str, torch.Generator]  # the blind attacks made against the static base (classifier-first's)
    from_base_reverse: dict[str, torch.Generator]  # the defense on the base's attacked images
    from_base_redraw: dict[str, torch.Generator]

    @classmethod
    def seeded(
        cls, seed: int, attacks: Iterable[str], blind: Iterable[str], device: torch.device, *, randomised: bool
    ) -> Streams:
        """``blind``: the attacks also made against a static base (none without one)."""
        attacks, blind = list(attacks), list(blind)
        per = lambda purpose, names: {n: _seeded(seed, f"{purpose}/{n}", device) for n in names}  # noqa: E731
        return cls(
            reverse=_seeded(seed, "reverse", device),
            pretext=_seeded(seed, "pretext", device),
            redraw=_seeded(seed, "redraw", device) if randomised else None,
            attack={n: _seeded(seed, n, device) for n in attacks},
            attack_reverse=per("reverse", attacks),
            attack_pretext=per("pretext", attacks),
            attack_redraw=per("redraw", attacks) if randomised else {},
            fixed=per("fixed", attacks) if randomised else {},
            base_attack={n: _seeded(seed, n, device) for n in blind},  # classifier-first's own streams
            from_base_reverse=per("from-base/reverse", blind),
            from_base_redraw=per("from-base/redraw", blind) if randomised else {},
        )

    def by_name(self) -> dict[str, torch.Generator]:
        """Every stream under the name a kept evaluation stores its state by."""
        tables = {
            "attack": self.attack,
            "reverse": self.attack_reverse,
            "pretext": self.attack_pretext,
            "redraw": self.attack_redraw,
            "fixed": self.fixed,
            "base-attack": self.base_attack,
            "from-base/reverse": self.from_base_reverse,
            "from-base/redraw": self.from_base_redraw,
        }
        single = {"reverse": self.reverse, "pretext": self.pretext, "redraw": self.redraw}
        return {
            **{k: g for k, g in single.items() if g is not None},
            **{f"{purpose}/{n}": g for purpose, table in tables.items() for n, g in table.items()},
        }


def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():  # nothing here is ever differentiated: the flags leave as numpy
        return (model(x).argmax(1) == y).cpu().numpy()


def correct_flags(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 250) -> np.ndarray:
    """Per-image top-1 correctness of ``model`` (eval mode) on images in [0, 1], in batches on the
    model's device: the one accuracy function every study and benchmark uses."""
    if model.training:
        raise RuntimeError("correct_flags() needs the model in eval mode")
    dev = next(model.parameters()).device
    return np.concatenate(
        [
            _correct(model, x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev))
            for i in range(0, len(x), batch_size)
        ]
    )


def _pretext(task: PretextTask, model: SSRModel, x: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    with torch.inference_mode():
        return task.metric_for_eval(model, x, generator).float().cpu().numpy()


class KeptBatches(Protocol):
    """Where an evaluation keeps its finished batches (``ModelCache.load_progress``/``save_progress`` under
    the evaluation's key), so a killed run continues after its last finished batch."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


def evaluate(
    model: SSRModel,
    task: PretextTask,
    attacks: dict[str, Attack],
    reverse: ReverseConfig,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    *,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    description: str,
    gate: float | None = None,
    kept: KeptBatches | None = None,
    base: nn.Module | None = None,
    memory: AttackMemory | None = None,
) -> Outcome:
    """``x_all`` are uint8 test images; every attack sees the same images in the same order. ``gate`` is the
    detection gate's threshold (``gate_threshold``), handed to adaptive attacks with the defense. With
    ``kept``, every finished batch is kept there and a kept evaluation continues after its last one; every
    draw comes from the streams below, so it ends with the numbers of an uninterrupted evaluation.

    ``base`` (eval mode): the static base this model is judged against, when it is another model. Every
    attack's images are then also classified by it (transfer to the base), and every attack that sees only
    the classifier is also made against the base, from the base's own stream (the images classifier-first
    makes), and defended by this model (transfer from the base): neither side escapes the other's attacks.

    ``memory`` runs every attack call, split into chunks where a batch does not fit (``AttackMemory``: on CUDA's
    out-of-memory error, or to a budget); by default, split only on that error."""
    if model.training:
        raise RuntimeError("evaluate() needs the model in eval mode")
    with exact_fp32():
        return _evaluate(
            model,
            task,
            attacks,
            reverse,
            x_all,
            y_all,
            batch_size=batch_size,
            seed=seed,
            reporter=reporter,
            description=description,
            gate=gate,
            kept=kept,
            base=base,
            memory=memory if memory is not None else AttackMemory(),
        )


def _evaluate(
    model: SSRModel,
    task: PretextTask,
    attacks: dict[str, Attack],
    reverse: ReverseConfig,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    *,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    description: str,
    gate: float | None,
    kept: KeptBatches | None,
    base: nn.Module | None,
    memory: AttackMemory,
) -> Outcome:
    dev = next(model.parameters()).device
    x_all = _pinned(x_all, dev)
    defense = Defense(model, task, reverse, gate=gate)
    randomised = defense.randomized
    blind = {name: a for name, a in attacks.items() if not a.adaptive} if base is not None else {}
    st = Streams.seeded(seed, attacks, blind, dev, randomised=randomised)
    if randomised:  # separate streams: the single-draw numbers do not depend on whether the others are run
        fixed = defense.with_fixed_draws(FIXED_SEED)
        clean_fixed, clean_all = [], []
    else:
        fixed = clean_fixed = clean_all = None
    expected = {
        name: {
            "adv",
            "adv_rev",
            *(("adv_rev_fixed", "adv_rev_all") if randomised else ()),
            *(("to_base",) if base is not None else ()),
            *(("from_base",) if name in blind else ()),
            *(("from_base_all",) if name in blind and randomised else ()),
        }
        for name in attacks
    }
    clean, clean_rev, pre_clean = [], [], []
    outs = {name: AttackOutcome() for name in attacks}
    t_clean = {"classify": 0.0, "reverse": 0.0}
    defense_passes, defense_seconds = 0, 0.0
    n = len(x_all)
    streams = st.by_name()
    lists = {
        "clean": clean,
        "clean_rev": clean_rev,
        "pretext_clean": pre_clean,
        "clean_fixed": clean_fixed,
        "clean_all": clean_all,
    }
    lists = {k: v for k, v in lists.items() if v is not None}
    start = 0
    if kept is not None and (saved := kept.load()) is not None:
        try:
            start = _check_kept(saved, n, batch_size, streams, lists, outs, expected)
        except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as exc:  # checked before anything is set
            warnings.warn(
                f"{description}: its kept batches do not fit this evaluation ({type(exc).__name__}: "
                f"{str(exc)[:200]}); evaluating from the first image",
                stacklevel=1,
            )
        else:
            _restore(saved, streams, lists, outs)
            t_clean.update(saved["seconds_clean"])
            defense_passes, defense_seconds = saved["defense_passes"], saved["defense_seconds"]
            reporter.log(f"{description}: resumed after {start}/{n} images")
    with reporter.bar(description, n, unit="images", done=start) as advance:
        for i in range(start, n, batch_size):
            x = pixels(x_all[i : i + batch_size], dev)
            y = y_all[i : i + batch_size].to(dev)
            t0 = time.perf_counter()
            clean.append(_correct(model, x, y))
            pre_clean.append(_pretext(task, model, x, st.pretext))
            t1 = time.perf_counter()
            with counting_passes(model) as seen:
                x_rev = defense.purify(x, st.reverse)
            defense_passes += sum(seen)
            defense_seconds += time.perf_counter() - t1
            clean_rev.append(_correct(model, x_rev, y))
            if randomised:
                clean_all.append(_all_draws(model, defense, x, y, clean_rev[-1], st.redraw))
                clean_fixed.append(_correct(model, fixed.purify(x), y))
            t2 = time.perf_counter()
            t_clean["classify"] += t1 - t0
            t_clean["reverse"] += t2 - t1
            for name, attack in attacks.items():
                o = outs[name]
                t0 = time.perf_counter()
                x_adv = memory(name, attack, model, x, y, st.attack[name], defense)
                if "zero_grad_fraction" in attack.stats:
                    o.zero_grad.append(attack.stats["zero_grad_fraction"] * len(x))
                t1 = time.perf_counter()
                x_adv_rev = defense.purify(x_adv, st.attack_reverse[name])
                t2 = time.perf_counter()
                o.adv.append(_correct(model, x_adv, y))
                o.adv_rev.append(_correct(model, x_adv_rev, y))
                o.pretext_adv.append(_pretext(task, model, x_adv, st.attack_pretext[name]))
                o.pretext_adv_rev.append(_pretext(task, model, x_adv_rev, st.attack_pretext[name]))
                o.seconds["attack"] += t1 - t0
                o.seconds["reverse"] += t2 - t1
                if randomised:
                    t0 = time.perf_counter()
                    o.adv_rev_all.append(_all_draws(model, defense, x_adv, y, o.adv_rev[-1], st.attack_redraw[name]))
                    # (a): an attack that sees the defense attacks the fixed one; a blind one's images are the same
                    x_fixed = (
                        memory(name, attack, model, x, y, st.fixed[name], fixed, "fixed") if attack.adaptive else x_adv
                    )
                    o.adv_rev_fixed.append(_correct(model, fixed.purify(x_fixed), y))
                    o.seconds["randomized"] = o.seconds.get("randomized", 0.0) + time.perf_counter() - t0
                if base is not None:
                    t0 = time.perf_counter()
                    o.to_base.append(_correct(base, x_adv, y))
                    if name in blind:
                        x_base = memory(name, attack, base, x, y, st.base_attack[name], against="base")
                        o.from_base.append(_correct(model, defense.purify(x_base, st.from_base_reverse[name]), y))
                        if randomised:
                            o.from_base_all.append(
                                _all_draws(model, defense, x_base, y, o.from_base[-1], st.from_base_redraw[name])
                            )
                    o.seconds["transfer"] = o.seconds.get("transfer", 0.0) + time.perf_counter() - t0
            if kept is not None:
                kept.save(_state(i + len(x), streams, lists, outs, t_clean, defense_passes, defense_seconds))
            advance(len(x))
        for name, o in outs.items():  # a result line per model x attack in a plain log
            advance(0, attack_line(name, o, clean, clean_rev), milestone=True)
    out = Outcome(
        np.concatenate(clean),
        np.concatenate(clean_rev),
        np.concatenate(pre_clean),
        outs,
        t_clean,
        defense_passes=defense_passes,
        defense_seconds=defense_seconds,
        resumed_after=start,
        randomized=randomised,
        splits=dict(memory.splits),
    )
    if randomised:
        out.clean_rev_fixed, out.clean_rev_all = np.concatenate(clean_fixed), np.concatenate(clean_all)
    return out


def attack_line(name: str, o: AttackOutcome, clean: list[np.ndarray], clean_rev: list[np.ndarray]) -> str:
    """``pgd2: adv 12.5%, adv+rev 31.2% (clean 80.0%, clean+rev 78.1%)``: one attack's accuracies."""
    acc = lambda parts: f"{100 * float(np.concatenate(parts).mean()):.1f}%" if parts else "-"  # noqa: E731
    return f"{name}: adv {acc(o.adv)}, adv+rev {acc(o.adv_rev)} (clean {acc(clean)}, clean+rev {acc(clean_rev)})"


_FLAGS = ("adv", "adv_rev", "adv_rev_fixed", "adv_rev_all", "to_base", "from_base", "from_base_all")  # correct or not
_SCORES = ("pretext_adv", "pretext_adv_rev")  # and its pretext metric


def _joined(parts: list[np.ndarray]) -> torch.Tensor | None:
    return torch.from_numpy(np.concatenate(parts)) if parts else None


def _state(
    done: int,
    streams: dict[str, torch.Generator],
    lists: dict[str, list],
    outs: dict[str, AttackOutcome],
    t_clean: dict[str, float],
    passes: int,
    seconds: float,
) -> dict[str, Any]:
    """Everything the rest of an evaluation depends on after ``done`` images: its per-image results so far,
    its timings and the state of every stream it draws from (tensors and numbers only: loaded weights-only)."""
    return {
        "done": done,
        "streams": {k: g.get_state() for k, g in streams.items()},
        "lists": {k: _joined(v) for k, v in lists.items()},
        "attacks": {
            name: {
                "arrays": {f: _joined(getattr(o, f)) for f in _FLAGS + _SCORES},
                "seconds": dict(o.seconds),
                "zero_grad": [float(z) for z in o.zero_grad],
            }
            for name, o in outs.items()
        },
        "seconds_clean": dict(t_clean),
        "defense_passes": int(passes),
        "defense_seconds": float(seconds),
    }


def _check_array(value: Any, done: int, dtype: torch.dtype, what: str) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != dtype or value.shape != (done,):
        raise ValueError(f"{what} is not {done} values of {dtype}")


def _amount(v: Any) -> bool:
    """A kept timing or count: a finite float, not negative (a NaN would reach the leaderboard, which refuses it
    only when the whole run is done)."""
    return isinstance(v, float) and math.isfinite(v) and v >= 0


def kept_done(saved: dict[str, Any], n: int, batch_size: int, streams: dict[str, torch.Generator], what: str) -> int:
    """The images kept batches say they finished, checked against ``n`` images in batches of ``batch_size``, and
    their stream states checked to be this ``what``'s (an evaluation's or a cascade's) and to load."""
    done = saved["done"]
    if type(done) is not int or not 0 < done <= n or (done % batch_size and done != n):
        raise ValueError(f"it stopped after {done!r} images; this {what} has {n} in batches of {batch_size}")
    if set(saved["streams"]) != set(streams):
        raise ValueError(f"its random streams are not this {what}'s (other attacks?)")
    for name, g in streams.items():
        torch.Generator(device=g.device).set_state(saved["streams"][name])  # a throwaway one: must load
    return done


def restore_kept(saved: dict[str, Any], streams: dict[str, torch.Generator], lists: dict[str, list]) -> None:
    """Set checked kept batches' stream states and per-image lists into this evaluation's (or cascade's)."""
    for name, g in streams.items():
        g.set_state(saved["streams"][name])
    for k, v in lists.items():
        v[:] = [saved["lists"][k].numpy()]


def _check_kept(
    saved: dict[str, Any],
    n: int,
    batch_size: int,
    streams: dict[str, torch.Generator],
    lists: dict[str, list],
    outs: dict[str, AttackOutcome],
    expected: dict[str, set[str]],
) -> int:
    """The number of images a kept evaluation finished, once every part of it is checked to fit this one
    (nothing is set here: a misfit leaves the evaluation as it was)."""
    done = kept_done(saved, n, batch_size, streams, "evaluation")
    if set(saved["lists"]) != set(lists) or set(saved["attacks"]) != set(outs):
        raise ValueError("its results are not this evaluation's (other attacks, or another defense)")
    for k in lists:
        _check_array(saved["lists"][k], done, torch.float32 if k == "pretext_clean" else torch.bool, k)
    for name, kept in saved["attacks"].items():
        for f in _FLAGS + _SCORES:
            if f in _FLAGS and f not in expected[name]:
                if kept["arrays"][f] is not None:
                    raise ValueError(f"{name}: {f} kept, which this evaluation does not make")
                continue
            _check_array(kept["arrays"][f], done, torch.float32 if f in _SCORES else torch.bool, f"{name}: {f}")
        if not all(_amount(v) for v in [*kept["seconds"].values(), *kept["zero_grad"]]):
            raise ValueError(f"{name}: its timings are not numbers")
    if set(saved["seconds_clean"]) != {"classify", "reverse"} or not all(
        _amount(v) for v in [*saved["seconds_clean"].values(), saved["defense_seconds"]]
    ):
        raise ValueError("its clean timings are not numbers")
    if type(saved["defense_passes"]) is not int or saved["defense_passes"] < 0:
        raise ValueError("its pass count is not a number")
    return done


def _restore(
    saved: dict[str, Any], streams: dict[str, torch.Generator], lists: dict[str, list], outs: dict[str, AttackOutcome]
) -> None:
    """Set a checked kept evaluation (``_check_kept``) into this one's streams and results."""
    restore_kept(saved, streams, lists)
    for name, o in outs.items():
        kept = saved["attacks"][name]
        for f in _FLAGS + _SCORES:
            value = kept["arrays"][f]
            getattr(o, f)[:] = [] if value is None else [value.numpy()]
        o.seconds.update(kept["seconds"])
        o.zero_grad[:] = kept["zero_grad"]
