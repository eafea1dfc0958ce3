import sys
import warnings

import pytest

from ssrbench.adversarial.base import ATTACKS
from ssrbench.core.errors import UnknownNameError
from ssrbench.core.registry import DuplicateNameError, PluginWarning, Registry, SkippedPluginError, reset_all
from ssrbench.data.datasets import DATASETS
from ssrbench.models.backbone import BACKBONES
from ssrbench.pretext.base import TASKS
from ssrbench.pretext.inpaint import InpaintTask
from ssrbench.training.modes import MODES

from .distributions import install_fake_distribution


def test_builtins_come_from_ssrbench_entry_points():
    assert TASKS.get("inpaint") is InpaintTask
    assert TASKS.origin("inpaint").distribution == "ssrbench"
    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
    assert set(MODES.names()) == {"multitask", "classifier-first"}
    assert "cifar10" in DATASETS.names() and "ssr_resnet8" in BACKBONES.names()


def test_duplicate_name_is_an_error():
    reg = Registry("thing", "ssrbench.test-nothing")
    reg.register("a", 1)
    with pytest.raises(DuplicateNameError):
        reg.register("a", 2)


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError) as err:
        MODES.get("multi-task")
    assert err.value.suggestions == ["multitask"]
    assert err.value.exit_code == 2
    assert "did you mean 'multitask'" in str(err.value).lower()


@pytest.fixture
def plugin_site(tmp_path):
    site = tmp_path / "site"
    yield site
    sys.path[:] = [p for p in sys.path if p != str(site)]
    reset_all()


def test_broken_plugin_warns_and_others_keep_working(plugin_site):
    install_fake_distribution(
        plugin_site,
        "ssr-broken-plugin",
        "0.3",
        {"ssrbench.tasks": {"broken": "ssr_broken_mod:Nope", "notatask": "ssr_broken_mod:NotATask"}},
        {"ssr_broken_mod": "raise ImportError('missing dependency foo')\n"},
    )
    TASKS.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = TASKS.names()
    assert "inpaint" in names and "broken" not in names
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert any("ssr-broken-plugin" in m and "missing dependency foo" in m for m in messages)


def test_plugin_cannot_replace_a_builtin(plugin_site):
    install_fake_distribution(
        plugin_site,
        "ssr-squatter",
        "1.0",
        {"ssrbench.tasks": {"inpaint": "ssr_squat_mod:Task"}},
        {"ssr_squat_mod": "Task = object\n"},
    )
    TASKS.reset()
    with pytest.warns(PluginWarning, match="ssr-squatter.*already provided by ssrbench"):
        assert TASKS.get("inpaint") is InpaintTask


def test_plugin_violating_the_contract_is_skipped(plugin_site):
    install_fake_distribution(
        plugin_site,
        "ssr-bad-contract",
        "0.1",
        {"ssrbench.tasks": {"halfdone": "ssr_half_mod:Half"}},
        {
            "ssr_half_mod": "from ssrbench.pretext.base import PretextTask\nclass Half(PretextTask):\n"
            "    name = 'halfdone'\n    version = '1'\n    metric_name = 'm'\n    higher_is_better = True\n"
        },
    )
    TASKS.reset()
    with pytest.warns(PluginWarning, match="ssr-bad-contract.*does not implement"):
        with pytest.raises(UnknownNameError):
            TASKS.get("halfdone")


def test_skipped_plugin_is_named_not_unknown(plugin_site):
    install_fake_distribution(
        plugin_site,
        "ssr-skipped",
        "0.4",
        {"ssrbench.attacks": {"gone": "ssr_skip_mod:Gone"}},
        {"ssr_skip_mod": "raise ImportError('needs torchattacks')\n"},
    )
    ATTACKS.reset()
    with pytest.warns(PluginWarning):
        assert ATTACKS.skipped("gone") == "ImportError: needs torchattacks"
    with pytest.raises(
        SkippedPluginError,
        match=r"^attack kind 'gone' is installed \(ssr-skipped 0.4\) but skipped: "
        r"ImportError: needs torchattacks$",
    ):
        ATTACKS.get("gone")
    assert ATTACKS.skipped("fgsm") is None and ATTACKS.skipped("nothing") is None
