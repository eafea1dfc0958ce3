"""Conformance checks every task and attack must pass -- built-in or plugin. Use from a plugin's own tests:

    from ssrbench.run.testing import check_attack_contract, check_task_contract
    def test_my_task_conforms():
        check_task_contract(MyTask)

``ssrbench check-plugin NAME`` runs the same checks; ``quick_task_check`` is the cheap subset a run
applies before it trains anything.
"""

from __future__ import annotations

from typing import Any

import torch

from ..adversarial.base import Attack, check_attack_class
from ..core.budget import ReverseConfig
from ..defense.gate import gate_score
from ..defense.reverse import Defense, reverse_attack
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask, TaskParams, check_task_class

TINY_BACKBONE = "test_efficientnet"  # timm's tiny registered test model
RESERVED_HEADS = ("task_branch",)  # set by PretextTask.attach for the task's own backbone stages (task_stages)


def _tiny_model(backbone: str, image_size: int) -> SSRModel:
    return SSRModel(backbone, (0.5,) * 3, (0.25,) * 3, 10, image_size)


def quick_task_check(
    task_cls: type[PretextTask],
    params: dict[str, Any] | None = None,
    backbone: str = TINY_BACKBONE,
    batch: int = 2,
    image_size: int = 32,
) -> str | None:
    """The broken promise that would spoil a run, found on one batch of a tiny model -- or None.

    Cheap enough (a fraction of a second) to run whenever a task is instantiated for a run: does
    ``training_loss`` give one finite number, ``reverse_loss`` one differentiable value per image, and
    ``pretext_metric`` one value per image? (A batch mean would silently couple the images of a batch in the
    reverse attack; a per-image training loss or a NaN at the first step would end the run mid-training.)
    ``task_stages`` is set to 0 here: splitting is the backbone's business, and the tiny model cannot be
    split. The global random state and thread count are left as they were, so a run's numbers do not change.
    """
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a tiny model gains nothing from threads and can lose a lot on a busy machine
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(0)
            task = task_cls({**(params or {}), "task_stages": 0})
            model = task.attach(_tiny_model(backbone, image_size)).train()
            x = torch.rand(batch, 3, image_size, image_size)
            out = task.training_loss(model, x, torch.Generator().manual_seed(0))  # else a crash or NaN mid-training
            loss = getattr(out, "loss", None)
            if not isinstance(loss, torch.Tensor) or loss.ndim != 0 or not bool(torch.isfinite(loss)):
                got = (
                    (_shape(loss) if loss.ndim else f"{loss.item()}")
                    if isinstance(loss, torch.Tensor)
                    else f"{type(out).__name__} {str(out)[:100]}"
                )
                return f"training_loss must give a TaskLoss whose loss is one finite number, got {got}"
            model.eval()
            loss = task.loss_for_reverse(model, x.clone().requires_grad_(True), torch.Generator().manual_seed(0))
            if not isinstance(loss, torch.Tensor) or tuple(loss.shape) != (batch,):
                return (
                    f"reverse_loss must give one value per image (shape ({batch},) for a batch of {batch}), "
                    f"got {_shape(loss)}"
                )
            if not loss.requires_grad:
                return "reverse_loss has no gradient with respect to the input pixels"
            with torch.no_grad():
                metric = task.metric_for_eval(model, x, torch.Generator().manual_seed(0))
            if not isinstance(metric, torch.Tensor) or tuple(metric.shape) != (batch,):
                return (
                    f"pretext_metric must give one value per image (shape ({batch},) for a batch of {batch}), "
                    f"got {_shape(metric)}"
                )
    except Exception as exc:  # noqa: BLE001 - whatever the task raises is the answer
        return f"{type(exc).__name__}: {exc}"
    finally:
        torch.set_num_threads(threads)
    return None


