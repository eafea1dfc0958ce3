"""The bad-input battery: what a hostile-but-realistic user (or a broken file) does to ssrbench.

Every case ends in a one-line error and an exit status, never a traceback, never code run from data,
never a good file replaced by a broken one. Runs use the smoke preset on a tiny synthetic CIFAR-10
(so they take seconds) and, where a real process must be signalled, a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result

from ssrbench.cli import cli
from ssrbench.core import fileio
from ssrbench.core.budget import ThreatModel
from ssrbench.core.errors import DataFormatError
from ssrbench.data.datasets import load_cifar10
from ssrbench.leaderboard import store
from ssrbench.leaderboard.merge import merge
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import TrainingDivergedError, train_epochs

from .helpers import FIXTURE, TINY, KeptBatches, Payload, error_line, install_plugin, make_cifar, toy_evaluate


@pytest.fixture
def data(tmp_path) -> Path:
    return make_cifar(tmp_path / "data")


def invoke(*args) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def smoke(data: Path, out: Path, cache: Path, *extra):
    return invoke("run", *TINY, "--data-dir", data, "--no-download", "--out", out, "--cache-dir", cache, *extra)


# 1. a diverged run: clear error, nothing cached, the good leaderboard untouched ------------------------------


def test_diverged_training_names_stage_and_step_caches_nothing_and_keeps_the_old_file(data, tmp_path):
    out = tmp_path / "board.json"
    out.write_bytes(FIXTURE.read_bytes())
    before = out.read_bytes()
    res = smoke(data, out, tmp_path / "cache", "--lr", "1e6", "--modes", "multitask")
    assert res.exit_code == 1, res.output
    line = error_line(res)
    assert "multitask/rotation" in line and "diverged" in line and ("step" in line or "end of training" in line)
    assert out.read_bytes() == before
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_a_non_finite_loss_stops_at_its_step():
    from contextlib import nullcontext
    from types import SimpleNamespace

    from ssrbench.core.presets import PRESETS
    from ssrbench.core.progress import Reporter

    ds = SimpleNamespace(train_x=torch.zeros(8, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(8, dtype=torch.long))
    ctx = SimpleNamespace(
        data=ds,
        preset=PRESETS["smoke"].model_copy(update={"batch_size": 2}),
        device=torch.device("cpu"),
        seed=0,
        reporter=Reporter(quiet=True),
        train_range=lambda: (8, 8),
        autocast=nullcontext,
    )
    losses = iter([1.0, 0.5, float("nan"), 0.1])
    with pytest.raises(TrainingDivergedError, match=r"train x: .*epoch 1/2, step 3/4 \(ce=nan\)"):
        train_epochs(ctx, "train x", 2, lambda x, y, g: {"ce": next(losses)})


def test_a_nan_model_is_never_cached_or_reused(tmp_path):
    cache = ModelCache(tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        cache.save("k", {"w": torch.tensor([float("nan")])}, {}, {})
    torch.save({"w": torch.tensor([float("inf")])}, tmp_path / "k.pt")  # planted by an older version
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load("k") is None
    assert any("NaN or infinite" in str(w.message) for w in caught)


def test_save_refuses_what_load_would_refuse(tmp_path):
    board = store.load(FIXTURE)
    out = tmp_path / "board.json"
    store.save(board, out)
    before = out.read_bytes()
    broken = board.model_copy(update={"seconds_total": float("nan")})
    with pytest.raises(store.LeaderboardError, match="refusing to write"):
        store.save(broken, out)
    assert out.read_bytes() == before


# 2. no code execution from data files -------------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["test_batch", "data_batch_2"])
def test_a_pickle_payload_in_the_data_never_runs(tmp_path, batch):
    marker = tmp_path / "payload-ran"
    root = make_cifar(tmp_path / "data", **{batch: {"data": Payload(marker), "labels": [0]}})
    with pytest.raises(DataFormatError, match=f"{batch}.*refused to load posix.mkdir"):
        load_cifar10(root, download=False)
    res = smoke(root, tmp_path / "o.json", tmp_path / "cache")
    assert res.exit_code == 2 and batch in error_line(res)
    assert not marker.exists()


def test_a_malicious_cache_entry_never_runs_and_is_retrained(data, tmp_path):
    marker = tmp_path / "payload-ran"
    res = smoke(data, tmp_path / "a.json", tmp_path / "cache", "--modes", "multitask")
    assert res.exit_code == 0, res.output
    stage = next(r for r in store.load(tmp_path / "a.json").training if r.stage.startswith("multitask/"))
    victim = (
        tmp_path / "cache" / f"{stage.key}.pt"
    )  # beside it: the static base's classifier, which it is judged against
    buf = io.BytesIO()
    torch.save({"w": Payload(marker)}, buf)
    victim.write_bytes(buf.getvalue())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = smoke(data, tmp_path / "b.json", tmp_path / "cache", "--modes", "multitask")
    assert res.exit_code == 0, res.output
    assert not marker.exists()
    messages = " ".join(str(w.message) for w in caught)
    assert "unreadable" in messages and "weights only" in messages
    assert "weights_only=False" not in messages  # never suggest the unsafe load
    assert not next(r for r in store.load(tmp_path / "b.json").training if r.key == stage.key).cached


# 3. an unwritable cache is found before any work --------------------------------------------------------------


def test_a_cache_dir_that_is_a_file_fails_before_data_is_read(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = smoke(tmp_path / "no-data", tmp_path / "o.json", blocker)
    assert res.exit_code == 2
    line = error_line(res)
    assert "--cache-dir" in line and str(blocker) in line and ".probe" not in line


def test_a_read_only_cache_dir_fails_before_data_is_read(tmp_path, monkeypatch):
    cache = tmp_path / "ro-cache"
    cache.mkdir()
    real = fileio.tempfile.mkstemp

    def read_only(*a, dir=None, **k):  # root ignores permission bits, so refuse the way a read-only mount does
        if Path(dir) == cache:
            raise PermissionError(13, "Permission denied", str(Path(dir) / ".x.probe"))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    res = smoke(tmp_path / "no-data", tmp_path / "o.json", cache)
    assert res.exit_code == 2
    line = error_line(res)
    assert str(cache) in line and "Permission denied" in line and ".probe" not in line
    assert "CIFAR-10 not found" not in res.output


# 4. tracebacks become one-line errors with exit 2 --------------------------------------------------------------


@pytest.mark.parametrize(
    "option,value,reason",
    [
        ("--lr", "-0.1", "greater than 0"),
        ("--lr", "nan", "not a finite number"),
        ("--lr", "inf", "not a finite"),
        ("--weight-decay", "-1", "at least 0"),
        ("--head-lr", "inf", "not a finite number"),
        ("--head-lr", "0", "greater than 0"),
        ("--lr", "fast", "not a number"),
    ],
)
def test_bad_float_options(tmp_path, option, value, reason):
    res = invoke("run", "--preset", "smoke", option, value, "--out", tmp_path / "o.json")
    assert res.exit_code == 2
    line = error_line(res)
    assert option in line and reason in line


@pytest.mark.parametrize(
    "batch,broken,reason",
    [
        ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 10, 2]}, "label 10 is outside 0..9"),
        ("data_batch_1", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, -1, 3, 2]}, "label -1 is outside"),
        ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2]}, "3 labels for 4 images"),
        ("test_batch", [1, 2, 3], "expected a dict with 'data' and 'labels', got list"),
        ("test_batch", {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, "shape (N, 3072)"),
    ],
)
def test_malformed_data_is_exit_2_naming_the_file(tmp_path, batch, broken, reason):
    root = make_cifar(tmp_path / "data", **{batch: broken})
    res = smoke(root, tmp_path / "o.json", tmp_path / "cache")
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert batch in line and reason in line
    assert not list((tmp_path / "cache").glob("*.pt"))  # refused before any training


@pytest.mark.parametrize(
    "backbone,reason",
    [("vit_tiny_patch16_224", "returns features of shape (1, 5, 192)"), ("swin_tiny_patch4_window7_224", "NHWC")],
)
def test_a_backbone_without_a_spatial_map_is_refused_before_data(tmp_path, backbone, reason):
    res = smoke(tmp_path / "no-data", tmp_path / "o.json", tmp_path / "cache", "--backbone", backbone)
    assert res.exit_code == 2
    line = error_line(res)
    assert reason in line and "channels-first spatial map" in line
    assert "CIFAR-10 not found" not in res.output


# 5. doctored summaries and intervals are refused --------------------------------------------------------------


def _doctored(tmp_path, change, as_written: bool = False) -> Path:
    """A committed leaderboard, re-saved in the current schema (or ``as_written``, schema 1), then doctored."""
    source = Path("leaderboards/quick-adaptive.json")
    doc = json.loads(source.read_text()) if as_written else json.loads(store.dumps(store.load(source)))
    change(doc)
    path = tmp_path / "doctored.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "what,change,reason",
    [
        (
            "worst case",
            lambda d: d["worst_case"][0]["defended"].update(percent=100.0),
            "stored worst_case does not match",
        ),
        ("warnings", lambda d: d.update(warnings=["all is well"]), "stored warnings does not match"),
        ("interval", lambda d: d["cells"][0]["adv"].update(ci95=[0.0, 100.0]), "not the 95% Wilson interval"),
        (
            "flags",
            lambda d: d["cells"][0]["adv"].update(per_image=d["cells"][0]["clean"]["per_image"]),
            "per_image flags do not add up",
        ),
        ("flag count", lambda d: d["cells"][0]["adv"].update(per_image="AAAA"), "wrong number of flags"),
    ],
)
def test_doctored_leaderboards_are_refused(tmp_path, monkeypatch, what, change, reason):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    path = _doctored(tmp_path, change)
    for cmd in (["show", path], ["merge", path, FIXTURE, "--out", tmp_path / "m.json"]):
        res = invoke(*cmd)
        assert res.exit_code == 2, (what, res.output)
        assert reason in res.output
    assert not (tmp_path / "m.json").exists()


def test_a_doctored_worst_case_in_a_schema_1_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    path = _doctored(tmp_path, lambda d: d["worst_case"][0]["defended"].update(percent=100.0), as_written=True)
    res = invoke("show", path)
    assert res.exit_code == 2 and "stored worst_case does not match" in res.output


def test_merge_keeps_the_worst_case_and_the_warnings():
    board = store.load(FIXTURE)
    # a sanity warning that fires: a huge-eps probe that leaves accuracy standing
    probe = board.cells[0].model_copy(
        update={
            "attack": board.cells[0].attack.model_copy(
                update={"name": "huge", "params": {**board.cells[0].attack.params, "eps": 0.5}}
            ),
            "threat": ThreatModel(norm="linf", eps=0.5, steps=1, probe=True),
            "adv_rev": board.cells[0].clean,
        }
    )
    a = board.model_copy(update={"cells": [c for c in board.cells if c.mode == "multitask"] + [probe]})
    b = board.model_copy(update={"cells": [c for c in board.cells if c.mode != "multitask"]})
    merged = merge([a, b], ["a", "b"], ["ssrbench", "merge"])
    assert {(w.task, w.mode) for w in merged.worst_case} == {(c.task.name, c.mode) for c in board.cells}
    assert merged.warnings and any("huge" in w for w in merged.warnings)
    again = store.loads(store.dumps(merged), "merged.json")
    assert again.worst_case == merged.worst_case and again.warnings == merged.warnings


# 6. a CI gate that compared nothing does not pass -------------------------------------------------------------


def test_compare_gate_fails_when_no_cell_is_comparable(tmp_path):
    board = store.load(FIXTURE)
    old = board.model_copy(update={"cells": [c for c in board.cells if c.mode == "multitask"]})
    new = board.model_copy(update={"cells": [c for c in board.cells if c.mode != "multitask"]})
    store.save(old, tmp_path / "old.json")
    store.save(new, tmp_path / "new.json")
    res = invoke("compare", tmp_path / "old.json", tmp_path / "new.json", "--fail-on-regression")
    assert res.exit_code == 1 and "no comparable cells" in error_line(res)
    assert (
        invoke(
            "compare", tmp_path / "old.json", tmp_path / "new.json", "--fail-on-regression", "--allow-no-comparable"
        ).exit_code
        == 0
    )
    assert invoke("compare", tmp_path / "old.json", tmp_path / "old.json", "--fail-on-regression").exit_code == 0
    res = invoke("compare", tmp_path / "old.json", tmp_path / "old.json", "--threshold", "nan")
    assert res.exit_code == 2 and "not a finite number" in error_line(res)


# 7. the smaller ones --------------------------------------------------------------------------------------------


def test_eval_images_beyond_the_test_set_are_recorded_as_used(data, tmp_path):
    res = smoke(data, tmp_path / "o.json", tmp_path / "cache", "--modes", "multitask", "--eval-images", "100")
    assert res.exit_code == 0, res.output
    board = store.load(tmp_path / "o.json")
    assert board.dataset.eval_images == 64 and board.config["preset"]["eval_images"] == 64
    assert board.cells[0].clean.n == 64
    assert any("--eval-images 100" in n and "64" in n for n in board.notes)


def test_data_source_is_recorded_as_given_not_absolute(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = smoke(Path("data"), tmp_path / "o.json", tmp_path / "cache", "--modes", "multitask")
    assert res.exit_code == 0, res.output
    assert store.load(tmp_path / "o.json").dataset.source == "data/cifar-10-batches-py"


def test_write_errors_name_the_users_path_not_a_temp_file(tmp_path, monkeypatch):
    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(fileio.UnwritableError) as err:
        fileio.atomic_write_text(tmp_path / "board.json", "{}")
    assert str(tmp_path / "board.json") in str(err.value) and ".tmp" not in str(err.value)
    assert not list(tmp_path.glob(".*.tmp"))
    blocker = tmp_path / "f"
    blocker.write_text("")
    res = invoke("run", "--preset", "smoke", "--out", blocker / "board.json")
    assert res.exit_code == 2
    line = error_line(res)
    assert str(blocker / "board.json") in line and ".probe" not in line


def test_stale_temp_files_of_killed_writers_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    abandoned = tmp_path / f".abc.pt.{dead.pid}.x1y2z3.tmp"
    legacy = tmp_path / ".abc.json.q9w8e7.tmp"  # written before temp names carried a pid
    in_progress = tmp_path / f".def.pt.{os.getpid()}.a1b2c3.tmp"
    fresh = tmp_path / f".ghi.pt.{dead.pid}.q1w2e3.tmp"  # just written: perhaps by another host sharing the cache
    for f in (abandoned, legacy, in_progress, fresh):
        f.write_text("partial")
    an_hour_ago = time.time() - 3600
    for f in (abandoned, legacy, in_progress):
        os.utime(f, (an_hour_ago, an_hour_ago))
    ModelCache(tmp_path).prepare()
    assert not abandoned.exists() and not legacy.exists()
    assert in_progress.exists()  # its writer is alive: not ours to remove
    assert fresh.exists()


# signals, on a real process -------------------------------------------------------------------------------------


def _start(data: Path, out: Path, cache: Path, *extra) -> subprocess.Popen:
    args = [
        sys.executable,
        "-m",
        "ssrbench.cli",
        "run",
        *TINY,
        "--data-dir",
        str(data),
        "--no-download",
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--modes",
        "classifier-first",
        "--epochs-head",
        "60",
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(proc: subprocess.Popen, cache: Path, pattern: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not list(cache.glob(pattern)):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < end, f"no {pattern} in the cache in time"
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)])
def test_interrupted_run_writes_nothing_keeps_models_and_resumes(data, tmp_path, sig, status):
    out, cache = tmp_path / "board.json", tmp_path / "cache"
    out.write_bytes(FIXTURE.read_bytes())
    before = out.read_bytes()
    proc = _start(data, out, cache)
    _wait_for(proc, cache, "*.partial.pt")  # the classifier is cached; its heads have finished an epoch
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == status, output
    if sig == signal.SIGINT:
        assert "interrupted" in output and "Traceback" not in output
    assert out.read_bytes() == before
    (kept,) = cache.glob("*.partial.pt")  # the heads' last finished epoch
    assert 1 <= torch.load(kept, weights_only=True)["epoch"] < 60
    resumed = _start(data, out, cache)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    stages = {r.stage: r.cached for r in store.load(out).training}
    assert stages == {"classifier": True, "classifier-first/rotation": False}
    assert not kept.exists()


def test_compare_caption_states_the_alpha_it_judged_with(tmp_path):
    store.save(store.load(FIXTURE), tmp_path / "a.json")
    res = invoke("compare", tmp_path / "a.json", tmp_path / "a.json", "--alpha", "0.01", "--threshold", "2")
    assert res.exit_code == 0, res.output
    assert "p < 0.01" in res.output and "p < 0.05" not in res.output and "≥ 2 points" in res.output


def test_a_config_shadowing_a_built_in_is_announced_and_recorded(data, tmp_path):
    mine = tmp_path / "mine" / "attacks"
    mine.mkdir(parents=True)
    (mine / "fgsm.toml").write_text('kind = "fgsm"\n[params]\neps = "4/255"\n')
    res = smoke(
        data, tmp_path / "o.json", tmp_path / "cache", "--modes", "multitask", "--config-dir", tmp_path / "mine"
    )
    assert res.exit_code == 0, res.output
    board = store.load(tmp_path / "o.json")
    (cell,) = board.cells
    assert cell.attack.config_file == str(mine / "fgsm.toml") and cell.attack.params["eps"] == 4 / 255
    assert cell.task.config_file is None  # the built-in rotation config
    assert any("shadows" in n and str(mine / "fgsm.toml") in n for n in board.notes)


def test_a_value_that_cannot_be_recorded_is_an_error_naming_the_cell():
    from ssrbench.core.errors import SSRBenchError
    from ssrbench.run.units import _cell

    cell = store.load(FIXTURE).cells[0]
    fields = cell.model_dump(exclude={"clean", "clean_rev", "adv", "adv_rev"})
    fields["pretext"]["adversarial"] = float("nan")
    flags = {m: getattr(cell, m).flags() for m in ("clean", "clean_rev", "adv", "adv_rev")}
    with pytest.raises(SSRBenchError, match="multitask/inpaint/fgsm: the run produced a value that cannot be"):
        _cell("multitask/inpaint", "fgsm", **fields, **flags)


# --- round two: terminal injection ---
# Everything read from a file is printed as text: a leaderboard's names, notes and command, a config's
# description, an error that quotes them. Control sequences are shown escaped (\x1b), never sent to the
# terminal; rich markup in them is shown, never applied (nor a MarkupError); a Markdown cell keeps its table.

import re  # noqa: E402 -- this section's own, kept here so that the sections merge as appended

from ssrbench.core.plaintext import printable  # noqa: E402

OSC_TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
C1_CSI = "\x9b2J"  # the same, as one C1 character
HOSTILE_TASK = f"inp{CLEAR}[/x]"  # a closing tag with no opening: rich's MarkupError
HOSTILE_ATTACK = f"fgsm{OSC_TITLE}[red]"
HOSTILE_NOTE = f"see [link=https://evil.example]here[/link] {C1_CSI} [bold red]now[/bold red] {OSC_TITLE} {CLEAR}|x"
HOSTILE_DEVICE = f"cpu{C1_CSI}\x7f[/x]"
HOSTILE_COMMAND = ["ssrbench", "run", f"--tasks=[bold red]x{OSC_TITLE}"]
RAW = ("\x07", "\x9b", "\x7f", "\x1b]0;", "\x1b[2J", "evil.example\x1b")
# what rich itself writes to a terminal: colours, the cursor hidden and shown, a line cleared, links to source files
RICH_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\]8;[^;\x1b]*;(file://[^\x1b]*)?\x1b\\")


def shown(value: str) -> str:
    """How a file's string must look once printed: its control characters escaped."""
    return printable(value)


