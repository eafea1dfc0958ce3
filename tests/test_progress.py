"""Progress that shows in a log (issue 31): plain, timestamped, flushed lines when stderr is not a terminal.

A run whose stderr goes to a file (CI, nohup, Slurm, Ray jobs) gets a line as each stage starts and
ends, per finished epoch and per model x attack, each with elapsed time and ETA; per-batch updates are
rate-limited. All on a StringIO with a fake clock, no training (the real run's lines are checked in
test_end_to_end.py's smoke run).
"""

from __future__ import annotations

import io
from contextlib import nullcontext
from types import SimpleNamespace
from unittest.mock import patch

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from ssrbench.cli import cli
from ssrbench.core import progress
from ssrbench.core.errors import SSRBenchError
from ssrbench.core.presets import PRESETS
from ssrbench.core.progress import Reporter, resolve_mode
from ssrbench.run.ray_executor import _UnitView
from ssrbench.training import modes
from ssrbench.training.modes import train_epochs

from .helpers import STAMP


class Clock:
    """A fake monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain(every: float = 30.0) -> tuple[Reporter, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return Reporter(mode="plain", stream=out, clock=clock, every=every), out, clock


def lines(out: io.StringIO) -> list[str]:
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text, repr(text)
    found = text.splitlines()
    assert all(STAMP.match(line) for line in found), text
    return [STAMP.sub("", line) for line in found]


def test_a_plain_bar_is_a_start_line_milestones_with_elapsed_and_eta_and_an_end_line():
    reporter, out, clock = plain()
    with reporter, reporter.bar("train classifier", 10, unit="steps") as advance:
        clock.now = 10
        advance(5, "epoch 1/2 ce=1.234", milestone=True)
        clock.now = 20
        advance(5, "epoch 2/2 ce=0.5", milestone=True)
    assert lines(out) == [
        "train classifier: started, 10 steps",
        "train classifier: epoch 1/2 ce=1.234 | 5/10 steps | elapsed 10s | ETA 10s",
        "train classifier: epoch 2/2 ce=0.5 | 10/10 steps | elapsed 20s | ETA 0s",
        "train classifier: done 10/10 steps, took 20s",
    ]


def test_per_batch_updates_are_rate_limited_and_milestones_are_not():
    reporter, out, clock = plain(every=30)
    with reporter.bar("evaluate m", 100, unit="images") as advance:
        for t in range(1, 101):
            clock.now = t
            advance(1, f"batch {t}")
        advance(0, "pgd2: adv 1.0%", milestone=True)
        advance(0, "pgd2: adv 1.0%", milestone=True)  # a milestone is written even when nothing changed
    got = lines(out)
    assert got[0] == "evaluate m: started, 100 images" and got[-1] == "evaluate m: done 100/100 images, took 1m40s"
    assert [line for line in got if "batch" in line] == [
        "evaluate m: batch 30 | 30/100 images | elapsed 30s | ETA 1m10s",
        "evaluate m: batch 60 | 60/100 images | elapsed 1m00s | ETA 40s",
        "evaluate m: batch 90 | 90/100 images | elapsed 1m30s | ETA 10s",
    ]
    assert sum("pgd2" in line for line in got) == 2


def test_nothing_new_writes_nothing_however_long_it_waits():
    reporter, out, clock = plain(every=1)
    with reporter.bar("units on Ray", 4, unit="units") as advance:
        for t in range(1, 50):
            clock.now = t
            advance(0, "0 done, 1 running")  # a poll that changed nothing
    assert len(lines(out)) == 3  # started, the first (changed) info once, done


def test_an_update_that_finishes_a_bar_leaves_the_line_to_its_end():
    reporter, out, clock = plain(every=1)
    with reporter.bar("train the stage classifier-first shares", 1, unit="unit", info="running on n") as advance:
        clock.now = 90
        advance(1, "done on n")
    assert lines(out) == [
        "train the stage classifier-first shares: started, 1 unit, running on n",
        "train the stage classifier-first shares: done 1/1 unit, took 1m30s",
    ]


def test_a_resumed_bar_says_where_it_starts_and_its_eta_counts_only_new_work():
    reporter, out, clock = plain()
    with reporter.bar("train heads", 10, unit="steps", done=5, info="epoch 5/10 (resumed)") as advance:
        advance(0, "before any step", milestone=True)
        clock.now = 10
        advance(1, "epoch 6/10", milestone=True)
    got = lines(out)
    assert got[0] == "train heads: started at 5/10 steps, epoch 5/10 (resumed)"
    assert got[1].endswith("| 5/10 steps | elapsed 0s | ETA ?")
    assert got[2].endswith("| 6/10 steps | elapsed 10s | ETA 40s")  # 1 step per 10 s, not 6


def test_a_bar_left_by_an_error_says_where_it_stopped():
    reporter, out, clock = plain()
    with pytest.raises(KeyboardInterrupt):
        with reporter.bar("train classifier", 10, unit="steps") as advance:
            advance(3)
            clock.now = 5
            raise KeyboardInterrupt
    assert lines(out)[-1] == "train classifier: stopped at 3/10 steps after 5s (interrupted)"


def test_plain_log_lines_hold_no_markup_ansi_or_carriage_return():
    reporter, out, _ = plain()
    reporter.log("sanity check: clean accuracy is low", style="yellow")
    reporter.log("\x1b[31mred\x1b[0m and a\rreturn")
    reporter.log("two\nlines [1/255] [bold]not markup[/x]\x07")
    assert lines(out) == [
        "sanity check: clean accuracy is low",
        "red and a",
        "return",
        "two",
        "lines [1/255] [bold]not markup[/x]\\x07",
    ]


def test_plain_lines_are_flushed_as_written(tmp_path):
    """What ``tail -f`` needs: each line is in the file while the run goes on, not when it ends."""
    log = tmp_path / "run.log"
    with open(log, "w") as stream:  # block-buffered, as stderr redirected to a file is not
        reporter = Reporter(mode="plain", stream=stream, clock=Clock())
        with reporter.bar("train classifier", 2, unit="steps") as advance:
            assert log.read_text().endswith("train classifier: started, 2 steps\n")
            advance(1, "epoch 1/2", milestone=True)
            assert "epoch 1/2 | 1/2 steps" in log.read_text()
        reporter.log("a note", style="yellow")
        assert log.read_text().endswith(" a note\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_rich_on_a_terminal_and_plain_otherwise():
    assert resolve_mode("auto", _Terminal()) == "rich"
    assert resolve_mode("auto", io.StringIO()) == "plain"
    assert resolve_mode("auto", SimpleNamespace()) == "plain"  # a stream without isatty
    assert all(resolve_mode(m, _Terminal()) == m for m in ("rich", "plain", "none"))
    assert Reporter(mode="auto", stream=io.StringIO()).mode == "plain"
    assert Reporter(Console(file=io.StringIO())).mode == "plain"  # the console's stream decides
    assert Reporter(quiet=True).mode == "none"
    with pytest.raises(ValueError, match="'fancy'"):
        resolve_mode("fancy")  # type: ignore[arg-type]


def test_none_writes_nothing_and_rich_takes_the_same_calls():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    for mode in ("none", "rich"):
        with Reporter(console, mode=mode) as reporter:
            with reporter.bar("train x", 4, unit="steps", done=2, info="resumed") as advance:
                advance(1, "epoch 3/4", milestone=True)
                advance()
            reporter.log("note", style="yellow")
        if mode == "none":
            assert out.getvalue() == ""
    assert "train x" in out.getvalue()


def test_every_epoch_is_a_line_with_its_losses_and_held_out_pgd_accuracy():
    reporter, out, _ = plain()
    ds = SimpleNamespace(train_x=torch.zeros(8, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(8, dtype=torch.long))
    ctx = SimpleNamespace(
        data=ds,
        preset=PRESETS["smoke"].model_copy(update={"batch_size": 4}),
        device=torch.device("cpu"),
        seed=0,
        reporter=reporter,
        train_range=lambda: (8, 8),
        autocast=nullcontext,
    )
    losses = iter([1.0, 0.5, 0.25, 0.75])
    readings = iter([40.0, 35.5])
    train_epochs(
        ctx,
        "train classifier",
        2,
        lambda x, y, g: {"ce": next(losses)},
        after_epoch=lambda: {"heldout_pgd_acc": next(readings)},
    )
    epochs = [line for line in lines(out) if ": epoch" in line]
    assert epochs == [
        "train classifier: epoch 1/2 ce=0.750 held-out PGD-10 acc 40.0% | 2/4 steps | elapsed 0s | ETA ?",
        "train classifier: epoch 2/2 ce=0.500 held-out PGD-10 acc 35.5% | 4/4 steps | elapsed 0s | ETA 0s",
    ]


def test_an_epoch_ends_in_one_line_and_lines_within_it_say_their_step():
    """A slow epoch writes rate-limited lines within it; they name their step, and the epoch's end is one line
    (not a rate-limited line and the epoch's line for the same step)."""
    out = io.StringIO()
    ticks = iter(range(0, 10_000, 40))  # every reading of the clock is 40 s later: every update is due
    reporter = Reporter(mode="plain", stream=out, clock=lambda: float(next(ticks)), every=30.0)
    ds = SimpleNamespace(train_x=torch.zeros(16, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(16, dtype=torch.long))
    ctx = SimpleNamespace(
        data=ds,
        preset=PRESETS["smoke"].model_copy(update={"batch_size": 4}),
        device=torch.device("cpu"),
        seed=0,
        reporter=reporter,
        train_range=lambda: (16, 16),
        autocast=nullcontext,
    )
    with patch.object(modes, "LOG_EVERY", 1):
        train_epochs(ctx, "train classifier", 2, lambda x, y, g: {"ce": 1.0})
    got = [line.split(" | ")[0] for line in lines(out)]
    assert got == [
        "train classifier: started, 8 steps",
        *(f"train classifier: epoch 1/2, step {i}/4: ce=1.000" for i in (1, 2, 3)),
        "train classifier: epoch 1/2 ce=1.000",
        *(f"train classifier: epoch 2/2, step {i}/4: ce=1.000" for i in (1, 2, 3)),
        "train classifier: epoch 2/2 ce=1.000",
        "train classifier: done 8/8 steps, took 6m00s",
    ], got


def test_the_ray_view_writes_a_line_per_change_never_one_per_poll():
    reporter, out, clock = plain()
    units = ["train multitask/rotation", "evaluate multitask/rotation"]
    with reporter, _UnitView(reporter, units) as view:
        for t in range(3):  # queued: polls add nothing
            clock.now = t
            view.update({}, set())
        running = {units[0]: {"attempts": 1, "node": "10.0.0.1"}}
        for t in range(3, 6):
            clock.now = t
            view.update(running, set())
        retried = {units[0]: {"attempts": 2, "node": "10.0.0.2"}}
        view.update(retried, set())
        clock.now = 10
        view.update(retried, {units[0]})
        view.update(retried, {units[0]})
    assert lines(out) == [
        "units on Ray: started, 2 units",
        "train multitask/rotation: started, 1 unit, running on 10.0.0.1",
        "train multitask/rotation: running on 10.0.0.2 (attempt 2: retried) | 0/1 unit | elapsed 2s | ETA ?",
        "train multitask/rotation: done 1/1 unit, took 7s",
        "units on Ray: 1 done, 0 running, 1 queued, 1 retried | 1/2 units | elapsed 10s | ETA 10s",
        "units on Ray: done 1/2 units, took 10s",
    ]


def test_the_ray_view_in_rich_mode():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with Reporter(console, mode="rich") as reporter, _UnitView(reporter, ["u"]) as view:
        view.update({"u": {"attempts": 1, "node": "n"}}, set())
        view.update({"u": {"attempts": 1, "node": "n"}}, {"u"})
    assert "done on n" in console.file.getvalue()


# the --progress option (a bad value: tests/test_bad_inputs.py) ----------------------------------------------------

TINY = (
    "--preset",
    "smoke",
    "--backbone",
    "test_efficientnet",
    "--device",
    "cpu",
    "--tasks",
    "rotation",
    "--attacks",
    "fgsm",
)


@pytest.mark.parametrize(
    "given,mode",
    [
        ([], "auto"),
        (["--progress", "plain"], "plain"),
        (["--progress", "rich"], "rich"),
        (["--quiet"], "none"),
        (["--quiet", "--progress", "plain"], "plain"),
        (["-q", "--progress", "none"], "none"),
    ],
)
def test_progress_reaches_the_reporter_and_quiet_means_none_unless_progress_is_given(
    given, mode, tmp_path, monkeypatch
):
    seen = []

    class Recording:
        def __init__(self, console=None, quiet=False, *, mode="auto", **_):
            seen.append("none" if quiet else mode)
            raise SSRBenchError("stop here: before any data is read")

    monkeypatch.setattr(progress, "Reporter", Recording)
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *TINY,
            *given,
            "--data-dir",
            str(tmp_path),
            "--no-download",
            "--out",
            str(tmp_path / "o.json"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert "stop here" in res.output, res.output
    assert seen == [mode]


def test_help_says_how_quiet_and_progress_combine():
    text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "--progress [auto|rich|plain|none]" in text and "none with --quiet" in text


# a Ray worker's lines, through the coordinator, in the driver's log (no Ray: the actor's class itself) ------------


def test_a_sink_takes_a_workers_plain_lines_and_the_driver_writes_them_in_its_form(tmp_path):
    """The worker produces unstamped plain lines (rate-limited as anywhere) into the coordinator; each poll
    drains them once, and the driver's Reporter writes them: plain as prefixed lines, rich as logged ones."""
    from ssrbench.run.ray_executor import Coordinator

    coord, clock = Coordinator(str(tmp_path), True), Clock()
    uid = "evaluate multitask/rotation"
    coord.started(uid, "10.0.0.7", 1)
    worker = Reporter(sink=lambda line: coord.line(uid, line), clock=clock, every=30)
    assert worker.mode == "plain" and Reporter(mode="none", sink=print).mode == "none"
    with worker.bar(uid, 100, unit="images") as advance:
        for t in range(1, 61):
            clock.now = t
            advance(1, f"batch {t}")  # per-batch: one line in 30 s
        advance(0, "fgsm: adv 1.0%", milestone=True)
        clock.now = 100
        advance(40, "batch 100")
    for node in ("10.0.0.7", "10.0.0.8"):  # a retry on another node, whose line names another stage
        coord.started("train classifier-first/rotation", node, 4242)
    coord.line("train classifier-first/rotation", "train heads: epoch 1/2 ssl=1.0 | 4/8 steps")
    snapshot, drained, dropped = coord.poll()
    assert set(snapshot) == {uid, "train classifier-first/rotation"} and dropped == 0
    assert [line for *_, line in drained] == [
        f"{uid}: started, 100 images",
        f"{uid}: batch 30 | 30/100 images | elapsed 30s | ETA 1m10s",
        f"{uid}: batch 60 | 60/100 images | elapsed 1m00s | ETA 40s",
        f"{uid}: fgsm: adv 1.0% | 60/100 images | elapsed 1m00s | ETA 40s",
        f"{uid}: done 100/100 images, took 1m40s",
        "train heads: epoch 1/2 ssl=1.0 | 4/8 steps",
    ]
    assert coord.poll()[1:] == ([], 0)  # drained once

    driver, out, _ = plain()
    _UnitView(driver, [uid]).forward(drained)
    got = lines(out)
    assert got[3] == f"[10.0.0.7] {uid}: fgsm: adv 1.0% | 60/100 images | elapsed 1m00s | ETA 40s"
    assert (
        got[-1] == "[10.0.0.8, attempt 2] train classifier-first/rotation: train heads: epoch 1/2 ssl=1.0 | 4/8 steps"
    )
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    with Reporter(console, mode="rich") as rich:
        _UnitView(rich, [uid]).forward(drained)
    assert "fgsm: adv 1.0%" in console.file.getvalue()


def test_the_coordinator_keeps_a_bounded_number_of_lines_and_says_how_many_it_dropped(tmp_path, monkeypatch):
    from ssrbench.run import ray_executor

    monkeypatch.setattr(ray_executor, "MAX_LINES", 3)
    coord = ray_executor.Coordinator(str(tmp_path), True)
    for i in range(5):
        coord.line("u", f"line {i}")
    _, drained, dropped = coord.poll()
    assert [line for *_, line in drained] == ["line 2", "line 3", "line 4"] and dropped == 2
    driver, out, _ = plain()
    _UnitView(driver, ["u"]).forward(drained, dropped)
    assert lines(out)[0] == "[?] u: line 2" and lines(out)[-1].startswith("2 progress lines of the workers left out")


def test_a_warning_while_the_reporter_is_open_is_a_line_of_the_log_as_text():
    """A corrupt cache entry is warned about (and retrained): in a log it is a timestamped line, escaped."""
    import warnings

    reporter, out, _ = plain()
    before = warnings.showwarning
    with reporter, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("model cache entry x.pt is unreadable (\x1b[2J\x07); retraining", stacklevel=1)
    assert lines(out) == ["warning: model cache entry x.pt is unreadable (\\x07); retraining"]
    assert warnings.showwarning is before
