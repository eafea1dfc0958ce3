"""Adversarial training of the classifier, and the check that catches it failing.

fgsm-rs (Wong et al. 2020, "Fast is better than free"): a uniform random start in the eps-ball, one
signed-gradient step of 1.25 eps, projected back. pgd (Madry et al. 2018): k projected steps from a
random start. Both run on the model in training mode, as those papers do.

FGSM training can overfit catastrophically: robustness to PGD collapses within an epoch while the FGSM
training accuracy keeps rising. PGD accuracy on held-out training images is measured after every
epoch, and a collapse is reported (as a warning in the leaderboard), never silently kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.linf import linf_pgd
from ..core.presets import Preset

HELDOUT = 512  # training images kept out of adversarial training to watch for catastrophic overfitting
MONITOR_STEPS = 10
COLLAPSE = 0.5  # PGD accuracy below this fraction of its best epoch is a collapse
MIN_BEST = 5.0  # percent: below this there is no robustness to lose


def enabled(p: Preset) -> bool:
    return p.adversarial_training != "none"


def spec(p: Preset) -> dict:
    """What enters the cache key (only when enabled, so standard models keep their keys)."""
    out = {"kind": p.adversarial_training, "eps": p.adv_eps, "heldout": HELDOUT}
    if p.adversarial_training == "pgd":
        out |= {"step_size": p.adv_step_size, "steps": p.adv_steps}
    return out


def adversarial_batch(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: Preset, generator: torch.Generator
) -> torch.Tensor:
    """The batch the classifier's cross-entropy sees; ``x`` itself when adversarial training is off."""
    if not enabled(p):
        return x
    eps = p.adv_eps
    if p.adversarial_training == "fgsm-rs":
        delta = (2 * torch.rand(x.shape, generator=generator, device=generator.device).to(x.device) - 1) * eps
        delta.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
            (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp(-eps, eps)
        return (x + delta).clamp(0, 1).detach()
    return linf_pgd(
        lambda z: F.cross_entropy(model(z), y, reduction="none"),
        x,
        eps=eps,
        step_size=p.adv_step_size,
        steps=p.adv_steps,
        random_start=True,
        maximize=True,
        generator=generator,
    )


def heldout_range(images: int) -> tuple[int, int]:
    """(start, stop) of the held-out training images of a run that uses the first ``images`` training
    images: the last ``HELDOUT`` of them, never trained on (and never test images)."""
    return images - HELDOUT, images


def heldout_clean_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Clean accuracy (percent) on held-out training images, the model in eval mode (what a calibration
    on accuracy reads instead of test images; the weights and the batch-norm statistics are untouched)."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return 100 * correct / max(1, len(x))


def heldout_pgd_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, p: Preset, seed: int, batch_size: int = 256
) -> float:
    """PGD-10 accuracy (percent) at the training eps on held-out training images, the model in eval mode."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed + 2)
    correct = 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        adv = linf_pgd(
            lambda z: F.cross_entropy(model(z), yb, reduction="none"),
            xb,
            eps=p.adv_eps,
            step_size=p.adv_eps / 4,
            steps=MONITOR_STEPS,
            random_start=True,
            maximize=True,
            generator=gen,
        )
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
    model.train(was_training)
    return 100 * correct / max(1, len(x))


def collapse_warning(history: list[float]) -> str | None:
    """A catastrophic-overfitting warning when the last epoch's held-out PGD accuracy fell far below its best."""
    if len(history) < 2:
        return None
    best = max(history)
    if best >= MIN_BEST and history[-1] < COLLAPSE * best:
        epoch = history.index(best) + 1
        return (
            f"catastrophic overfitting: PGD-{MONITOR_STEPS} accuracy of {HELDOUT} held-out training images fell "
            f"from {best:.1f}% (epoch {epoch}) to {history[-1]:.1f}% (epoch {len(history)}); the model is not "
            f"robust -- use pgd adversarial training, a smaller step, or fewer epochs"
        )
    return None
