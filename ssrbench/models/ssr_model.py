"""The model every cell evaluates: normalise -> shared backbone -> classifier, plus the task's heads."""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import ConfigError
from .backbone import FeatureSpec, Normalize, create_backbone, feature_spec
from .foreign import ForeignBackbone
from .split import split_backbone


class SSRModel(nn.Module):
    """``forward`` maps [0, 1] pixels to class logits, so attacks see exactly the deployed classifier."""

    def __init__(
        self, backbone_name: str, mean, std, num_classes: int, image_size: int = 32, base: ForeignBackbone | None = None
    ):
        super().__init__()
        self.backbone_name = backbone_name
        if base is None:
            self.normalize = Normalize(mean, std)
            self.backbone, self.adaptation = create_backbone(backbone_name, image_size)
        else:  # a published classifier (run --base): it takes [0, 1] pixels and standardises them itself
            self.normalize = Normalize((0.0,) * len(mean), (1.0,) * len(std))
            self.backbone, self.adaptation = base, f"feature layer {base.layer.module}"
        self.spec: FeatureSpec = feature_spec(self.backbone, image_size, architecture=backbone_name)
        head = base.head() if base is not None else None
        self.classifier = nn.Linear(self.backbone.num_features, num_classes, bias=head is None or head.bias is not None)
        if head is not None:
            if head.out_features != num_classes:
                raise ConfigError(f"--base {backbone_name}: it has {head.out_features} classes, the data {num_classes}")
            self.classifier.load_state_dict(head.state_dict())  # its own last layer: the same logits
        self.heads = nn.ModuleDict()  # the pretext task's modules, attached by the task
        self._trunk: list[nn.Module] | None = None  # set when the last stages are split off per task

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's feature map (timm's ``forward_features``) of pixels in [0, 1]."""
        return self.backbone.forward_features(self.normalize(x))

    def task_features(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """The feature map a task sees: the classifier's, or the shared trunk plus the task's own last
        stages when the backbone is split. ``normalize=False`` for inputs a task standardised itself."""
        h = self.normalize(x) if normalize else x
        if self._trunk is None:
            return self.backbone.forward_features(h)
        for m in self._trunk:
            h = m(h)
        return self.heads["task_branch"](h)

    def split(self, task_stages: int) -> nn.Module:
        """Copy the last ``task_stages`` stages into a task branch (returned, to be kept in ``heads``)."""
        self._trunk, branch = split_backbone(self.backbone, task_stages, self.spec.image_size)
        return branch

    def logits_from_features(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone.forward_head(f, pre_logits=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.features(x))

    def classifier_state(self) -> dict[str, torch.Tensor]:
        """Everything but the task heads: what classifier-first trains once and shares across tasks."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("heads.")}