def hostile_board(seeds: tuple[int, ...] = (0,)):
    """The committed fixture with control sequences and rich markup in its free text -- names (renamed
    everywhere they are recorded), notes, device, command -- and otherwise valid; one copy of its cells
    per seed."""
    from ssrbench.core.hashing import config_hash
    from ssrbench.leaderboard.schema import DERIVED

    doc = json.loads(store.dumps(store.load(FIXTURE)))
    for view in DERIVED:  # recomputed from the doctored cells
        doc.pop(view)
    cells = []
    for seed in seeds:
        for c in json.loads(json.dumps(doc["cells"])):
            c["seed"] = seed
            c["task"]["name"] = HOSTILE_TASK
            if c["attack"]["name"] == "fgsm":
                c["attack"]["name"] = HOSTILE_ATTACK
            cells.append(c)
    doc["cells"] = cells
    for t in doc["config"]["tasks"]:
        t["name"] = HOSTILE_TASK
    for a in doc["config"]["attacks"]:
        if a["name"] == "fgsm":
            a["name"] = HOSTILE_ATTACK
    for r in doc["training"]:
        r["stage"] = r["stage"].replace("/inpaint", f"/{HOSTILE_TASK}")
    doc["config_hash"] = config_hash(doc["config"])
    doc.update(notes=[HOSTILE_NOTE], command=HOSTILE_COMMAND)
    doc["environment"]["device_name"] = HOSTILE_DEVICE
    return store.loads(json.dumps(doc), "hostile.json")


