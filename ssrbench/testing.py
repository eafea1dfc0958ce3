"""Conformance checks every task must pass -- built-in or plugin. Use from a plugin's own tests:

    from ssrbench.testing import check_task_contract
    def test_my_task_conforms():
        check_task_contract(MyTask)
"""

from __future__ import annotations

import torch

from .config import ReverseConfig
from .defense.reverse import reverse_attack
from .models.ssr_model import SSRModel
from .pretext.base import PretextTask, TaskParams, check_task_class

TINY_BACKBONE = "test_efficientnet"  # timm's tiny registered test model


def check_task_contract(task_cls: type[PretextTask], params: dict | None = None, backbone: str = TINY_BACKBONE,
                        batch: int = 4, image_size: int = 32) -> None:
    """Raise AssertionError naming the first broken promise of the task contract."""
    check_task_class(task_cls.name, task_cls)
    assert isinstance(task_cls.version, str) and task_cls.version, "version must be a non-empty string"
    task = task_cls(params or {})
    assert isinstance(task.params, TaskParams)

    torch.manual_seed(0)
    model = task.attach(SSRModel(backbone, (0.5,) * 3, (0.25,) * 3, 10, image_size))
    assert len(model.heads) > 0, "build_heads built nothing"
    x = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))

    # training: a finite scalar that trains the main heads; aux loss (if any) touches only aux heads
    model.train()
    out = task.training_loss(model, x, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), f"training loss must be a finite scalar, got {out.loss}"
    main = [k for k in model.heads if k not in task.aux_heads]
    assert main, "a task needs at least one head that is not auxiliary"
    out.loss.backward(retain_graph=out.aux_loss is not None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for k in main for p in model.heads[k].parameters()), \
        "the training loss does not reach the task's heads"
    if task.aux_heads:
        assert out.aux_loss is not None, "aux_heads declared but no aux_loss returned"
        model.zero_grad(set_to_none=True)
        out.aux_loss.backward()
        assert all(p.grad is None for p in model.backbone.parameters()), "aux_loss must not reach the backbone"

    # evaluation: per-image, differentiable down to the pixels, deterministic unless declared random
    model.eval()
    z = x.clone().requires_grad_(True)
    loss = task.reverse_loss(model, z)
    assert loss.shape == (batch,), f"reverse_loss must give one value per image, got shape {tuple(loss.shape)}"
    assert loss.requires_grad, "reverse_loss has no gradient with respect to the input pixels"
    (g,) = torch.autograd.grad(loss.sum(), z, allow_unused=True)
    assert g is not None and g.abs().sum() > 0, "reverse_loss has no gradient with respect to the input pixels"
    if not task.randomized_eval:
        with torch.no_grad():
            assert torch.equal(task.reverse_loss(model, x), task.reverse_loss(model, x)), \
                "reverse_loss is not deterministic; set randomized_eval = True if that is intended"
    with torch.no_grad():
        metric = task.pretext_metric(model, x)
    assert metric.shape == (batch,), f"pretext_metric must give one value per image, got {tuple(metric.shape)}"
    assert torch.isfinite(metric).all()
    assert isinstance(task.metric_name, str) and isinstance(task.higher_is_better, bool)

    # the reverse attack can do its job: it lowers the task's loss on these images
    x_rev = reverse_attack(model, task, x, ReverseConfig(eps=8 / 255, step_size=1 / 255, steps=5))
    with torch.no_grad():
        before, after = task.reverse_loss(model, x).mean(), task.reverse_loss(model, x_rev).mean()
    assert after < before, f"the reverse attack did not lower the task loss ({before:.4g} -> {after:.4g})"
