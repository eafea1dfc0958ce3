"""The zoo: reference weights loaded only when their key, hash, names, shapes and dtypes check out; runs and
`ssrbench reproduce` on them; the committed zoo current with the training code."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.cli.run_command import command_spec
from ssrbench.leaderboard import store
from ssrbench.run.reproduce import add_to_zoo, entry_status
from ssrbench.run.units import planned_stages
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import DataIdentity
from ssrbench.training.zoo import MANIFEST, Zoo, ZooError, default_zoo_dir, layout_of, read_entry, write_entry

from .helpers import TINY, committed, error_line, make_cifar

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    """A tiny run trained with --no-zoo, its weights put into a zoo: (root, data dir, zoo dir, leaderboard)."""
    root = tmp_path_factory.mktemp("zoo")
    data = root / "data"
    make_cifar(data)
    out = root / "trained.json"
    res = CliRunner().invoke(
        cli, ["run", *TINY, "--data-dir", str(data), "--cache-dir", str(root / "cache"), "--no-zoo", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    board = store.load(out)
    # the command a real run records (CliRunner's argv is pytest's), and a clean commit
    board = board.model_copy(
        update={
            "git_dirty": False,
            "git_commit": "0" * 40,
            "command": ["ssrbench", "run", *TINY, "--data-dir", str(data)],
        }
    )
    said = add_to_zoo(board, out, ModelCache(root / "cache"), Zoo(root / "zoo"))
    assert [s.split(":")[0] for s in said] == [r.stage for r in board.training]
    return root, data, root / "zoo", out


def _run(args, **kw):
    return CliRunner().invoke(cli, args, **kw)


def test_a_run_takes_every_stage_from_the_zoo_and_says_so(tiny_zoo, tmp_path):
    root, data, zoo, trained = tiny_zoo
    out = tmp_path / "again.json"
    res = _run(
        [
            "run",
            *TINY,
            "--data-dir",
            str(data),
            "--cache-dir",
            str(tmp_path / "empty"),
            "--zoo-dir",
            str(zoo),
            "--zoo-only",
            "--progress",
            "plain",
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    notice = next(i for i, line in enumerate(lines) if "come from the zoo" in line)
    assert "--no-zoo" in lines[notice] and notice < next(i for i, line in enumerate(lines) if "run: started" in line)
    board, before = store.load(out), store.load(trained)
    manifest = Zoo(zoo).manifest()
    for r in board.training:
        assert r.cached and r.zoo_sha256 == manifest.entry(r.key).sha256
        assert r.weights_sha256 == manifest.entry(r.key).weights_sha256
    assert [c.adv_rev.per_image for c in board.cells] == [c.adv_rev.per_image for c in before.cells]
    assert not list((tmp_path / "empty").glob("*.pt"))  # nothing trained, nothing cached
    # --no-zoo trains instead
    res = _run(
        [
            "run",
            *TINY,
            "--data-dir",
            str(data),
            "--cache-dir",
            str(tmp_path / "c2"),
            "--zoo-dir",
            str(zoo),
            "--no-zoo",
            "--out",
            str(tmp_path / "trained.json"),
        ]
    )
    assert res.exit_code == 0, res.output
    assert all(r.zoo_sha256 is None and not r.cached for r in store.load(tmp_path / "trained.json").training)


def test_reproduce_agrees_image_for_image(tiny_zoo, tmp_path):
    root, data, zoo, trained = tiny_zoo
    res = _run(["reproduce", str(trained), "--zoo-dir", str(zoo), "--data-dir", str(data), "--check", "-q"])
    assert res.exit_code == 0, res.output
    n = store.load(trained).dataset.eval_images
    cells = len(store.load(trained).cells)
    assert f"{n * cells}/{n * cells} cell-images agree (100.00%)" in res.output
    # a file whose bits differ is caught, and --check fails
    doc = json.loads(trained.read_text())
    from ssrbench.leaderboard.records import Accuracy

    flags = Accuracy.model_validate(doc["cells"][0]["adv"]).flags()
    flags[0] = not flags[0]
    doc["cells"][0]["adv"] = Accuracy.from_flags(flags).model_dump(mode="json")
    for view in ("worst_case", "warnings", "versus_base", "detection", "gated"):
        doc.pop(view, None)
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(doc))
    res = _run(["reproduce", str(changed), "--zoo-dir", str(zoo), "--data-dir", str(data), "--check", "-q"])
    assert res.exit_code == 1 and f"{n * cells - 1}/{n * cells} cell-images agree" in res.output


def test_zoo_only_without_the_weights_stops_before_any_work(tiny_zoo, tmp_path):
    root, data, zoo, _ = tiny_zoo
    res = _run(
        [
            "run",
            *TINY,
            "--data-dir",
            str(data),
            "--cache-dir",
            str(tmp_path / "c"),
            "--zoo-dir",
            str(zoo),
            "--zoo-only",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "o.json"),
        ]
    )
    assert res.exit_code == 2, res.output
    assert "--zoo-only: the zoo" in error_line(res) and "no weights for 3 of the run's 3 stages" in error_line(res)
    assert not (tmp_path / "o.json").exists()
    assert _run(["run", *TINY, "--zoo-only", "--no-zoo"]).exit_code == 2


def _copy_zoo(zoo: Path, to: Path) -> Path:
    to.mkdir()
    for f in zoo.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    return to


def _entry_file(zoo: Path, stage: str = "multitask/rotation") -> tuple[dict, Path]:
    doc = json.loads((zoo / MANIFEST).read_text())
    entry = next(e for e in doc["entries"] if e["stage"] == stage)
    return doc, zoo / entry["file"]


def _doctor_tensors(path: Path, change) -> None:
    """Rewrite a safetensors file's tensors through ``change`` (a valid file, other contents)."""
    from safetensors.torch import load, save

    path.write_bytes(save(change(load(path.read_bytes()))))