@pytest.fixture
def hostile(tmp_path, monkeypatch) -> Path:
    """A folder with one.json (one seed) and seeds.json (two); rich renders as for a terminal, so markup would
    apply and escapes would reach the screen."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    store.save(hostile_board(), tmp_path / "one.json")
    store.save(hostile_board((0, 1)), tmp_path / "seeds.json")
    return tmp_path


def assert_plain(output: str, *visible: str) -> None:
    """No control sequence of the file reached the output; each of ``visible`` is there, escaped."""
    for raw in RAW:
        assert raw not in output, f"{raw!r} reached the terminal:\n{output}"
    plain = RICH_OWN.sub("", output)
    assert "\x1b" not in plain, plain
    for v in visible:
        assert shown(v) in plain, f"{shown(v)!r} not shown:\n{plain}"


INJECTED = [  # command, format, what must be visible (escaped); compare's JSON is json.dumps's, ASCII already
    (["show", "one.json"], "rich", [HOSTILE_TASK, HOSTILE_ATTACK, HOSTILE_NOTE]),
    (["show", "one.json"], "markdown", [HOSTILE_TASK, HOSTILE_ATTACK, HOSTILE_DEVICE]),
    (["show", "one.json"], "json", []),
    (["show", "seeds.json"], "rich", [HOSTILE_TASK, HOSTILE_NOTE]),
    (["show", "seeds.json", "--per-seed"], "markdown", [HOSTILE_TASK, HOSTILE_ATTACK]),
    (["compare", "one.json", "one.json"], "rich", [HOSTILE_TASK]),
    (["compare", "one.json", "one.json"], "markdown", [HOSTILE_TASK, HOSTILE_ATTACK]),
    (["task-ranking", "one.json"], "rich", []),
    (["task-ranking", "one.json"], "markdown", [HOSTILE_TASK]),
    (["versus-report", "one.json"], "rich", []),
    (["versus-report", "one.json"], "markdown", [" ".join(HOSTILE_COMMAND)]),
    (["base-findings", "one.json"], "rich", []),
    (["base-findings", "one.json"], "markdown", [HOSTILE_TASK, HOSTILE_DEVICE]),
    (["seed-findings", "seeds.json"], "rich", []),
    (["seed-findings", "seeds.json"], "markdown", [HOSTILE_TASK, HOSTILE_ATTACK, HOSTILE_DEVICE]),
]


@pytest.mark.parametrize("args,fmt,visible", INJECTED, ids=[f"{a[0]}-{a[1]}-{f}" for a, f, _ in INJECTED])
def test_a_files_strings_are_printed_as_text(hostile, monkeypatch, args, fmt, visible):
    monkeypatch.chdir(hostile)
    res = invoke(*args, "--format", fmt)
    assert res.exit_code == 0, (res.output, res.exception)
    assert_plain(res.output, *visible)
    if fmt == "json":  # the same JSON value, only its unprintable characters written as \u escapes
        data = json.loads(res.output)
        if args[0] == "show":
            assert data["notes"] == [HOSTILE_NOTE] and data["environment"]["device_name"] == HOSTILE_DEVICE
        else:
            assert {r["task"] for r in data} == {HOSTILE_TASK}


def test_a_markdown_table_keeps_its_columns():
    """A ``|`` or a newline in a name stays inside its cell: every row of a table has its header's columns."""
    from ssrbench.leaderboard.render import markdown

    board = hostile_board()
    board.cells[0].task.name = "a|b\nc"
    text = markdown(board)
    assert "a\\|b\\nc" in text
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("| ")]
    assert tables
    for table in tables:
        assert len({len(re.split(r"(?<!\\)\|", row)) for row in table}) == 1, table


def test_merge_and_its_message_print_as_text(hostile, monkeypatch):
    """Merging files with hostile names works, and its message (naming the output) is text."""
    board = store.load(hostile / "one.json")
    for mode in ("multitask", "classifier-first"):
        half = board.model_copy(update={"cells": [c for c in board.cells if c.mode == mode]})
        store.save(half, hostile / f"{mode}.json")
    monkeypatch.chdir(hostile)
    out = f"m[/x]{CLEAR}.json"
    res = invoke("merge", "multitask.json", "classifier-first.json", "--out", out)
    assert res.exit_code == 0, (res.output, res.exception)
    assert_plain(res.output, out)


def test_an_error_quoting_a_file_prints_as_text(hostile, monkeypatch):
    """A message that quotes a file's names (versus-report refusing two FGSM cells of one mode, naming their
    attacks) is shown escaped, on one line; so is a refused file's (a duplicated cell)."""
    board = store.load(hostile / "one.json")
    fgsm = next(c for c in board.cells if c.attack.kind == "fgsm")
    twin = fgsm.model_copy(update={"attack": fgsm.attack.model_copy(update={"name": f"{HOSTILE_ATTACK}2"})})
    store.save(board.model_copy(update={"cells": [*board.cells, twin]}), hostile / "twins.json")
    doc = json.loads((hostile / "one.json").read_text())
    doc["cells"].append(doc["cells"][0])
    for view in ("worst_case", "warnings", "aggregates", "versus_base", "detection", "gated"):
        doc.pop(view)
    (hostile / "dup.json").write_text(json.dumps(doc))
    monkeypatch.chdir(hostile)
    res = invoke("versus-report", "twins.json")
    assert res.exit_code == 2, res.output
    assert "several fgsm cells" in error_line(res)
    assert_plain(res.output, f"{HOSTILE_ATTACK}, {HOSTILE_ATTACK}2")
    for cmd in (["show", "dup.json"], ["merge", "dup.json", "one.json", "--out", "m.json"]):
        res = invoke(*cmd)
        assert res.exit_code == 2, (cmd, res.output)
        error_line(res)
        assert_plain(res.output)


def test_friendly_errors_print_as_text():
    """Whatever an ssrbench error quotes (a config's value, a plugin's message) is escaped on the way out."""
    import click

    from ssrbench.cli.app import _friendly
    from ssrbench.core.errors import ConfigError

    @click.command()
    @_friendly
    def fails():
        raise ConfigError(f"x.toml: bad value {HOSTILE_NOTE}")

    res = CliRunner().invoke(fails, [])
    assert res.exit_code == 2
    assert_plain(res.output, HOSTILE_NOTE)


def test_list_shows_a_configs_description_and_name_as_text(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    attacks = tmp_path / "mine" / "attacks"
    attacks.mkdir(parents=True)
    description = HOSTILE_NOTE.replace("\x1b", "\\u001b").replace("\x07", "\\u0007").replace("\x9b", "\\u009b")
    (attacks / "evil.toml").write_text(f'description = "{description}"\nkind = "fgsm"\n[params]\neps = "8/255"\n')
    (attacks / "[bold]x.toml").write_text('kind = "fgsm"\n[params]\neps = "8/255"\n')
    res = invoke("list", "attacks", "--config-dir", tmp_path / "mine")
    assert res.exit_code == 0, (res.output, res.exception)
    assert_plain(res.output, "[bold]x")
    assert "[bold red]now" in RICH_OWN.sub("", res.output) and "\\x9b2J" in RICH_OWN.sub("", res.output)


def test_progress_logs_and_bars_print_as_text():
    """The run's log quotes config names and notes; its bars name stages after configs."""
    from rich.console import Console

    from ssrbench.core.progress import Reporter

    out = io.StringIO()
    with Reporter(Console(file=out, force_terminal=True, width=300)) as reporter:
        reporter.log(HOSTILE_NOTE, style="yellow")
        with reporter.bar(f"multitask/{HOSTILE_TASK}", 2) as advance:
            advance(1, info=HOSTILE_ATTACK)
    assert_plain(out.getvalue(), HOSTILE_NOTE, f"multitask/{HOSTILE_TASK}", HOSTILE_ATTACK)


# --- round two: leaderboard readers ---
# Every command that reads a leaderboard turns a malformed file into one line and exit 2: bytes that are not
# UTF-8 or not JSON, nesting and numbers past Python's limits, schema-1 parts of the wrong shape (migrated
# before validation), files that are not regular files, files over the size limit. Revisions never reach git
# as options, and merge counts no cell twice.

import threading  # noqa: E402

from ssrbench.leaderboard.compare import load_side  # noqa: E402
from ssrbench.leaderboard.schema import DERIVED  # noqa: E402

# each reader given a leaderboard file ``p`` (``o``: a path it may write)
READERS = {
    "show": lambda p, o: ["show", p],
    "show --format json": lambda p, o: ["show", "--format", "json", p],
    "compare (old)": lambda p, o: ["compare", p, FIXTURE],
    "compare (new)": lambda p, o: ["compare", FIXTURE, p],
    "merge": lambda p, o: ["merge", FIXTURE, p, "--out", o / "merged.json"],
    "plot": lambda p, o: ["plot", p, "--kind", "pareto", "--out", o / "figure.png"],
    "curves": lambda p, o: ["curves", p],
    "task-ranking": lambda p, o: ["task-ranking", p],
    "base-findings": lambda p, o: ["base-findings", p],
    "seed-findings": lambda p, o: ["seed-findings", p],
    "versus-report": lambda p, o: ["versus-report", p],
}


def _v1(change) -> bytes:
    """The schema-1 fixture, doctored by ``change`` before it is migrated."""
    doc = json.loads(FIXTURE.read_text())
    change(doc)
    return json.dumps(doc).encode()


def _set_in_first_cell(*keys, value):
    def change(doc):
        target = doc["cells"][0]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


MALFORMED = {
    "not UTF-8": (b'{"schema_version": 5, "notes": ["\xff\xfe"]}', "not UTF-8"),
    "random bytes": (np.random.default_rng(0).bytes(2048), "not UTF-8"),
    "nested 200,000 deep": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "a 5,000-digit integer": (b'{"schema_version": 1, "seed": ' + b"7" * 5000 + b"}", "a number of more than"),
    "schema 1, cells not objects": (_v1(lambda d: d.update(cells=[1, "cell"])), "cells[0]"),
    "schema 1, cells not a list": (_v1(lambda d: d.update(cells=5)), "cells"),
    "schema 1, attack a list": (
        _v1(_set_in_first_cell("attack", value=["fgsm"])),
        "cell inpaint/multitask/? seed 0: attack",
    ),
    "schema 1, params a list": (_v1(_set_in_first_cell("attack", "params", value=[0.03])), "params"),
    "schema 1, eps beyond a float": (_v1(_set_in_first_cell("attack", "params", "eps", value=10**400)), "eps"),
    "schema 1, steps not a number": (_v1(_set_in_first_cell("attack", "params", "steps", value="ten")), "steps"),
    "schema 1, worst case not objects": (_v1(lambda d: d.update(worst_case=[1])), "worst_case"),
    "a lone surrogate": (
        json.dumps({**json.loads(store.dumps(store.load(FIXTURE))), "notes": ["\ud800"]}).encode(),
        "lone UTF-16 surrogate",
    ),
    "a stored view of the wrong shape": (
        json.dumps({**json.loads(store.dumps(store.load(FIXTURE))), "worst_case": [{"defended": [1]}]}).encode(),
        "stored worst_case does not match",
    ),
}


WRONG_SHAPES = [None, "x", 10**30, [1], {"a": 1}, [{"defended": [1]}]]  # the last: objects of the wrong shape


def _parts(doc, depth, prefix=()):
    """Every key path of ``doc`` ``depth`` levels down (of a list, its first item)."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc[:1]) if isinstance(doc, list) else []
    for k, v in items:
        yield prefix + (k,)
        if depth > 1:
            yield from _parts(v, depth - 1, prefix + (k,))


@pytest.mark.parametrize("schema,depth", [(1, 3), (5, 2)])  # schema 1: down to a cell's attack
def test_any_part_of_the_wrong_shape_is_a_leaderboard_error(schema, depth):
    """Each part of a schema-1 file (migrated first) or a current one, replaced by a value of another type:
    a LeaderboardError (or a valid board), never another exception."""
    source = json.loads(FIXTURE.read_text() if schema == 1 else store.dumps(store.load(FIXTURE)))
    for part in _parts(source, depth):
        for wrong in WRONG_SHAPES:
            doc = json.loads(json.dumps(source))
            target = doc
            for k in part[:-1]:
                target = target[k]
            target[part[-1]] = wrong
            try:
                store.loads(json.dumps(doc), "doctored.json")
            except store.LeaderboardError:
                pass


def _refused(res, path) -> str:
    """Exit 2, one error line naming ``path``, no traceback."""
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert str(path) in line, line
    return res.output


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("malformed", MALFORMED)
def test_every_reader_refuses_a_malformed_leaderboard_in_one_line(tmp_path, reader, malformed):
    data, reason = MALFORMED[malformed]
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    output = _refused(invoke(*READERS[reader](path, tmp_path)), path)
    assert reason in output, output
    assert not (tmp_path / "merged.json").exists() and not (tmp_path / "figure.png").exists()


def test_json_nested_within_python_s_limit_but_beyond_any_leaderboard_is_refused(tmp_path):
    """900 levels parse, but pydantic cannot dump them (show --format json crashed): refused on load."""
    doc = json.loads(FIXTURE.read_text())
    doc["config"]["deep"] = "HERE"
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc).replace('"HERE"', "[" * 900 + "]" * 900))
    assert "nested deeper" in _refused(invoke("show", "--format", "json", path), path)


def _call_with_deadline(fn, unblock: Path, seconds: float = 20.0, what: str = "a reader"):
    """``fn()`` in a thread, its result or exception; a FIFO reader still blocked after ``seconds`` is released
    and the test fails instead of hanging."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        try:
            os.close(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        thread.join(seconds)
        pytest.fail(f"{what} blocked on a FIFO for {seconds:.0f} s")
    return box


def _run_with_deadline(args, unblock: Path, seconds: float = 20.0) -> Result:
    """``invoke(*args)`` under ``_call_with_deadline``."""
    box = _call_with_deadline(lambda: invoke(*args), unblock, seconds, what=str(args[0]))
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("reader", READERS)
def test_no_reader_blocks_on_a_fifo(tmp_path, reader):
    fifo = tmp_path / "board.json"
    os.mkfifo(fifo)
    output = _refused(_run_with_deadline(READERS[reader](fifo, tmp_path), fifo), fifo)
    assert "named pipe" in output and "regular file" in output


@pytest.mark.parametrize("reader", ["show", "merge"])
def test_a_directory_is_refused_as_not_a_regular_file(tmp_path, reader):
    folder = tmp_path / "board.json"
    folder.mkdir()
    assert "(a directory); give a regular file" in _refused(invoke(*READERS[reader](folder, tmp_path)), folder)


def test_a_symlink_to_dev_zero_is_refused_without_reading_it(tmp_path):
    """In a child process with 1.5 GiB of address space and a deadline: a regression (reading /dev/zero until
    memory runs out) fails this test instead of the machine."""
    link = tmp_path / "board.json"
    link.symlink_to("/dev/zero")
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
        "from ssrbench.leaderboard.compare import load_side\n"
        "from ssrbench.leaderboard.store import LeaderboardError\n"
        "try:\n    load_side(sys.argv[1])\nexcept LeaderboardError as exc:\n    print(exc); sys.exit(2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(link)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{link}: cannot read (a device); give a regular file" in proc.stdout


@pytest.mark.parametrize("reader", READERS)
def test_a_file_over_the_size_limit_is_refused(tmp_path, monkeypatch, reader):
    monkeypatch.setattr(fileio, "MAX_READ_BYTES", 1000)  # the fixture is 13 kB
    assert "larger than 1000 bytes" in _refused(invoke(*READERS[reader](FIXTURE, tmp_path)), FIXTURE)


def test_the_size_limit_leaves_ample_room_for_real_leaderboards():
    largest = max(p.stat().st_size for p in Path(__file__).resolve().parent.parent.glob("leaderboards/**/*.json"))
    assert 100 * largest < fileio.MAX_READ_BYTES


def _repo_with_board(root: Path) -> Path:
    git = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)  # noqa: E731
    root.mkdir()
    git("init", "-q")
    (root / "board.json").write_bytes(FIXTURE.read_bytes())
    git("add", ".")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "board")
    return root


