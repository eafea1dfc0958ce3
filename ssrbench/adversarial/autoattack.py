"""APGD and AutoAttack (Croce & Hein 2020), computed by a library, not re-implemented here.

Engines (``engine``). ``reference`` (the default) is the authors' own code, pyautoattack (extra
``autoattack``), so that a number here is the number the field's reference would give. ``torchattacks``
(extra ``attacks``) is the assembly of torchattacks' parts ssrbench used before, kept to compare the two
(``benchmarks/bench_autoattack.py``): torchattacks' APGD, APGD-T, FAB-T and Square at the published settings
(its own ``AutoAttack`` class runs APGD for 10 iterations, not 100).

Which engine a result used: ``engine`` is in every cell's attack params since version 2 of both kinds. A
cell of version 1 has no ``engine`` and ran torchattacks -- every committed leaderboard that has these
kinds (all written by ssrbench 0.1.0; docs/concepts/attacks.md lists them).

Each kind runs in one of two positions (``through``): against the classifier alone (the Adv column of
a static model), or through the defense with BPDA -- forward through the reverse attack, backward as
if it were the identity -- the protocol Croce et al. 2022 use for test-time defenses. Through a
randomised defense, every forward pass draws the defense's randomness afresh and ``eot_iter`` draws
are averaged per gradient (EOT); through a deterministic one a single draw is exact, so one is used.

Both libraries seed the global RNG inside their attacks; each call here takes that seed from the cell's
own generator and restores the global RNG state afterwards, so results are reproducible per cell and
other code's random streams are untouched.

The reference ``autoattack`` runs pyautoattack's ``AutoAttack`` one stage at a time through its own
``run_standard_evaluation`` (``attacks_to_run = [stage]``, as its ``run_standard_evaluation_individual``
does), each stage on the images still robust, so the robust fraction after each stage is the package's own
count (``stats["robust_<stage>"]``). On a deterministic model that is its single call image for image
(tests/test_autoattack_reference.py); through a randomised defense each stage re-judges its survivors' clean
images with a fresh draw, as a single call does only once.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..core.budget import PixelBudget, ThreatModel
from ..core.extras import require
from ..core.limits import MAX_STEPS
from ..defense.reverse import Defense
from .adaptive import bpda_logits
from .base import Attack

Engine = Literal["reference", "torchattacks"]
# engine -> (the extra that brings its library, what needs it: the missing-extra message's subject)
ENGINES: dict[str, tuple[str, str]] = {
    "reference": ("autoattack", 'the reference APGD/AutoAttack (engine = "reference", the default)'),
    "torchattacks": ("attacks", 'torchattacks\' APGD/AutoAttack (engine = "torchattacks")'),
}
STAGES = {"standard": ("apgd-ce", "apgd-t", "fab-t", "square"), "rand": ("apgd-ce", "apgd-dlr")}


def library(engine: str) -> Any:
    """The engine's module (pyautoattack or torchattacks), or a MissingExtraError (exit 2) naming its extra."""
    extra, what = ENGINES[engine]
    return require(extra, what)


def torchattacks() -> Any:
    """The torchattacks module, or a MissingExtraError (exit 2) naming the extra."""
    return library("torchattacks")


class _LibraryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    eps: PixelBudget = Field(8 / 255, gt=0)
    steps: int = Field(100, ge=1, le=MAX_STEPS, description="APGD iterations (100 in the published AutoAttack)")
    n_classes: int = Field(10, ge=2, le=10_000)
    through: Literal["classifier", "bpda"] = Field(
        "classifier", description="attack the classifier alone, or the defended model with BPDA"
    )
    eot_iter: int = Field(
        1, ge=1, le=1000, description="EOT draws per gradient, used only through a randomised defense"
    )
    engine: Engine = Field(
        "reference", description="reference: the authors' pyautoattack; torchattacks: torchattacks' parts"
    )


class APGDParams(_LibraryParams):
    loss: Literal["ce", "dlr"] = "ce"
    targeted: bool = Field(
        False,
        description="APGD-T: the targeted DLR loss over the n_classes - 1 most likely other classes, one run each",
    )
    n_restarts: int = Field(1, ge=1, le=100)
    rho: float = Field(0.75, gt=0, lt=1, description="APGD's step-size halving threshold")

    @model_validator(mode="after")
    def _targeted_is_dlr(self) -> APGDParams:
        if self.targeted and self.loss != "dlr":
            raise ValueError('targeted APGD (APGD-T) uses the DLR loss: set loss = "dlr"')
        return self


