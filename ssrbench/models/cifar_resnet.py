"""Small CIFAR ResNets registered in timm's model registry, so ``--backbone`` names them like any timm model.

Built from timm's own ResNet with a 3x3 stride-1 stem and no max-pool: at 32x32 the ImageNet stem
would throw away three quarters of the pixels before the first block.
"""

from __future__ import annotations

import inspect

from timm.models import register_model
from timm.models.resnet import BasicBlock, ResNet
from torch import nn


def _cifar_resnet(channels: tuple[int, ...], layers: tuple[int, ...], **kwargs) -> ResNet:
    # timm's factory passes hub/pretrained options too; no weights exist for these models
    accepted = inspect.signature(ResNet.__init__).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    model = ResNet(BasicBlock, layers, channels=channels, stem_type="deep", stem_width=channels[0] // 2, **kwargs)
    model.conv1 = nn.Conv2d(kwargs.get("in_chans", 3), channels[0], 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_model
def ssr_resnet8(pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-8 at widths 16-128: the quick preset's backbone (~16M multiply-adds per 32x32 image)."""
    return _cifar_resnet((16, 32, 64, 128), (1, 1, 1, 1), **kwargs)


@register_model
def ssr_resnet8_wide(pretrained: bool = False, **kwargs) -> ResNet:
    """ResNet-8 at widths 32-256 (4x the compute of ssr_resnet8)."""
    return _cifar_resnet((32, 64, 128, 256), (1, 1, 1, 1), **kwargs)
