"""The bad-input battery: what a hostile-but-realistic user (or a broken file) does to ssrbench.

Every case ends in a one-line error and an exit status, never a traceback, never code run from data,
never a good file replaced by a broken one. Runs use the smoke preset on a tiny synthetic CIFAR-10
(so they take seconds) and, where a real process must be signalled, a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import pickle
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

from ssrbench import fileio
from ssrbench.budget import ThreatModel
from ssrbench.cli import cli
from ssrbench.data import load_cifar10
from ssrbench.errors import DataFormatError
from ssrbench.leaderboard import store
from ssrbench.leaderboard.merge import merge
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import TrainingDivergedError, train_epochs

FIXTURE = Path(__file__).parent / "fixtures" / "leaderboard-v1.json"
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


class Payload:
    """Unpickling this creates a folder: the marker that code from a data file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def make_cifar(root: Path, train: int = 128, test: int = 64, **replace) -> Path:
    """A CIFAR-10 folder in torchvision's layout with random images; ``replace`` swaps a batch's object."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in BATCHES:
        n = test if name == "test_batch" else train
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, n)]}
        (folder / name).write_bytes(pickle.dumps(replace.get(name, batch), protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return root


@pytest.fixture
def data(tmp_path) -> Path:
    return make_cifar(tmp_path / "data")


def invoke(*args) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


# the smoke preset, made smaller still: timm's tiny test model on a few synthetic images (seconds)
TINY = ("--preset", "smoke", "--backbone", "test_efficientnet", "--train-images", "128", "--batch-size", "32",
        "--eval-images", "16", "--device", "cpu", "--tasks", "rotation", "--attacks", "fgsm", "--quiet")


def smoke(data: Path, out: Path, cache: Path, *extra):
    return invoke("run", *TINY, "--data-dir", data, "--no-download", "--out", out, "--cache-dir", cache, *extra)


def error_line(res) -> str:
    """The single error line; a traceback or a multi-line reason fails the test."""
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit), \
        f"not a clean error: {res.output}\n{res.exception!r}"
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    return errors[0]


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

    from ssrbench.presets import PRESETS
    from ssrbench.progress import Reporter

    ds = SimpleNamespace(train_x=torch.zeros(8, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(8, dtype=torch.long))
    ctx = SimpleNamespace(data=ds, preset=PRESETS["smoke"].model_copy(update={"batch_size": 2}), device=torch.device("cpu"),
                          seed=0, reporter=Reporter(quiet=True), train_range=lambda: (8, 8), autocast=nullcontext)
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
    victim = tmp_path / "cache" / f"{stage.key}.pt"  # beside it: the static base's classifier, which it is judged against
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

@pytest.mark.parametrize("option,value,reason", [
    ("--lr", "-0.1", "greater than 0"), ("--lr", "nan", "not a finite number"), ("--lr", "inf", "not a finite"),
    ("--weight-decay", "-1", "at least 0"), ("--head-lr", "inf", "not a finite number"),
    ("--head-lr", "0", "greater than 0"), ("--lr", "fast", "not a number"),
])
def test_bad_float_options(tmp_path, option, value, reason):
    res = invoke("run", "--preset", "smoke", option, value, "--out", tmp_path / "o.json")
    assert res.exit_code == 2
    line = error_line(res)
    assert option in line and reason in line


@pytest.mark.parametrize("batch,broken,reason", [
    ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 10, 2]}, "label 10 is outside 0..9"),
    ("data_batch_1", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, -1, 3, 2]}, "label -1 is outside"),
    ("test_batch", {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2]}, "3 labels for 4 images"),
    ("test_batch", [1, 2, 3], "expected a dict with 'data' and 'labels', got list"),
    ("test_batch", {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, "shape (N, 3072)"),
])
def test_malformed_data_is_exit_2_naming_the_file(tmp_path, batch, broken, reason):
    root = make_cifar(tmp_path / "data", **{batch: broken})
    res = smoke(root, tmp_path / "o.json", tmp_path / "cache")
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert batch in line and reason in line
    assert not list((tmp_path / "cache").glob("*.pt"))  # refused before any training


@pytest.mark.parametrize("backbone,reason", [("vit_tiny_patch16_224", "returns features of shape (1, 5, 192)"),
                                             ("swin_tiny_patch4_window7_224", "NHWC")])
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


@pytest.mark.parametrize("what,change,reason", [
    ("worst case", lambda d: d["worst_case"][0]["defended"].update(percent=100.0), "stored worst_case does not match"),
    ("warnings", lambda d: d.update(warnings=["all is well"]), "stored warnings does not match"),
    ("interval", lambda d: d["cells"][0]["adv"].update(ci95=[0.0, 100.0]), "not the 95% Wilson interval"),
    ("flags", lambda d: d["cells"][0]["adv"].update(per_image=d["cells"][0]["clean"]["per_image"]),
     "per_image flags do not add up"),
    ("flag count", lambda d: d["cells"][0]["adv"].update(per_image="AAAA"), "wrong number of flags"),
])
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
    probe = board.cells[0].model_copy(update={
        "attack": board.cells[0].attack.model_copy(update={"name": "huge", "params": {**board.cells[0].attack.params,
                                                                                      "eps": 0.5}}),
        "threat": ThreatModel(norm="linf", eps=0.5, steps=1, probe=True), "adv_rev": board.cells[0].clean})
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
    assert invoke("compare", tmp_path / "old.json", tmp_path / "new.json", "--fail-on-regression",
                  "--allow-no-comparable").exit_code == 0
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
    args = [sys.executable, "-m", "ssrbench.cli", "run", *TINY, "--data-dir", str(data), "--no-download",
            "--out", str(out), "--cache-dir", str(cache), "--modes", "classifier-first", "--epochs-head", "60", *extra]
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
    res = smoke(data, tmp_path / "o.json", tmp_path / "cache", "--modes", "multitask", "--config-dir", tmp_path / "mine")
    assert res.exit_code == 0, res.output
    board = store.load(tmp_path / "o.json")
    (cell,) = board.cells
    assert cell.attack.config_file == str(mine / "fgsm.toml") and cell.attack.params["eps"] == 4 / 255
    assert cell.task.config_file is None  # the built-in rotation config
    assert any("shadows" in n and str(mine / "fgsm.toml") in n for n in board.notes)


def test_a_value_that_cannot_be_recorded_is_an_error_naming_the_cell():
    from ssrbench.errors import SSRBenchError
    from ssrbench.runner import _cell

    cell = store.load(FIXTURE).cells[0]
    fields = cell.model_dump(exclude={"clean", "clean_rev", "adv", "adv_rev"})
    fields["pretext"]["adversarial"] = float("nan")
    flags = {m: getattr(cell, m).flags() for m in ("clean", "clean_rev", "adv", "adv_rev")}
    with pytest.raises(SSRBenchError, match="multitask/inpaint/fgsm: the run produced a value that cannot be"):
        _cell("multitask/inpaint", "fgsm", **fields, **flags)


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


@pytest.mark.parametrize("which,content,reason", [
    ("pt", b"", "empty or cut short"), ("pt", os.urandom(256), "not a file torch.save writes"),
    ("pt", "truncated", "cut short"), ("pt", "payload", "objects other than tensors"),
    ("json", b"{not json", "JSONDecodeError"), ("json", b"\xff\xfe{}", "UnicodeDecodeError"),
    ("json", b"[1, 2]", "not a JSON object"), ("json", b'{"seconds": "fast"}', "seconds is not"),
    ("json", b'{"seconds": NaN}', "seconds is not"), ("json", b'{"final_logs": [1]}', "final_logs"),
    ("json", b'{"warnings": "none"}', "warnings is not"), ("json", None, "record k.json is missing"),
])
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

    from ssrbench.progress import Reporter
    from ssrbench.training.modes import _cached_or_train

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    spec = {"stage": "shapes"}
    planted = {k: torch.full_like(v, 7.0) for k, v in init.items()} | {"1.weight": torch.ones(5, 4)}
    ModelCache(tmp_path).save(ModelCache.key(spec), planted, spec, {"seconds": 1.0})
    ctx = SimpleNamespace(retrain=False, cache=ModelCache(tmp_path), reporter=Reporter(quiet=True),
                          device=torch.device("cpu"))
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
    "epoch beyond the run": lambda g: dict(g, epoch=7), "negative epoch": lambda g: dict(g, epoch=-1),
    "fractional epoch": lambda g: dict(g, epoch=1.5), "epoch as a tensor": lambda g: dict(g, epoch=torch.tensor(1)),
    "epochs as a float": lambda g: dict(g, epochs=3.0), "NaN training time": lambda g: dict(g, seconds=float("nan")),
    "negative training time": lambda g: dict(g, seconds=-5.0), "training time as text": lambda g: dict(g, seconds="12"),
    "NaN held-out reading": lambda g: dict(g, history=[float("nan")]),
    "momentum of another shape": lambda g: _doctor_optimizer(g, lambda o, s: o["state"][0].update(
        momentum_buffer=torch.zeros(7))),
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
    from .test_resume_evaluation import _Kept, _evaluate

    with pytest.raises(KeyboardInterrupt):
        _evaluate(_Kept(ModelCache(tmp_path / "src"), stop_after=2))
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
    kept = _Kept(cache)
    with pytest.warns(UserWarning, match="do not fit.*clean timings are not numbers"):
        assert _evaluate(kept).resumed_after == 0
    assert kept.saves == 5  # evaluated from the first image


@pytest.mark.parametrize("content,reason", [
    (b"", "empty or cut short"), (b"\x89PNG\r\n\x1a\n not weights", "not a file torch.save writes"),
    ("truncated", "cut short"), ("payload", "objects other than tensors"), ("folder", "is a directory"),
])
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
    res = smoke(tmp_path / "no-data", tmp_path / "o.json", tmp_path / "cache", "--modes", "classifier-first",
                "--classifier-checkpoint", path)
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


@pytest.mark.parametrize("kind,reason", [("directory", "is a directory"), ("parent is a file", "is a file, not a folder"),
                                         ("pipe", "not a regular file"), ("/dev/full", "not a regular file")])
def test_an_out_that_cannot_be_a_file_is_exit_2_before_any_work(tmp_path, monkeypatch, kind, reason):
    import ssrbench.runner

    monkeypatch.setattr(ssrbench.runner, "check_backbone", lambda name: None)  # a forward pass per run: not tested here
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


def test_a_symlinked_out_is_written_through_the_link(tmp_path):
    real = tmp_path / "results" / "board.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "board.json"
    link.symlink_to(real)
    fileio.check_writable(link)
    fileio.atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


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
                self.fh.write(bytes(data[:self.left]))
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

    from ssrbench.presets import PRESETS
    from ssrbench.progress import Reporter

    good = _kept_epoch(tmp_path)  # an older run's kept epoch (of 3; this stage has 4: not resumed from)
    before = (tmp_path / "k.partial.pt").read_bytes()
    resume, model, opt, sched = _toy_stage(tmp_path)
    ds = SimpleNamespace(train_x=torch.zeros(8, 3, 8, 8, dtype=torch.uint8), train_y=torch.zeros(8, dtype=torch.long))
    ctx = SimpleNamespace(data=ds, preset=PRESETS["smoke"].model_copy(update={"batch_size": 4}), device=torch.device("cpu"),
                          seed=0, reporter=Reporter(quiet=True), train_range=lambda: (8, 8), autocast=nullcontext)
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
from ssrbench.errors import Terminated, sigterm_raises
from ssrbench.fileio import atomic_write

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
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
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
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "board.json"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the command's handler is gone with it


# two runs sharing a cache ------------------------------------------------------------------------------------

RACER = """
import sys
from ssrbench.fileio import atomic_write_text
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
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), letter], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env) for letter in "AB"]
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
            cache.save_partial("k", {k: v for k, v in good.items() if k not in ("format", "key")} | {"seconds": epoch_seconds})
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

