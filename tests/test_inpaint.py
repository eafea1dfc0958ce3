import pytest
import torch

from ssrbench.defense.reverse import reverse_attack
from ssrbench.pretext.inpaint import InpaintTask
from ssrbench.run.config import ReverseConfig, load_task_config


def test_centred_cut_is_half_the_side_and_centred(images):
    task = InpaintTask()
    masked, patch = task.cut(images)
    assert patch.shape == (6, 3, 16, 16)
    assert torch.equal(patch, images[:, :, 8:24, 8:24])
    assert (masked[:, :, 8:24, 8:24] == 1.0).all()  # painted with fill_value
    assert torch.equal(masked[:, :, :8], images[:, :, :8])  # context untouched


def test_random_cut_moves_and_stays_inside(images):
    task = InpaintTask({"fill_value": 0.0})
    g = torch.Generator().manual_seed(0)
    corners = set()
    for _ in range(5):
        masked, patch = task.cut(images + 0.5, g)  # +0.5 so the hole (0) is recognisable
        hole = masked == 0.0
        assert hole.flatten(1).sum(1).eq(3 * 16 * 16).all()  # exactly one full square per image
        ys, xs = torch.nonzero(hole[0, 0], as_tuple=True)
        corners.add((ys.min().item(), xs.min().item()))
        y0, x0 = ys.min().item(), xs.min().item()
        assert torch.equal(patch[0], (images + 0.5)[0, :, y0 : y0 + 16, x0 : x0 + 16])
    assert len(corners) > 1


def test_training_loss_parts(inpaint_model, images):
    model, task = inpaint_model
    model.train()
    out = task.training_loss(model, images, torch.Generator().manual_seed(0))
    p = task.params
    assert out.loss.ndim == 0 and out.aux_loss is not None
    assert out.loss.item() == pytest.approx(
        p.lambda_adv * float(out.logs["adv"]) + p.lambda_rec * float(out.logs["rec"]), rel=1e-4
    )
    # the discriminator's loss must not reach the generator or the backbone
    out.aux_loss.backward()
    assert all(q.grad is None for q in model.heads["generator"].parameters())
    assert all(q.grad is None for q in model.backbone.parameters())
    assert any(q.grad is not None for q in model.heads["discriminator"].parameters())


def test_reverse_attack_lowers_the_task_loss_within_budget(inpaint_model, images):
    model, task = inpaint_model
    cfg = ReverseConfig(eps=8 / 255, step_size=1 / 255, steps=10)
    x_rev = reverse_attack(model, task, images, cfg)
    with torch.no_grad():
        before, after = task.reverse_loss(model, images), task.reverse_loss(model, x_rev)
    assert (after < before).all()
    assert (x_rev - images).abs().max() <= cfg.eps + 1e-6
    assert 0 <= x_rev.min() and x_rev.max() <= 1


def test_reverse_attack_is_deterministic_and_zero_steps_is_identity(inpaint_model, images):
    model, task = inpaint_model
    cfg = ReverseConfig(steps=3)
    assert torch.equal(reverse_attack(model, task, images, cfg), reverse_attack(model, task, images, cfg))
    assert torch.equal(reverse_attack(model, task, images, ReverseConfig(steps=0)), images)


def test_metric_is_per_image_region_mse(inpaint_model, images):
    model, task = inpaint_model
    m = task.pretext_metric(model, images)
    assert m.shape == (6,) and (m >= 0).all()


def test_builtin_inpaint_config():
    cfg = load_task_config("inpaint")
    assert cfg.kind == "inpaint"
    assert cfg.params["mask_fraction"] == 0.5
    assert cfg.params["lambda_adv"] == pytest.approx(0.001) and cfg.params["lambda_rec"] == pytest.approx(0.999)
    assert cfg.reverse.steps == 10
