"""``run --base``: the literature's robust models (RobustBench's zoo, through RobustBench's own loader) and a
user's own classifier as classifier-first's frozen base; the ``mao21`` and ``full`` presets at reduced size on
the CPU; ``run --estimate``; and every bad base refused with one line naming the file (exit 2)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.errors import ConfigError
from ssrbench.core.presets import PRESET_RUNS, PRESETS
from ssrbench.core.stats import unpack_bits
from ssrbench.data.datasets import pixels
from ssrbench.leaderboard import store
from ssrbench.models.bases import BASES, BaseChoice, load_base, robustbench
from ssrbench.models.foreign import FeatureLayer, adapt
from ssrbench.run import estimate as estimate_module

from .helpers import TinyBase, error_line, robustbench_checkpoint, tiny_base

REPO = Path(__file__).resolve().parents[1]

RB = "Sehwag2021Proxy_R18"  # RobustBench's smallest kind of CIFAR-10 model: a ResNet-18


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("robustbench-models")
    robustbench_checkpoint(root, RB)
    return root


def _run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["run", *args, "--progress", "none"])


# where the heads read the features ------------------------------------------------------------------------------


def test_each_declared_feature_layer_gives_the_models_own_logits():
    robustbench()
    from robustbench.model_zoo.architectures import resnet, wide_resnet

    torch.manual_seed(0)
    nets = {
        "WideResNet": wide_resnet.WideResNet(depth=10, widen_factor=1),
        "PreActResNet": resnet.PreActResNet(resnet.PreActBlock, [1, 1, 1, 1]),
        "PreActResNet, bn before fc": resnet.PreActResNet(resnet.PreActBlock, [1, 1, 1, 1], bn_before_fc=True),
        "ResNet": resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1]),
        "a user's module": TinyBase(),
    }
    x = torch.rand(3, 3, 32, 32)
    for label, net in nets.items():
        backbone = adapt(net, label)
        with torch.no_grad():
            f = backbone.forward_features(x)
            assert f.ndim == 4, label
            torch.testing.assert_close(backbone.forward_head(f), net(x), msg=label)
        with torch.no_grad():  # the forward stops at the declared layer: a jigsaw tile (7x7) still gets its map
            assert backbone.forward_features(torch.rand(2, 3, 7, 7)).ndim == 4, label
    # a wrong declaration (a map the logits are not computed from) is caught, not trusted
    net = nets["ResNet"]
    with pytest.raises(ConfigError, match="logits are not the pooled map of layer3"):
        type(net).ssrbench_feature_layer = FeatureLayer("layer3", "linear")
        try:
            adapt(net, "doctored")
        finally:
            del type(net).ssrbench_feature_layer
    with pytest.raises(ConfigError, match="knows no feature layer of Sequential"):
        adapt(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()), "unknown")


# a RobustBench base, end to end: the mao21 preset at reduced size -------------------------------------------------


@pytest.fixture(scope="module")
def mao21_file(tmp_path_factory, cifar_dir, model_dir) -> Path:
    """``--preset mao21`` on the CPU at reduced size: its tasks, attacks and modes, but RobustBench's ResNet-18
    kind instead of the WideResNet-28-10 (seeded initial weights written in RobustBench's layout), 32 training
    images, 2 test images, one step for every attack and reverse attack, and a 32-image gate."""
    out = tmp_path_factory.mktemp("mao21") / "mao21.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ssrbench.run.units.GATE_IMAGES", 32)
        res = _run(
            "--preset", "mao21", "--base", f"robustbench:{RB}", "--model-dir", str(model_dir),
            "--train-images", "32", "--eval-images", "2", "--epochs-head", "1", "--batch-size", "32",
            "--attack-steps", "1", "--reverse-steps", "1", "--threads", "2",
            "--data-dir", str(cifar_dir), "--out", str(out),
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_a_robustbench_base_is_loaded_by_robustbenchs_loader_and_evaluated(mao21_file, model_dir, cifar_dir):
    board = store.load(mao21_file)
    (stage,) = [t for t in board.training if t.stage == "classifier"]
    base = stage.base
    path = model_dir / "cifar10" / "Linf" / f"{RB}.pt"
    assert base.source == "robustbench" and base.name == f"robustbench:{RB}" and base.architecture == "ResNet"
    assert base.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == stage.spec["checkpoint_sha256"]
    assert base.file == f"cifar10/Linf/{RB}.pt" and str(model_dir) not in mao21_file.read_text()
    reported = json.loads((REPO / "ssrbench" / "models" / "robustbench_reported.json").read_text())["models"][RB]
    assert (base.reported_clean_acc, base.reported_autoattack_acc) == (
        reported["clean_acc"],
        reported["autoattack_acc"],
    )
    assert board.config["preset"]["base"] == f"robustbench:{RB}" and "model_dir" not in board.config
    run = PRESET_RUNS["mao21"]
    assert {c.attack.name.split("@")[0] for c in board.cells} == set(run.attacks)
    assert {c.task.name.split("@")[0] for c in board.cells} == set(run.tasks) and {c.mode for c in board.cells} == {
        "classifier-first"
    }
    assert all(c.backbone == f"robustbench:{RB}" for c in board.cells)
    # Clean is RobustBench's own model, image for image: the file's bits are its predictions
    from robustbench import load_model

    from ssrbench.data.datasets import load_cifar10

    data = load_cifar10(cifar_dir)
    net = load_model(RB, model_dir=str(model_dir), dataset="cifar10", threat_model="Linf")
    with torch.no_grad():
        correct = (net(pixels(data.test_x[:2], torch.device("cpu"))).argmax(1) == data.test_y[:2]).numpy()
    cell = board.cells[0]
    assert np.array_equal(unpack_bits(cell.clean.per_image, 2), correct)
    # and on more images, logit for logit: the model ssrbench attacks is RobustBench's
    from ssrbench.models.ssr_model import SSRModel

    loaded = BaseChoice(f"robustbench:{RB}", model_dir).load().backbone
    ours = SSRModel(f"robustbench:{RB}", data.mean, data.std, 10, 32, base=loaded).eval()
    x = pixels(data.test_x[:32], torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), net(x), rtol=1e-4, atol=1e-4)


def test_the_base_is_frozen_and_the_heads_cached_on_its_hash(mao21_file, model_dir, cifar_dir, tmp_path):
    """Another file under the same name is another base: other key, the heads trained again."""
    board = store.load(mao21_file)
    heads = [t for t in board.training if t.stage != "classifier"]
    assert heads and all(t.spec["classifier"] == board.training[0].key for t in heads)
    other = tmp_path / "other"
    robustbench_checkpoint(other, RB, seed=1)
    choice = BaseChoice(f"robustbench:{RB}", other)
    assert choice.load().identity.file_sha256 != board.training[0].base.file_sha256


def test_the_published_model_keeps_its_batchnorm_statistics_whatever_mode_its_wrapper_is_in(model_dir):
    """Training the heads sets the model to training mode around the base; the base's BatchNorm must not move
    (the frozen base is the published one, statistics included)."""
    from ssrbench.models.ssr_model import SSRModel
    from ssrbench.pretext.base import TASKS

    loaded = copy.deepcopy(BaseChoice(f"robustbench:{RB}", model_dir).load().backbone)
    model = TASKS.get("rotation")({}).attach(
        SSRModel(f"robustbench:{RB}", (0.5,) * 3, (0.25,) * 3, 10, 32, base=loaded)
    )
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 32, 32))
    assert model.heads.training and not model.backbone.net.training
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())


# a user's own classifier ---------------------------------------------------------------------------------------


def test_a_users_module_is_a_base_through_module_factory_and_checkpoint(tmp_path):
    torch.manual_seed(3)
    net = TinyBase()
    ckpt = tmp_path / "mine.pt"
    torch.save(net.state_dict(), ckpt)
    loaded = load_base("tests.helpers:tiny_base", checkpoint=ckpt)
    assert loaded.identity.source == "module" and loaded.identity.feature_layer == "body (relu)"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone(x), net(x))  # the checkpoint's weights, not the factory's
    BASES.register("tiny-base", tiny_base)  # as an ssrbench.bases entry point registers it
    try:
        by_name = load_base("tiny-base", checkpoint=ckpt)
    finally:
        BASES.reset()
    assert by_name.identity.source == "entry-point" and by_name.identity.file_sha256 == loaded.identity.file_sha256
    res = _run("--preset", "smoke", "--base", "tests.helpers:tiny_base", "--base-checkpoint", str(ckpt),
               "--modes", "classifier-first", "--estimate")  # fmt: skip
    assert res.exit_code == 0 and "train heads classifier-first/inpaint" in res.output, res.output


# bad bases: exit 2, one line naming the file -------------------------------------------------------------------


class _Code:
    def __reduce__(self):
        return (print, ("this ran",))


def _doctored(model_dir: Path, tmp_path: Path, how: str) -> Path:
    root = tmp_path / how
    path = root / "cifar10" / "Linf" / f"{RB}.pt"
    path.parent.mkdir(parents=True)
    state = torch.load(model_dir / "cifar10" / "Linf" / f"{RB}.pt", weights_only=True)["state_dict"]
    if how == "pickled-code":
        torch.save({"state_dict": _Code()}, path)  # what torch.load(weights_only=False) would run
        return root
    if how == "wrong-shape":
        state["linear.weight"] = torch.zeros(7, 512)
    elif how == "missing-tensor":
        del state["layer4.1.conv2.weight"]
    elif how == "nan":
        state["conv1.weight"][0, 0, 0, 0] = float("nan")
    elif how == "not-torch":
        path.write_bytes(b"GIF89a not a checkpoint")
        return root
    torch.save({"state_dict": state}, path)
    return root


@pytest.mark.parametrize(
    "how, reason",
    [
        ("pickled-code", "holds objects other than tensors"),
        ("not-torch", "not a file torch.save writes"),
        ("wrong-shape", "RobustBench's loader refused it"),
        ("missing-tensor", "RobustBench's loader refused it"),
        ("nan", "NaN or infinite weights"),
    ],
)
def test_a_bad_robustbench_file_is_refused_naming_it(model_dir, tmp_path, capfd, how, reason):
    root = _doctored(model_dir, tmp_path, how)
    res = _run("--preset", "mao21", "--base", f"robustbench:{RB}", "--model-dir", str(root), "--data-dir", "nowhere")
    line = error_line(res)
    assert res.exit_code == 2 and reason in line and f"{RB}.pt" in line, res.output
    assert "this ran" not in res.output + capfd.readouterr().out


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--base", f"robustbench:{RB}", "--model-dir", "no-such-folder"], "ssrbench never downloads"),
        (["--base", "robustbench:Carmon2019Unlabelled"], "Did you mean 'Carmon2019Unlabeled'"),
        (["--base", "robustbench:Chen2020Adversarial"], "an ensemble"),
        (["--base", "robustbench:Debenedetti2022Light_XCiT-S12"], "downloading them"),
        (["--base", f"robustbench:{RB}", "--base-checkpoint", "README.md"], "leave --base-checkpoint out"),
        (["--model-dir", "models"], "add --base, or leave it out"),
        (["--base", ":f", "--base-checkpoint", "README.md"], "cannot import 'f'"),
        (["--base", "tests.helpers:TinyConv", "--base-checkpoint", "README.md"], "the factory fails: TypeError"),
        (["--base", "tests.helpers:tiny_base"], "needs its weights: add --base-checkpoint"),
        (["--base", "tests.helpers:nothing_here", "--base-checkpoint", "README.md"], "cannot import 'nothing_here'"),
        (["--base-checkpoint", "README.md"], "add --base, or leave it out"),
        (["--base", f"robustbench:{RB}", "--modes", "multitask"], "give --modes classifier-first"),
    ],
)
def test_a_bad_base_option_is_exit_2(model_dir, args, reason):
    robustbench_base = any(a.startswith("robustbench:") for a in args)
    extra = ["--model-dir", str(model_dir)] if robustbench_base and "--model-dir" not in args else []
    res = _run("--preset", "smoke", "--modes", "classifier-first", *args, *extra, "--data-dir", "nowhere")
    assert res.exit_code == 2 and reason in error_line(res), res.output


def test_a_module_checkpoint_that_does_not_fit_is_refused(tmp_path):
    ckpt = tmp_path / "other.pt"
    torch.save({"body.weight": torch.zeros(8, 3, 3, 3)}, ckpt)
    res = _run("--preset", "smoke", "--modes", "classifier-first", "--base", "tests.helpers:tiny_base",
               "--base-checkpoint", str(ckpt), "--data-dir", "nowhere")  # fmt: skip
    line = error_line(res)
    assert res.exit_code == 2 and "does not fit" in line and "other.pt" in line and "Missing key" in line, res.output


# the paper-scale presets ---------------------------------------------------------------------------------------


def test_the_full_preset_runs_end_to_end_at_reduced_size(cifar_dir, tmp_path):
    """``--preset full`` (timm's resnet18, both modes) on the CPU at 32 training images, 2 test images, one
    epoch per stage and a 32-image gate: the preset's own machinery, minutes become seconds."""
    out = tmp_path / "full.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ssrbench.run.units.GATE_IMAGES", 32)
        res = _run(
            "--preset", "full", "--train-images", "32", "--eval-images", "2", "--epochs-classifier", "1",
            "--epochs-head", "1", "--epochs-multitask", "1", "--batch-size", "32", "--eval-batch-size", "2",
            "--attacks", "fgsm", "--data-dir", str(cifar_dir), "--out", str(out),
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    board = store.load(out)
    assert {c.mode for c in board.cells} == {"multitask", "classifier-first"}
    assert all(c.backbone == "resnet18" for c in board.cells) and board.config["preset"]["train_precision"] == "auto"


@pytest.mark.parametrize("preset", ["full", "mao21"])  # mao21's markdown form: docs/concepts/bases.md's block
def test_estimate_prints_the_cost_of_every_stage_and_attack_without_running(preset):
    # no data and no base file needed; mao21's base counted as RobustBench's ResNet-18 kind (a WideResNet-28-10's
    # count takes seconds more, the same code)
    smaller = ["--base", f"robustbench:{RB}"] if preset == "mao21" else []
    res = _run("--preset", preset, "--estimate", *smaller, "--data-dir", "nowhere")
    assert res.exit_code == 0, res.output
    run = PRESET_RUNS.get(preset)
    for attack in run.attacks if run else ("fgsm", "pgd2"):
        assert f"attack {attack} on" in res.output, res.output
    assert "train heads classifier-first/" in res.output and "total" in res.output and "NVIDIA H200" in res.output


def test_the_estimate_counts_what_the_run_does():
    """Rows scale with what they count: twice the test images, twice each evaluation row's FLOPs; a training
    row is images x epochs; an attack's passes are its steps plus the reverse attacks on its images; the static
    base is attacked for the modes judged against it (not for classifier-first, whose classifier it is), and its
    classifier is trained even when classifier-first is not run."""
    from ssrbench.cli.run_command import run_spec

    def spec(modes=("multitask", "classifier-first"), **over):
        return run_spec(tasks=["rotation"], attacks=["fgsm", "pgd10"], modes=list(modes), adaptive=False,
                        preset="smoke", backbone=None, seed=0, seeds=None, attack_eps=None, attack_steps=None,
                        reverse_eps=None, reverse_steps=None, classifier_checkpoint=None, config_dirs=(),
                        **over)[0]  # fmt: skip

    one = estimate_module.estimate(spec(), measure_here=False)
    two = estimate_module.estimate(spec(eval_images=128), measure_here=False)
    rows = {r.what: r for r in one.rows}
    for r in two.rows:
        if r.what.startswith("attack") or r.what.startswith("evaluate"):
            assert r.flops == pytest.approx(2 * rows[r.what].flops), r.what
    for mode in ("multitask", "classifier-first"):
        pgd, fgsm = rows[f"attack pgd10 on {mode}/rotation"], rows[f"attack fgsm on {mode}/rotation"]
        assert pgd.passes - fgsm.passes == pytest.approx(9)  # the same reverse attack on each one's images
    assert {r.what for r in one.rows if r.what.startswith("attack") and "static base" in r.what} == {
        "attack fgsm on the static base, for multitask/rotation",
        "attack pgd10 on the static base, for multitask/rotation",
    }
    smoke = PRESETS["smoke"]
    assert rows["train heads classifier-first/rotation"].images == smoke.train_images * smoke.epochs_head
    alone = {r.what for r in estimate_module.estimate(spec(modes=["multitask"]), measure_here=False).rows}
    assert "train classifier (shared; the static base)" in alone


def test_the_kept_gpu_rates_are_the_benchmarks_json():
    kept = json.loads((REPO / "benchmarks" / "results" / "bench_speed_cuda.json").read_text())
    (row,) = [
        o for o in kept["options"] if o["what"] == "training step (classifier, resnet18 batch 128), bf16 autocast"
    ]
    (gpu,) = estimate_module.KEPT_GPUS
    assert gpu.name == kept["environment"]["device_name"] and gpu.batch == 128
    assert (gpu.bf16_step_s, gpu.fp32_step_s) == (row["with_s"], row["without_s"])
