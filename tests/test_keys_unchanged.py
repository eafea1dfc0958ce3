"""Config hashes and model-cache keys, listed: a refactor that changes how a run's config is recorded or a stage
is keyed changes a committed file's identity (its config_hash) or makes every cached and zoo model stale, so each
value below is written out as the committed file holds it and recomputed by today's code from the file's own
command. A change that must move one is a new config (say so, and regenerate the files), never a silent edit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssrbench.cli.run_command import command_spec
from ssrbench.core.hashing import config_hash
from ssrbench.run.spec import recorded_config
from ssrbench.run.units import planned_stages
from ssrbench.training.modes import DataIdentity

from .helpers import committed

REPO = Path(__file__).resolve().parents[1]

# file: (its config_hash, the model-cache key of every stage its command trains or loads, in order); a file whose
# command today resolves to another config on purpose says so in NOW, with the change that moved it
KEYS = {
    "leaderboards/quick.json": (
        "700d9031543b017c",
        ["fe3a47229a509eeb", "11afff21bf1fc4d2", "57637ad2e5ac413f", "525db56c2a4828ee", "426e118b05a6e5eb"],
    ),
    "leaderboards/quick-sweep.json": (
        "5892bddc26127da3",
        ["fe3a47229a509eeb", "11afff21bf1fc4d2", "b9cf93da9a03deaf", "525db56c2a4828ee", "a620e99b65088a98"],
    ),
    "leaderboards/quick-seeds/seed1.json": (
        "4d1b4533125e0bfe",
        ["7af1ef48fee03ce2", "c0ab6472cf86599e", "19630204dd52bd01", "955b139342ec60f9", "1f4bbdbb1406a04f"],
    ),
    "leaderboards/quick-contrastive/multitask.json": ("41eafe022426afd7", ["fe3a47229a509eeb", "0145841cca7d4ae4"]),
    "leaderboards/seed.json": ("3d18fce88cc11f7d", ["1bfe099388e68b06", "4e1cedbcc8471ddc", "8951e63b1e84db9b"]),
}
NOW = {
    # its APGD configs now run the authors' AutoAttack code (engine = "reference", kind version 2): another attack,
    # so another config; the file keeps what torchattacks measured, and its models' keys are unchanged
    "leaderboards/quick-contrastive/multitask.json": "93995fe20dcfa830",
}


@pytest.mark.parametrize("rel", sorted(KEYS))
def test_a_committed_files_hash_and_keys_are_what_its_command_resolves_to_today(rel):
    config, keys = KEYS[rel]
    board = committed(REPO / rel)
    assert board.config_hash == config and {r.key for r in board.training} <= set(keys)  # older files: own stages
    spec = command_spec(board.command)
    assert config_hash(recorded_config(spec)) == NOW.get(rel, config)
    data = DataIdentity(board.dataset.name, board.dataset.fingerprint)
    assert [key for _, key, _ in planned_stages(spec, data, torch.device("cpu"))] == keys


def test_several_seeds_are_recorded_as_seed_and_seeds_and_read_back_as_one_list():
    """The one list a run holds is written the way files have always held it: ``seed`` (the first), and
    ``seeds`` only when there are several."""
    one = command_spec(["ssrbench", "run", "--preset", "smoke", "--seed", "3"])
    several = command_spec(["ssrbench", "run", "--preset", "smoke", "--seeds", "3,5"])
    assert one.seeds == [3] and several.seeds == [3, 5]
    recorded = recorded_config(several)
    assert (recorded["seed"], recorded["seeds"]) == (3, [3, 5]) and "seeds" not in recorded_config(one)
    assert list(recorded).index("seed") == list(recorded_config(one)).index("seed")  # the same place
    for spec in (one, several):  # what reproduce reads back
        again = type(spec).model_validate(recorded_config(spec))
        assert again.seeds == spec.seeds and recorded_config(again) == recorded_config(spec)
    assert config_hash(recorded_config(one)) == "a5b66df4cac9b264"  # as the code before the one list computed it
    assert config_hash(recorded) == "79f5a8b449b73b5a"
