"""An example third-party ssrbench plugin: one task and one attack kind, as an outside package ships them.

Registered by this distribution's ``pyproject.toml`` (entry-point groups ``ssrbench.tasks``,
``ssrbench.attacks``, and ``ssrbench.configs`` for the named configs in ``configs/``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from ssrbench.adversarial.base import Attack
from ssrbench.core.budget import PixelBudget, ThreatModel
from ssrbench.pretext.base import PretextTask, TaskLoss, TaskParams

__version__ = "0.2.0"


class VFlipTask(PretextTask):
    """Is the image upside down? A 2-way pretext task."""

    name = "vflip"  # must equal the entry point's name
    version = "1"  # bump whenever what the task computes changes
    Params = TaskParams  # no options of its own; a task with options extends TaskParams
    metric_name = "vflip_acc"
    higher_is_better = True

    def build_heads(self, spec):
        # any key but "task_branch", which ssrbench reserves for the task's own backbone stages
        return {"vflip": nn.Linear(spec.channels, 2)}

    def _logits(self, model, x):
        return model.heads["vflip"](model.backbone.forward_head(model.task_features(x), pre_logits=True))

    def _both(self, model, x):
        xx = torch.cat([x, x.flip(2)])
        t = torch.arange(2, device=x.device).repeat_interleave(x.shape[0])
        return self._logits(model, xx), t

    def training_loss(self, model, x, generator):
        logits, t = self._both(model, x)
        return TaskLoss(F.cross_entropy(logits, t))

    def reverse_loss(self, model, x):
        # one value per image (reduction="none", then the two views of each image averaged), never a batch mean
        logits, t = self._both(model, x)
        return F.cross_entropy(logits, t, reduction="none").view(2, -1).mean(0)

    def pretext_metric(self, model, x):
        logits, t = self._both(model, x)
        return (logits.argmax(1) == t).float().view(2, -1).mean(0)


class NoiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    eps: PixelBudget = 8 / 255  # budgets may be written "8/255" in a config


class UniformNoise(Attack):
    """A baseline 'attack': uniform noise in the L-inf ball."""

    Params = NoiseParams

    def threat_model(self):
        """Declared, so the worst case and the budget checks can read it (steps=0: no gradient steps)."""
        return ThreatModel(norm="linf", eps=self.params.eps, steps=0)

    def perturb(self, model, x, y, generator):
        noise = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device)
        return (x + (2 * noise - 1) * self.params.eps).clamp(0, 1)
