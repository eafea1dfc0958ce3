"""Rotation prediction (Gidaris et al. 2018): which of 0/90/180/270 degrees was the image turned by?

Rotations are exact (``torch.rot90``: no interpolation, so no low-level artefact gives the answer
away). Training turns each image by one random rotation; the reverse attack and the metric use all
four, so they are deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..models.backbone import FeatureSpec
from .base import PretextTask, TaskLoss, TaskParams


class RotationParams(TaskParams):
    hidden: int = Field(0, ge=0, le=8192, description="width of a hidden layer in the head; 0 = linear head")
    multitask_weight: float = Field(1.0, ge=0.0)


def rotate(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Turn image i by k[i] quarter turns (counter-clockwise)."""
    out = torch.empty_like(x)
    for q in range(4):
        sel = k == q
        if sel.any():
            out[sel] = torch.rot90(x[sel], q, dims=(2, 3))
    return out


class RotationTask(PretextTask):
    name = "rotation"
    version = "1"
    Params = RotationParams
    metric_name = "rotation_acc"
    higher_is_better = True

    def build_heads(self, spec: FeatureSpec) -> dict[str, nn.Module]:
        h = self.params.hidden
        head = (
            nn.Linear(spec.channels, 4)
            if h == 0
            else nn.Sequential(nn.Linear(spec.channels, h), nn.ReLU(inplace=True), nn.Linear(h, 4))
        )
        return {"rotation": head}

    def _logits(self, model, x: torch.Tensor) -> torch.Tensor:
        f = model.task_features(x)
        return model.heads["rotation"](model.backbone.forward_head(f, pre_logits=True))

    def _all_four(self, model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        k = torch.arange(4, device=x.device).repeat_interleave(b)
        logits = self._logits(model, rotate(x.repeat(4, 1, 1, 1), k))
        return logits, k

    def preview(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f"rotated {90 * k} degrees": torch.rot90(x, k, dims=(2, 3)) for k in range(1, 4)}

    def training_loss(self, model, x, generator):
        k = torch.randint(0, 4, (x.shape[0],), generator=generator, device=generator.device).to(x.device)
        logits = self._logits(model, rotate(x, k).contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, k)
        return TaskLoss(loss, {"rot_acc": (logits.argmax(1) == k).float().mean()})

    def reverse_loss(self, model, x):
        logits, k = self._all_four(model, x)
        return F.cross_entropy(logits, k, reduction="none").view(4, -1).mean(0)

    def pretext_metric(self, model, x):
        logits, k = self._all_four(model, x)
        return (logits.argmax(1) == k).float().view(4, -1).mean(0)
