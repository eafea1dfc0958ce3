import json

import numpy as np
import pytest

from ssrbench.core.fileio import atomic_write
from ssrbench.core.stats import pack_bits, unpack_bits, wilson_interval
from ssrbench.leaderboard import store
from ssrbench.leaderboard.schema import SCHEMA_VERSION, Accuracy

from .helpers import FIXTURE


def test_fixture_round_trip(tmp_path):
    board = store.load(FIXTURE)
    out = tmp_path / "copy.json"
    store.save(board, out)
    again = store.load(out)
    assert again == board
    assert again.cells and again.schema_version == SCHEMA_VERSION


def test_records_what_makes_a_number_traceable():
    board = store.load(FIXTURE)
    assert board.command[0] == "ssrbench" and board.config_hash and len(board.dataset.fingerprint) == 64
    assert board.environment.torch and board.environment.threads >= 1
    cell = board.cells[0]
    assert cell.reverse.steps >= 0 and cell.attack.params and cell.task.version
    assert len(cell.clean.flags()) == cell.clean.n == board.dataset.eval_images


def test_newer_schema_is_refused(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    p = tmp_path / "future.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(store.LeaderboardError, match="newer than this ssrbench"):
        store.load(p)


def test_malformed_field_names_file_and_field(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    doc["cells"][0]["adv"]["percent"] = "lots"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(store.LeaderboardError) as err:
        store.load(p)
    assert str(p) in str(err.value) and "cell inpaint/multitask/fgsm seed 0: adv.percent" in str(err.value)


def test_inconsistent_counts_are_refused(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    doc["cells"][0]["clean"]["correct"] += 1
    with pytest.raises(store.LeaderboardError, match="cell inpaint/multitask/fgsm seed 0: clean: "):
        store.loads(json.dumps(doc), "x.json")


def test_not_a_leaderboard(tmp_path):
    with pytest.raises(store.LeaderboardError, match="schema_version"):
        store.loads("{}", "empty.json")
    with pytest.raises(store.LeaderboardError, match="not JSON"):
        store.loads("{", "trunc.json")


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "board.json"
    target.write_text("old")

    def half_then_crash(fh):
        fh.write(b"new but only ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]  # no temp file left behind


def test_bits_and_interval():
    flags = np.array([1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
    assert (unpack_bits(pack_bits(flags), len(flags)) == flags).all()
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(40.38, abs=0.05) and hi == pytest.approx(59.62, abs=0.05)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(100.0)
    acc = Accuracy.from_flags(flags)
    assert acc.correct == 5 and acc.percent == pytest.approx(500 / 9)