@pytest.mark.parametrize("command", [["show"], ["compare", FIXTURE], ["merge", FIXTURE, "--out", "m.json"]])
def test_a_revision_never_reaches_git_as_an_option(tmp_path, monkeypatch, command):
    """``--output=FILE:x`` would make ``git show`` write FILE."""
    monkeypatch.chdir(_repo_with_board(tmp_path / "repo"))
    spec = f"--output={tmp_path / 'FILE'}:x"
    res = (
        invoke(command[0], "--", spec, *command[1:])
        if command[0] != "merge"
        else invoke("merge", "--out", "m.json", "--", FIXTURE, spec)
    )
    assert "cannot start with '-'" in _refused(res, spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    assert not Path("m.json").exists()


def test_git_is_told_where_its_options_end(tmp_path):
    """Even a revision that got past the check is no option to git (``--end-of-options``)."""
    from ssrbench.leaderboard import compare

    repo = _repo_with_board(tmp_path / "repo")
    with pytest.raises(store.LeaderboardError, match="git cannot read it"):
        compare._git_show(f"--output={tmp_path / 'FILE'}:x", repo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_a_file_read_through_git_is_capped_too(tmp_path, monkeypatch):
    repo = _repo_with_board(tmp_path / "repo")
    assert load_side("HEAD:board.json", repo).cells  # the fixture (13 kB) reads under the limit ...
    monkeypatch.setattr(fileio, "MAX_READ_BYTES", 1000)
    with pytest.raises(store.LeaderboardError, match=r"HEAD:board.json: larger than 1000 bytes"):
        load_side("HEAD:board.json", repo)  # ... and is refused over it, while git streams it


@pytest.mark.parametrize("second", ["same path", "symlink", "copy"])
def test_merge_refuses_to_count_a_cell_twice(tmp_path, second):
    """One file given twice, or two files holding the same cell: the merged totals would count it twice."""
    first = tmp_path / "a.json"
    first.write_bytes(FIXTURE.read_bytes())
    other = {"same path": first, "symlink": tmp_path / "link.json", "copy": tmp_path / "copy.json"}[second]
    if second == "symlink":
        other.symlink_to(first)
    elif second == "copy":
        other.write_bytes(FIXTURE.read_bytes())
    out = tmp_path / "merged.json"
    line = error_line(res := invoke("merge", first, other, "--out", out))
    assert res.exit_code == 2 and str(first) in line and str(other) in line, res.output
    assert ("the same file given twice" if second != "copy" else "both hold the cell") in line
    assert not out.exists()


def _mixed_bases() -> store.Leaderboard:
    """The fixture with its two modes judged against different static bases: versus_base cannot be computed."""
    board = store.load(FIXTURE)
    cells = [
        c.model_copy(update={"base_weights_sha256": ("a" if c.mode == "classifier-first" else "b") * 64})
        for c in board.cells
    ]
    return board.model_copy(update={"cells": cells})


def test_a_derived_view_that_cannot_be_computed_is_a_leaderboard_error_when_writing(tmp_path):
    with pytest.raises(store.LeaderboardError, match="another static base"):
        store.dumps(_mixed_bases())
    with pytest.raises(store.LeaderboardError, match="refusing to write .*another static base"):
        store.save(_mixed_bases(), tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_a_file_whose_derived_view_cannot_be_computed_is_refused_on_load(tmp_path):
    """A file without a stored versus_base (older schemas, or one removed) is not checked against a stored
    copy: it is computed on load, so no reader meets the error later, as a traceback."""
    doc = _mixed_bases().model_dump(mode="json", exclude=set(DERIVED))
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc))
    assert "another static base" in _refused(invoke("show", path), path)


# --- round two: command-line values and configs ---------------------------------------------------------------
# Every value is refused as it is read, in one line naming it, before any data is read or anything is built
# from it: the runs point at a data folder that does not exist, so a value that slipped through would end
# in "CIFAR-10 not found" (exit 1) -- or in the OverflowError, MemoryError, segfault or torch error of issue 31.

BIG = "1" + "0" * 400  # a 400-digit integer: past any float, and a 401-character option value


def refused(tmp_path, *args, command: str = "run") -> Result:
    """``ssrbench run ARGS`` on no data: exit 2 within seconds, before the data, in one error line."""
    extra = (
        [
            "--preset",
            "smoke",
            "--backbone",
            "test_efficientnet",
            "--data-dir",
            tmp_path / "no-data",
            "--no-download",
            "--out",
            tmp_path / "o.json",
            "--cache-dir",
            tmp_path / "cache",
            "--quiet",
        ]
        if command == "run"
        else []
    )
    start = time.monotonic()
    res = invoke(command, *extra, *args)
    assert time.monotonic() - start < 10, "a refusal should take no work"
    assert res.exit_code == 2, res.output
    assert "CIFAR-10 not found" not in res.output
    error_line(res)
    return res


def refused_at_once(tmp_path, *args, command: str = "run") -> str:
    return error_line(refused(tmp_path, *args, command=command))


@pytest.mark.parametrize(
    "args,named",
    [
        (["--attack-eps", "1e400"], "'1e400' is too large for a number"),
        (["--reverse-eps", "1e400"], "'1e400' is too large for a number"),
        (["--lr", "1e400"], "'1e400' is too large for a number"),
        (["--attack-eps", f"{BIG}/255"], "too large for a number"),
        (["--reverse-eps", f"1/255,{BIG}/1"], "too large for a number"),
        (["--lr", f"{BIG}/1"], "(403 characters) is too large for a number"),
        (["--head-lr", BIG], "is too large for a number"),
        (["--cpus-per-task", f"{BIG}/1", "--executor", "ray"], "too large for a number"),
    ],
    ids=[
        "attack-eps",
        "reverse-eps",
        "lr-exponent",
        "attack-eps-fraction",
        "reverse-eps-fraction",
        "lr",
        "head-lr",
        "cpus-per-task",
    ],
)
def test_numbers_past_a_float_are_refused_as_read(tmp_path, args, named):
    line = refused_at_once(tmp_path, *args)
    assert args[0] in line and named in line
    assert len(line) < 400  # the value is named, shortened -- not 400 digits


def test_compare_reads_its_numbers_by_the_same_rule(tmp_path):
    line = refused_at_once(tmp_path, "a.json", "b.json", "--threshold", f"{BIG}/1", command="compare")
    assert "--threshold" in line and "too large for a number" in line


@pytest.mark.parametrize(
    "args,named",
    [
        (["--attack-steps", "1..3000000000"], "3000000000 steps is above the maximum of 10000"),
        (["--reverse-steps", "0..3000000000"], "3000000000 steps is above the maximum of 10000"),
        (["--attack-steps", f"1..{BIG}"], "steps is above the maximum of 10000"),
        (["--seeds", "3000000000"], "'3000000000': a count of seeds must be at most 1000"),
        (["--seeds", "0,4294967296"], "seed 4294967296 is above 4294967295"),
        (["--seed", str(2**64)], "18446744073709551616 is not in the range 0<=x<=4294967295"),
        (["--seed", str(2**32)], "4294967296 is not in the range"),
        (["--threads", "2147483648"], "2147483648 is not in the range 1<=x<=1024"),
        (["--threads", "100000"], "100000 is not in the range 1<=x<=1024"),
        (["--epochs-classifier", "3000000000"], "3000000000 is not in the range"),
        (["--epochs-head", "3000000000"], "3000000000 is not in the range"),
        (["--epochs-multitask", "3000000000"], "3000000000 is not in the range"),
        (["--train-images", "3000000000"], "3000000000 is not in the range"),
        (["--eval-images", "3000000000"], "3000000000 is not in the range"),
        (["--batch-size", "3000000000"], "3000000000 is not in the range"),
        (["--eval-batch-size", "3000000000"], "3000000000 is not in the range"),
        (["--max-retries", "3000000000", "--executor", "ray"], "3000000000 is not in the range 0<=x<=10"),
        (["--gpus-per-task", "3000000000", "--executor", "ray"], "must be at most 64"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_counts_seeds_and_threads_have_an_upper_bound(tmp_path, args, named):
    line = refused_at_once(tmp_path, *args)
    assert args[0] in line and named in line


def test_every_seed_the_run_derives_from_the_largest_seed_fits_torch_and_numpy():
    """MAX_SEED is what every generator takes, after the offsets the run adds to it."""
    import random
    import zlib

    from ssrbench.core.limits import MAX_SEED
    from ssrbench.run.evaluate import _seeded

    _seeded(MAX_SEED, "evaluate/" + "x" * 200, torch.device("cpu"))  # seed * 1_000_003 + crc32(name)
    assert zlib.crc32(b"\xff" * 64) < 2**32
    for derived in (MAX_SEED, MAX_SEED + 1, MAX_SEED + 2, MAX_SEED * 1_000_003 + 2**32 - 1):
        torch.Generator().manual_seed(derived)
        torch.manual_seed(derived)
        np.random.default_rng(derived)
        random.seed(derived)
    np.random.seed(MAX_SEED)  # numpy's legacy seeding: 0 .. 2**32 - 1
    torch.manual_seed(0)
    from pydantic import ValidationError

    from ssrbench.core.presets import PRESETS
    from ssrbench.run.spec import RunSpec

    spec = dict(tasks=[], attacks=[], modes=[], preset_name="smoke", preset=PRESETS["smoke"])
    assert RunSpec(**spec, seed=MAX_SEED).seed == MAX_SEED  # the library's spec holds the same bound
    for bad in ({"seed": MAX_SEED + 1}, {"seeds": [0, MAX_SEED + 1]}):
        with pytest.raises(ValidationError):
            RunSpec(**spec, **bad)


@pytest.mark.parametrize(
    "address,why",
    [
        ("localhost:99999", "the port 99999 is outside 1..65535"),
        ("localhost:abc", "the port 'abc' is not a number"),
        ("[::1", "never closed"),
        ("::1:6379", "an IPv6 address needs brackets"),
        ("ray://[::1:10001", "never closed"),
        ("ray://localhost:999999999999999999999", "is not a number 1..65535"),
    ],
)
def test_malformed_ray_addresses_are_refused_by_their_form(tmp_path, address, why):
    line = refused_at_once(tmp_path, "--executor", "ray", "--address", address)
    assert "--address" in line and repr(address) in line and why in line and "host:port" in line


def test_the_address_forms_ray_takes_are_accepted_without_ray():
    from ssrbench.run.ray_address import RayAddress, parse_address

    assert parse_address("auto") is None and parse_address("local") is None
    assert parse_address("10.0.0.1:6379") == RayAddress(None, "10.0.0.1", 6379)
    assert parse_address("head-node.example.org:6379") == RayAddress(None, "head-node.example.org", 6379)
    assert parse_address("[::1]:6379") == RayAddress(None, "::1", 6379)
    assert parse_address("ray://[fe80::1]:10001") == RayAddress("ray", "fe80::1", 10001)
    assert parse_address("ray://localhost:10001") == RayAddress("ray", "localhost", 10001)


@pytest.mark.parametrize("device", ["meta", "mps", "xpu", "cpu:1", "cuda:abc"])
def test_devices_this_run_cannot_use_are_refused_up_front(tmp_path, device):
    line = refused_at_once(tmp_path, "--device", device)
    assert "--device" in line and device in line and "available" in line and "cpu" in line


def test_the_usable_devices_still_resolve():
    from ssrbench.models.environment import available_devices, resolve_device

    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("auto").type in ("cpu", "cuda")
    assert "cpu" in available_devices()


def _config_dir(tmp_path, files: dict[str, bytes | str]) -> Path:
    root = tmp_path / "mine"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


@pytest.mark.parametrize(
    "files,names,named",
    [
        ({"attacks/huge.toml": 'kind = "fgsm"\n[params]\neps = "1e400"\n'}, ["--attacks", "huge"], "'1e400'"),
        (
            {"attacks/huge.toml": f'kind = "fgsm"\n[params]\neps = "{BIG}/255"\n'},
            ["--attacks", "huge"],
            "too large for a number",
        ),
        ({"tasks/huge.toml": 'kind = "rotation"\n[reverse]\neps = "1e400"\n'}, ["--tasks", "huge"], "'1e400'"),
        (
            {"tasks/huge.toml": 'kind = "rotation"\n[params]\nmultitask_weight = "1e400"\n'},
            ["--tasks", "huge"],
            "finite number",
        ),
        (
            {"tasks/huge.toml": 'kind = "contrastive"\n[params]\ntemperature = inf\n'},
            ["--tasks", "huge"],
            "finite number",
        ),
        (
            {"tasks/huge.toml": 'kind = "jigsaw"\n[params]\neval_seed = 18446744073709551616\n'},
            ["--tasks", "huge"],
            "eval_seed",
        ),
        ({"attacks/latin.toml": b'kind = "fgsm"\ndescription = "caf\xe9"\n'}, ["--attacks", "latin"], "not UTF-8"),
    ],
    ids=["eps", "eps-fraction", "reverse-eps", "weight", "inf", "seed", "latin-1"],
)
def test_bad_numbers_and_bytes_in_a_config_name_the_file(tmp_path, files, names, named):
    root = _config_dir(tmp_path, files)
    res = refused(tmp_path, "--config-dir", root, *names)
    assert str(root / next(iter(files))) in error_line(res)
    assert named in res.output  # on the error line, or on the field's line below it (format_validation_error)


def _chain(depth: int) -> dict[str, str]:
    """attacks/c0.toml extends c1 ... extends c{depth - 1}, which is FGSM: ``depth`` files."""
    files = {f"attacks/c{i}.toml": f'extends = "c{i + 1}"\n' for i in range(depth - 1)}
    files[f"attacks/c{depth - 1}.toml"] = 'kind = "fgsm"\n'
    return files


def test_an_extends_chain_1200_files_deep_is_refused_naming_the_file(tmp_path):
    root = _config_dir(tmp_path, _chain(1200))
    line = refused_at_once(tmp_path, "--config-dir", root, "--attacks", "c0")
    assert str(root / "attacks" / "c0.toml") in line and "more than 32 files deep" in line


def test_an_extends_chain_is_bounded_at_32_files(tmp_path):
    from ssrbench.core.errors import ConfigError
    from ssrbench.run.config import MAX_EXTENDS, load_attack_config

    assert MAX_EXTENDS == 32
    root = _config_dir(tmp_path, _chain(MAX_EXTENDS))
    assert load_attack_config("c0", [root]).kind == "fgsm"
    root = _config_dir(tmp_path / "deeper", _chain(MAX_EXTENDS + 1))
    with pytest.raises(ConfigError, match="more than 32 files deep"):
        load_attack_config("c0", [root])


def test_an_attack_suite_that_is_not_utf8_is_a_config_error(tmp_path, monkeypatch):
    from ssrbench.core.errors import ConfigError
    from ssrbench.run import suites

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "odd.toml").write_bytes(b'attacks = ["fgsm"] # caf\xe9\n')
    monkeypatch.setattr(suites, "builtin_config_dir", lambda kind: tmp_path)
    with pytest.raises(ConfigError, match=r"odd.toml: not UTF-8"):
        suites.load_suite("odd")


# --progress (issue 31: progress that shows in a log) ------------------------------------------------------------


@pytest.mark.parametrize("value", ["fancy", "PLAIN", ""])
def test_a_bad_progress_value_is_one_line_naming_it_and_the_choices(tmp_path, value):
    res = invoke("run", "--preset", "smoke", "--progress", value, "--out", tmp_path / "o.json")
    assert res.exit_code == 2
    line = error_line(res)
    assert "--progress" in line and repr(value) in line and all(m in line for m in ("auto", "rich", "plain", "none"))


# --- round two: doctored leaderboards ---
# Every stored value that can be derived or cross-checked is checked on load: a doctored file is refused in
# one line naming the file, the cell and the field. The base is a tiny schema-5 run (smoke preset, 16
# synthetic images, rotation and the randomised contrastive task, fgsm and pgd2, both modes; written by
# `ssrbench run` with TINY's options), so it carries every block a check reads: ran_on, randomized, transfer,
# per-image pretext values, threats and training records.

V5 = Path(__file__).parent / "fixtures" / "leaderboard-v5-smoke.json"
ROT, ROT_PGD, CON = (
    0,
    1,
    2,
)  # rotation/multitask/fgsm (deterministic), .../pgd2, contrastive/multitask/fgsm (randomised)
ROT_CF, CON_CF = 4, 6  # the same under classifier-first: no transfer block, whose own rules would speak first


def _set(path: str, value):
    """A doctoring: set the value at a dotted path of the leaderboard's JSON (integers index lists)."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def change(doc):
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value(target[last]) if callable(value) else value

    return change


def _flip_one_clean_flag(doc):
    """The pgd2 cell's Clean, one image flipped but self-consistent (counts, interval): only another cell of
    the same model can tell."""
    from ssrbench.leaderboard.records import Accuracy

    cell = doc["cells"][ROT_PGD]
    flags = Accuracy(**cell["clean"]).flags().copy()
    flags[0] = not flags[0]
    cell["clean"] = Accuracy.from_flags(flags).model_dump(mode="json")


def _one_image_adv(doc):
    from ssrbench.leaderboard.records import Accuracy

    doc["cells"][ROT]["adv"] = Accuracy.from_flags([True]).model_dump(mode="json")


def _one_image_draws(doc):
    from ssrbench.leaderboard.records import Accuracy

    doc["cells"][CON]["randomized"]["all_draws"] = Accuracy.from_flags([False]).model_dump(mode="json")


def _rehashed(change):
    """A doctoring of the config that also recomputes config_hash, as a careful doctor would."""
    from ssrbench.core.hashing import config_hash

    def both(doc):
        change(doc)
        doc["config_hash"] = config_hash(doc["config"])

    return both


def _weaker_attack_in_one_cell(doc):
    """A cell's attack and threat both claim a smaller budget, consistently: only the config says otherwise."""
    cell = doc["cells"][ROT]
    cell["attack"]["params"]["eps"] = cell["threat"]["eps"] = 1 / 255


def _randomized_on_a_deterministic_cell(doc):
    """Three evaluations, self-consistent (every draw = the one draw), on a defense that draws nothing; the
    stored views (which would tell) left out, as they may be: they are recomputed on load."""
    from ssrbench.leaderboard.schema import DERIVED

    for view in DERIVED:
        doc.pop(view, None)
    cell = doc["cells"][ROT_CF]
    cell["randomized"] = {
        "draws": 5,
        "eot_samples": None,
        "fixed_draw": cell["adv_rev"],
        "all_draws": cell["adv_rev"],
        "clean_fixed_draw": cell["clean_rev"],
        "clean_all_draws": cell["clean_rev"],
    }


ROT_CELL, CON_CELL = "cell rotation/multitask/fgsm seed 0", "cell contrastive/multitask/fgsm seed 0"


@pytest.mark.parametrize(
    "change,cell,field",
    [
        (_set(f"cells.{ROT}.ran_on.executor", "banana"), ROT_CELL, "ran_on.executor"),
        (_set(f"cells.{ROT}.ran_on.attempts", 99), ROT_CELL, "ran_on.attempts"),
        (_set(f"cells.{ROT}.ran_on.threads", 4096), ROT_CELL, "ran_on.threads"),
        (_set(f"cells.{ROT}.ran_on.seconds", 1e9), ROT_CELL, "ran_on.seconds"),
        (_set(f"cells.{ROT}.ran_on.attempts", 3), ROT_CELL, "executor local"),  # only Ray retries
        (_randomized_on_a_deterministic_cell, "cell rotation/classifier-first/fgsm seed 0", "reverse_randomized"),
        (
            _set(f"cells.{CON_CF}.randomized", None),
            "cell contrastive/classifier-first/fgsm seed 0",
            "randomized is missing",
        ),
        (_flip_one_clean_flag, "cell rotation/multitask/pgd2 seed 0", "clean differs"),
        (_set(f"cells.{ROT}.preset", "full"), ROT_CELL, "preset 'full'"),
        (_set(f"cells.{ROT}.backbone", "resnet50"), ROT_CELL, "backbone 'resnet50'"),
        (_set("dataset.eval_images", 10_000), "", "dataset.eval_images"),
        (_set("config.preset.epochs_classifier", 99), "", "config_hash"),
        (_set(f"cells.{ROT}.pretext.clean", lambda v: v + 0.5), ROT_CELL, "pretext: clean"),
        (_set(f"cells.{ROT}.threat.eps", 0.9), ROT_CELL, "threat.eps"),
        (_set(f"cells.{ROT_PGD}.threat.steps", 7), "cell rotation/multitask/pgd2 seed 0", "threat.steps"),
        (_set("seconds_total", -1.0), "", "seconds_total"),
        (_set("training.0.seconds", -5.0), "training stage classifier", "seconds"),
        (_set(f"cells.{ROT}.seconds.attack", -2.0), ROT_CELL, "seconds.attack"),
        (_set(f"cells.{ROT}.attack.params.eps", float("nan")), ROT_CELL, "params.eps is nan"),
        (_set("config.attacks.0.params.eps", float("nan")), "", "config.attacks[0].params.eps is nan"),
        (_one_image_adv, ROT_CELL, "adv holds 1 images, clean 16"),
        (_weaker_attack_in_one_cell, ROT_CELL, "attack.params"),
        (_set(f"cells.{ROT}.reverse.steps", 1), ROT_CELL, "reverse.steps 1 is not the config's 10"),
        (_rehashed(_set("config.tasks", 5)), "", "config.tasks is int"),
        (_rehashed(_set("config.preset.backbone", "resnet50")), ROT_CELL, "backbone 'test_efficientnet'"),
        (_rehashed(_set("config.modes", ["multitask"])), "cell rotation/classifier-first/fgsm seed 0", "mode"),
        (_one_image_draws, CON_CELL, "randomized.all_draws holds 1 images, clean 16"),
    ],
    ids=[
        "executor",
        "attempts",
        "threads",
        "ran-seconds",
        "local-retried",
        "randomized",
        "randomized-dropped",
        "clean",
        "preset",
        "backbone",
        "eval-images",
        "config-hash",
        "pretext-mean",
        "threat-eps",
        "threat-steps",
        "seconds-total",
        "training-seconds",
        "cell-seconds",
        "nan-param",
        "nan-config",
        "adv-length",
        "cell-params",
        "cell-reverse",
        "config-shape",
        "config-backbone",
        "config-modes",
        "draws-length",
    ],
)
def test_round_two_doctored_leaderboards_are_refused_naming_cell_and_field(tmp_path, change, cell, field):
    doc = json.loads(V5.read_text())
    change(doc)
    path = tmp_path / "doctored.json"
    path.write_text(json.dumps(doc))
    res = invoke("show", path)
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert res.output.strip() == line, res.output  # the whole output is that one line
    assert str(path) in line and cell in line and field in line, line


def test_round_two_the_undoctored_base_loads_and_shows():
    res = invoke("show", V5)
    assert res.exit_code == 0, res.output
    board = store.load(V5)
    assert board.source_schema_version == 5 and board.dataset.eval_images == 16
    assert any(c.randomized for c in board.cells) and any(c.transfer for c in board.cells)


def test_round_two_a_migrated_schema_1_file_is_checked_too(tmp_path, monkeypatch):
    """Old files are migrated, then held to the same rules (every schema records preset, backbone, config)."""
    doc = json.loads(FIXTURE.read_text())
    doc["cells"][0]["backbone"] = "resnet50"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    line = error_line(invoke("show", path))
    assert "cell inpaint/multitask/fgsm seed 0: backbone 'resnet50'" in line


def test_round_two_merge_of_parts_that_disagree_on_a_models_clean_is_one_line(tmp_path):
    """Two parts of one model (other attacks, evaluated apart) whose Clean differs cannot be one file."""
    board = store.load(V5)
    rot = [c for c in board.cells if c.task.name == "rotation" and c.mode == "multitask"]
    flags = rot[1].clean.flags().copy()
    flags[0] = not flags[0]
    from ssrbench.leaderboard.records import Accuracy

    b = board.model_copy(update={"cells": [rot[1].model_copy(update={"clean": Accuracy.from_flags(flags)})]})
    a = board.model_copy(update={"cells": [rot[0]]})
    with pytest.raises(
        store.LeaderboardError, match="cannot merge a, b: merged: cell rotation/multitask/pgd2 seed 0: clean differs"
    ):
        merge([a, b], ["a", "b"], ["ssrbench", "merge"])


def test_round_two_run_options_are_capped_at_what_a_leaderboard_accepts(tmp_path):
    from ssrbench.core.limits import MAX_RETRIES, MAX_THREADS

    for option, value in (("--threads", MAX_THREADS + 1), ("--max-retries", MAX_RETRIES + 1)):
        res = invoke("run", "--preset", "smoke", option, value, "--out", tmp_path / "o.json")
        assert res.exit_code == 2 and option in res.output, res.output
        assert not (tmp_path / "o.json").exists()


def test_the_docs_failure_limits_are_the_codes():
    """The Failure-behaviour page states the limits; they are read from the code here, so they cannot drift."""
    from ssrbench.core.fileio import MAX_READ_BYTES
    from ssrbench.leaderboard.store import MAX_DEPTH
    from ssrbench.run.config import MAX_EXTENDS

    from .helpers import page_text

    section = page_text("failure.md")
    for claim in (
        f"regular file under {MAX_READ_BYTES // 2**20} MiB",
        f"nested deeper than {MAX_DEPTH} levels",
        f"`extends` chain deeper than {MAX_EXTENDS} files",
    ):
        assert claim in section, claim


# --- round two: cache, checkpoints, outputs, signals, concurrency, plugins ---------------------------------------
# A corrupt *cache* file is a fault: one warning line, then retrained / recomputed, never trusted, never a crash.
# A file the user names (--classifier-checkpoint, --out) that is bad is bad input: exit 2, one line naming it.


def _entry(root: Path, key: str = "k") -> tuple[Path, Path]:
    """A good cache entry ``key`` (weights and record) in ``root``; its two paths."""
    ModelCache(root).save(key, {"w": torch.ones(2, 3)}, {"stage": "x"}, {"seconds": 1.5, "final_logs": {"ce": 0.5}})
    return root / f"{key}.pt", root / f"{key}.json"


def _payload_bytes(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"w": Payload(marker)}, buf)
    return buf.getvalue()


def _one_warning(caught, *parts: str) -> str:
    (message,) = [str(w.message) for w in caught]
    assert "\n" not in message and "weights_only=False" not in message, message
    assert all(p in message for p in parts), message
    return message


@pytest.mark.parametrize(
    "which,content,reason",
    [
        ("pt", b"", "empty or cut short"),
        ("pt", random.Random(0).randbytes(256), "not a file torch.save writes"),
        ("pt", "truncated", "cut short"),
        ("pt", "payload", "objects other than tensors"),
        ("json", b"{not json", "JSONDecodeError"),
        ("json", b"\xff\xfe{}", "UnicodeDecodeError"),
        ("json", b"[1, 2]", "not a JSON object"),
        ("json", b'{"seconds": "fast"}', "seconds is not"),
        ("json", b'{"seconds": NaN}', "seconds is not"),
        ("json", b'{"final_logs": [1]}', "final_logs"),
        ("json", b'{"warnings": "none"}', "warnings is not"),
        ("json", None, "record k.json is missing"),
    ],
)
def test_a_corrupt_cache_entry_warns_once_and_is_retrained(tmp_path, which, content, reason):
    weights, meta = _entry(tmp_path)
    marker = tmp_path / "payload-ran"
    target = weights if which == "pt" else meta
    if content is None:
        target.unlink()
    else:
        content = {"truncated": weights.read_bytes()[:100], "payload": _payload_bytes(marker)}.get(content, content)
        target.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ModelCache(tmp_path).load("k") is None
    _one_warning(caught, str(weights), reason, "retraining")
    assert not marker.exists()


def test_a_cache_entry_of_other_shapes_is_refused_before_any_weight_is_loaded(tmp_path):
    """load_state_dict copies every tensor that fits before it reports one that does not: the stage was then
    'retrained' from the entry's weights, not from its seed."""
    from types import SimpleNamespace

    from ssrbench.core.progress import Reporter
    from ssrbench.training.modes import _cached_or_train

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    spec = {"stage": "shapes"}
    planted = {k: torch.full_like(v, 7.0) for k, v in init.items()} | {"1.weight": torch.ones(5, 4)}
    ModelCache(tmp_path).save(ModelCache.key(spec), planted, spec, {"seconds": 1.0})
    ctx = SimpleNamespace(
        retrain=False, cache=ModelCache(tmp_path), reporter=Reporter(quiet=True), device=torch.device("cpu")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = _cached_or_train(ctx, "toy", spec, model, model.state_dict, lambda resume: {})
    _one_warning(caught, "does not fit", "1.weight (5, 4)", "retraining")
    assert not record.cached
    assert all(torch.equal(model.state_dict()[k], v) for k, v in init.items())  # nothing of the entry was taken


def _toy_stage(root: Path):
    """A tiny stage as train_epochs tracks one (model, SGD + a LambdaLR schedule), for epoch checkpoints."""
    from types import SimpleNamespace

    from ssrbench.training.resume import StageResume

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (t + 1))
    resume = StageResume(ModelCache(root), "k").track(model, SimpleNamespace(main=[(opt, sched)], aux=[]))
    return resume, model, opt, sched


def _kept_epoch(root: Path) -> dict:
    from ssrbench.training.resume import generator_states

    resume, model, opt, sched = _toy_stage(root)
    model(torch.randn(4, 2)).sum().backward()
    opt.step()
    sched.step()
    resume.save(1, 3, generator_states(torch.Generator(), torch.Generator(), torch.device("cpu")))
    return torch.load(root / "k.partial.pt", weights_only=True)


def _doctor_optimizer(good: dict, change) -> dict:
    import copy

    optimizers = copy.deepcopy(good["optimizers"])
    change(optimizers[0][0], optimizers[0][1])
    return dict(good, optimizers=optimizers)


EPOCH_CHECKPOINTS = {  # each loads with weights_only and passed the old checks, then crashed or was recorded
    "epoch beyond the run": lambda g: dict(g, epoch=7),
    "negative epoch": lambda g: dict(g, epoch=-1),
    "fractional epoch": lambda g: dict(g, epoch=1.5),
    "epoch as a tensor": lambda g: dict(g, epoch=torch.tensor(1)),
    "epochs as a float": lambda g: dict(g, epochs=3.0),
    "NaN training time": lambda g: dict(g, seconds=float("nan")),
    "negative training time": lambda g: dict(g, seconds=-5.0),
    "training time as text": lambda g: dict(g, seconds="12"),
    "NaN held-out reading": lambda g: dict(g, history=[float("nan")]),
    "momentum of another shape": lambda g: _doctor_optimizer(
        g, lambda o, s: o["state"][0].update(momentum_buffer=torch.zeros(7))
    ),
    "learning rate as text": lambda g: _doctor_optimizer(g, lambda o, s: o["param_groups"][0].update(lr="fast")),
    "schedule step as text": lambda g: _doctor_optimizer(g, lambda o, s: s.update(last_epoch="x")),
    "NaN schedule rate": lambda g: _doctor_optimizer(g, lambda o, s: s.update(_last_lr=[float("nan")])),
    "float batch count": lambda g: dict(g, model=dict(g["model"], **{"1.num_batches_tracked": torch.tensor(1.5)})),
}


def test_an_epoch_checkpoint_that_does_not_fit_is_warned_and_its_stage_starts_afresh(tmp_path):
    good = _kept_epoch(tmp_path)
    resume, model, opt, _ = _toy_stage(tmp_path)
    assert resume.restore(3)["epoch"] == 1  # the good one resumes
    for name, doctor in EPOCH_CHECKPOINTS.items():
        torch.save(doctor(good), tmp_path / "k.partial.pt")
        resume, model, opt, sched = _toy_stage(tmp_path)
        untouched = {k: v.clone() for k, v in model.state_dict().items()}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert resume.restore(3) is None, name
        _one_warning(caught, "does not fit this stage", "training it from its first epoch")
        assert all(torch.equal(model.state_dict()[k], v) for k, v in untouched.items()), name
        assert not opt.state and resume.seconds_before == 0.0, name
        model(torch.randn(4, 2)).sum().backward()  # and the stage trains on
        opt.step()
        sched.step()


def test_kept_evaluation_batches_of_another_key_or_with_nan_timings_are_not_resumed_from(tmp_path):
    """A NaN or negative timing or count passed the old type checks, and reached the leaderboard -- which
    refuses it only when the whole run is done."""
    with pytest.raises(KeyboardInterrupt):
        toy_evaluate(KeptBatches(ModelCache(tmp_path / "src"), stop_after=2))
    good = torch.load(tmp_path / "src" / "k.eval.pt", weights_only=True)
    other = ModelCache(tmp_path / "other-key")
    other.root.mkdir()
    torch.save(dict(good, key="other"), other.progress_path("k"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert other.load_progress("k") is None
    _one_warning(caught, "evaluation progress", "not the kept batches of this evaluation", "from the first image")
    cache = ModelCache(tmp_path / "nan")  # (a negative count is refused by the same check; one evaluation is enough)
    cache.root.mkdir()
    torch.save(dict(good, seconds_clean=dict(good["seconds_clean"], reverse=float("nan"))), cache.progress_path("k"))
    kept = KeptBatches(cache)
    with pytest.warns(UserWarning, match="do not fit.*clean timings are not numbers"):
        assert toy_evaluate(kept).resumed_after == 0
    assert kept.saves == 5  # evaluated from the first image


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty or cut short"),
        (b"\x89PNG\r\n\x1a\n not weights", "not a file torch.save writes"),
        ("truncated", "cut short"),
        ("payload", "objects other than tensors"),
        ("folder", "is a directory"),
    ],
)
def test_a_bad_classifier_checkpoint_is_exit_2_naming_it_before_data_is_read(tmp_path, content, reason):
    path = tmp_path / "mine.pt"
    marker = tmp_path / "payload-ran"
    if content == "folder":
        path.mkdir()
    else:
        buf = io.BytesIO()
        torch.save({"w": torch.ones(3)}, buf)
        content = {"truncated": buf.getvalue()[:90], "payload": _payload_bytes(marker)}.get(content, content)
        path.write_bytes(content)
    res = smoke(
        tmp_path / "no-data",
        tmp_path / "o.json",
        tmp_path / "cache",
        "--modes",
        "classifier-first",
        "--classifier-checkpoint",
        path,
    )
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert str(path) in line and reason in line and "CIFAR-10 not found" not in res.output
    assert not marker.exists() and not (tmp_path / "o.json").exists()


# output paths and a full disk ---------------------------------------------------------------------------------


def _not_a_file(tmp_path: Path, kind: str) -> Path:
    if kind == "directory":
        (tmp_path / "board.json").mkdir()
        return tmp_path / "board.json"
    if kind == "parent is a file":
        (tmp_path / "a-file").write_text("")
        return tmp_path / "a-file" / "board.json"
    if kind == "pipe":
        os.mkfifo(tmp_path / "board.json")
        return tmp_path / "board.json"
    return Path("/dev/full")  # as root, os.replace put a regular file in the device's place


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("directory", "is a directory"),
        ("parent is a file", "is a file, not a folder"),
        ("pipe", "not a regular file"),
        ("/dev/full", "not a regular file"),
    ],
)
def test_an_out_that_cannot_be_a_file_is_exit_2_before_any_work(tmp_path, monkeypatch, kind, reason):
    import ssrbench.run.spec

    monkeypatch.setattr(
        ssrbench.run.spec, "check_backbone", lambda name: None
    )  # a forward pass per run: not tested here
    out = _not_a_file(tmp_path, kind)
    with pytest.raises(fileio.UnwritableError, match=f"--out {out}: .*{reason}") as err:
        fileio.check_writable(out)  # what run, plot and peek call before any work
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
    if kind == "/dev/full":  # and through the CLI; no data: a run that got past the check would fail later
        res = smoke(tmp_path / "no-data", out, tmp_path / "cache")
        assert res.exit_code == 2, res.output
        line = error_line(res)
        assert f"--out {out}" in line and reason in line and "CIFAR-10 not found" not in res.output
    if kind in ("pipe", "/dev/full"):
        with pytest.raises(fileio.UnwritableError, match="not a regular file"):
            fileio.atomic_write_text(out, "{}")  # the writer refuses too, whoever calls it
        assert not out.is_file() and not list(out.parent.glob(f".{out.name}.*.tmp"))


