"""The GPU path, where a CUDA device is present: a run trains in bf16 autocast when asked (``auto`` there),
attacks in exact fp32, and agrees with the CPU on what an attack does to a model.

Skipped on machines without CUDA (CI's); tests/test_precision.py runs the same code on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.adversarial.base import ATTACKS
from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.models.environment import exact_fp32
from ssrbench.models.ssr_model import SSRModel
from ssrbench.run.evaluate import correct_flags

from .helpers import make_cifar

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _run(tmp_path, name: str, *extra: str):
    data = make_cifar(tmp_path / "data", train=512, test=64)
    out = tmp_path / f"{name}.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--preset",
            "smoke",
            "--tasks",
            "rotation,inpaint",
            "--attacks",
            "fgsm,pgd2",
            "--device",
            "cuda",
            "--data-dir",
            str(data),
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    return store.load(out)


def test_a_cuda_run_trains_in_bf16_when_auto_and_in_fp32_by_default(tmp_path):
    bf16 = _run(tmp_path, "auto", "--train-precision", "auto")
    assert bf16.environment.device.startswith("cuda")
    for r in bf16.training:
        assert r.spec["precision"] == "bf16" and r.trained_on["device"].startswith("cuda")
    for c in bf16.cells:
        assert c.clean.n == c.adv.n == c.adv_rev.n == 64
    fp32 = _run(tmp_path, "fp32")
    assert all("precision" not in r.spec for r in fp32.training)
    assert {r.key for r in fp32.training}.isdisjoint({r.key for r in bf16.training})


def test_an_attack_on_the_gpu_does_what_it_does_on_the_cpu():
    """Exact fp32 on both: the same model, images and attack give (nearly) the same adversarial flags; TF32
    or bf16 attacks would not be held to this."""
    torch.manual_seed(0)
    model = SSRModel("ssr_resnet8", (0.5,) * 3, (0.25,) * 3, 10, 32).eval()
    x, y = torch.rand(200, 3, 32, 32), torch.randint(0, 10, (200,))
    pgd = ATTACKS.get("pgd")({"eps": 8 / 255, "step_size": 2 / 255, "steps": 10, "random_start": False})
    flags = {}
    for dev in ("cpu", "cuda"):
        m = model.to(dev)
        with exact_fp32():
            adv = pgd(m, x.to(dev), y.to(dev), torch.Generator(device=dev).manual_seed(0))
        flags[dev] = correct_flags(m, x.to(dev), y.to(dev)), correct_flags(m, adv, y.to(dev))
    assert np.mean(flags["cpu"][0] == flags["cuda"][0]) >= 0.99  # clean predictions: the same (near-ties aside)
    assert np.mean(flags["cpu"][1] == flags["cuda"][1]) >= 0.95  # adversarial: rounding moves a few at most
