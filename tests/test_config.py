import pytest

from ssrbench.config import config_hash, load_attack_config, load_task_config
from ssrbench.errors import ConfigError, UnknownNameError


def _write(folder, kind, name, text):
    d = folder / kind
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.toml").write_text(text)
    return d / f"{name}.toml"


def test_fraction_budgets_are_parsed(tmp_path):
    _write(tmp_path, "attacks", "mine", 'kind = "pgd"\n[params]\neps = "4/255"\nstep_size = 0.004\nsteps = 3\n')
    cfg = load_attack_config("mine", [tmp_path])
    assert cfg.params["eps"] == pytest.approx(4 / 255) and cfg.params["steps"] == 3


def test_unknown_key_names_file_and_field(tmp_path):
    path = _write(tmp_path, "attacks", "typo", 'kind = "pgd"\n[params]\nepsilon = 0.03\n')
    with pytest.raises(ConfigError) as err:
        load_attack_config("typo", [tmp_path])
    assert str(path) in str(err.value) and "params.epsilon" in str(err.value)


def test_out_of_range_value_is_rejected(tmp_path):
    _write(tmp_path, "attacks", "huge", 'kind = "fgsm"\n[params]\neps = 2.0\n')
    with pytest.raises(ConfigError, match=r"params\.eps"):
        load_attack_config("huge", [tmp_path])
    _write(tmp_path, "tasks", "badmask", 'task = "inpaint"\n[params]\nmask_fraction = 1.5\n')
    with pytest.raises(ConfigError, match=r"params\.mask_fraction"):
        load_task_config("badmask", [tmp_path])
    _write(tmp_path, "tasks", "badrev", 'task = "inpaint"\n[reverse]\nsteps = -1\n')
    with pytest.raises(ConfigError, match=r"reverse\.steps"):
        load_task_config("badrev", [tmp_path])


def test_malformed_toml_names_the_file(tmp_path):
    path = _write(tmp_path, "attacks", "broken", 'kind = "pgd\n')
    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load_attack_config("broken", [tmp_path])
    assert str(path) in str(err.value)


def test_unknown_kind_and_name_suggest(tmp_path):
    _write(tmp_path, "attacks", "weird", 'kind = "pgdd"\n')
    with pytest.raises(UnknownNameError, match="(?i)did you mean 'pgd'"):
        load_attack_config("weird", [tmp_path])
    with pytest.raises(UnknownNameError, match="(?i)did you mean .*'pgd2'"):
        load_attack_config("pdg2")
    with pytest.raises(UnknownNameError, match="(?i)did you mean 'inpaint'"):
        load_task_config("inpant")


def test_user_folder_adds_and_shadows(tmp_path, monkeypatch):
    _write(tmp_path, "tasks", "inpaint-big", 'task = "inpaint"\n[params]\ndecoder_width = 128\n')
    cfg = load_task_config("inpaint-big", [tmp_path])
    assert cfg.task == "inpaint" and cfg.params["decoder_width"] == 128
    assert cfg.params["lambda_rec"] == pytest.approx(0.999)  # defaults filled in and recorded
    monkeypatch.setenv("SSRBENCH_CONFIG_DIRS", str(tmp_path))
    assert load_task_config("inpaint-big").params["decoder_width"] == 128


def test_config_hash_is_stable_and_sensitive():
    a = load_attack_config("pgd2")
    assert config_hash(a) == config_hash(load_attack_config("pgd2"))
    assert config_hash(a) != config_hash(load_attack_config("pgd10"))


def test_shared_optimizer_follows_the_preset_and_keeps_old_cache_keys():
    import torch

    from ssrbench.presets import PRESETS
    from ssrbench.training.modes import TrainContext, _shared_optimizer

    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd, _ = _shared_optimizer(params, PRESETS["quick"], 10)
    adam, _ = _shared_optimizer(params, PRESETS["quick"].model_copy(update={"optimizer": "adam"}), 10)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.999)

    class _Data:  # base_spec reads only these
        name, fingerprint, train_x = "cifar10", "f" * 64, torch.zeros(1)

    def spec(preset):
        return TrainContext(data=_Data(), preset=preset, device=torch.device("cpu"), seed=0, cache=None,
                            reporter=None).base_spec()

    assert "optimizer" not in spec(PRESETS["quick"])  # models cached before the option keep their keys
    assert spec(PRESETS["quick"].model_copy(update={"optimizer": "adam"}))["optimizer"] == "adam"


def test_optimizer_option_is_checked_by_the_cli():
    from click.testing import CliRunner

    from ssrbench.cli import cli

    res = CliRunner().invoke(cli, ["run", "--optimizer", "rmsprop"])
    assert res.exit_code == 2 and "sgd" in res.output and "adam" in res.output