def test_a_read_only_out_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    real = fileio.tempfile.mkstemp

    def read_only(*a, dir=None, **k):  # root ignores permission bits: refuse as a read-only mount does
        if Path(dir) == folder:
            raise OSError(30, "Read-only file system")
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", read_only)
    with pytest.raises(fileio.UnwritableError, match=f"--out {folder / 'board.json'}: .*Read-only file system") as err:
        fileio.check_writable(folder / "board.json")
    assert err.value.exit_code == 2 and ".probe" not in str(err.value)


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlinked_out_is_replaced_as_a_link_never_written_through(tmp_path, dangling):
    """A link planted where a result goes (a shared /tmp folder) cannot redirect the write to its target."""
    victim = tmp_path / "home" / ".bashrc"
    victim.parent.mkdir()
    if not dangling:
        victim.write_text("the victim's file")
    link = tmp_path / "board.json"
    link.symlink_to(victim)
    fileio.check_writable(link)
    fileio.atomic_write_text(link, "new")
    assert not link.is_symlink() and link.read_text() == "new"
    assert (victim.read_text() == "the victim's file") if not dangling else not victim.exists()


def test_an_out_in_a_symlink_loop_is_one_line_exit_2(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    res = smoke(tmp_path / "no-data", loop / "board.json", tmp_path / "cache")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert str(loop) in error_line(res)
    fileio.check_writable(loop)  # the loop itself is a link like any other: replaced, never followed
    fileio.atomic_write_text(loop, "{}")
    assert not loop.is_symlink() and loop.read_text() == "{}"


def _full_disk(monkeypatch, after: int | None = None):
    """ENOSPC from the disk: at fsync (the kernel reports a full disk at the latest there), or after ``after``
    bytes of the write itself."""

    def fsync(_fd):
        raise OSError(28, "No space left on device")

    if after is None:
        monkeypatch.setattr(fileio.os, "fsync", fsync)
        return
    real = fileio.os.fdopen

    class Filling(io.RawIOBase):
        def __init__(self, fh):
            self.fh, self.left = fh, after

        def write(self, data):
            if len(data) > self.left:
                self.fh.write(bytes(data[: self.left]))
                raise OSError(28, "No space left on device")
            self.left -= len(data)
            return self.fh.write(data)

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def close(self):
            self.fh.close()

    monkeypatch.setattr(fileio.os, "fdopen", lambda fd, mode: Filling(real(fd, mode)))


@pytest.mark.parametrize("where", ["at fsync", "mid-write"])
def test_a_full_disk_at_the_final_write_keeps_the_old_leaderboard_and_leaves_no_temp(tmp_path, monkeypatch, where):
    board = store.load(FIXTURE)
    halves = [tmp_path / "a.json", tmp_path / "b.json"]
    for half, keep in zip(halves, (lambda c: c.mode == "multitask", lambda c: c.mode != "multitask")):
        store.save(board.model_copy(update={"cells": [c for c in board.cells if keep(c)]}), half)
    out = tmp_path / "board.json"
    out.write_bytes(FIXTURE.read_bytes())
    before = out.read_bytes()
    _full_disk(monkeypatch, None if where == "at fsync" else 1000)
    res = invoke("merge", *halves, "--out", out)  # the same store.save as run's final write, without training
    assert res.exit_code == 1, res.output  # not bad input: the disk filled up
    line = error_line(res)
    assert str(out) in line and "No space left on device" in line and "untouched" in line and ".tmp" not in line
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "board.json"]


