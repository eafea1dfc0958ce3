"""A training stage killed mid-way continues from its last finished epoch, with the weights of a run never stopped."""

from __future__ import annotations

import pickle

import pytest
import torch

from ssrbench.core.presets import resolve_preset
from ssrbench.core.progress import Reporter
from ssrbench.pretext.base import TASKS
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import MODES, TrainContext, build_model, build_shared

from .conftest import TINY_BACKBONE
from .helpers import ShellPayload, synthetic_dataset

EPOCHS = 3


@pytest.fixture(autouse=True)
def _small_heldout(monkeypatch):
    """Adversarial training keeps images out for its held-out monitor (whose readings the checkpoint keeps):
    16 here, not 512, to keep the test fast."""
    import ssrbench.training.adversarial as adversarial

    monkeypatch.setattr(adversarial, "HELDOUT", 16)


def _ctx(cache_dir, robust: bool = False, retrain: bool = False) -> TrainContext:
    images = 16 + 48 if robust else 48
    preset = resolve_preset(
        "smoke",
        {
            "backbone": TINY_BACKBONE,
            "train_images": images,
            "batch_size": 16,
            "epochs_multitask": EPOCHS,
            "epochs_classifier": EPOCHS,
            "adversarial_training": "fgsm-rs" if robust else "none",
        },
    )
    return TrainContext(
        data=synthetic_dataset(images),
        preset=preset,
        device=torch.device("cpu"),
        seed=0,
        cache=ModelCache(cache_dir),
        reporter=Reporter(quiet=True),
        retrain=retrain,
    )


def _train(ctx: TrainContext, robust: bool, stop_at_step: int | None = None, steps: list | None = None):
    """Multitask rotation (standard) or the shared fgsm-rs classifier (robust); with ``stop_at_step``, Ctrl-C
    arrives at that training step, as from a user or a killed session."""
    task = TASKS.get("rotation")()
    calls = steps if steps is not None else []
    if robust:
        import ssrbench.training.modes as modes

        original = modes.adversarial.adversarial_batch
    else:
        original = task.training_loss

    def counting(*args, **kwargs):
        calls.append(1)
        if stop_at_step is not None and len(calls) == stop_at_step:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    if robust:
        mp = pytest.MonkeyPatch()
        mp.setattr(modes.adversarial, "adversarial_batch", counting)
        try:
            return build_shared(MODES.get("classifier-first")(), ctx)
        finally:
            mp.undo()
    task.training_loss = counting
    return build_model(MODES.get("multitask")(), ctx, task)


@pytest.mark.parametrize("robust", [False, True], ids=["multitask", "fgsm-rs-classifier"])
def test_a_stage_stopped_in_its_last_epoch_resumes_there_with_the_weights_of_an_unstopped_run(tmp_path, robust):
    reference = _train(_ctx(tmp_path / "a", robust), robust).records[-1]

    cache = tmp_path / "b"
    per_epoch = 3  # 48 training images, batches of 16
    with pytest.raises(KeyboardInterrupt):
        _train(_ctx(cache, robust), robust, stop_at_step=2 * per_epoch + 2)  # in the third epoch
    kept = list(cache.glob("*.partial.pt"))
    assert [p.name for p in kept] == [f"{reference.key}.partial.pt"]
    assert not (cache / f"{reference.key}.pt").exists()  # the stage itself is not cached until it is done
    saved = torch.load(kept[0], weights_only=True)
    assert saved["epoch"] == 2 and saved["epochs"] == EPOCHS
    assert len(saved["history"]) == (2 if robust else 0)  # the held-out monitor's readings travel with it

    steps: list = []
    resumed = _train(_ctx(cache, robust), robust, steps=steps).records[-1]
    assert len(steps) == per_epoch  # only the third epoch was trained again
    assert resumed.key == reference.key and not resumed.cached
    assert resumed.weights_sha256 == reference.weights_sha256
    assert resumed.final_logs == reference.final_logs
    assert resumed.seconds >= saved["seconds"]  # training time over both runs
    assert not kept[0].exists() and (cache / f"{reference.key}.pt").exists()


def test_a_kept_epoch_that_is_broken_hostile_or_of_another_stage_is_not_resumed_from(tmp_path):
    reference = _train(_ctx(tmp_path / "ref", False), False).records[-1]
    with pytest.raises(KeyboardInterrupt):
        _train(_ctx(tmp_path / "src", False), False, stop_at_step=4)
    good = torch.load(tmp_path / "src" / f"{reference.key}.partial.pt", weights_only=True)
    other = dict(good, epochs=EPOCHS + 5)
    bad_model = dict(good, model={k: torch.zeros(1) for k in good["model"]})

    bad_rng = dict(good, rng=dict(good["rng"], torch=torch.zeros(3)))
    cases = {
        "truncated": b"PK\x03\x04 not a checkpoint",
        "code": pickle.dumps({"format": 1, "x": ShellPayload()}, protocol=2),
        "other stage": other,
        "wrong shapes": bad_model,
        "bad generator": bad_rng,
    }
    for name, content in cases.items():
        cache = tmp_path / name.replace(" ", "-")
        cache.mkdir()
        path = cache / f"{reference.key}.partial.pt"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        steps: list = []
        with pytest.warns(UserWarning, match="epoch checkpoint .* (unreadable|does not fit)"):
            record = _train(_ctx(cache, False), False, steps=steps).records[-1]
        assert len(steps) == EPOCHS * 3, name  # trained from its first epoch
        assert record.weights_sha256 == reference.weights_sha256, name
        assert not path.exists(), name


def test_retrain_starts_a_kept_stage_from_its_first_epoch(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _train(_ctx(tmp_path, False), False, stop_at_step=5)
    steps: list = []
    _train(_ctx(tmp_path, False, retrain=True), False, steps=steps)
    assert len(steps) == EPOCHS * 3 and not list(tmp_path.glob("*.partial.pt"))