class AutoAttackParams(_LibraryParams):
    version: Literal["standard", "rand"] = Field(
        "standard", description="standard: APGD-CE, APGD-T, FAB-T, Square; rand: APGD-CE and APGD-DLR with EOT"
    )
    n_queries: int = Field(5000, ge=1, le=1_000_000, description="Square's query budget (standard)")
    eot_iter: int = Field(20, ge=1, le=1000, description="EOT draws of the rand version")


class _BPDADefended(nn.Module):
    """The defended model as a library sees it: logits of classify(rev(x)), with BPDA gradients."""

    def __init__(self, defense: Defense, generator: torch.Generator):
        super().__init__()
        self.model = defense.model  # a submodule, so torchattacks finds the device and sets eval mode
        self._defense, self._generator = defense, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bpda_logits(self._defense, x, self._generator)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _reference_side_effects(logger: logging.Logger) -> Iterator[None]:
    """pyautoattack's checks (a randomised or dynamic defense, zero gradients) log warnings, which without a
    handler print in the middle of a progress bar: they are collected and given once each as Python warnings.
    Its dynamic-defense check ends with ``sys.settrace(None)``, which would switch off a coverage tracer or a
    debugger: the tracer in place is put back."""
    tracer, collect = sys.gettrace(), _Collect()
    logger.addHandler(collect)
    try:
        yield
    finally:
        logger.removeHandler(collect)
        sys.settrace(tracer)
    for message in dict.fromkeys(collect.messages):
        warnings.warn(f"pyautoattack: {message}", stacklevel=4)


class _LibraryAttack(Attack):
    """Common to the library kinds: the position, the seed, the extra check, the engine."""

    version = "2"  # 2: the engine is a parameter, pyautoattack by default; 1 (no `engine`) was torchattacks

    def __init__(self, params):
        super().__init__(params)
        library(self.params.engine)  # fail before any training when the extra is missing

    @property
    def adaptive(self) -> bool:  # type: ignore[override]  # a per-config property here, not per kind
        return self.params.through == "bpda"

    def threat_model(self) -> ThreatModel:
        return ThreatModel(norm="linf", eps=self.params.eps, steps=self.params.steps)

    def run_reference(self, aa: Any, target: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, eot_iter: int):
        raise NotImplementedError

    def run_torchattacks(self, ta: Any, target: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, eot_iter: int):
        raise NotImplementedError

    def draws(self, randomised: bool) -> int:
        """EOT draws per gradient: ``eot_iter`` through a randomised defense, else one (exact)."""
        return self.params.eot_iter if randomised else 1

    def perturb(self, model, x, y, generator, defense: Defense | None = None):
        engine = self.params.engine
        lib = library(engine)
        randomised = defense is not None and defense.randomized
        eot_iter = self.draws(randomised)
        # eval() before torchattacks records the mode to restore: a new Module starts in training mode
        target = _BPDADefended(defense, generator).eval() if self.adaptive else model
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the libraries view their tensors as contiguous ones
            run = self.run_reference if engine == "reference" else self.run_torchattacks
            adv = run(lib, target, x.contiguous(), y, seed, eot_iter)
        self.stats["eot_iter"] = float(eot_iter)
        return adv.clamp(0, 1).contiguous(memory_format=torch.channels_last)


class APGD(_LibraryAttack):
    """APGD-CE / APGD-DLR / APGD-T (Croce & Hein 2020): pyautoattack's, or torchattacks' (``engine``)."""

    Params = APGDParams

    def run_reference(self, aa, target, x, y, seed, eot_iter):
        p, base = self.params, aa.autopgd_base
        common = dict(
            n_iter=p.steps, norm="Linf", n_restarts=p.n_restarts, eps=p.eps, seed=seed, eot_iter=eot_iter, rho=p.rho
        )
        if p.targeted:
            attack = base.APGDAttack_targeted(target, n_target_classes=p.n_classes - 1, device=x.device, **common)
        else:
            attack = base.APGDAttack(target, loss=p.loss, device=x.device, **common)
        return attack.perturb(x, y)  # without a logger, its zero-gradient check is a Python warning

    def run_torchattacks(self, ta, target, x, y, seed, eot_iter):
        p = self.params
        if p.targeted:
            return ta.APGDT(
                target,
                norm="Linf",
                eps=p.eps,
                steps=p.steps,
                n_restarts=p.n_restarts,
                seed=seed,
                eot_iter=eot_iter,
                rho=p.rho,
                n_classes=p.n_classes,
            )(x, y)
        return ta.APGD(
            target,
            norm="Linf",
            eps=p.eps,
            steps=p.steps,
            n_restarts=p.n_restarts,
            seed=seed,
            loss=p.loss,
            eot_iter=eot_iter,
            rho=p.rho,
        )(x, y)


