"""Where the backbone splits: the last k stages can be copied out per task (shared trunk, own branch).

Misra et al.'s finding, cited by the source report, is that sharing everything forces one set of
late features to serve two objectives; keeping the last stage(s) per task can help. The split works
on timm's own stage metadata (``feature_info``) and on the same flattening of top-level modules
that timm's feature extractors use, and is verified numerically for every backbone it is used on.
"""

from __future__ import annotations

import copy

import torch
from timm.models._features import _module_list
from torch import nn


def stage_sequence(backbone: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[str]]:
    """(modules in forward order up to the last stage, stage names), or ValueError if not sequential."""
    info = getattr(backbone, "feature_info", None)
    if not info:
        raise ValueError(f"{type(backbone).__name__} has no feature_info: it cannot be split into stages")
    stages = [f["module"] for f in info]
    seq = []
    flatten = any("." in name for name in stages)  # stages inside a Sequential, e.g. 'stages.2'
    for _, dotted, module in _module_list(backbone, flatten_sequential=flatten):
        seq.append((dotted, module))
        if dotted == stages[-1]:
            break
    else:
        raise ValueError(f"{type(backbone).__name__}: stage {stages[-1]!r} is not a top-level module")
    return seq, stages


def split_backbone(backbone: nn.Module, task_stages: int, image_size: int) -> tuple[list[nn.Module], nn.Sequential]:
    """(shared trunk modules, a copy of the last ``task_stages`` stages for the task)."""
    seq, stages = stage_sequence(backbone)
    if not 1 <= task_stages < len(stages):
        raise ValueError(f"task_stages must be between 1 and {len(stages) - 1} for this backbone, got {task_stages}")
    boundary = stages[-task_stages - 1]
    cut = next(i for i, (name, _) in enumerate(seq) if name == boundary) + 1
    trunk = [m for _, m in seq[:cut]]
    branch = nn.Sequential(*[copy.deepcopy(m) for _, m in seq[cut:]])
    _verify(backbone, [m for _, m in seq], image_size)
    return trunk, branch


def _verify(backbone: nn.Module, modules: list[nn.Module], image_size: int) -> None:
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        x = x.to(next(backbone.parameters()).device)
        h = x
        for m in modules:
            h = m(h)
        ref = backbone.forward_features(x)
        ok = h.shape == ref.shape and torch.allclose(h, ref, atol=1e-5)
    backbone.train(was)
    if not ok:
        raise ValueError(
            f"{type(backbone).__name__}: forward_features is not a plain sequence of its stages; "
            f"it cannot be split (use task_stages = 0)"
        )
