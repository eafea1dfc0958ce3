"""Contrastive views (SimCLR InfoNCE, as Mao et al., ICCV 2021, reverse attacks with it on CIFAR-10).

Each image gets ``n_views`` random augmentations (SimCLR's CIFAR set, made by kornia on the batched
tensor so gradients reach the pixels); a projection head maps the pooled features of every view, and
the loss asks each view to pick out the other views of its own image among all views of the batch.
The views are random at test time too, so the reverse loss and the metric draw them from the
generator they are handed (``randomized_eval``): the same seed gives the same views.
An image's loss depends on the other images of its batch (they are its negatives), as in Mao et al.'s
code: the reverse attack's result depends on the evaluation batch, not only on the image.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from ..core.extras import require
from ..models.backbone import FeatureSpec
from .base import PretextTask, TaskLoss, TaskParams

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
JITTER = dict(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=0.8)  # SimCLR's colour distortion, s = 1
GRAYSCALE_P = 0.2


class ContrastiveParams(TaskParams):
    n_views: int = Field(4, ge=2, le=64, description="augmented views per image (Mao et al.: 4)")
    temperature: float = Field(0.2, gt=0.0, description="softmax temperature of the InfoNCE loss (Mao et al.: 0.2)")
    crop_scale: tuple[Fraction, Fraction] = Field((0.2, 1.0), description="area range of the random resized crop")
    proj_dim: int = Field(128, ge=1, le=8192, description="output width of the projection head")
    hidden: int = Field(512, ge=1, le=8192, description="hidden width of the projection head")
    multitask_weight: float = Field(1.0, ge=0.0)

    @field_validator("crop_scale")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"must be (min, max) with min <= max, got {v}")
        return v


class ContrastiveTask(PretextTask):
    name = "contrastive"
    version = "1"
    Params = ContrastiveParams
    metric_name = "view_retrieval_acc"
    higher_is_better = True
    randomized_eval = True

    def __init__(self, params=None):
        super().__init__(params)
        require("augment", "the contrastive task")  # fail before anything trains
        self._augmentations: dict[tuple[int, int], nn.Module] = {}

    def _augmentation(self, size: tuple[int, int]) -> nn.Module:
        """The view pipeline for images of ``size`` (crops are resized back to it), built once per size."""
        if size not in self._augmentations:
            K = require("augment", "the contrastive task").augmentation
            self._augmentations[size] = nn.Sequential(
                # "resample": one batched warp instead of a crop-and-resize per image
                K.RandomResizedCrop(size, scale=self.params.crop_scale, cropping_mode="resample"),
                K.RandomHorizontalFlip(),
                K.ColorJitter(**JITTER),
                K.RandomGrayscale(p=GRAYSCALE_P),
            )
        return self._augmentations[size]

    def views(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``n_views`` views of each image, view-major (view v of image i at v * B + i), differentiable.

        kornia samples from the global RNG, so it runs on a forked one seeded from ``generator``: the
        views depend only on that stream, and the caller's global random state is left as it was.
        """
        if generator is None:
            raise ValueError("the contrastive task draws random views: pass a generator")
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return self._augmentation(tuple(x.shape[-2:]))(x.repeat(self.params.n_views, 1, 1, 1))

    def build_heads(self, spec: FeatureSpec) -> dict[str, nn.Module]:
        h = self.params.hidden
        return {
            "projection": nn.Sequential(
                nn.Linear(spec.channels, h), nn.ReLU(inplace=True), nn.Linear(h, self.params.proj_dim)
            )
        }

    def _similarity(self, model, x: torch.Tensor, generator) -> torch.Tensor:
        """Cosine similarities of all B * V views (one forward pass), the diagonal set to -inf."""
        f = model.task_features(self.views(x, generator))
        z = F.normalize(model.heads["projection"](model.backbone.forward_head(f, pre_logits=True)), dim=1)
        sim = z @ z.T
        return sim.masked_fill(torch.eye(len(sim), dtype=torch.bool, device=sim.device), float("-inf"))

    def _same_image(self, n: int, b: int, device) -> torch.Tensor:
        idx = torch.arange(n, device=device) % b
        return (idx[:, None] == idx[None, :]) & ~torch.eye(n, dtype=torch.bool, device=device)

    def _nce(self, sim: torch.Tensor, b: int) -> torch.Tensor:
        """Per-image InfoNCE: each anchor's mean -log softmax over its V - 1 positives, averaged over its views."""
        log_p = F.log_softmax(sim / self.params.temperature, dim=1)
        pos = self._same_image(len(sim), b, sim.device)
        per_anchor = -log_p.masked_fill(~pos, 0.0).sum(1) / (self.params.n_views - 1)
        return per_anchor.view(self.params.n_views, b).mean(0)

    def _retrieval(self, sim: torch.Tensor, b: int) -> torch.Tensor:
        """Per image: the fraction of its views whose nearest other view is a view of the same image."""
        nearest = sim.argmax(1)
        hit = nearest % b == torch.arange(len(sim), device=sim.device) % b
        return hit.float().view(self.params.n_views, b).mean(0)

    def training_loss(self, model, x, generator):
        sim = self._similarity(model, x, generator)
        b = x.shape[0]
        nce = self._nce(sim, b).mean()
        return TaskLoss(nce, {"nce": nce.detach(), "view_acc": self._retrieval(sim.detach(), b).mean()})

    def reverse_loss(self, model, x, generator=None):
        return self._nce(self._similarity(model, x, generator), x.shape[0])

    def pretext_metric(self, model, x, generator=None):
        return self._retrieval(self._similarity(model, x, generator), x.shape[0])

    def preview(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            v = self.views(x, torch.Generator().manual_seed(0)).view(self.params.n_views, *x.shape)
        return {f"view {i + 1}": v[i] for i in range(min(3, self.params.n_views))}

    def describe(self) -> dict[str, Any]:
        kornia = require("augment", "the contrastive task")
        lo, hi = self.params.crop_scale
        jitter = ", ".join(f"{k}={v}" for k, v in JITTER.items())
        return {
            "augmentation": f"kornia RandomResizedCrop(input size, scale=({lo}, {hi}), resample), "
            f"RandomHorizontalFlip(p=0.5), ColorJitter({jitter}), RandomGrayscale(p={GRAYSCALE_P})",
            "kornia_version": kornia.__version__,
        }
