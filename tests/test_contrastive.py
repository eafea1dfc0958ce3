"""The contrastive task (SimCLR InfoNCE over kornia views, Mao et al. 2021): the contract, views drawn only
from the generator and in one forward pass, gradients to the pixels, validation, the extra, the configs."""

from __future__ import annotations

import importlib

import pytest
import torch
from click.testing import CliRunner
from pydantic import ValidationError

from ssrbench.cli import cli
from ssrbench.core import extras
from ssrbench.pretext.contrastive import ContrastiveTask
from ssrbench.run.config import load_attack_config, load_task_config
from ssrbench.run.testing import TINY_BACKBONE, _tiny_model, check_task_contract

SMALL = {"hidden": 16, "proj_dim": 8}


@pytest.fixture
def model_task():
    task = ContrastiveTask(SMALL)
    return task.attach(_tiny_model(TINY_BACKBONE, 32)).eval(), task


def test_conforms():
    check_task_contract(ContrastiveTask)


def test_all_views_go_through_one_forward_pass(model_task, images):
    model, task = model_task
    calls = []
    stem = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))  # any pass through the backbone
    stem.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    loss = task.loss_for_reverse(model, images, torch.Generator().manual_seed(0))
    assert loss.shape == (len(images),)
    assert calls == [task.params.n_views * len(images)]


def test_views_come_from_the_generator_only(model_task, images):
    model, task = model_task
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    with torch.no_grad():
        a, b = task.loss_for_reverse(model, images, gen(0)), task.loss_for_reverse(model, images, gen(1))
        state = torch.random.get_rng_state()
        again = task.loss_for_reverse(model, images, gen(0))
    assert torch.equal(a, again) and not torch.allclose(a, b)
    assert torch.equal(state, torch.random.get_rng_state())
    assert not torch.equal(task.views(images, gen(0)), task.views(images, gen(1)))
    with pytest.raises(ValueError, match="pass a generator"):
        task.reverse_loss(model, images)


def test_gradient_reaches_the_pixels_through_the_augmentation(images):
    task = ContrastiveTask(SMALL)
    x = images.clone().requires_grad_(True)
    v = task.views(x, torch.Generator().manual_seed(0))
    assert v.shape == (task.params.n_views * len(images), *images.shape[1:])
    (g,) = torch.autograd.grad(v.square().sum(), x)
    assert torch.isfinite(g).all() and (g.flatten(1).abs().sum(1) > 0).all()  # every image gets a gradient


def test_the_loss_and_metric_see_which_views_belong_together(model_task):
    """A projection that sees the image's identity (not the augmentation) gives a low loss and finds every view."""
    _, task = model_task
    b, v = 3, task.params.n_views
    z = torch.nn.functional.one_hot(torch.arange(b * v) % b, b).float()
    sim = (z @ z.T).masked_fill(torch.eye(b * v, dtype=torch.bool), float("-inf"))
    assert torch.equal(task._retrieval(sim, b), torch.ones(b))
    scrambled = task._nce(sim.roll(1, dims=1), b)
    assert (task._nce(sim, b) < scrambled).all()


def test_training_loss_logs_and_trains_the_head(images):
    task = ContrastiveTask(SMALL)
    model = task.attach(_tiny_model(TINY_BACKBONE, 32)).train()
    out = task.training_loss(model, images, torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and set(out.logs) == {"nce", "view_acc"} and 0 <= out.logs["view_acc"] <= 1
    out.loss.backward()
    assert model.heads["projection"][0].weight.grad.abs().sum() > 0


def test_preview_and_describe(images):
    task = ContrastiveTask()
    shown = task.preview(images)
    assert shown and all(v.shape == images.shape for v in shown.values())
    assert torch.equal(shown["view 1"], task.preview(images)["view 1"])  # a fixed generator
    d = task.describe()
    assert "RandomResizedCrop" in d["augmentation"] and "0.2, 1.0" in d["augmentation"]
    assert d["kornia_version"] == importlib.import_module("kornia").__version__


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"n_views": 1}, "n_views"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_scale": (0.2, 1.5)}, "crop_scale"),
        ({"crop_scale": (0.9, 0.5)}, "crop_scale"),
    ],
)
def test_bad_params_are_refused_naming_the_field(bad, field):
    with pytest.raises(ValidationError) as err:
        ContrastiveTask.Params(**bad)
    assert {e["loc"][0] for e in err.value.errors()} == {field}


def test_a_bad_config_is_exit_2_naming_the_field(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bad.toml").write_text('extends = "contrastive"\n\n[params]\nn_views = 1\n')
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--preset",
            "smoke",
            "--backbone",
            TINY_BACKBONE,
            "--tasks",
            "bad",
            "--attacks",
            "fgsm",
            "--config-dir",
            str(tmp_path),
            "--data-dir",
            str(tmp_path / "none"),
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "o.json"),
        ],
    )
    assert res.exit_code == 2, res.output
    assert "params.n_views" in res.output and "Traceback" not in res.output


def test_without_kornia_the_task_names_the_extra(without_module):
    without_module("kornia")
    with pytest.raises(extras.MissingExtraError, match=r"pip install 'ssrbench\[augment\]'") as info:
        ContrastiveTask()
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "name, eps, steps, random_start", [("contrastive", 8, 10, False), ("contrastive-mao21", 16, 40, True)]
)
def test_named_configs(name, eps, steps, random_start):
    cfg = load_task_config(name)
    assert cfg.kind == "contrastive" and cfg.params == load_task_config("contrastive").params
    assert cfg.params["n_views"] == 4 and cfg.params["temperature"] == pytest.approx(0.2)
    r = cfg.reverse
    assert (r.eps, r.step_size, r.steps, r.random_start) == (
        pytest.approx(eps / 255),
        pytest.approx(2 / 255),
        steps,
        random_start,
    )


def test_the_defense_aware_attack_config():
    cfg = load_attack_config("ssl-aware-mao21")
    p = cfg.params
    assert cfg.kind == "ssl-aware" and p["ssl_weight"] == 10 and p["steps"] == 10 and p["random_start"]
    assert p["eps"] == pytest.approx(8 / 255) and p["step_size"] == pytest.approx(2 / 255) and p["eot_samples"] == 1
