"""Any timm model as the shared backbone, adapted to small images, with normalisation inside."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import timm
import torch
from torch import nn

from ..core.errors import ConfigError, UnknownNameError
from ..core.registry import Registry

BACKBONES: Registry = Registry("backbone", "ssrbench.backbones")  # importing an entry registers it with timm

SPATIAL_ONLY = (
    "ssrbench needs a backbone whose forward_features returns a channels-first spatial map (B, C, H, W): "
    "convolutional timm models (resnet*, resnet18d, efficientnet_*, convnext_*, regnet*, ...) or an "
    "ssrbench backbone; transformers that return tokens or channels-last maps (vit_*, deit_*, swin_*, ...) are "
    "not supported"
)


class Normalize(nn.Module):
    """Per-channel standardisation as the model's first layer, so attacks live in [0, 1] pixels."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class FeatureSpec:
    """What a task's heads can rely on: the backbone's final feature map and input geometry."""

    channels: int
    height: int
    width: int
    image_size: int
    in_chans: int = 3
    architecture: str = ""  # the backbone's name, for tasks that pair a head with a specific backbone


def _adapt_stem(model: nn.Module) -> str:
    """Undo ImageNet's 4x stem downsampling for ResNet-like models; say what was changed."""
    changes = []
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Conv2d) and conv1.stride != (1, 1):
        model.conv1 = nn.Conv2d(conv1.in_channels, conv1.out_channels, 3, 1, 1, bias=conv1.bias is not None)
        changes.append("conv1->3x3/1")
    if isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        model.maxpool = nn.Identity()
        changes.append("maxpool->identity")
    return ",".join(changes) or "none"


def create_backbone(name: str, image_size: int = 32) -> tuple[nn.Module, str]:
    """A timm model without classifier (``num_classes=0``) and how it was adapted to ``image_size``.

    Names in ssrbench's backbone registry (including plugins) are built there; every other name goes
    to ``timm.create_model`` with a generic small-image adaptation.
    """
    if name in BACKBONES:
        BACKBONES.get(name)  # importing the entry point registers the model with timm
        return timm.create_model(name, num_classes=0), "native"
    if not timm.is_model(name):
        known = BACKBONES.names() + timm.list_models()
        raise UnknownNameError(
            "backbone", name, BACKBONES.names() + ["<any timm model>"], difflib.get_close_matches(name, known, n=3)
        )
    try:
        try:
            model = timm.create_model(name, num_classes=0, pretrained=False, img_size=image_size)
            return model, f"img_size={image_size}"
        except TypeError:
            model = timm.create_model(name, num_classes=0, pretrained=False)
    except Exception as exc:  # noqa: BLE001 - e.g. a model that asserts on its input size
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"backbone {name!r} cannot be built for {image_size}x{image_size} images "
            f"({type(exc).__name__}: {first}); {SPATIAL_ONLY}"
        ) from exc
    return model, _adapt_stem(model) if image_size < 64 else "none"


def feature_spec(backbone: nn.Module, image_size: int, in_chans: int = 3, architecture: str = "") -> FeatureSpec:
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        f = backbone.forward_features(torch.zeros(1, in_chans, image_size, image_size))
    backbone.train(was_training)
    fmt = str(getattr(backbone, "output_fmt", "NCHW"))
    if f.ndim != 4 or fmt.upper() != "NCHW":
        raise ConfigError(
            f"backbone {architecture or type(backbone).__name__!r} returns features of shape "
            f"{tuple(f.shape)}{'' if fmt.upper() == 'NCHW' else f' ({fmt})'}; {SPATIAL_ONLY}"
        )
    return FeatureSpec(f.shape[1], f.shape[2], f.shape[3], image_size, in_chans, architecture)


def check_backbone(name: str, image_size: int = 32) -> FeatureSpec:
    """Build ``name`` and probe its features once, before any data is loaded or model trained."""
    backbone, _ = create_backbone(name, image_size)
    try:
        return feature_spec(backbone, image_size, architecture=name)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - timm models fail on small inputs in many ways
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"backbone {name!r} does not run on {image_size}x{image_size} images "
            f"({type(exc).__name__}: {first}); {SPATIAL_ONLY}"
        ) from exc
