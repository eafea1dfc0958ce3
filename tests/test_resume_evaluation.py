"""An evaluation keeps its finished batches, so a killed run continues where it stopped -- with the numbers
of an uninterrupted evaluation -- and a kept file that does not fit, or is hostile, is never trusted."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.leaderboard.render import markdown
from ssrbench.training.cache import ModelCache

from .helpers import TINY, KeptBatches, ShellPayload, make_cifar, toy_evaluate


def _same(a, b):
    for k in ("clean", "clean_rev", "pretext_clean", "clean_rev_fixed", "clean_rev_all"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert a.defense_passes == b.defense_passes
    for name in a.attacks:
        for f in (
            "adv",
            "adv_rev",
            "adv_rev_fixed",
            "adv_rev_all",
            "pretext_adv",
            "pretext_adv_rev",
            "to_base",
            "from_base",
            "from_base_all",
        ):
            parts_a, parts_b = getattr(a.attacks[name], f), getattr(b.attacks[name], f)
            assert bool(parts_a) == bool(parts_b), f"{name}: {f}"
            if parts_a:
                np.testing.assert_array_equal(np.concatenate(parts_a), np.concatenate(parts_b), err_msg=f"{name}: {f}")


@pytest.mark.parametrize("base", [False, True], ids=["own-base", "judged-against-another-base"])
def test_a_killed_evaluation_resumes_after_its_last_batch_with_the_numbers_of_an_uninterrupted_one(tmp_path, base):
    whole = toy_evaluate(base=base)
    assert not np.array_equal(whole.clean_rev, whole.clean_rev_all)  # the toy defense draws: streams matter
    assert bool(whole.attacks["a"].from_base_all) == base  # transfer both ways, every draw, only with a base
    cache = ModelCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        toy_evaluate(KeptBatches(cache, stop_after=3), base=base)  # 3 of 5 batches finished, then killed
    assert (tmp_path / "k.eval.pt").exists()
    if base:  # a kept evaluation made without the base's streams does not fit one with them, and vice versa
        with pytest.warns(UserWarning, match="do not fit"):
            toy_evaluate(KeptBatches(ModelCache(tmp_path)), base=False)
        cache.drop_progress()
        with pytest.raises(KeyboardInterrupt):
            toy_evaluate(KeptBatches(cache, stop_after=3), base=base)
    rest = KeptBatches(cache)
    resumed = toy_evaluate(rest, base=base)
    assert rest.saves == 2  # only the two batches left were evaluated
    _same(whole, resumed)
    assert (whole.resumed_after, resumed.resumed_after) == (0, 24)  # and the outcome says where it took over
    # a finished evaluation kept (a later unit of the run was killed) is taken whole: nothing evaluated again
    again = KeptBatches(cache)
    _same(whole, toy_evaluate(again, base=base))
    assert again.saves == 0
    cache.drop_progress()
    assert not list(tmp_path.glob("*.eval.pt"))


def test_kept_batches_that_are_broken_hostile_or_of_another_evaluation_are_not_resumed_from(tmp_path):
    whole = toy_evaluate()
    src = ModelCache(tmp_path / "src")
    with pytest.raises(KeyboardInterrupt):
        toy_evaluate(KeptBatches(src, stop_after=2))
    good = torch.load(tmp_path / "src" / "k.eval.pt", weights_only=True)
    cases = {
        "truncated": b"PK\x03\x04 not kept batches",
        "code": pickle.dumps({"format": 1, "x": ShellPayload()}, protocol=2),
        "odd stop": dict(good, done=7),
        "short flags": dict(good, lists=dict(good["lists"], clean=torch.ones(3, dtype=torch.bool))),
        "bad generator": dict(good, streams=dict(good["streams"], reverse=torch.zeros(3, dtype=torch.uint8))),
    }
    for name, content in cases.items():
        cache = ModelCache(tmp_path / name.replace(" ", "-"))
        cache.root.mkdir()
        path = cache.progress_path("k")
        path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
        kept = KeptBatches(cache)
        with pytest.warns(UserWarning, match="(unreadable|do not fit)"):
            out = toy_evaluate(kept)
        assert kept.saves == 5, name  # evaluated from the first image
        _same(whole, out)
    # other attacks: other streams, so the kept batches of a run of "a" alone do not fit a run of "a" and "b"
    with pytest.raises(KeyboardInterrupt):
        toy_evaluate(KeptBatches(ModelCache(tmp_path / "one"), stop_after=2), attacks=("a",))
    kept = KeptBatches(ModelCache(tmp_path / "one"))
    with pytest.warns(UserWarning, match="do not fit"):
        _same(whole, toy_evaluate(kept))
    assert kept.saves == 5


def _run(tmp_path, cache):
    args = list(TINY)
    args[args.index("--tasks") + 1] = "rotation,jigsaw"  # two models (one classifier, two heads): two evaluations
    return CliRunner().invoke(
        cli,
        [
            "run",
            *args,
            "--modes",
            "classifier-first",
            "--data-dir",
            str(tmp_path / "data"),
            "--no-download",
            "--cache-dir",
            str(cache),
            "--out",
            str(tmp_path / "b.json"),
        ],
    )


def test_a_run_killed_in_its_second_model_keeps_the_first_evaluation_and_drops_both_when_done(tmp_path, monkeypatch):
    import ssrbench.run.units as runner

    make_cifar(tmp_path / "data")
    real, kept = runner.evaluate, []

    def killed_in_second(*args, **kwargs):
        kept.append(kwargs["kept"])
        if len(kept) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cache = tmp_path / "cache"
    monkeypatch.setattr(runner, "evaluate", killed_in_second)
    stopped = _run(tmp_path, cache)
    assert stopped.exit_code == 130 and "an evaluation at its last finished batch" in stopped.output
    assert [p.name for p in cache.glob("*.eval.pt")] == [f"{kept[0].key}.eval.pt"]
    assert not (tmp_path / "b.json").exists()

    resumed_whole, saves = [], []

    class Counting:
        """The run's kept batches, counting the batches evaluated (each one is saved)."""

        def __init__(self, inner):
            self.inner, self.saves = inner, 0
            saves.append(self)

        def load(self):
            return self.inner.load()

        def save(self, state):
            self.saves += 1
            self.inner.save(state)

    def spying(*args, **kwargs):
        saved = kwargs["kept"].load()
        resumed_whole.append(saved is not None and saved["done"] == 16)
        return real(*args, **{**kwargs, "kept": Counting(kwargs["kept"])})

    monkeypatch.setattr(runner, "evaluate", spying)
    resumed = _run(tmp_path, cache)
    assert resumed.exit_code == 0, resumed.output
    assert resumed_whole == [True, False]  # the first model's evaluation was kept whole, the second's not at all
    assert [k.saves for k in saves] == [0, 1]  # so only the second model's one batch was evaluated
    assert (tmp_path / "b.json").exists() and not list(
        cache.glob("*.eval.pt")
    )  # every cell built: nothing kept any more
    board = store.load(tmp_path / "b.json")  # the file says which evaluation was resumed, so its times read right
    said = (
        "evaluate classifier-first/rotation resumed after 16/16 images kept by an earlier, interrupted process: "
        "its cells' seconds include that process's, seconds_total and ran_on do not"
    )
    assert [n for n in board.notes if "resumed" in n] == [said]
    assert f"> note: {said}" in markdown(board)  # and `show` says it
