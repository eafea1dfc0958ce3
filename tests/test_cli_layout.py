"""What moved out of the command line still reaches the user unchanged: the `list` catalogue, the preset
options, the adaptive suite (now data), and the `peek` picture."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

import ssrbench
from ssrbench.cli import cli
from ssrbench.cli.catalogue import SECTIONS
from ssrbench.cli.preview import preview_grid
from ssrbench.cli.types import FiniteFloat
from ssrbench.core.presets import PRESETS, Preset, preset_fields
from ssrbench.run.config import builtin_config_dir, named_files
from ssrbench.run.suites import attack_suite, load_suite

from .conftest import REPO

# `ssrbench list` as printed before the catalogue left cli.py, per section: the columns, then rows with the
# free-text columns (description, about) left out. "{version}" is ssrbench's version; a config path is
# compared by its last two parts, so an installed wheel's folder matches the repository's.
LIST_BEFORE = {
    "tasks": (
        ("name", "task", "version", "from", "reverse attack", "config"),
        [
            (
                "inpaint",
                "inpaint",
                "1",
                "ssrbench {version}",
                "10 steps, eps 8/255, step 2/255",
                "ssrbench: tasks/inpaint.toml",
            ),
            (
                "inpaint-rev16",
                "inpaint",
                "1",
                "ssrbench {version}",
                "10 steps, eps 16/255, step 4/255",
                "ssrbench: tasks/inpaint-rev16.toml",
            ),
            (
                "jigsaw",
                "jigsaw",
                "1",
                "ssrbench {version}",
                "10 steps, eps 8/255, step 2/255",
                "ssrbench: tasks/jigsaw.toml",
            ),
            (
                "rotation",
                "rotation",
                "1",
                "ssrbench {version}",
                "10 steps, eps 8/255, step 2/255",
                "ssrbench: tasks/rotation.toml",
            ),
        ],
    ),
    "attacks": (
        ("name", "kind", "params", "config", "description"),
        [
            ("bpda", "bpda", "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=1", "(defaults)"),
            (
                "bpda-pgd10",
                "bpda",
                "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=4",
                "ssrbench: attacks/bpda-pgd10.toml",
            ),
            ("fgsm", "fgsm", "eps=8/255", "ssrbench: attacks/fgsm.toml"),
            ("fgsm-eps16", "fgsm", "eps=16/255", "ssrbench: attacks/fgsm-eps16.toml"),
            ("pgd", "pgd", "eps=8/255, step_size=2/255, steps=10, random_start=True", "(defaults)"),
            ("pgd10", "pgd", "eps=8/255, step_size=2/255, steps=10, random_start=True", "ssrbench: attacks/pgd10.toml"),
            ("pgd2", "pgd", "eps=8/255, step_size=4/255, steps=2, random_start=False", "ssrbench: attacks/pgd2.toml"),
            (
                "pgd2-eps16",
                "pgd",
                "eps=16/255, step_size=8/255, steps=2, random_start=False",
                "ssrbench: attacks/pgd2-eps16.toml",
            ),
            ("pgd20", "pgd", "eps=8/255, step_size=2/255, steps=20, random_start=True", "ssrbench: attacks/pgd20.toml"),
            (
                "sanity-pgd10-eps128",
                "pgd",
                "eps=128/255, step_size=32/255, steps=10, random_start=True",
                "ssrbench: attacks/sanity-pgd10-eps128.toml",
            ),
            (
                "ssl-aware",
                "ssl-aware",
                "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=1, ssl_weight=1.0",
                "(defaults)",
            ),
            (
                "ssl-aware-pgd10",
                "ssl-aware",
                "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=1, ssl_weight=1.0",
                "ssrbench: attacks/ssl-aware-pgd10.toml",
            ),
            (
                "unrolled",
                "unrolled",
                "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=1",
                "(defaults)",
            ),
            (
                "unrolled-pgd10",
                "unrolled",
                "eps=8/255, step_size=2/255, steps=10, random_start=True, eot_samples=4",
                "ssrbench: attacks/unrolled-pgd10.toml",
            ),
        ],
    ),
    "modes": (
        ("name", "from", "about"),
        [("classifier-first", "ssrbench {version}"), ("multitask", "ssrbench {version}")],
    ),
    "backbones": (
        ("name", "from", "about"),
        [
            ("ssr_context_encoder", "ssrbench {version}"),
            ("ssr_resnet8", "ssrbench {version}"),
            ("ssr_resnet8_wide", "ssrbench {version}"),
        ],
    ),
    "datasets": (("name", "from", "about"), [("cifar10", "ssrbench {version}")]),
    "presets": (
        ("option", "smoke", "quick", "quick-robust", "seed", "full", "mao21"),
        [
            ("--backbone", "ssr_resnet8", "ssr_resnet8", "ssr_resnet8", "ssr_context_encoder", "resnet18", "resnet18"),
            ("--train-images", "512", "None", "None", "None", "None", "None"),
            ("--epochs-classifier", "1", "6", "15", "5", "30", "0"),
            ("--epochs-head", "1", "4", "4", "5", "15", "30"),
            ("--epochs-multitask", "1", "4", "15", "5", "30", "0"),
            ("--batch-size", "128", "256", "256", "256", "128", "128"),
            ("--optimizer", "sgd", "sgd", "sgd", "sgd", "sgd", "sgd"),
            ("--lr", "0.1", "0.1", "0.2", "0.1", "0.05", "0.1"),
            ("--head-lr", "0.002", "0.002", "0.002", "0.002", "0.002", "0.002"),
            ("--weight-decay", "0.0005", "0.0005", "0.0005", "0.0005", "0.0005", "0.0005"),
            ("--eval-images", "64", "1000", "1000", "2000", "10000", "1000"),
            ("--eval-batch-size", "64", "250", "250", "250", "500", "100"),
        ],
    ),
}
FREE_TEXT = ("description", "about")
ADAPTIVE_BEFORE = (
    "pgd10",
    "bpda-pgd10",
    "unrolled-pgd10",
    "ssl-aware-pgd10",
    "detector-aware-pgd10",
    "sanity-pgd10-eps128",
)


def _printed_tables(monkeypatch, args):
    """The rich tables `ssrbench list ...` prints, caught on their way to the console."""
    tables = []
    monkeypatch.setattr(Console, "print", lambda self, obj, *a, **k: tables.append(obj))
    res = CliRunner().invoke(cli, ["list", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return tables


def _config_cell(cell: str) -> str:
    origin, sep, path = cell.partition(": ")
    return f"{origin}: {'/'.join(Path(path).parts[-2:])}" if sep else cell


def test_list_shows_what_it_showed_before_in_every_section(monkeypatch):
    monkeypatch.chdir(REPO)
    tables = _printed_tables(monkeypatch, [])
    assert [t.title for t in tables] == list(SECTIONS) == list(LIST_BEFORE)
    for t in tables:
        columns, rows = LIST_BEFORE[t.title]
        assert tuple(c.header for c in t.columns) == columns, t.title
        kept = [i for i, c in enumerate(columns) if c not in FREE_TEXT]
        shown = {}
        for row in zip(*[[str(cell) for cell in c.cells] for c in t.columns]):
            assert all(row[i] for i, c in enumerate(columns) if c == "about"), row  # each has a docstring
            shown[row[0]] = tuple(_config_cell(row[i]) if columns[i] == "config" else row[i] for i in kept)
        for expected in rows:
            expected = tuple(cell.replace("{version}", ssrbench.__version__) for cell in expected)
            assert shown.get(expected[0]) == expected, t.title
    by_title = {t.title: t for t in tables}
    caption = by_title["backbones"].caption
    assert "channels-first spatial map" in caption and "vit_" in caption and "timm.list_models()" in caption
    assert [c.justify for c in by_title["presets"].columns] == ["left", *["right"] * len(PRESETS)]


@pytest.mark.parametrize("section", SECTIONS)
def test_list_of_one_section_is_that_table_alone(monkeypatch, section):
    (table,) = _printed_tables(monkeypatch, [section])
    assert table.title == section


def test_adaptive_suite_is_read_from_its_file_unchanged():
    suite = load_suite("adaptive")
    assert suite.attacks == ADAPTIVE_BEFORE and attack_suite("adaptive")[: len(ADAPTIVE_BEFORE)] == ADAPTIVE_BEFORE
    help_text = "".join(
        CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output.split()
    )  # wraps at hyphens
    assert ",".join(ADAPTIVE_BEFORE) in help_text and ",".join(suite.extras["autoattack"]) in help_text


def test_a_suite_is_never_taken_for_an_attack_config_and_ships_in_the_wheel():
    assert "suites" not in named_files("attacks") and "adaptive" not in named_files("attacks")
    assert (builtin_config_dir("attacks") / "suites" / "adaptive.toml").is_file()
    force = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "force-include"
    ]
    assert force["attacks"] == "ssrbench/_named_configs/attacks"  # the whole folder, suites/ included


def test_every_preset_field_but_the_backbone_is_a_run_option_with_its_bounds():
    params = {p.name: p for p in cli.commands["run"].params}
    for f in preset_fields():
        if f.name == "backbone":
            assert params["backbone"].type == click.STRING  # its own option, any timm name
            continue
        typ = params[f.name].type
        assert params[f.name].default is None  # unset: the preset's value
        if f.choices:
            assert isinstance(typ, click.Choice) and tuple(typ.choices) == f.choices
        elif f.type is str:
            assert typ == click.STRING  # a name (--base), checked as the run resolves it
        elif f.type is float:
            assert isinstance(typ, FiniteFloat)
            assert (typ.gt, typ.ge, typ.le) == tuple(f.bounds.get(b) for b in ("gt", "ge", "le"))
        else:
            assert isinstance(typ, click.IntRange) and typ.max == f.bounds.get("le")
            assert typ.min == (0 if f.name.startswith("epochs") else 1)
    assert [f.name for f in preset_fields()] == list(Preset.model_fields)


def test_the_command_line_names_no_dataset():
    named = [p.name for p in (Path(ssrbench.__file__).parent / "cli").glob("*.py") if "cifar10" in p.read_text()]
    assert not named, named


class _TwoViews:
    def preview(self, x):
        return {"flipped": x.flip(-1), "half": x[..., :16, :16]}


class _NoViews:
    def preview(self, x):
        return {}


def test_preview_grid_lays_out_a_row_per_image_on_white():
    x = torch.rand(3, 3, 32, 32)
    grid, names = preview_grid(_TwoViews(), x, scale=2)
    cell = 32 * 2 + 2 * 2  # each picture magnified, then the padding
    assert names == ["flipped", "half"]
    assert grid.shape == (3, 3 * cell + 4, 3 * cell + 4)
    assert torch.equal(grid[:, 4:68, 4:68], x[0].repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert torch.all(grid[:, 4 + 32 : 4 + 64, 2 * cell + 4 : 2 * cell + 4 + 64] == 1.0)  # the half view's white pad
    assert preview_grid(_NoViews(), x, scale=2) is None


def test_seed_settings_benchmark_imports_and_parses_its_options():
    res = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "seed_settings.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "--data-dir" in res.stdout and "Table I" in res.stdout