def test_a_full_cache_disk_during_training_warns_once_and_training_completes(tmp_path, monkeypatch):
    """Epoch checkpoints and the finished stage are an optimisation: a cache that fills up mid-run is warned
    about once; the stage trains to its end, an older kept epoch is untouched, no temp file is left, and the
    finished stage is kept in memory for the run's later units (the shared classifier is not retrained)."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from ssrbench.core.presets import PRESETS
    from ssrbench.core.progress import Reporter

    good = _kept_epoch(tmp_path)  # an older run's kept epoch (of 3; this stage has 4: not resumed from)
    before = (tmp_path / "k.partial.pt").read_bytes()
    resume, model, opt, sched = _toy_stage(tmp_path)
    ds = SimpleNamespace(train_x=torch.zeros(8, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(8, dtype=torch.long))
    ctx = SimpleNamespace(
        data=ds,
        preset=PRESETS["smoke"].model_copy(update={"batch_size": 4}),
        device=torch.device("cpu"),
        seed=0,
        reporter=Reporter(quiet=True),
        train_range=lambda: (8, 8),
        autocast=nullcontext,
    )
    steps = []

    def step(x, y, g):
        steps.append(1)
        loss = model(torch.randn(4, 2)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"mse": loss.detach()}

    _full_disk(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_epochs(ctx, "toy", 4, step, resume=resume)
        resume.cache.save("k", model.state_dict(), {}, {"seconds": 1.0})
    assert len(steps) == 8  # every epoch trained
    messages = [str(w.message) for w in caught if "stopped taking files" in str(w.message)]
    assert len(messages) == 1 and "No space left on device" in messages[0], [str(w.message) for w in caught]
    assert (tmp_path / "k.partial.pt").read_bytes() == before and good["epoch"] == 1
    assert not (tmp_path / "k.pt").exists() and not (tmp_path / "k.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    state, info = resume.cache.load("k")  # the run's later units share the stage from memory, not retrain it
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()) and info["seconds"] == 1.0


# signals: SIGTERM cleans up as Ctrl-C does ---------------------------------------------------------------------

WRITER = """
import sys, time
from ssrbench.core.errors import Terminated, sigterm_raises
from ssrbench.core.fileio import atomic_write

