"""The plugin's own tests: ssrbench's conformance checks, and its named configs found once installed."""

import pytest
from ssrbench_example_plugin import UniformNoise, VFlipTask

from ssrbench.run.config import load_attack_config, load_task_config
from ssrbench.run.testing import check_attack_contract, check_task_contract


def test_vflip_conforms():
    check_task_contract(VFlipTask)


def test_uniform_noise_conforms():
    check_attack_contract(UniformNoise)
    check_attack_contract(UniformNoise, {"eps": 16 / 255})


def test_named_configs_are_found_by_name():
    rev16 = load_task_config("vflip-rev16")
    assert rev16.kind == "vflip" and rev16.reverse.eps == pytest.approx(16 / 255)
    assert rev16.reverse.steps == load_task_config("vflip").reverse.steps  # from vflip.toml, by extends
    assert load_attack_config("uniform-noise-eps16").params["eps"] == pytest.approx(16 / 255)
