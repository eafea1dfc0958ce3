"""Context-encoder inpainting (Pathak et al. 2016) on the shared backbone.

A generator decodes the backbone's features of the masked image into the missing square; a
discriminator sees only that square. L_G = lambda_adv * L_adv + lambda_rec * L_rec (L2 on the
square), L_D the standard GAN loss. The hole moves at random in training and is centred at
evaluation, so the reverse attack and the metric are deterministic.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..models.backbone import FeatureSpec
from ..models.context_encoder import context_encoder_inpaint_heads
from .base import PretextTask, TaskLoss, TaskParams


class InpaintParams(TaskParams):
    mask_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    fill_value: float = Field(1.0, ge=0.0, le=1.0)
    lambda_adv: float = Field(0.001, ge=0.0)
    lambda_rec: float = Field(0.999, ge=0.0)
    decoder_width: int = Field(64, ge=1, le=4096)
    discriminator_width: int = Field(32, ge=1, le=4096)
    multitask_weight: float = Field(10.0, ge=0.0)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class PatchGenerator(nn.Module):
    """Backbone feature map (C, h, w) -> RGB patch (3, m, m) in [0, 1]."""

    def __init__(self, spec: FeatureSpec, patch: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(spec.channels, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        size = spec.height
        while size * 2 <= patch:
            layers.append(_up(width, width))
            size *= 2
        self.body = nn.Sequential(*layers)
        self.patch = patch
        self.out = nn.Conv2d(width, 3, 3, 1, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = self.body(f)
        if h.shape[-1] != self.patch:  # feature maps that are not a power-of-two fraction of the patch
            h = F.interpolate(h, size=(self.patch, self.patch), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.out(h))


class PatchDiscriminator(nn.Module):
    """Sees only the (real or filled) square; one logit per image (a paired one may give a grid)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.out = nn.Linear(2 * width, 1)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(patch).mean(dim=(2, 3))).squeeze(1)


@contextmanager
def _frozen(module: nn.Module):
    """Build the graph without gradients for ``module``'s weights; restores each weight's flag."""
    flags = [prm.requires_grad for prm in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for prm, flag in zip(module.parameters(), flags):
            prm.requires_grad_(flag)


# backbones that are the encoder of an inpainting generator bring its decoder and discriminator
PAIRED_HEADS = {"ssr_context_encoder": context_encoder_inpaint_heads}


class InpaintTask(PretextTask):
    name = "inpaint"
    version = "1"
    Params = InpaintParams
    metric_name = "region_mse"
    higher_is_better = False
    aux_heads = ("discriminator",)

    def patch_size(self, image_size: int) -> int:
        return max(1, round(image_size * self.params.mask_fraction))

    def build_heads(self, spec: FeatureSpec) -> dict[str, nn.Module]:
        m = self.patch_size(spec.image_size)
        paired = PAIRED_HEADS.get(spec.architecture)
        if paired is not None:  # a backbone designed with its own decoder and discriminator
            return paired(spec, m)
        return {
            "generator": PatchGenerator(spec, m, self.params.decoder_width),
            "discriminator": PatchDiscriminator(self.params.discriminator_width),
        }

    # -- geometry ------------------------------------------------------------------------------
    def _corners(self, x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, int]:
        b, s = x.shape[0], x.shape[-1]
        m = self.patch_size(s)
        if generator is None:  # evaluation: centred
            c = torch.full((b,), (s - m) // 2, device=x.device, dtype=torch.long)
            return c, c.clone(), m
        top = torch.randint(0, s - m + 1, (b,), generator=generator, device=generator.device).to(x.device)
        left = torch.randint(0, s - m + 1, (b,), generator=generator, device=generator.device).to(x.device)
        return top, left, m

    def cut(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked image, true patch); random holes with a generator, centred without."""
        top, left, m = self._corners(x, generator)
        ar = torch.arange(m, device=x.device)
        rows = (top[:, None] + ar)[:, :, None]  # B, m, 1
        cols = (left[:, None] + ar)[:, None, :]  # B, 1, m
        bidx = torch.arange(x.shape[0], device=x.device)[:, None, None]
        patch = x.permute(0, 2, 3, 1)[bidx, rows, cols].permute(0, 3, 1, 2)
        mask = torch.zeros_like(x[:, :1])
        mask[bidx, 0, rows, cols] = 1.0
        masked = x * (1 - mask) + self.params.fill_value * mask
        return masked, patch

    def preview(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        masked, _ = self.cut(x)
        return {"masked (centred, as evaluated)": masked}

    # -- losses --------------------------------------------------------------------------------
    def _generator_terms(self, model, x, generator):
        masked, real = self.cut(x, generator)
        fake = model.heads["generator"](model.task_features(masked))
        rec = (fake - real).pow(2).flatten(1).mean(1)
        d_fake = model.heads["discriminator"](fake)
        adv = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake), reduction="none")
        adv = adv.reshape(len(x), -1).mean(1)  # a discriminator may give a grid of patch logits per image
        return fake, real, rec, adv

    def training_loss(self, model, x, generator):
        p = self.params
        disc = model.heads["discriminator"]
        with _frozen(disc):  # L_G needs gradients through D, not for D's weights (D learns from L_D only)
            fake, real, rec, adv = self._generator_terms(model, x, generator)
        loss_g = (p.lambda_adv * adv + p.lambda_rec * rec).mean()
        d_real, d_fake = disc(real), disc(fake.detach())
        loss_d = 0.5 * (
            F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        )
        return TaskLoss(
            loss_g, {"rec": rec.detach().mean(), "adv": adv.detach().mean(), "d": loss_d.detach()}, aux_loss=loss_d
        )

    def reverse_loss(self, model, x):
        p = self.params
        _, _, rec, adv = self._generator_terms(model, x, None)
        return p.lambda_adv * adv + p.lambda_rec * rec

    def pretext_metric(self, model, x):
        _, _, rec, _ = self._generator_terms(model, x, None)
        return rec.detach()
