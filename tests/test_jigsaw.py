import numpy as np
import pytest
import torch

from ssrbench.defense.reverse import reverse_attack
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.jigsaw import JigsawTask
from ssrbench.pretext.permutations import max_hamming_set, min_hamming_distance, set_fingerprint
from ssrbench.run.config import ReverseConfig, load_task_config

from .conftest import TINY_BACKBONE


def test_permutation_set_size_validity_and_determinism():
    p = max_hamming_set(9, 64, seed=0)
    assert p.shape == (64, 9)
    assert all(sorted(row) == list(range(9)) for row in p)  # each row is a permutation
    assert len({tuple(r) for r in p}) == 64  # no duplicates
    assert np.array_equal(p, max_hamming_set(9, 64, seed=0))
    assert set_fingerprint(p) != set_fingerprint(max_hamming_set(9, 64, seed=1))


def test_minimum_hamming_distance_is_computed_and_large():
    p = max_hamming_set(9, 64, seed=0)
    d = min_hamming_distance(p)
    brute = min(int((a != b).sum()) for i, a in enumerate(p) for b in p[i + 1 :])
    assert d == brute
    # random sets of the same size do far worse; the greedy max-min set keeps its members well apart
    rng = np.random.default_rng(0)
    rand = np.array([rng.permutation(9) for _ in range(64)])
    assert d >= 7 > min_hamming_distance(rand)


def test_tiles_stay_in_their_cells_with_gaps():
    task = JigsawTask()
    cell, max_jitter, max_origin = task.geometry(32)
    assert (cell, task.params.tile_size) == (10, 7)
    g = torch.Generator().manual_seed(0)
    for gen in (g, None):
        ys, xs = task.tile_corners(50, 32, gen, "cpu")
        for i in range(9):
            r, c = divmod(i, 3)
            y0 = ys[:, i] - r * cell
            x0 = xs[:, i] - c * cell
            # within its cell: [origin + r*cell, origin + (r+1)*cell - 1), never touching the next cell
            assert (y0 >= 0).all() and (y0 + task.params.tile_size <= max_origin + cell - 1).all()
            assert (x0 >= 0).all() and (x0 + task.params.tile_size <= max_origin + cell - 1).all()
        # horizontal neighbours never touch: a gap of at least one pixel
        gaps = xs[:, 1] - (xs[:, 0] + task.params.tile_size)
        assert (gaps >= 1).all()
    ys, xs = task.tile_corners(50, 32, g, "cpu")
    assert len({tuple(r) for r in ys.tolist()}) > 1  # training draws vary
    f1, f2 = task.tile_corners(3, 32, None, "cpu"), task.tile_corners(5, 32, None, "cpu")
    assert torch.equal(f1[0][0], f2[0][0])  # the evaluation draw is fixed, whatever the batch


def test_cut_tiles_are_the_pixels_at_the_corners(images):
    task = JigsawTask()
    tiles = task.cut_tiles(images)
    ys, xs = task.tile_corners(6, 32, None, "cpu")
    t = task.params.tile_size
    assert tiles.shape == (6, 9, 3, t, t)
    y, x = ys[2, 4].item(), xs[2, 4].item()
    assert torch.equal(tiles[2, 4], images[2, :, y : y + t, x : x + t])


def test_impossible_geometry_is_rejected():
    with pytest.raises(ValueError, match="no gap"):
        JigsawTask({"tile_size": 10}).geometry(32)


def test_reverse_attack_lowers_the_jigsaw_loss(images):
    task = JigsawTask({"hidden": 32, "permutations": 16, "reverse_permutations": 8})
    model = task.attach(SSRModel(TINY_BACKBONE, (0.5,) * 3, (0.25,) * 3, 10)).eval()
    x_rev = reverse_attack(model, task, images, ReverseConfig(eps=8 / 255, step_size=1 / 255, steps=10))
    with torch.no_grad():
        assert task.reverse_loss(model, x_rev).mean() < task.reverse_loss(model, images).mean()


def test_tile_statistics_do_not_leak_into_the_classifier(images):
    task = JigsawTask({"hidden": 32, "permutations": 16, "reverse_permutations": 8})
    model = task.attach(SSRModel(TINY_BACKBONE, (0.5,) * 3, (0.25,) * 3, 10)).train()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items() if "running" in k}
    task.training_loss(model, images, torch.Generator().manual_seed(0))
    after = {k: v for k, v in model.backbone.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)  # the classifier's statistics are untouched
    tile_stats = model.heads["tile_bn"].state_dict()
    assert any(
        not torch.equal(v, before[k]) for k, v in zip(before, [tile_stats[n] for n in tile_stats if "running" in n])
    )


def test_builtin_jigsaw_config_records_its_permutation_set():
    cfg = load_task_config("jigsaw")
    task = JigsawTask(cfg.params)
    info = task.describe()
    assert info["permutation_set"] == set_fingerprint(max_hamming_set(9, cfg.params["permutations"], 0))
    assert info["min_hamming_distance"] >= 6