from .test_plugins import _install, site  # noqa: E402,F401 - the example-plugin machinery (site: a fixture)

HOSTILE_PLUGINS = {  # entry point -> its module's source, and what the one error line says
    "exits": ("import sys\nsys.exit('plugin says bye')\n", "SystemExit: plugin says bye"),
    "multiline": ("raise RuntimeError('first line\\nsecond line')\n", "RuntimeError: first line ..."),
    "nothing": ("X = 1\n", "has no attribute 'Broken'"),
    "unbuildable": ("from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
                    "    name = 'unbuildable'\n    def __init__(self, params=None):\n        raise RuntimeError('needs a GPU')\n",
                    "fails to build: RuntimeError: needs a GPU"),
    "perimage": ("from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
                 "    name = 'perimage'\n    def training_loss(self, model, x, g):\n"
                 "        out = super().training_loss(model, x, g)\n"
                 "        out.loss = out.loss.expand(len(x))\n        return out\n",
                 "training_loss must give a TaskLoss whose loss is one finite number, got shape (2,)"),
    "nanloss": ("from ssrbench.pretext.rotation import RotationTask\nclass Broken(RotationTask):\n"
                "    name = 'nanloss'\n    def training_loss(self, model, x, g):\n"
                "        out = super().training_loss(model, x, g)\n"
                "        out.loss = out.loss * float('nan')\n        return out\n",
                "one finite number, got nan"),
}


