"""The smoke preset on real CIFAR-10, through the CLI, as a user runs it."""

import re
import warnings

import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store

pytestmark = pytest.mark.integration


def _run(cifar_dir, out, cache, *extra):
    args = [
        "run",
        "--preset",
        "smoke",
        "--data-dir",
        str(cifar_dir),
        "--no-download",
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--device",
        "cpu",
        *extra,
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res, store.load(out)


def _assert_plain_progress(log: str, stages: list[str], epochs: dict[str, int], evaluated: list[str]) -> None:
    """stderr that is not a terminal (a log file) holds plain progress (issue 31): timestamped lines without
    ANSI codes or carriage returns, a start and an end line per stage, a line with the losses per epoch and a
    line per evaluated model x attack, those with elapsed time and ETA."""
    assert "\x1b" not in log and "\r" not in log
    stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
    lines = [line for line in log.splitlines() if stamp.match(line)]  # a line without its timestamp is not found
    for stage in stages:
        assert sum(f" {stage}: started" in line for line in lines) == 1, (stage, log)
        assert sum(f" {stage}: done" in line and "took" in line for line in lines) == 1, (stage, log)
    for stage, n in epochs.items():
        found = [line for line in lines if re.search(rf" {re.escape(stage)}: epoch \d+/{n} \w+=\d", line)]
        assert len(found) == n and all("elapsed" in line and "ETA" in line for line in found), (stage, log)
    for cell in evaluated:
        found = [line for line in lines if f" evaluate {cell}: adv " in line and "adv+rev" in line]
        assert len(found) == 1 and "elapsed" in found[0] and "ETA" in found[0], (cell, log)


def test_smoke_run_resume_and_cache(cifar_dir, tmp_path):
    cache = tmp_path / "cache"
    res, board = _run(cifar_dir, tmp_path / "a.json", cache, "--tasks", "inpaint", "--attacks", "fgsm,pgd2")
    assert "multitask" in res.output and "Adv+Rev" in res.output  # the table is rendered
    _assert_plain_progress(
        res.stderr,
        stages=[
            "load cifar10",
            "run",
            "train multitask/inpaint",
            "train classifier",
            "train heads classifier-first/inpaint",
            "evaluate multitask/inpaint",
            "evaluate classifier-first/inpaint",
        ],
        epochs={"train multitask/inpaint": 1, "train classifier": 1, "train heads classifier-first/inpaint": 1},
        evaluated=[f"{m}/inpaint: {a}" for m in ("multitask", "classifier-first") for a in ("fgsm", "pgd2")],
    )

    cells = {(c.task.name, c.attack.name, c.mode) for c in board.cells}
    assert cells == {("inpaint", a, m) for a in ("fgsm", "pgd2") for m in ("multitask", "classifier-first")}
    assert board.preset == "smoke" and board.dataset.eval_images == 64
    assert {r.stage for r in board.training} == {"multitask/inpaint", "classifier", "classifier-first/inpaint"}
    assert not any(r.cached for r in board.training)
    for c in board.cells:
        assert c.clean.n == c.adv.n == c.adv_rev.n == c.clean_rev.n == 64
        assert c.pretext.metric == "region_mse" and c.pretext.clean > 0
    # clean and clean+rev do not depend on the attack: the same images, the same numbers
    by_mode = {}
    for c in board.cells:
        by_mode.setdefault(c.mode, set()).add((c.clean.per_image, c.clean_rev.per_image))
    assert all(len(v) == 1 for v in by_mode.values())

    # adding an attack re-uses every trained model and reproduces the earlier cells exactly
    _, board2 = _run(cifar_dir, tmp_path / "b.json", cache, "--attacks", "fgsm,pgd2,pgd10", "--quiet")
    assert all(r.cached for r in board2.training)
    assert len(board2.cells) == 6
    old = {(c.mode, c.attack.name): c for c in board.cells}
    for c in board2.cells:
        if (c.mode, c.attack.name) in old:
            o = old[(c.mode, c.attack.name)]
            assert (c.clean, c.clean_rev, c.adv, c.adv_rev) == (o.clean, o.clean_rev, o.adv, o.adv_rev)

    # a corrupt cache entry is retrained with a warning, never a crash (one mode, one attack, fewer images: what
    # is checked is the cache, not the cells)
    (heads,) = [r for r in board.training if r.stage == "classifier-first/inpaint"]
    victim = cache / f"{heads.key}.pt"
    victim.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = ("--modes", "classifier-first", "--attacks", "fgsm", "--eval-images", "16", "--quiet")
        _, board3 = _run(cifar_dir, tmp_path / "c.json", cache, *args)
    assert any("unreadable" in str(w.message) for w in caught)
    assert [r.stage for r in board3.training if not r.cached] == ["classifier-first/inpaint"]

    # show renders what run wrote
    shown = CliRunner().invoke(cli, ["show", str(tmp_path / "a.json")])
    assert shown.exit_code == 0 and "classifier-first" in shown.output


@pytest.mark.parametrize("task", ["inpaint", "jigsaw", "rotation"])
def test_peek_writes_a_picture(cifar_dir, tmp_path, task):
    out = tmp_path / f"{task}.png"
    res = CliRunner().invoke(
        cli, ["peek", task, "--data-dir", str(cifar_dir), "--no-download", "--out", str(out), "--images", "2"]
    )
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_adaptive_suite_end_to_end(cifar_dir, tmp_path, without_module):
    # the suite as an installation without the `autoattack` extra runs it (APGD's 100 iterations are covered on
    # the smoke preset in test_library_attacks.py): the configs left out are named in the leaderboard
    without_module("pyautoattack")
    _, board = _run(
        cifar_dir,
        tmp_path / "adaptive.json",
        tmp_path / "cache",
        "--tasks",
        "inpaint",
        "--attacks",
        "fgsm",
        "--modes",
        "classifier-first",
        "--adaptive",
        "--eval-images",
        "16",
        "--quiet",
    )
    names = {c.attack.name for c in board.cells}
    assert {"bpda-pgd10", "unrolled-pgd10", "ssl-aware-pgd10", "detector-aware-pgd10", "sanity-pgd10-eps128"} <= names
    assert not any("apgd" in n for n in names)
    assert any("leaves out apgd-ce" in n and "ssrbench[autoattack]" in n for n in board.notes)
    assert all(
        c.adaptive == (c.attack.kind in ("bpda", "unrolled", "ssl-aware", "detector-aware")) for c in board.cells
    )
    (wc,) = board.worst_case
    assert "sanity-pgd10-eps128" not in wc.attacks and wc.defended.percent <= min(
        c.adv_rev.percent for c in board.cells
    )
    assert all(c.zero_grad_fraction is not None for c in board.cells)
    (g,) = (
        board.gated
    )  # the gated defense is attacked by the attack that aims at its gate, and judged by its worst case
    aware = next(c for c in board.cells if c.attack.name == "detector-aware-pgd10")
    assert "detector-aware-pgd10" in g.attacks and g.worst_case.correct <= aware.gated_flags("adversarial")[1].sum()
