"""The source report's network: PyTorch-GAN's context encoder at 32x32, split at its bottleneck.

The report shares the encoder (downsampling path) of the inpainting generator with the classifier,
a single linear layer on the 512 features left after the fifth stride-2 block (32 -> 1 pixel). The
encoder is registered in timm (``ssr_context_encoder``) so ``--backbone`` names it like any model;
the inpainting task takes this model's own upsampling path and patch discriminator as its heads
(:func:`context_encoder_inpaint_heads`) instead of its generic decoder.

Kept from PyTorch-GAN on purpose, since they are what the report trained: BatchNorm's ``eps=0.8``
(PyTorch-GAN passes 0.8 positionally, where it lands on ``eps``), LeakyReLU 0.2 in the encoder and
ReLU in the decoder, tanh output, N(0, 0.02) initialisation, a 4000-channel 1x1 bottleneck with no
non-linearity after it, and the discriminator's instance norm and 2x2 grid of patch logits.

One change that leaves the function unchanged: the first transposed convolution (4000 -> 512,
kernel 4, stride 2, padding 1) only ever sees a 1x1 input, so only the 2x2 centre of its 4x4 kernel
reaches the output. :class:`CentreTapsUpsample` stores just those taps: the same outputs and
gradients (tested against ``nn.ConvTranspose2d``) with a quarter of the 33M weights and their work.
"""

from __future__ import annotations

import inspect

import torch
from timm.models import register_model
from torch import nn

from .backbone import FeatureSpec

BN_EPS = 0.8  # PyTorch-GAN's BatchNorm2d(c, 0.8)
ENCODER_WIDTHS = (64, 64, 128, 256, 512)
BOTTLENECK = 4000
DECODER_WIDTHS = (512, 256, 128, 64)


