"""Robust bases: adversarial training of the classifier (fgsm-rs, pgd), its catastrophic-overfitting
check, and a classifier brought from a checkpoint."""

from __future__ import annotations

import io
import os

import pytest
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.presets import PRESETS
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import TrainingRecord
from ssrbench.training import adversarial

from .helpers import FIXTURE, TINY, Payload, make_cifar


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("kind", ["fgsm-rs", "pgd"])
def test_adversarial_batches_stay_in_the_ball_and_in_pixels(kind):
    p = PRESETS["smoke"].model_copy(update={"adversarial_training": kind, "adv_eps": 4 / 255})
    x, y = torch.rand(6, 3, 8, 8), torch.arange(6)
    out = adversarial.adversarial_batch(Linear(), x, y, p, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().max() <= 4 / 255 + 1e-6 and not torch.equal(out, x)
    plain = PRESETS["smoke"]
    assert adversarial.adversarial_batch(Linear(), x, y, plain, torch.Generator()) is x


def test_catastrophic_overfitting_is_a_leaderboard_warning():
    assert adversarial.collapse_warning([30.0, 35.0, 5.0]).startswith("catastrophic overfitting")
    assert adversarial.collapse_warning([30.0, 35.0, 30.0]) is None
    assert adversarial.collapse_warning([2.0, 0.5]) is None  # nothing to lose
    board = store.load(FIXTURE)
    rec = board.training[0].model_copy(update={"warnings": [adversarial.collapse_warning([30.0, 5.0])]})
    board = board.model_copy(update={"training": [rec, *board.training[1:]]})
    assert any("catastrophic overfitting" in w and rec.stage in w for w in board.warnings)
    again = store.loads(store.dumps(board), "x.json")
    assert again.warnings == board.warnings
    assert isinstance(again.training[0], TrainingRecord)


def test_fgsm_rs_training_is_recorded_and_keyed_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(adversarial, "HELDOUT", 64)  # not 512 held-out images: the same code, a fraction of the time
    data = make_cifar(tmp_path / "data", train=256)
    common = [
        "run",
        *TINY,
        "--data-dir",
        str(data),
        "--no-download",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--modes",
        "classifier-first",
        "--epochs-classifier",
        "2",
    ]
    res = CliRunner().invoke(
        cli,
        [
            *common,
            "--adversarial-training",
            "fgsm-rs",
            "--adv-eps",
            "8/255",
            "--train-images",
            "192",
            "--out",
            str(tmp_path / "robust.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    robust = store.load(tmp_path / "robust.json")
    cls = next(r for r in robust.training if r.stage == "classifier")
    assert cls.spec["adversarial"] == {"kind": "fgsm-rs", "eps": 8 / 255, "heldout": adversarial.HELDOUT}
    assert "heldout_pgd_acc" in cls.final_logs
    assert robust.config["preset"]["adversarial_training"] == "fgsm-rs"
    res = CliRunner().invoke(cli, [*common, "--train-images", "192", "--out", str(tmp_path / "plain.json")])
    assert res.exit_code == 0, res.output
    plain = store.load(tmp_path / "plain.json")
    cls_plain = next(r for r in plain.training if r.stage == "classifier")
    assert "adversarial" not in cls_plain.spec and cls_plain.key != cls.key
    assert "adversarial_training" not in plain.config["preset"]  # standard configs are written as before
    too_few = CliRunner().invoke(
        cli, [*common, "--adversarial-training", "pgd", "--train-images", "64", "--out", str(tmp_path / "x.json")]
    )
    assert too_few.exit_code == 2 and "leaves none to train on" in too_few.output


def test_classifier_checkpoint_round_trip_and_bad_files(tmp_path):
    data = make_cifar(tmp_path / "data")
    common = ["run", *TINY, "--data-dir", str(data), "--no-download", "--modes", "classifier-first"]
    res = CliRunner().invoke(cli, [*common, "--cache-dir", str(tmp_path / "c1"), "--out", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    trained = store.load(tmp_path / "a.json")
    cls_rec = next(r for r in trained.training if r.stage == "classifier")
    state = torch.load(tmp_path / "c1" / f"{cls_rec.key}.pt", weights_only=True)
    ckpt = tmp_path / "mine.pt"
    torch.save(state, ckpt)
    res = CliRunner().invoke(
        cli,
        [
            *common,
            "--cache-dir",
            str(tmp_path / "c2"),
            "--out",
            str(tmp_path / "b.json"),
            "--classifier-checkpoint",
            str(ckpt),
        ],
    )
    assert res.exit_code == 0, res.output
    mine = store.load(tmp_path / "b.json")
    rec = next(r for r in mine.training if r.stage == "classifier")
    assert rec.weights_sha256 == cls_rec.weights_sha256  # the very classifier that was saved
    assert len(rec.spec["checkpoint_sha256"]) == 64 and rec.trained_on["checkpoint"].endswith("mine.pt")
    assert mine.config["classifier_checkpoint"].endswith("mine.pt")
    assert [c.clean.per_image for c in mine.cells] == [c.clean.per_image for c in trained.cells]

    marker = tmp_path / "payload-ran"
    evil, listed, other = tmp_path / "evil.pt", tmp_path / "list.pt", tmp_path / "other.pt"
    buf = io.BytesIO()
    torch.save({"w": Payload(marker)}, buf)
    evil.write_bytes(buf.getvalue())
    torch.save([1, 2, 3], listed)
    torch.save(
        {k: v for k, v in state.items() if not k.startswith("classifier.")} | {"classifier.weight": torch.zeros(5, 3)},
        other,
    )
    for path, reason in [
        (tmp_path / "missing.pt", "no such file"),
        (evil, "objects other than tensors"),
        (listed, "not a state dict"),
        (other, "shape: classifier.weight (5, 3)"),
    ]:
        res = CliRunner().invoke(
            cli,
            [
                *common,
                "--cache-dir",
                str(tmp_path / "c3"),
                "--out",
                str(tmp_path / "x.json"),
                "--classifier-checkpoint",
                str(path),
                "--data-dir",
                str(tmp_path / "no-data"),
            ],
        )
        assert res.exit_code == 2, (path, res.output)
        assert str(path) in res.output and reason in res.output and "CIFAR-10 not found" not in res.output
    assert not marker.exists() and not os.path.exists(tmp_path / "x.json")


def test_the_defense_is_judged_against_its_static_base():
    """versus_base: the defended worst case against the classifier trained alone under the non-adaptive
    attacks, on the same images, paired; adaptive attacks count for the defense, not for the base."""
    import numpy as np

    from ssrbench.leaderboard.records import Accuracy

    board = store.load(FIXTURE)
    n = board.cells[0].adv.n
    base_flags = np.zeros(n, bool)
    base_flags[:2] = True  # noqa: E702
    better = np.zeros(n, bool)
    better[:10] = True  # noqa: E702
    cells = []
    for c in board.cells:
        defended = better if c.mode == "multitask" else base_flags
        cells.append(
            c.model_copy(update={"adv": Accuracy.from_flags(base_flags), "adv_rev": Accuracy.from_flags(defended)})
        )
    board = board.model_copy(update={"cells": cells})
    vs = {v.mode: v for v in board.versus_base}
    assert vs["multitask"].points == pytest.approx(100 * 8 / n) and vs["multitask"].p_value < 0.05
    assert vs["classifier-first"].points == 0 and vs["classifier-first"].p_value == 1
    assert vs["multitask"].base_attacks == [c.attack.name for c in board.cells if c.mode == "classifier-first"]
    rows = __import__("ssrbench.leaderboard.render", fromlist=["ranking"]).ranking(board)
    assert rows[0][1] == "multitask" and rows[0][4].startswith("+") and "*" in rows[0][4]  # ranked by the gain
    no_base = board.model_copy(update={"cells": [c for c in board.cells if c.mode == "multitask"]})
    assert no_base.versus_base == []  # without the classifier trained alone there is no base to beat


def test_base_findings_answer_each_task_and_mode_from_versus_base(tmp_path):
    from ssrbench.studies.robust_base import answer, markdown

    board = store.load(FIXTURE)
    words = {v.verdict: answer(v) for v in board.versus_base}
    assert words and all(
        w.startswith({"beats its base": "**yes**", "worse than its base": "**no**"}.get(v, "no "))
        for v, w in words.items()
    )
    text = markdown(board, "fixture.json")
    for v in board.versus_base:
        assert (
            f"| {v.task} | {v.mode} | {v.base.percent:.1f}% |" in text
            and f"| {v.defended_one_draw.percent:.1f}% | {v.defended.percent:.1f}% |" in text
            and answer(v) in text
        )
    assert "upper bounds" in text  # no adaptive attack in the fixture: no worst case is claimed
    one_mode = board.model_copy(update={"cells": [c for c in board.cells if c.mode == "multitask"]})
    path = tmp_path / "one-mode.json"
    store.save(one_mode, path)
    res = CliRunner().invoke(cli, ["base-findings", str(path), "--format", "markdown"])
    assert res.exit_code == 2 and "no (task, mode) has a static base" in res.output
