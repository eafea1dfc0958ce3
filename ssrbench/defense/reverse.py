"""The reverse attack: L-inf PGD that *minimises* the task's self-supervised loss on the input.

Its labels come free from the image itself, so it can run on any test input -- clean or attacked --
in the hope of pulling an adversarial image back towards the data the task was trained on.
"""

from __future__ import annotations

import torch

from ..adversarial.pgd import linf_pgd
from ..config import ReverseConfig
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask


def reverse_attack(model: SSRModel, task: PretextTask, x: torch.Tensor, cfg: ReverseConfig,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    if model.training:
        raise RuntimeError("the reverse attack runs on a model in eval mode")
    return linf_pgd(
        lambda z: task.reverse_loss(model, z), x, eps=cfg.eps, step_size=cfg.step_size, steps=cfg.steps,
        random_start=cfg.random_start, maximize=False, generator=generator,
    )