def test_hostile_task_plugins_are_one_line_exit_2_naming_them_before_data_is_read(site, tmp_path, monkeypatch):
    """Raising SystemExit or a multi-line error on import, an entry point naming nothing, a constructor that
    fails, a training loss per image or NaN: each a line naming the plugin's distribution, exit 2, before
    the data is read (they were: the process ending in the plugin's words, several lines, a traceback, and a
    crash or a 'diverged' mid-training). One distribution with every case: the entry points are scanned once."""
    from .distributions import install_fake_distribution
    from ssrbench.registry import reset_all

    import ssrbench.runner

    monkeypatch.setattr(ssrbench.runner, "check_backbone", lambda name: None)  # a forward pass per run: not tested here
    modules = {f"ssr_hostile_{name}": source for name, (source, _) in HOSTILE_PLUGINS.items()}
    install_fake_distribution(site, "ssr-hostile", "0.1",
                              {"ssrbench.tasks": {name: f"ssr_hostile_{name}:Broken" for name in HOSTILE_PLUGINS}}, modules)
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
    _install(site, {"ssrbench.tasks": {"rotation": "ssr_plugin_mod:Fake"}, "ssrbench.attacks": {"fgsm": "ssr_plugin_mod:Fake"}},
             "raise RuntimeError('never imported')\n")
    from ssrbench.adversarial.base import ATTACKS
    from ssrbench.pretext.base import TASKS
    from ssrbench.registry import PluginWarning

    with pytest.warns(PluginWarning) as caught:
        assert TASKS.origin("rotation").distribution == "ssrbench" and ATTACKS.origin("fgsm").distribution == "ssrbench"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and all("ssr-test-plugin 0.5" in m and "already provided by ssrbench" in m
                                      and "\n" not in m for m in messages), messages