def _rehash(zoo: Path, path: Path, tensors: bool = False) -> None:
    """Make the manifest list ``path``'s new bytes: the doctored file passes the hash check (``tensors``: and
    the check of its tensors' hash)."""
    import hashlib

    from safetensors.torch import load

    from ssrbench.core.hashing import weights_sha256

    doc = json.loads((zoo / MANIFEST).read_text())
    for e in doc["entries"]:
        if e["file"] == path.name:
            data = path.read_bytes()
            e["sha256"], e["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
            if tensors:
                e["weights_sha256"] = weights_sha256(load(data))
    (zoo / MANIFEST).write_text(json.dumps(doc))


def _first_float(state):
    return next(k for k, v in state.items() if v.is_floating_point())


DOCTORED = {
    "a changed byte (hash)": (
        lambda p: p.write_bytes(p.read_bytes()[:-1] + bytes([p.read_bytes()[-1] ^ 1])),
        False,
        "SHA-256",
    ),
    "a missing tensor": (lambda p: _doctor_tensors(p, lambda s: dict(list(s.items())[1:])), True, "tensors missing"),
    "an extra tensor": (
        lambda p: _doctor_tensors(p, lambda s: {**s, "planted": torch.zeros(3)}),
        True,
        "does not have",
    ),
    "a wrong dtype": (
        lambda p: _doctor_tensors(p, lambda s: {k: (v.double() if k == _first_float(s) else v) for k, v in s.items()}),
        True,
        "F64",
    ),
    "a wrong shape": (
        lambda p: _doctor_tensors(
            p, lambda s: {k: (v.reshape(-1)[:1].clone() if k == _first_float(s) else v) for k, v in s.items()}
        ),
        True,
        "the model's is",
    ),
    "a pickle instead": (lambda p: torch.save({"x": torch.zeros(1)}, p), True, "not a safetensors file"),
    "other weights than the manifest records": (
        lambda p: _doctor_tensors(p, lambda s: {k: (v + 1.0 if k == _first_float(s) else v) for k, v in s.items()}),
        True,
        "weights_sha256",
    ),
    "a NaN weight": (
        lambda p: _doctor_tensors(
            p, lambda s: {k: (torch.full_like(v, float("nan")) if k == _first_float(s) else v) for k, v in s.items()}
        ),
        True,
        "NaN",
    ),
}


@pytest.mark.parametrize("case", list(DOCTORED))
def test_a_doctored_zoo_file_is_refused_naming_the_entry(tiny_zoo, tmp_path, case):
    root, data, zoo, _ = tiny_zoo
    layout = layout_of(read_entry(zoo, Zoo(zoo).manifest().entries[1]))  # the model's tensors, from the sound file
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    doctor, rehash, says = DOCTORED[case]
    _, path = _entry_file(zoo)
    doctor(path)
    if rehash:
        _rehash(zoo, path)
    entry = Zoo(zoo).manifest().entries[1]
    assert entry.stage == "multitask/rotation"
    with pytest.raises(ZooError, match=f"zoo entry {entry.key} \\(multitask/rotation\\): .*{says}") as err:
        Zoo(zoo).load(entry.key, layout)
    assert "\n" not in str(err.value)


def test_a_refused_zoo_file_trains_the_stage_or_stops_a_zoo_only_run(tiny_zoo, tmp_path):
    root, data, zoo, _ = tiny_zoo
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    _, path = _entry_file(zoo)
    DOCTORED["a wrong dtype"][0](path)
    _rehash(zoo, path)
    args = ["run", *TINY, "--data-dir", str(data), "--zoo-dir", str(zoo), "--out", str(tmp_path / "o.json")]
    res = _run([*args, "--cache-dir", str(tmp_path / "c1"), "--zoo-only"])
    assert res.exit_code == 2, res.output
    assert "zoo entry" in error_line(res) and "multitask/rotation" in error_line(res)
    assert not (tmp_path / "o.json").exists()
    with pytest.warns(UserWarning, match="training this stage instead"):
        res = _run([*args, "--cache-dir", str(tmp_path / "c2")])
    assert res.exit_code == 0, res.output
    trained = {r.stage: r for r in store.load(tmp_path / "o.json").training}
    assert trained["multitask/rotation"].zoo_sha256 is None and not trained["multitask/rotation"].cached
    assert trained["classifier"].zoo_sha256 is not None  # the sound entries are still used


BAD_MANIFESTS = {
    "an unknown field": (lambda d: d["entries"][0].update(planted=1), "Extra inputs are not permitted"),
    "a wrong hash": (lambda d: d["entries"][0].update(sha256="z" * 64), "sha256"),
    "a path out of the zoo": (lambda d: d["entries"][0].update(file="../../etc/passwd"), "is not"),
    "a key not its spec's hash": (lambda d: d["entries"][0]["spec"].update(seed=99), "not the hash of its spec"),
    "an entry twice": (lambda d: d["entries"].append(d["entries"][0]), "listed twice"),
    "not JSON": (None, "not JSON"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_a_bad_manifest_is_one_line_naming_the_entry(tiny_zoo, tmp_path, case):
    root, data, zoo, _ = tiny_zoo
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    change, says = BAD_MANIFESTS[case]
    if change is None:
        (zoo / MANIFEST).write_text("{not json")
    else:
        doc = json.loads((zoo / MANIFEST).read_text())
        change(doc)
        (zoo / MANIFEST).write_text(json.dumps(doc))
    res = _run(["zoo", "list", "--zoo-dir", str(zoo)])
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert "zoo manifest" in line and says in line and len(res.output.strip().splitlines()) == 1
    if change is not None and case != "an entry twice":
        assert "entry " in line  # which entry
    if case == "a wrong hash":  # a run stops on it too, before any work
        res = _run(
            [
                "run",
                *TINY,
                "--data-dir",
                str(data),
                "--zoo-dir",
                str(zoo),
                "--zoo-only",
                "--cache-dir",
                str(tmp_path / "c"),
                "--out",
                str(tmp_path / "o.json"),
            ]
        )
        assert res.exit_code == 2 and "zoo manifest" in error_line(res)


def test_a_link_or_a_file_outside_the_folder_is_never_read(tiny_zoo, tmp_path):
    root, data, zoo, _ = tiny_zoo
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    manifest = Zoo(zoo).manifest()
    entry = manifest.entries[0]
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((zoo / entry.file).read_bytes())
    (zoo / entry.file).unlink()
    (zoo / entry.file).symlink_to(outside)
    with pytest.raises(ZooError, match="is a link"):
        read_entry(zoo, entry)


def test_a_malformed_safetensors_header_is_refused_before_any_tensor(tmp_path):
    sha, size = write_entry(tmp_path, "0" * 16, {"w": torch.ones(2, 2)})
    path = tmp_path / f"{'0' * 16}.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    huge = struct.pack("<Q", 2**62) + data[8:]
    from ssrbench.training.zoo import _header

    with pytest.raises(ZooError, match="malformed"):
        _header(huge, "entry")
    with pytest.raises(ZooError, match="malformed"):
        _header(data[:-4], "entry")  # the data is shorter than the header says
    assert _header(data, "entry") == {"w": ((2, 2), "F32")}


def test_a_training_default_changed_makes_the_entry_stale(tiny_zoo, monkeypatch):
    root, data, zoo, _ = tiny_zoo
    manifest = Zoo(zoo).manifest()
    assert not any(entry_status(e, command_spec).stale for e in manifest.entries)
    from ssrbench.core import presets

    smoke = presets.PRESETS["smoke"]
    monkeypatch.setitem(presets.PRESETS, "smoke", smoke.model_copy(update={"lr": smoke.lr * 2}))
    assert all(entry_status(e, command_spec).stale for e in manifest.entries)
    res = _run(["zoo", "list", "--stale", "--zoo-dir", str(zoo)])
    assert res.exit_code == 0 and res.output.count("stale: its command now trains") == len(manifest.entries)


def test_zoo_remove_takes_out_the_stale_entries_and_their_files(tiny_zoo, tmp_path, monkeypatch):
    root, data, zoo, _ = tiny_zoo
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    entries = Zoo(zoo).manifest().entries
    res = _run(["zoo", "remove", "--stale", "--zoo-dir", str(zoo)])
    assert res.exit_code == 0 and "no stale entry: nothing removed" in res.output
    assert _run(["zoo", "remove", "--zoo-dir", str(zoo)]).exit_code == 2
    res = _run(["zoo", "remove", "0" * 16, "--zoo-dir", str(zoo)])
    assert res.exit_code == 2 and "no zoo entry has that key" in error_line(res)
    res = _run(["zoo", "remove", entries[0].key, "--zoo-dir", str(zoo)])  # by key
    assert res.exit_code == 0 and f"entry {entries[0].key} removed" in res.output
    assert not (zoo / entries[0].file).exists() and Zoo(zoo).manifest().entry(entries[0].key) is None
    from ssrbench.core import presets

    smoke = presets.PRESETS["smoke"]
    monkeypatch.setitem(presets.PRESETS, "smoke", smoke.model_copy(update={"lr": smoke.lr * 2}))
    res = _run(["zoo", "remove", "--stale", "--zoo-dir", str(zoo)])
    assert res.exit_code == 0 and res.output.count(" removed (") == len(entries) - 1, res.output
    assert Zoo(zoo).manifest().entries == [] and sorted(p.name for p in zoo.iterdir()) == [MANIFEST]


# the committed zoo ---------------------------------------------------------------------------------------------

COMMITTED = Zoo(REPO / "zoo")


def test_the_committed_zoo_is_found_and_within_its_budget():
    assert default_zoo_dir().resolve() in {
        (REPO / "zoo").resolve(),
        (Path(__import__("ssrbench").__file__).parent / "_zoo").resolve(),
    }
    manifest = COMMITTED.manifest()
    assert manifest.total_bytes <= 60_000_000
    for e in manifest.entries:  # every file verifies (hash, header, finite)
        read_entry(COMMITTED.root, e)
        assert e.training.commit and not Path(e.training.command[0]).is_absolute()


def _committed_boards():
    return sorted(p for p in (REPO / "leaderboards").rglob("*.json"))


def test_every_committed_leaderboard_has_its_weights_in_the_zoo_or_a_reason():
    manifest = COMMITTED.manifest()
    reasons = {n.leaderboard for n in manifest.not_in_zoo}
    for path in _committed_boards():
        rel = str(path.relative_to(REPO))
        board = committed(path)
        held = [manifest.entry(r.key) for r in board.training]
        whole = all(
            e is not None and e.weights_sha256 == r.weights_sha256 and rel in e.leaderboards
            for e, r in zip(held, board.training)
        )
        assert whole or rel in reasons, f"{rel}: weights neither in the zoo nor listed with a reason"
        assert not (whole and rel in reasons), f"{rel}: in the zoo and listed as not in it"


def test_no_committed_leaderboard_rests_on_a_stale_entry():
    """A change to training code (a default, a preset, a task's parameters) changes the keys the leaderboards'
    own commands train; the zoo entries they use must then be regenerated with them, in the same change."""
    manifest = COMMITTED.manifest()
    boards: dict[str, store.Leaderboard] = {}  # each file validated once (a merged file is many entries')
    for e in manifest.entries:
        status = entry_status(e, command_spec)
        assert not status.stale, f"zoo entry {e.key} ({e.stage}) is stale: {status.why}"
        for rel in e.leaderboards:
            if rel in boards:
                continue
            board = boards[rel] = committed(REPO / rel)
            # a merged file's stages are its parts': each part's own run command (merged_from records them)
            commands = [m["command"] for m in board.merged_from] if board.merged_from else [board.command]
            assert all(c[1] == "run" for c in commands), f"{rel}: a part that is not a run"
            data = DataIdentity(board.dataset.name, board.dataset.fingerprint)
            keys = {
                k
                for c in commands
                for _, k, _ in planned_stages(command_spec(c), data, torch.device(board.environment.device))
            }
            assert {r.key for r in board.training} == keys, f"{rel}: its command now trains other stages"


def test_readme_first_run_times_are_the_kept_runs():
    """The Quick start's `make run` times: the kept run from the zoo (empty cache, a fresh clone) and the kept
    cold runs (every model trained), as their files record them."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `make run` |"))
    zoo_run = committed(REPO / "benchmarks/results/main-zoo.json")
    assert all(r.zoo_sha256 for r in zoo_run.training) and zoo_run.git_dirty is False
    for name in ("main-zoo.json", "main-cold-avx512.json", "main-cold.json"):
        board = committed(REPO / "benchmarks/results" / name)
        assert f"{board.seconds_total / 60:.1f} min" in row, (name, row)


def test_a_plugin_attack_against_the_reference_defenses_trains_nothing(tiny_zoo, site, tmp_path):
    """The README's recipe: a registered attack evaluated against every zoo defense (and its static base)."""
    from ssrbench.core.registry import reset_all

    from .distributions import install_project

    install_project(site, REPO / "examples" / "ssrbench-example-plugin")
    reset_all()
    root, data, zoo, _ = tiny_zoo
    args = [a for a in TINY]
    args[args.index("--attacks") + 1] = "uniform-noise"
    out = tmp_path / "mine.json"
    res = _run(
        [
            "run",
            *args,
            "--data-dir",
            str(data),
            "--zoo-dir",
            str(zoo),
            "--zoo-only",
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    board = store.load(out)
    assert {c.attack.name for c in board.cells} == {"uniform-noise"} and len(board.cells) == 2
    assert all(r.zoo_sha256 for r in board.training)


def test_zoo_verify_trains_an_entry_again_bit_identically(tiny_zoo, tmp_path):
    root, data, zoo, _ = tiny_zoo
    entry = next(e for e in Zoo(zoo).manifest().entries if e.stage == "classifier-first/rotation")
    recorded = entry.training.environment["threads"]
    torch.set_num_threads(recorded + 1)  # what an earlier command of the same process may have left
    res = _run(["zoo", "verify", entry.key[:10], "--zoo-dir", str(zoo), "--data-dir", str(data), "--progress", "none"])
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == recorded  # trained again with the entry's own threads, not the process's
    assert f"zoo entry {entry.key} (classifier-first/rotation)" in res.output and "bit-identical" in res.output
    classifier = next(e for e in Zoo(zoo).manifest().entries if e.stage == "classifier")
    res = _run(["zoo", "verify", classifier.key, "--zoo-dir", str(zoo), "--data-dir", str(data), "--progress", "none"])
    assert res.exit_code == 0 and "bit-identical" in res.output, res.output
    res = _run(["zoo", "verify", "0123", "--zoo-dir", str(zoo), "--data-dir", str(data)])
    assert res.exit_code == 2 and "no zoo entry has that key" in error_line(res)


def test_zoo_verify_judges_other_weights_on_the_cells_seed_aware(tiny_zoo, tmp_path):
    """An entry whose weights training does not give again: `verify` evaluates a leaderboard that used them on
    the retrained weights and compares it with the file -- one seed a side cannot judge other weights."""
    root, data, zoo, trained = tiny_zoo
    zoo = _copy_zoo(zoo, tmp_path / "zoo")
    _, path = _entry_file(zoo, "classifier")
    g = torch.Generator().manual_seed(0)  # noise on every weight matrix: other predictions on some images
    _doctor_tensors(
        path,
        lambda s: {
            k: (v + 2.0 * v.std() * torch.randn(v.shape, generator=g) if v.dim() >= 2 else v) for k, v in s.items()
        },
    )
    _rehash(zoo, path, tensors=True)
    entry = next(e for e in Zoo(zoo).manifest().entries if e.stage == "classifier")
    doctored = tmp_path / "doctored.json"  # a leaderboard evaluated on the doctored weights
    res = _run(["run", *TINY, "--data-dir", str(data), "--zoo-dir", str(zoo), "--zoo-only", "--out", str(doctored)])
    assert res.exit_code == 0, res.output
    verify = ["zoo", "verify", entry.key, "--zoo-dir", str(zoo), "--data-dir", str(data), "--progress", "none"]
    res = _run([*verify, "--against", str(doctored)])
    assert res.exit_code == 1, res.output
    assert "other weights: " in res.output and " tensors differ" in res.output
    summary = res.output.strip().splitlines()[-1]
    # the multitask cell used the same weights (judged image by image), the classifier-first one other weights:
    # one seed a side cannot judge them -- unless a tiny model's per-image results happen to be identical
    assert f"{doctored} evaluated again on the new weights: 2 cells (1 on other weights)" in summary
    # of its 8 metrics (4 a cell), the multitask cell's 4 are unchanged; each of the other cell's is unchanged
    # (the same on every image) or undecided -- how many of which depends on the retrained weights' rounding
    m = re.search(r"metrics (\d+) unchanged(?:, (\d+) undecided)?", summary)
    unchanged, undecided = int(m.group(1)), int(m.group(2) or 0)
    assert unchanged + undecided == 8 and unchanged >= 4 and (undecided == 0 or "--seeds 3" in summary), summary
    res = _run([*verify, "--weights-only"])
    assert res.exit_code == 1 and "cells not compared: --weights-only" in res.output
    other = next(e for e in Zoo(zoo).manifest().entries if e.stage == "multitask/rotation")
    res = _run(
        [
            "zoo",
            "verify",
            other.key,
            "--zoo-dir",
            str(zoo),
            "--data-dir",
            str(data),
            "--against",
            str(tmp_path / "nope.json"),
        ]
    )
    assert res.exit_code == 2 and "nope.json" in error_line(res)