def write(fh):
    fh.write(b"half a leaderboard")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)

try:
    with sigterm_raises():
        atomic_write(sys.argv[1], write)
except Terminated:
    sys.exit(143)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_writer_signalled_mid_write_leaves_the_old_file_and_no_temp(tmp_path, sig, status):
    """A real process, signalled inside atomic_write: Python's default SIGTERM ended it at once, skipping the
    writer's cleanup, so its temp file stayed behind (swept only by a later run, a minute on)."""
    out = tmp_path / "board.json"
    out.write_text("old")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
    )
    assert proc.stdout.readline().strip() == "writing", proc.communicate()[0]
    assert list(tmp_path.glob(".board.json.*.tmp"))  # caught mid-write
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == status, output
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["board.json"]


def test_sigterm_during_a_commands_final_write_exits_143_with_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        pytest.skip("the test runner has its own SIGTERM handler")
    board = store.load(FIXTURE)
    halves = [tmp_path / "a.json", tmp_path / "b.json"]
    for half, keep in zip(halves, (lambda c: c.mode == "multitask", lambda c: c.mode != "multitask")):
        store.save(board.model_copy(update={"cells": [c for c in board.cells if keep(c)]}), half)
    out = tmp_path / "board.json"
    out.write_bytes(FIXTURE.read_bytes())
    before = out.read_bytes()

    def terminated(_fd):
        assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL, "no SIGTERM handler: the signal would kill pytest"
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in the main thread, before fsync returns
        time.sleep(5)

    monkeypatch.setattr(fileio.os, "fsync", terminated)
    res = invoke("merge", *halves, "--out", out)
    assert res.exit_code == 143, res.output
    assert error_line(res).startswith("Error: terminated: no file was written or replaced")
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json",
        "b.json",
        "board.json",
    ]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the command's handler is gone with it


