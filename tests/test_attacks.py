import pytest
import torch
import torch.nn.functional as F

from ssrbench.adversarial.base import ATTACKS
from ssrbench.adversarial.fgsm import FGSM
from ssrbench.adversarial.pgd import PGD, linf_pgd
from ssrbench.run.config import load_attack_config

EPS = 8 / 255


def _attacks():
    return {
        "fgsm": FGSM({"eps": EPS}),
        "pgd2": PGD({"eps": EPS, "step_size": 4 / 255, "steps": 2, "random_start": False}),
        "pgd5-rs": PGD({"eps": EPS, "step_size": 2 / 255, "steps": 5, "random_start": True}),
    }


@pytest.mark.parametrize("name", ["fgsm", "pgd2", "pgd5-rs"])
def test_attack_stays_in_eps_ball_and_pixel_range(name, inpaint_model, labels):
    model, _ = inpaint_model
    # images touching 0 and 1, so clamping to [0, 1] is exercised
    x = torch.rand(6, 3, 32, 32)
    x[:, :, :8] = 0.0
    x[:, :, 8:16] = 1.0
    x_adv = _attacks()[name](model, x, labels, torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > EPS / 2  # it actually moved


@pytest.mark.parametrize("name", ["fgsm", "pgd2", "pgd5-rs"])
def test_attack_raises_classifier_loss(name, inpaint_model, images, labels):
    model, _ = inpaint_model
    x_adv = _attacks()[name](model, images, labels, torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = F.cross_entropy(model(images), labels)
        after = F.cross_entropy(model(x_adv), labels)
    assert after > before


def test_fgsm_is_one_full_signed_step(inpaint_model, images, labels):
    model, _ = inpaint_model
    x = images.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    expected = (images + EPS * g.sign()).clamp(0, 1)
    got = FGSM({"eps": EPS})(model, images, labels, torch.Generator())
    assert torch.allclose(got, expected, atol=1e-6)


def test_attack_refuses_training_mode(inpaint_model, images, labels):
    model, _ = inpaint_model
    model.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        FGSM({"eps": EPS})(model, images, labels, torch.Generator())


def test_random_start_is_seeded(inpaint_model, images, labels):
    model, _ = inpaint_model
    pgd = _attacks()["pgd5-rs"]
    a = pgd(model, images, labels, torch.Generator().manual_seed(3))
    b = pgd(model, images, labels, torch.Generator().manual_seed(3))
    c = pgd(model, images, labels, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_zero_steps_or_budget_returns_input(images):
    out = linf_pgd(
        lambda z: z.sum((1, 2, 3)), images, eps=0.0, step_size=0.1, steps=3, random_start=True, maximize=True
    )
    assert torch.equal(out, images)


def test_loss_is_per_sample_so_batch_composition_does_not_matter(inpaint_model, images, labels):
    model, _ = inpaint_model
    pgd = _attacks()["pgd2"]
    full = pgd(model, images, labels, torch.Generator())
    first = pgd(model, images[:2], labels[:2], torch.Generator())
    assert torch.allclose(full[:2], first, atol=1e-6)


@pytest.mark.parametrize(
    "name,kind,steps", [("fgsm", "fgsm", None), ("pgd2", "pgd", 2), ("pgd10", "pgd", 10), ("pgd20", "pgd", 20)]
)
def test_builtin_attack_configs(name, kind, steps):
    cfg = load_attack_config(name)
    assert cfg.kind == kind
    assert cfg.params["eps"] == pytest.approx(8 / 255)
    if steps:
        assert cfg.params["steps"] == steps
    assert isinstance(ATTACKS.get(kind)(cfg.params), (FGSM, PGD))
