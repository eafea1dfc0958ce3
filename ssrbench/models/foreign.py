"""A classifier from elsewhere (RobustBench's zoo, a user's module) as the shared backbone of classifier-first.

Published robust models end in ``pool -> linear`` written inside their ``forward`` (``F.avg_pool2d(out, 8)``
in RobustBench's WideResNet), so there is no module whose output is the feature map a task's heads need.
Each architecture therefore *declares* its feature layer: the module whose output is that map (plus the
activation its forward applies to it functionally, if any) and its final linear layer. The model's own
``forward`` runs unchanged -- its input standardisation and every quirk included -- and the map is read
as it passes the declared module; that the map, globally average-pooled and passed through the linear
layer, gives the model's own logits is checked numerically before the model is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError


@dataclass(frozen=True)
class FeatureLayer:
    """Where a classifier's feature map is read: ``module``'s output (``activation`` applied, when the
    architecture's forward applies it functionally), followed by global average pooling and ``head``."""

    module: str
    head: str
    activation: Literal["relu"] | None = None


def _preact_resnet(net: nn.Module) -> FeatureLayer:
    # RobustBench's PreActResNet: F.relu(self.bn(out)) before the pooling only when bn_before_fc
    if getattr(net, "bn_before_fc", False):
        return FeatureLayer("bn", "linear", "relu")
    return FeatureLayer("layer4", "linear")


# architecture class name (matched along the class's MRO, so Wong2020FastNet is a PreActResNet) -> its layer
ARCHITECTURES: dict[str, Callable[[nn.Module], FeatureLayer]] = {
    "WideResNet": lambda net: FeatureLayer("relu", "fc"),  # self.relu(self.bn1(out)), then avg_pool2d(out, 8)
    "PreActResNet": _preact_resnet,
    "ResNet": lambda net: FeatureLayer("layer4", "linear"),  # layer4's output, then avg_pool2d(out, 4)
}

DECLARE = (
    "declare it on the class: ssrbench_feature_layer = ssrbench.models.foreign.FeatureLayer(module='layer4', "
    "head='fc') -- the module whose output is the last feature map, and the final nn.Linear after global "
    "average pooling"
)


def declared_layer(net: nn.Module, where: str) -> FeatureLayer:
    """The feature layer ``net`` declares itself (``ssrbench_feature_layer``), or its architecture's."""
    own = getattr(net, "ssrbench_feature_layer", None)
    if own is not None:
        if not isinstance(own, FeatureLayer):
            raise ConfigError(f"{where}: ssrbench_feature_layer is {type(own).__name__}, not a FeatureLayer; {DECLARE}")
        return own
    for cls in type(net).__mro__:
        if cls.__name__ in ARCHITECTURES:
            return ARCHITECTURES[cls.__name__](net)
    raise ConfigError(
        f"{where}: ssrbench knows no feature layer of {type(net).__name__} (known: {', '.join(ARCHITECTURES)}); "
        f"{DECLARE}"
    )


class _Reached(Exception):
    """Raised by the hook on the declared module: the feature map is there, the rest of forward is not needed."""


class ForeignBackbone(nn.Module):
    """``net`` seen as a backbone: ``forward_features`` is its feature map at the declared layer, and
    ``forward_head(f, pre_logits=True)`` the globally pooled vector its final linear layer reads."""

    def __init__(self, net: nn.Module, layer: FeatureLayer, where: str):
        super().__init__()
        self.net = net
        self.layer = layer
        try:
            self._feature_module = net.get_submodule(layer.module)
            head = net.get_submodule(layer.head)
        except AttributeError as exc:
            raise ConfigError(f"{where}: {type(net).__name__} has no module {exc}; {DECLARE}") from exc
        if not isinstance(head, nn.Linear):
            raise ConfigError(f"{where}: {type(net).__name__}.{layer.head} is {type(head).__name__}, not nn.Linear")
        self.num_features = head.in_features
        self.output_fmt = "NCHW"
        self.train(False)

    def train(self, mode: bool = True) -> ForeignBackbone:
        """The published model stays in eval mode whatever its wrapper is set to: it is frozen, and a forward
        pass in training mode would move its BatchNorm statistics away from the file's."""
        super().train(mode)
        self.net.eval()
        return self

    def head(self) -> nn.Linear:
        return self.net.get_submodule(self.layer.head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own forward (its normalisation included) up to the declared module, stopped there: what
        follows (pooling written for 32x32 inputs, the linear layer) is not run, so any input size a task feeds
        (jigsaw's tiles) gets its map."""
        seen: list[torch.Tensor] = []

        def stop(module, args, out):
            seen.append(out)
            raise _Reached

        handle = self._feature_module.register_forward_hook(stop)
        try:
            self.net(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if not seen:
            raise RuntimeError(f"{self.layer.module} was not called by {type(self.net).__name__}.forward")
        return F.relu(seen[0]) if self.layer.activation == "relu" else seen[0]

    def forward_head(self, f: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = f.mean((2, 3))
        return pooled if pre_logits else self.head()(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def adapt(net: nn.Module, where: str, image_size: int = 32, in_chans: int = 3) -> ForeignBackbone:
    """``net`` (eval mode) behind its declared feature layer, checked: on random pixels, the pooled map
    through the final linear layer must give ``net``'s own logits; a ConfigError naming ``where`` otherwise."""
    backbone = ForeignBackbone(net.eval(), declared_layer(net, where), where)
    x = torch.rand(4, in_chans, image_size, image_size, generator=torch.Generator().manual_seed(0))
    name, layer = type(net).__name__, backbone.layer
    wrong = f"{where}: {name}'s logits are not the pooled map of {layer.module} through {layer.head}"
    with torch.no_grad():
        try:
            own = net(x)
        except Exception as exc:  # noqa: BLE001 - any failure of a foreign model on CIFAR-sized pixels
            raise ConfigError(f"{where}: {name} fails on {image_size}x{image_size} pixels: {exc}") from exc
        f = backbone.forward_features(x)
        if f.ndim != 4:
            raise ConfigError(
                f"{where}: {name}.{layer.module} gives shape {tuple(f.shape)}, not a feature map (B, C, H, W); "
                + DECLARE
            )
        try:
            ours = backbone.forward_head(f)
        except RuntimeError as exc:
            raise ConfigError(f"{wrong} ({exc}); {DECLARE}") from exc
    if own.shape != ours.shape or not torch.allclose(own, ours, rtol=1e-4, atol=1e-4):
        gap = (own - ours).abs().max().item() if own.shape == ours.shape else float("nan")
        raise ConfigError(f"{wrong} (largest difference {gap:.3g}); {DECLARE}")
    return backbone
