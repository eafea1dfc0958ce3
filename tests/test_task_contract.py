"""Every built-in task passes the same conformance check a plugin is asked to pass."""

import pytest
import torch

from ssrbench.pretext.base import TASKS
from ssrbench.pretext.rotation import rotate
from ssrbench.run.testing import check_task_contract


@pytest.mark.parametrize("name", ["inpaint", "rotation", "jigsaw", "contrastive"])
def test_builtin_task_conforms(name):
    assert name in TASKS.names()
    check_task_contract(TASKS.get(name))


def test_conformance_check_catches_a_task_without_input_gradient():
    class Blind(TASKS.get("rotation")):
        name = "rotation"  # same registered name, broken behaviour

        def reverse_loss(self, model, x):
            return super().reverse_loss(model, x.detach())

    with pytest.raises(AssertionError, match="no gradient"):
        check_task_contract(Blind)


def test_conformance_check_catches_batch_level_reverse_loss():
    class Mean(TASKS.get("rotation")):
        def reverse_loss(self, model, x):
            return super().reverse_loss(model, x).mean()

    with pytest.raises(AssertionError, match="one value per image"):
        check_task_contract(Mean)


def test_rotation_is_exact():
    x = torch.rand(4, 3, 8, 8)
    k = torch.tensor([0, 1, 2, 3])
    r = rotate(x, k)
    assert torch.equal(r[0], x[0]) and torch.equal(r[2], x[2].flip(1).flip(2))
    assert torch.equal(rotate(r, (4 - k) % 4), x)  # four quarter turns are the identity, bit for bit
