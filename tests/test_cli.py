"""The command line as a user meets it: help, listings, and clear errors before any work."""

import json

import pytest
from click.testing import CliRunner

from ssrbench.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("cmd", [[], ["run"], ["list"], ["show"]])
def test_help(runner, cmd):
    res = runner.invoke(cli, [*cmd, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output


def test_run_help_documents_interface(runner):
    out = runner.invoke(cli, ["run", "--help"]).output
    for opt in (
        "--tasks",
        "--attacks",
        "--modes",
        "--backbone",
        "--preset",
        "--data-dir",
        "SSRBENCH_DATA_DIR",
        "--out",
        "--device",
        "--seed",
        "--quiet",
        "--retrain",
        "--epochs-classifier",
        "--eval-images",
    ):
        assert opt in out


@pytest.mark.parametrize(
    "what,expected",
    [
        ("tasks", "inpaint"),
        ("attacks", "pgd20"),
        ("modes", "classifier-first"),
        ("backbones", "ssr_resnet8"),
        ("datasets", "cifar10"),
        ("presets", "smoke"),
    ],
)
def test_list(runner, what, expected):
    res = runner.invoke(cli, ["list", what])
    assert res.exit_code == 0, res.output
    assert expected in res.output


@pytest.mark.parametrize(
    "args,hint",
    [
        (["--tasks", "inpant"], "did you mean 'inpaint'"),
        (["--attacks", "fgsm,pgd3"], "'pgd2'"),
        (["--modes", "multi-task"], "did you mean 'multitask'"),
        (["--backbone", "resnet181"], "did you mean"),
    ],
)
def test_unknown_names_exit_2_with_suggestion(runner, tmp_path, args, hint):
    res = runner.invoke(
        cli, ["run", *args, "--data-dir", str(tmp_path), "--no-download", "--out", str(tmp_path / "o.json")]
    )
    assert res.exit_code == 2, res.output
    assert "did you mean" in res.output.lower() and hint in res.output.lower()


def test_bad_values_exit_2(runner, tmp_path):
    res = runner.invoke(cli, ["run", "--epochs-classifier", "-1"])
    assert res.exit_code == 2 and "epochs-classifier" in res.output
    res = runner.invoke(cli, ["run", "--device", "nonsense", "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and "--device" in res.output
    res = runner.invoke(cli, ["run", "--tasks", "inpaint,inpaint"])
    assert res.exit_code == 2 and "repeated" in res.output


def test_unwritable_output_fails_before_data_or_training(runner, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = runner.invoke(
        cli,
        [
            "run",
            "--preset",
            "smoke",
            "--data-dir",
            str(tmp_path / "nodata"),
            "--no-download",
            "--out",
            str(blocker / "board.json"),
        ],
    )
    assert res.exit_code == 2  # a bad option value, like any other
    assert "a-file" in res.output and "CIFAR-10 not found" not in res.output


def test_missing_data_exit_1_with_path(runner, tmp_path):
    res = runner.invoke(
        cli,
        [
            "run",
            "--preset",
            "smoke",
            "--data-dir",
            str(tmp_path / "nodata"),
            "--no-download",
            "--out",
            str(tmp_path / "o.json"),
            "--quiet",
        ],
    )
    assert res.exit_code == 1
    assert "CIFAR-10 not found" in res.output and "nodata" in res.output
    assert not (tmp_path / "o.json").exists()


def test_show_refuses_bad_file(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 99}))
    res = runner.invoke(cli, ["show", str(bad)])
    assert res.exit_code == 2 and "newer" in res.output
    res = runner.invoke(cli, ["show", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "no such file" in res.output