def gan_init_(module: nn.Module) -> None:
    """PyTorch-GAN's ``weights_init_normal``: conv weights N(0, 0.02), BatchNorm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, CentreTapsUpsample)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _down(c_in: int, c_out: int, normalize: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1)]
    if normalize:
        layers.append(nn.BatchNorm2d(c_out, eps=BN_EPS))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out, eps=BN_EPS), nn.ReLU())


class ContextEncoderNet(nn.Module):
    """The generator's downsampling path as a timm-style classifier (``forward_features`` / ``forward_head``)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0):
        super().__init__()
        widths = (in_chans, *ENCODER_WIDTHS)
        self.stages = nn.Sequential(
            *(_down(widths[i], widths[i + 1], normalize=i > 0) for i in range(len(ENCODER_WIDTHS)))
        )
        self.num_features = self.head_hidden_size = ENCODER_WIDTHS[-1]
        self.feature_info = [
            {"num_chs": c, "reduction": 2 ** (i + 1), "module": f"stages.{i}"} for i, c in enumerate(ENCODER_WIDTHS)
        ]
        self.drop = nn.Dropout(drop_rate)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        gan_init_(self)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # 32x32 inputs leave a 1x1 map, so this is the report's flatten; larger inputs are averaged
        x = self.drop(x.mean(dim=(2, 3)))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CentreTapsUpsample(nn.Module):
    """``ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)`` restricted to a 1x1 input.

    Output pixel (i, j) of a 1x1 input is ``x @ W[:, :, i + 1, j + 1]``: the other 12 taps fall in
    the padding. ``weight`` holds the 4 live taps.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        # 2-D (c_in, c_out * 4) = the kernel's centre (c_in, c_out, 2, 2) flattened: a 4-D weight would be
        # turned channels-last by ``model.to(memory_format=...)`` and copied back on every forward
        self.weight = nn.Parameter(torch.empty(c_in, c_out * 4))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.normal_(self.weight, 0.0, 0.02)

    @classmethod
    def from_conv_transpose(cls, conv: nn.ConvTranspose2d) -> CentreTapsUpsample:
        if conv.kernel_size != (4, 4) or conv.stride != (2, 2) or conv.padding != (1, 1):
            raise ValueError("only kernel 4, stride 2, padding 1 has a 2x2 centre for 1x1 inputs")
        out = cls(conv.in_channels, conv.out_channels)
        with torch.no_grad():
            out.weight.copy_(conv.weight[:, :, 1:3, 1:3].reshape(conv.in_channels, -1))
            out.bias.copy_(conv.bias if conv.bias is not None else torch.zeros_like(out.bias))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"CentreTapsUpsample needs a 1x1 input, got {tuple(x.shape[-2:])}")
        y = x.reshape(x.shape[0], self.c_in) @ self.weight
        return y.view(-1, self.c_out, 2, 2) + self.bias.view(1, -1, 1, 1)


class ContextEncoderDecoder(nn.Module):
    """The generator's bottleneck and upsampling path: 512x1x1 features -> RGB patch in [0, 1]."""

    def __init__(self, spec: FeatureSpec, patch: int):
        super().__init__()
        if spec.channels != ENCODER_WIDTHS[-1] or patch != spec.height * 2 ** len(DECODER_WIDTHS):
            raise ValueError(
                f"the context encoder's decoder turns {ENCODER_WIDTHS[-1]}-channel features into a patch "
                f"{2 ** len(DECODER_WIDTHS)}x their size; got {spec.channels} channels of "
                f"{spec.height}x{spec.width} for a {patch}x{patch} patch (use mask_fraction 0.5 at 32x32)"
            )
        first = (
            CentreTapsUpsample(BOTTLENECK, DECODER_WIDTHS[0])
            if spec.height == 1
            else nn.ConvTranspose2d(BOTTLENECK, DECODER_WIDTHS[0], 4, 2, 1)
        )
        self.bottleneck = nn.Conv2d(ENCODER_WIDTHS[-1], BOTTLENECK, 1)
        self.up = nn.Sequential(
            nn.Sequential(first, nn.BatchNorm2d(DECODER_WIDTHS[0], eps=BN_EPS), nn.ReLU()),
            *(_up(a, b) for a, b in zip(DECODER_WIDTHS, DECODER_WIDTHS[1:])),
        )
        self.out = nn.Conv2d(DECODER_WIDTHS[-1], 3, 3, 1, 1)
        gan_init_(self)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        t = torch.tanh(self.out(self.up(self.bottleneck(f))))
        return (t + 1) / 2  # PyTorch-GAN's [-1, 1] images are ssrbench's [0, 1] pixels


class PatchGANDiscriminator(nn.Module):
    """PyTorch-GAN's context-encoder discriminator: 16x16 patch -> 2x2 grid of real/fake logits."""

    def __init__(self, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for c_out, stride, normalize in ((64, 2, False), (128, 2, True), (256, 2, True), (512, 1, True)):
            layers.append(nn.Conv2d(c, c_out, 3, stride, 1))
            if normalize:
                layers.append(nn.InstanceNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c = c_out
        layers.append(nn.Conv2d(c, 1, 3, 1, 1))
        self.model = nn.Sequential(*layers)
        gan_init_(self)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.model(patch * 2 - 1).flatten(1)  # B x (patch logits)


def context_encoder_inpaint_heads(spec: FeatureSpec, patch: int) -> dict[str, nn.Module]:
    """The report's inpainting heads for features of ``ssr_context_encoder``."""
    return {"generator": ContextEncoderDecoder(spec, patch), "discriminator": PatchGANDiscriminator(spec.in_chans)}


@register_model
def ssr_context_encoder(pretrained: bool = False, **kwargs) -> ContextEncoderNet:
    """The source report's shared encoder (PyTorch-GAN context encoder, 32x32 -> 512x1x1), ~2.7M parameters."""
    if pretrained:
        raise ValueError("ssr_context_encoder has no pretrained weights")
    accepted = inspect.signature(ContextEncoderNet.__init__).parameters
    return ContextEncoderNet(**{k: v for k, v in kwargs.items() if k in accepted})