def _shape(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"


def check_task_contract(
    task_cls: type[PretextTask],
    params: dict | None = None,
    backbone: str = TINY_BACKBONE,
    batch: int = 4,
    image_size: int = 32,
) -> None:
    """Raise AssertionError naming the first broken promise of the task contract."""
    check_task_class(task_cls.name, task_cls)
    assert isinstance(task_cls.version, str) and task_cls.version, "version must be a non-empty string"
    task = task_cls(params or {})
    assert isinstance(task.params, TaskParams)

    torch.manual_seed(0)
    model = _tiny_model(backbone, image_size)
    with torch.random.fork_rng(devices=[]):  # a throw-away build: the model below is initialised as before
        reserved = set(RESERVED_HEADS) & set(task.build_heads(model.spec))
    assert not reserved, f"build_heads must not use the reserved head key(s) {sorted(reserved)}"
    model = task.attach(model)
    assert len(model.heads) > 0, "build_heads built nothing"
    x = torch.rand(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))

    # training: a finite scalar that trains the main heads; aux loss (if any) touches only aux heads
    model.train()
    out = task.training_loss(model, x, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), f"training loss must be a finite scalar, got {out.loss}"
    main = [k for k in model.heads if k not in task.aux_heads]
    assert main, "a task needs at least one head that is not auxiliary"
    out.loss.backward(retain_graph=out.aux_loss is not None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for k in main for p in model.heads[k].parameters()), (
        "the training loss does not reach the task's heads"
    )
    if task.aux_heads:
        assert out.aux_loss is not None, "aux_heads declared but no aux_loss returned"
        model.zero_grad(set_to_none=True)
        out.aux_loss.backward()
        assert all(p.grad is None for p in model.backbone.parameters()), "aux_loss must not reach the backbone"

    # evaluation: per-image, differentiable down to the pixels, deterministic unless declared random
    model.eval()
    z = x.clone().requires_grad_(True)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731 - a randomised task's only source of randomness
    loss = task.loss_for_reverse(model, z, gen())
    assert isinstance(loss, torch.Tensor) and loss.shape == (batch,), (
        f"reverse_loss must give one value per image (shape ({batch},) for a batch of {batch}), got {_shape(loss)}"
    )
    assert loss.requires_grad, "reverse_loss has no gradient with respect to the input pixels"
    (g,) = torch.autograd.grad(loss.sum(), z, allow_unused=True)
    assert g is not None and g.abs().sum() > 0, "reverse_loss has no gradient with respect to the input pixels"
    with torch.no_grad():
        if not task.randomized_eval:
            assert torch.equal(task.reverse_loss(model, x), task.reverse_loss(model, x)), (
                "reverse_loss is not deterministic; set randomized_eval = True if that is intended"
            )
        else:
            torch.manual_seed(12345)  # a state no seeded call could leave behind: reseeding without restoring shows
            state = torch.random.get_rng_state()
            assert torch.equal(task.loss_for_reverse(model, x, gen()), task.loss_for_reverse(model, x, gen())), (
                "a randomised reverse_loss must draw only from the generator it is given (same seed, same value)"
            )
            assert torch.equal(state, torch.random.get_rng_state()), "reverse_loss changed the global random state"
        metric = task.metric_for_eval(model, x, gen())
    assert isinstance(metric, torch.Tensor) and metric.shape == (batch,), (
        f"pretext_metric must give one value per image (shape ({batch},) for a batch of {batch}), got {_shape(metric)}"
    )
    assert torch.isfinite(metric).all()
    assert isinstance(task.metric_name, str) and isinstance(task.higher_is_better, bool)

    # the reverse attack can do its job: it lowers the task's loss on these images
    x_rev = reverse_attack(model, task, x, ReverseConfig(eps=8 / 255, step_size=1 / 255, steps=5), gen())
    with torch.no_grad():
        before, after = task.loss_for_reverse(model, x, gen()).mean(), task.loss_for_reverse(model, x_rev, gen()).mean()
    assert after < before, f"the reverse attack did not lower the task loss ({before:.4g} -> {after:.4g})"


def check_attack_contract(
    attack_cls: type[Attack],
    params: dict[str, Any] | None = None,
    backbone: str = TINY_BACKBONE,
    batch: int = 4,
    image_size: int = 32,
) -> None:
    """Raise AssertionError naming the first broken promise of the attack contract: images of the
    input's shape, finite, in [0, 1], inside the eps-ball when the params declare ``eps``, the input
    left untouched, the model left in eval mode. An adaptive attack gets a defense (rotation, 2 steps) with
    a detection gate (its threshold: the batch's median pretext score)."""
    check_attack_class(getattr(attack_cls, "__name__", repr(attack_cls)), attack_cls)
    attack = attack_cls(params or {})
    torch.manual_seed(0)
    model = _tiny_model(backbone, image_size)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, image_size, image_size, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    defense = None
    if attack.adaptive:
        from ..pretext.rotation import RotationTask

        task = RotationTask()
        model = task.attach(model).eval()
        defense = Defense(
            model,
            task,
            ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=2),
            gate=float(gate_score(task, model, x, None).median()),
        )
    model.eval()
    x_before = x.clone()
    out = attack(model, x, y, torch.Generator().manual_seed(1), defense=defense)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape, (
        f"perturb must return images of the input's shape {tuple(x.shape)}, got {_shape(out)}"
    )
    assert out.dtype == x.dtype, f"perturb must keep the input's dtype {x.dtype}, got {out.dtype}"
    assert torch.isfinite(out).all(), "perturb returned non-finite pixels"
    assert out.min() >= 0 and out.max() <= 1, (
        f"perturb must return pixels in [0, 1], got [{out.min():.4g}, {out.max():.4g}]"
    )
    assert torch.equal(x, x_before), "perturb modified its input in place"
    assert not model.training, "perturb left the model in training mode"
    threat = attack.threat_model()
    assert threat is not None, (
        "the attack declares no threat model: override Attack.threat_model() (or give it "
        "LinfBudget params) so the worst case and the budget checks can read it"
    )
    norm_of = {
        "linf": lambda d: d.abs().flatten(1).max(1).values,
        "l2": lambda d: d.flatten(1).norm(dim=1),
        "l1": lambda d: d.abs().flatten(1).sum(1),
    }
    if threat.norm in norm_of and not threat.probe:
        dist = norm_of[threat.norm](out - x).max().item()
        assert dist <= threat.eps + 1e-5, (
            f"perturb left its {threat.norm} ball: distance {dist:.4g} > eps {threat.eps:.4g}"
        )
