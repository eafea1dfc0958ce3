"""The source report's Table I beside a leaderboard: differences, paired effects, the four findings,
and the README section being exactly the generated output for the committed seed leaderboard."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.leaderboard.schema import Accuracy
from ssrbench.studies.source_report import TABLE_I, findings, markdown, matched_cells, report_row

from .helpers import FIXTURE

N = 400


def _flags(percent: float, offset: int = 0) -> np.ndarray:
    k = round(N * percent / 100)
    f = np.zeros(N, bool)
    f[offset : offset + k] = True
    return f


def _board(values: dict[tuple[str, str], tuple[float, float, float, float]]):
    """The fixture's cells set to given accuracies; each '+Rev' set keeps the images right before it,
    so the reverse attack's effect is one-sided and its paired test as strong as its size allows."""
    board = store.load(FIXTURE)
    cells = []
    for c in board.cells:
        clean, clean_rev, adv, adv_rev = values[(c.mode, c.attack.name)]
        accs = {"clean": _flags(clean), "clean_rev": _flags(clean_rev), "adv": _flags(adv), "adv_rev": _flags(adv_rev)}
        cells.append(c.model_copy(update={k: Accuracy.from_flags(v) for k, v in accs.items()}))
    return board.model_copy(update={"cells": cells})


REPORT_LIKE = {
    ("multitask", "fgsm"): (61.25, 44.25, 1.25, 12.5),
    ("multitask", "pgd2"): (61.25, 44.25, 0.0, 2.5),
    ("classifier-first", "fgsm"): (71.5, 55.0, 10.75, 17.25),
    ("classifier-first", "pgd2"): (71.5, 55.0, 5.0, 6.0),
}


def test_a_board_like_the_report_matches_every_cell_and_reproduces_every_finding():
    board = _board(REPORT_LIKE)
    assert matched_cells(board) == (12, 12)
    text = "\n".join(findings(board))
    assert text.count("**reproduces**") == 4, text


def test_report_rows_and_effects_come_from_table_i():
    row = report_row("multitask", "fgsm")
    assert row is TABLE_I[0] and f"{row.clean_effect:+.2f}" == "-16.93" and f"{row.adv_effect:+.2f}" == "+11.35"
    # finding (c) quotes the report's PGD-2 and FGSM gains, computed from the table rather than typed again
    assert "the report's +2.43 against +11.35" in findings(_board(REPORT_LIKE))[2]


def test_findings_can_fail_and_cells_can_miss():
    values = dict(REPORT_LIKE)
    values[("multitask", "fgsm")] = (61.25, 70.0, 1.25, 1.25)  # reverse attack raises clean, no FGSM gain
    values[("multitask", "pgd2")] = (61.25, 70.0, 0.0, 20.0)  # a big PGD-2 gain
    values[("classifier-first", "fgsm")] = (50.0, 40.0, 10.75, 17.25)
    values[("classifier-first", "pgd2")] = (50.0, 40.0, 5.0, 6.0)
    board = _board(values)
    a, b, c, d = findings(board)
    assert "(a)" in a and "**partly reproduces**" in a  # classifier-first loses clean accuracy, multitask gains
    assert "**partly reproduces**" in b  # classifier-first gains, multitask does not
    assert "**partly reproduces**" in c or "**does not reproduce**" in c
    assert "**does not reproduce**" in d
    hits, total = matched_cells(board)
    assert total == 12 and hits < 12
    assert "✗" in markdown(board, "x.json")


def test_differences_and_paired_effects_are_read_from_the_board():
    board = _board(REPORT_LIKE)
    text = markdown(board, "some.json")
    assert "`some.json`" in text and str(N) in text
    # every report value is printed, and the multitask FGSM clean effect is the flags' difference
    for row in TABLE_I:
        assert all(f"{v:.2f}" in text for v in row.values)
    assert re.search(r"multitask, FGSM \| clean images \| -16\.93 \| -17\.00\* \| 68 / 0 \|", text), text


def test_attacks_are_matched_by_what_they_are_not_by_name():
    board = _board(REPORT_LIKE)
    renamed = [
        c.model_copy(update={"attack": c.attack.model_copy(update={"name": c.attack.name + "-eps16"})})
        for c in board.cells
    ]
    assert matched_cells(board.model_copy(update={"cells": renamed})) == (12, 12)
    twice = board.model_copy(update={"cells": list(board.cells) + renamed})
    with pytest.raises(ValueError, match="several fgsm cells"):
        markdown(twice, "x.json")


def test_cli_refuses_a_board_without_inpainting(tmp_path):
    board = store.load(FIXTURE)
    cells = [
        c.model_copy(update={"task": c.task.model_copy(update={"name": "rotation", "kind": "rotation"})})
        for c in board.cells
    ]
    path = tmp_path / "rot.json"
    store.save(board.model_copy(update={"cells": cells}), path)
    res = CliRunner().invoke(cli, ["versus-report", str(path), "--format", "markdown"])
    assert res.exit_code == 2 and "inpaint" in res.output


def test_seed_findings_refuses_a_single_seed_board():
    res = CliRunner().invoke(cli, ["seed-findings", str(FIXTURE), "--format", "markdown"])
    assert res.exit_code == 2 and "one seed only" in res.output


def test_one_model_and_seeds_are_judged_by_one_rule():
    """The findings are data (studies/findings.py) judged by one function: an interval (seeds) must lie beyond the
    bound; one model's estimate must, and significantly when the claim is against no effect."""
    from ssrbench.studies.findings import FINDINGS, Estimate, judge

    lower, small = FINDINGS["a"], FINDINGS["c"]
    assert judge(lower, [Estimate(-3.0, interval=(-5.0, -1.0))]) == (True, True)
    assert judge(lower, [Estimate(-3.0, interval=(-5.0, 0.5))]) == (False, False)  # the interval reaches zero
    assert judge(lower, [Estimate(-3.0, p=0.01)]) == (True, True)
    assert judge(lower, [Estimate(-3.0, p=0.2)]) == (False, False)  # not significant
    assert judge(lower, [Estimate(-3.0, p=0.01), None]) == (False, True)  # one (task, mode) not evaluated
    assert judge(small, [Estimate(4.0, p=0.5)]) == (True, True)  # below 5 points: no test against 5
    assert judge(small, [Estimate(4.0, interval=(1.0, 6.0))]) == (False, False)
    assert judge(small, [Estimate(1.0, p=0.5), Estimate(1.0, p=0.5)], also=[True, False]) == (False, True)
    assert judge(lower, []) == (False, False)