def _at_steps(aa: Any, apgd: Any, steps: int) -> Any:
    """pyautoattack's APGD derives its step-size checkpoints from ``n_iter`` when it is built: at another
    number of iterations it is built again, with the settings AutoAttack gave it."""
    kw = dict(norm=apgd.norm, n_restarts=apgd.n_restarts, eps=apgd.eps, seed=apgd.seed, eot_iter=apgd.eot_iter)
    kw |= dict(rho=apgd.thr_decr, device=apgd.device, logger=apgd.logger)
    if isinstance(apgd, aa.autopgd_base.APGDAttack_targeted):
        kw["n_target_classes"] = apgd.n_target_classes
    else:
        kw["loss"] = apgd.loss
    return type(apgd)(apgd.model, n_iter=steps, **kw)


class AutoAttack(_LibraryAttack):
    """AutoAttack at its published settings: pyautoattack's, stage by stage, or torchattacks' parts."""

    Params = AutoAttackParams

    def draws(self, randomised: bool) -> int:
        return self.params.eot_iter if self.params.version == "rand" else 1  # its EOT is part of the version

    def configured(self, aa: Any, target: nn.Module, seed: int, eot_iter: int, device: torch.device) -> Any:
        """pyautoattack's AutoAttack at this config's version and seed, with its settings where they differ
        from the published ones (iterations, classes, Square's queries, EOT draws)."""
        p = self.params
        a = aa.AutoAttack(target, norm="Linf", eps=p.eps, version=p.version, seed=seed, device=device)
        if p.steps != a.apgd.n_iter:
            a.apgd, a.apgd_targeted = _at_steps(aa, a.apgd, p.steps), _at_steps(aa, a.apgd_targeted, p.steps)
            a.fab.n_iter = p.steps
        a.apgd.eot_iter = eot_iter
        a.apgd_targeted.n_target_classes = a.fab.n_target_classes = p.n_classes - 1
        a.square.n_queries = p.n_queries
        return a

    def run_reference(self, aa, target, x, y, seed, eot_iter):
        a = self.configured(aa, target, seed, eot_iter, x.device)
        stages = list(a.attacks_to_run)
        adv, robust = x.clone(), torch.ones(len(x), dtype=torch.bool, device=x.device)
        with _reference_side_effects(a.logger):
            for stage in stages:
                idx = robust.nonzero().flatten()
                if len(idx):
                    a.attacks_to_run = [stage]
                    adv[idx], predicted = a.run_standard_evaluation(x[idx], y[idx], batch_size=len(idx))
                    robust[idx] = predicted == y[idx]
                self.stats[f"robust_{stage}"] = robust.float().mean().item()
        return adv

    def cost(self, reverse_passes: float, randomised: bool = False) -> float:
        """Its parts' gradient passes: standard APGD-CE, then APGD-T and FAB-T over the n_classes - 1 targets,
        then Square's queries (forward passes, about a third of a gradient pass); rand two APGD runs with EOT."""
        p = self.params
        if p.version == "rand":
            passes = 2 * p.steps * p.eot_iter
        else:
            passes = p.steps * (1 + 2 * (p.n_classes - 1)) + p.n_queries / 3
        return passes * (1 + reverse_passes) if self.adaptive else float(passes)

    def run_torchattacks(self, ta, target, x, y, seed, eot_iter):
        p = self.params
        common = dict(norm="Linf", eps=p.eps)
        if p.version == "rand":
            parts = [
                ta.APGD(target, steps=p.steps, seed=seed, loss=loss, eot_iter=eot_iter, n_restarts=1, **common)
                for loss in ("ce", "dlr")
            ]
        else:
            parts = [
                ta.APGD(target, steps=p.steps, seed=seed, loss="ce", n_restarts=1, **common),
                ta.APGDT(target, steps=p.steps, seed=seed, n_classes=p.n_classes, n_restarts=1, **common),
                ta.FAB(
                    target, steps=p.steps, seed=seed, multi_targeted=True, n_classes=p.n_classes, n_restarts=1, **common
                ),
                ta.Square(target, n_queries=p.n_queries, seed=seed, n_restarts=1, **common),
            ]
        multi = ta.MultiAttack(parts)
        # its count of images still robust after each part: what its own save() reports (private attributes)
        multi._accumulate_multi_atk_records, multi._multi_atk_records = True, [0.0] * (len(parts) + 1)
        adv = multi(x, y)
        for stage, left in zip(STAGES[p.version], multi._multi_atk_records[1:]):
            self.stats[f"robust_{stage}"] = left / len(x)
        return adv
