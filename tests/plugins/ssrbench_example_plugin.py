"""An example third-party plugin: one task and one attack kind, as an outside package would ship them.

Its distribution declares (see tests/test_plugins.py, which installs it for the test):

    [project.entry-points."ssrbench.tasks"]
    vflip = "ssrbench_example_plugin:VFlipTask"
    [project.entry-points."ssrbench.attacks"]
    uniform-noise = "ssrbench_example_plugin:UniformNoise"
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from ssrbench.adversarial.base import Attack
from ssrbench.config import PixelBudget
from ssrbench.pretext.base import PretextTask, TaskLoss, TaskParams


class VFlipTask(PretextTask):
    """Is the image upside down? A 2-way pretext task."""

    name = "vflip"
    version = "1"
    Params = TaskParams
    metric_name = "vflip_acc"
    higher_is_better = True

    def build_heads(self, spec):
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
        logits, t = self._both(model, x)
        return F.cross_entropy(logits, t, reduction="none").view(2, -1).mean(0)

    def pretext_metric(self, model, x):
        logits, t = self._both(model, x)
        return (logits.argmax(1) == t).float().view(2, -1).mean(0)


class NoiseParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    eps: PixelBudget = 8 / 255


class UniformNoise(Attack):
    """A baseline 'attack': uniform noise in the L-inf ball."""

    Params = NoiseParams

    def perturb(self, model, x, y, generator):
        noise = torch.rand(x.shape, generator=generator, device=generator.device).to(x.device)
        return (x + (2 * noise - 1) * self.params.eps).clamp(0, 1)
