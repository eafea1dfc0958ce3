"""Training precision (bf16 autocast on CUDA by default) and fp32 attacks: what is recorded, what runs where.

Run on a CPU here; tests/test_cuda.py runs the same path on a GPU where one is present.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from pydantic import BaseModel

from ssrbench.adversarial.base import Attack
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.presets import PRESETS, resolve_preset
from ssrbench.core.progress import Reporter
from ssrbench.models.environment import exact_fp32
from ssrbench.pretext.base import TASKS
from ssrbench.run.evaluate import evaluate
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import MODES, TrainContext, build_model

from .conftest import TINY_BACKBONE
from .helpers import synthetic_dataset


def _ctx(tmp_path, precision: str, device: str = "cpu", images: int = 64) -> TrainContext:
    preset = resolve_preset(
        "smoke",
        {"backbone": TINY_BACKBONE, "train_images": images, "batch_size": images // 2, "train_precision": precision},
    )
    return TrainContext(
        data=synthetic_dataset(),
        preset=preset,
        device=torch.device(device),
        seed=0,
        cache=ModelCache(tmp_path / "cache"),
        reporter=Reporter(quiet=True),
    )


def test_fp32_by_default_auto_is_bf16_on_cuda_only_and_old_configs_and_keys_stay(tmp_path, monkeypatch):
    assert "train_precision" not in PRESETS["quick"].model_dump()  # configs written before the choice: same hash
    assert resolve_preset("quick", {"train_precision": "bf16"}).model_dump()["train_precision"] == "bf16"
    cpu = _ctx(tmp_path, "auto")
    assert cpu.precision == "fp32" and "precision" not in cpu.base_spec()  # CPU-trained models keep their keys
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpu = _ctx(tmp_path, "auto", "cuda")  # a device object only: nothing is put on a GPU
    assert gpu.precision == "bf16" and gpu.base_spec()["precision"] == "bf16"
    assert _ctx(tmp_path, "fp32", "cuda").precision == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert _ctx(tmp_path, "auto", "cuda").precision == "fp32"  # a GPU without bf16 trains in fp32


def test_bf16_training_runs_under_autocast_and_is_cached_apart(tmp_path):
    seen: list[torch.dtype] = []
    records = {}
    for precision in ("fp32", "bf16"):
        ctx = _ctx(tmp_path, precision, images=16)  # bf16 is emulated on most CPUs: keep it small
        task = TASKS.get("rotation")()
        orig = task.training_loss

        def spy(model, x, gen, orig=orig):
            seen.append(model.backbone.forward_features(x[:2]).dtype if precision == "bf16" else None)
            return orig(model, x, gen)

        task.training_loss = spy
        built = build_model(MODES.get("multitask")(), ctx, task)
        records[precision] = built.records[-1]
        assert all(torch.isfinite(p).all() for p in built.model.parameters())
        assert next(built.model.parameters()).dtype == torch.float32  # master weights stay fp32
    assert set(seen) == {None, torch.bfloat16}  # the bf16 stage's forward passes ran in bf16
    assert records["bf16"].spec["precision"] == "bf16" and "precision" not in records["fp32"].spec
    assert records["bf16"].key != records["fp32"].key  # the two never share a cache entry
    assert records["bf16"].weights_sha256 != records["fp32"].weights_sha256


def _tf32() -> tuple[bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


class _TF32Spy(Attack):
    """Records the TF32 switches while it attacks, and returns its input."""

    class Params(BaseModel):
        pass

    seen: list[tuple[bool, bool]] = []

    def perturb(self, model, x, y, generator):
        _TF32Spy.seen.append(_tf32())
        return x


def test_attacks_and_reverse_attacks_run_without_tf32(inpaint_model, monkeypatch):
    model, task = inpaint_model
    saved = _tf32()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # both allowed before
    try:
        _evaluate_and_check(model, task, monkeypatch)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _evaluate_and_check(model, task, monkeypatch):
    _TF32Spy.seen.clear()
    reverse_seen = []
    orig = task.reverse_loss
    monkeypatch.setattr(task, "reverse_loss", lambda *a, **k: reverse_seen.append(_tf32()) or orig(*a, **k))
    x = (torch.rand(4, 3, 32, 32) * 255).to(torch.uint8)
    evaluate(
        model,
        task,
        {"spy": _TF32Spy({})},
        ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=1),
        x,
        torch.arange(4),
        batch_size=4,
        seed=0,
        reporter=Reporter(quiet=True),
        description="t",
    )
    assert _TF32Spy.seen == [(False, False)]
    assert reverse_seen and set(reverse_seen) == {(False, False)}  # the reverse attack's steps too
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # restored afterwards
    with pytest.raises(RuntimeError), exact_fp32():
        raise RuntimeError("restored on errors too")
    assert torch.backends.cudnn.allow_tf32


def test_precision_option_is_checked_by_the_cli():
    from ssrbench.cli import cli

    res = CliRunner().invoke(cli, ["run", "--train-precision", "fp16"])
    assert res.exit_code == 2 and "bf16" in res.output and "fp32" in res.output


def test_step_logs_are_read_every_few_steps_and_divergence_names_its_step(tmp_path, monkeypatch):
    from ssrbench.training import modes

    monkeypatch.setattr(modes, "LOG_EVERY", 3)
    reads = []
    real = modes._read_logs
    monkeypatch.setattr(modes, "_read_logs", lambda steps, dev: reads.append(len(steps)) or real(steps, dev))
    ctx = _ctx(tmp_path, "fp32")
    ctx.preset = ctx.preset.model_copy(update={"batch_size": 8})  # 64 images: 8 steps per epoch
    calls = []

    def step(x, y, gen):
        calls.append(len(calls))
        return {"v": torch.tensor(float(len(calls))), "host": 0.5}  # a plugin's float log still works

    logs = modes.train_epochs(ctx, "t", 2, step)
    assert reads == [3, 3, 2, 3, 3, 2]  # every LOG_EVERY steps and at each epoch's end, not every step
    assert logs == {"v": sum(range(9, 17)) / 8, "host": 0.5}  # the last epoch's mean, as .item() would give

    def diverging(x, y, gen):
        calls.append(len(calls))
        return {"v": torch.tensor(float("nan") if len(calls) == 5 else 1.0)}

    calls.clear()
    with pytest.raises(modes.TrainingDivergedError, match=r"epoch 1/2, step 5/8 \(v=nan\)"):
        modes.train_epochs(ctx, "t", 2, diverging)
