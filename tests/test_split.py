"""The backbone split: a shared trunk, and the last stage(s) copied out for the task."""

import pytest
import torch

from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.base import TASKS
from ssrbench.run.testing import check_task_contract


def _model(backbone="test_resnet"):
    return SSRModel(backbone, (0.5,) * 3, (0.25,) * 3, 10).eval()


def test_split_copies_the_last_stage_and_then_diverges(images):
    model = _model()
    model.heads["task_branch"] = model.split(1)
    with torch.no_grad():
        assert torch.allclose(model.task_features(images), model.features(images), atol=1e-5)  # a faithful copy
        for p in model.heads["task_branch"].parameters():
            p.add_(0.1)
        assert not torch.allclose(model.task_features(images), model.features(images))
        before = model.features(images)
    assert torch.equal(before, model.features(images))  # the classifier's path is untouched
    shared = {id(p) for p in model.backbone.parameters()}
    assert not any(id(p) in shared for p in model.heads["task_branch"].parameters())


def test_unsplittable_or_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="task_stages must be between"):
        _model().split(9)
    with pytest.raises(ValueError, match="cannot be split"):
        _model("test_efficientnet").split(1)  # a head conv after the last stage: not a plain stage sequence


@pytest.mark.parametrize("name", ["inpaint", "rotation", "jigsaw"])
def test_every_task_conforms_with_its_own_last_stage(name):
    check_task_contract(TASKS.get(name), {"task_stages": 1}, backbone="test_resnet")