# two runs sharing a cache ------------------------------------------------------------------------------------

RACER = """
import sys
from ssrbench.core.fileio import atomic_write_text
path, letter = sys.argv[1], sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
for i in range(60):
    atomic_write_text(path, letter * (5000 + i))
"""


def test_two_processes_writing_one_cache_file_never_leave_a_mixed_or_half_file(tmp_path):
    """Two runs finishing the same stage at once: each write replaces the file whole (temp names carry the pid,
    so the two never write into one temp file); a reader in between sees one writer's file, never a mix."""
    path = tmp_path / "k.partial.pt"
    path.write_text("old")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), letter],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for letter in "AB"
    ]
    for r in racers:
        assert r.stdout.readline().strip() == "ready"
    for r in racers:
        r.stdin.write("go\n")
        r.stdin.flush()
    while any(r.poll() is None for r in racers):
        text = path.read_text()
        assert text == "old" or len(set(text)) == 1 and len(text) >= 5000, text[:40]
    assert [r.wait(timeout=30) for r in racers] == [0, 0]
    assert path.read_text()[0] in "AB" and not list(tmp_path.glob(".*.tmp"))


def test_a_run_starting_beside_a_live_writer_does_not_sweep_its_temp_file(tmp_path):
    """prepare() sweeps temp files of killed writers; one whose writer (another process) is alive stays, even
    when it is older than a minute -- a long write into a slow shared folder."""
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        temp = tmp_path / f".abc.eval.pt.{live.pid}.q1w2e3.tmp"
        temp.write_text("being written")
        an_hour_ago = time.time() - 3600
        os.utime(temp, (an_hour_ago, an_hour_ago))
        ModelCache(tmp_path).prepare()
        assert temp.exists()
    finally:
        live.kill()
        live.wait()
    ModelCache(tmp_path).prepare()
    assert not temp.exists()  # its writer is gone now


def test_kept_epochs_and_batches_written_by_two_runs_at_once_always_load(tmp_path):
    """Two runs of one stage (or one evaluation) keep their progress in the same file; whichever wrote last,
    what a third run loads is a whole, fitting checkpoint -- never a warning, never a crash."""
    import threading

    good = _kept_epoch(tmp_path / "src")
    cache = ModelCache(tmp_path)
    stop = threading.Event()

    def keep(epoch_seconds: float):
        while not stop.is_set():
            cache.save_partial(
                "k", {k: v for k, v in good.items() if k not in ("format", "key")} | {"seconds": epoch_seconds}
            )
            cache.save_progress("k", {"done": 8, "seconds": epoch_seconds})

    writers = [threading.Thread(target=keep, args=(s,)) for s in (1.0, 2.0)]
    for w in writers:
        w.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unreadable kept file warns: fail on it
            loads = 0
            while loads < 40:
                if not cache.partial_path("k").exists() or not cache.progress_path("k").exists():
                    continue
                resume, *_ = _toy_stage(tmp_path)
                assert resume.restore(3)["epoch"] == 1 and resume.seconds_before in (1.0, 2.0)
                assert cache.load_progress("k")["seconds"] in (1.0, 2.0)
                loads += 1
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert not list(tmp_path.glob(".*.tmp"))


# plugins ---------------------------------------------------------------------------------------------------------

HOSTILE_PLUGINS = {  # entry point -> its module's source, and what the one error line says
    "exits": ("import sys\nsys.exit('plugin says bye')\n", "SystemExit: plugin says bye"),
    "multiline": ("raise RuntimeError('first line\\nsecond line')\n", "RuntimeError: first line ..."),
    "nothing": ("X = 1\n", "has no attribute 'Broken'"),
    "unbuildable": (
        "from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
        "    name = 'unbuildable'\n    def __init__(self, params=None):\n        raise RuntimeError('needs a GPU')\n",
        "fails to build: RuntimeError: needs a GPU",
    ),
    "perimage": (
        "from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
        "    name = 'perimage'\n    def training_loss(self, model, x, g):\n"
        "        out = super().training_loss(model, x, g)\n"
        "        out.loss = out.loss.expand(len(x))\n        return out\n",
        "training_loss must give a TaskLoss whose loss is one finite number, got shape (2,)",
    ),
    "nanloss": (
        "from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
        "    name = 'nanloss'\n    def training_loss(self, model, x, g):\n"
        "        out = super().training_loss(model, x, g)\n"
        "        out.loss = out.loss * float('nan')\n        return out\n",
        "one finite number, got nan",
    ),
}


def test_hostile_task_plugins_are_one_line_exit_2_naming_them_before_data_is_read(site, tmp_path, monkeypatch):
    """Raising SystemExit or a multi-line error on import, an entry point naming nothing, a constructor that
    fails, a training loss per image or NaN: each a line naming the plugin's distribution, exit 2, before
    the data is read (they were: the process ending in the plugin's words, several lines, a traceback, and a
    crash or a 'diverged' mid-training). One distribution with every case: the entry points are scanned once."""
    import ssrbench.run.spec
    from ssrbench.core.registry import reset_all

    from .distributions import install_fake_distribution

    monkeypatch.setattr(
        ssrbench.run.spec, "check_backbone", lambda name: None
    )  # a forward pass per run: not tested here
    modules = {f"ssr_hostile_{name}": source for name, (source, _) in HOSTILE_PLUGINS.items()}
    install_fake_distribution(
        site,
        "ssr-hostile",
        "0.1",
        {"ssrbench.tasks": {name: f"ssr_hostile_{name}:Broken" for name in HOSTILE_PLUGINS}},
        modules,
    )
    reset_all()
    try:
        for name, (_, reason) in HOSTILE_PLUGINS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the skipped plugin's warning; the error line is what is checked
                res = smoke(tmp_path / "no-data", tmp_path / "o.json", tmp_path / "cache", "--tasks", name)
            assert res.exit_code == 2, (name, res.output)
            line = error_line(res)
            assert f"'{name}'" in line and "ssr-hostile" in line and reason in line, line
            assert "CIFAR-10 not found" not in res.output and not (tmp_path / "o.json").exists()
    finally:
        for module in modules:
            sys.modules.pop(module, None)


def test_a_plugin_claiming_a_built_in_name_is_warned_about_and_the_built_in_kept(site):
    install_plugin(
        site,
        {"ssrbench.tasks": {"rotation": "ssr_plugin_mod:Fake"}, "ssrbench.attacks": {"fgsm": "ssr_plugin_mod:Fake"}},
        "raise RuntimeError('never imported')\n",
    )
    from ssrbench.adversarial.base import ATTACKS
    from ssrbench.core.registry import PluginWarning
    from ssrbench.pretext.base import TASKS

    with pytest.warns(PluginWarning) as caught:
        assert TASKS.origin("rotation").distribution == "ssrbench" and ATTACKS.origin("fgsm").distribution == "ssrbench"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and all(
        "ssr-test-plugin 0.5" in m and "already provided by ssrbench" in m and "\n" not in m for m in messages
    ), messages


# --- round two: review mends ---
# Every file ssrbench reads, not only leaderboards, goes through the regular-file check; error lines stay one
# short line whatever the input.


def test_a_fifo_as_config_checkpoint_or_cache_entry_never_blocks(tmp_path):
    from ssrbench.core.errors import ConfigError
    from ssrbench.run.config import read_toml
    from ssrbench.training.checkpoint import load_classifier_checkpoint

    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    for read in (lambda: read_toml(fifo), lambda: load_classifier_checkpoint(fifo, "resnet18")):
        error = _call_with_deadline(read, fifo).get("error")
        assert isinstance(error, ConfigError) and "named pipe" in str(error) and "\n" not in str(error), error
    cache = ModelCache(tmp_path / "cache")
    cache.root.mkdir()
    weights, _meta = cache._paths("k")
    os.mkfifo(weights)  # planted in a shared cache: a fault, warned and retrained
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _call_with_deadline(lambda: cache.load("k"), weights).get("value", "raised") is None
    _one_warning(caught, "named pipe", "retraining")


def test_a_hostile_value_in_an_error_line_is_shortened(tmp_path):
    doc = json.loads(V5.read_text())
    doc["cells"][ROT]["mode"] = "x" * 100_000
    bad = tmp_path / "long.json"
    bad.write_text(json.dumps(doc))
    res = invoke("show", bad)
    assert res.exit_code == 2 and len(res.output) < 1_100 and res.output.count("\n") == 1, len(res.output)
    assert "characters left out" in res.output


def test_a_config_with_several_bad_fields_is_one_line(tmp_path):
    tasks = tmp_path / "configs" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "bad.toml").write_text('kind = "rotation"\n[params]\nbogus = 1\nmultitask_weight = "1e400"\n')
    res = invoke("peek", "bad", "--config-dir", tmp_path / "configs", "--no-download", "--out", tmp_path / "p.png")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "bad.toml" in res.output and "more problem" in res.output
