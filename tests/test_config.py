import contextlib

import pytest

from ssrbench.core.errors import ConfigError, UnknownNameError
from ssrbench.run.config import config_hash, load_attack_config, load_task_config


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
    _write(tmp_path, "tasks", "badmask", 'kind = "inpaint"\n[params]\nmask_fraction = 1.5\n')
    with pytest.raises(ConfigError, match=r"params\.mask_fraction"):
        load_task_config("badmask", [tmp_path])
    _write(tmp_path, "tasks", "badrev", 'kind = "inpaint"\n[reverse]\nsteps = -1\n')
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
    _write(tmp_path, "tasks", "inpaint-big", 'kind = "inpaint"\n[params]\ndecoder_width = 128\n')
    cfg = load_task_config("inpaint-big", [tmp_path])
    assert cfg.kind == "inpaint" and cfg.params["decoder_width"] == 128
    assert cfg.params["lambda_rec"] == pytest.approx(0.999)  # defaults filled in and recorded
    monkeypatch.setenv("SSRBENCH_CONFIG_DIRS", str(tmp_path))
    assert load_task_config("inpaint-big").params["decoder_width"] == 128


def test_config_hash_is_stable_and_sensitive():
    a = load_attack_config("pgd2")
    assert config_hash(a) == config_hash(load_attack_config("pgd2"))
    assert config_hash(a) != config_hash(load_attack_config("pgd10"))


def test_shared_optimizer_follows_the_preset_and_keeps_old_cache_keys():
    import torch

    from ssrbench.core.presets import PRESETS
    from ssrbench.training.modes import TrainContext, _shared_optimizer

    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd, _ = _shared_optimizer(params, PRESETS["quick"], 10)
    adam, _ = _shared_optimizer(params, PRESETS["quick"].model_copy(update={"optimizer": "adam"}), 10)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.999)

    class _Data:  # base_spec reads only these
        name, fingerprint, train_x = "cifar10", "f" * 64, torch.zeros(1)

    def spec(preset):
        return TrainContext(
            data=_Data(), preset=preset, device=torch.device("cpu"), seed=0, cache=None, reporter=None
        ).base_spec()

    assert "optimizer" not in spec(PRESETS["quick"])  # models cached before the option keep their keys
    assert spec(PRESETS["quick"].model_copy(update={"optimizer": "adam"}))["optimizer"] == "adam"


def test_optimizer_option_is_checked_by_the_cli():
    from click.testing import CliRunner

    from ssrbench.cli import cli

    res = CliRunner().invoke(cli, ["run", "--optimizer", "rmsprop"])
    assert res.exit_code == 2 and "sgd" in res.output and "adam" in res.output


# -- extends: the rewritten files resolve exactly as the full files they replaced --------------------

BEFORE_EXTENDS = {  # the files as they were written out in full (commit 0019b75), kept verbatim
    (
        "tasks",
        "inpaint-rev16",
    ): '''description = """Inpainting as `inpaint`, with the reverse attack at 16/255 (10 steps of 4/255): the larger budget
the source report's drop in clean accuracy implies (benchmarks/seed_settings.py). Same trained models."""
task = "inpaint"

[params]
mask_fraction = 0.5       # side of the hole / side of the image (the report: half)
fill_value = 1.0          # the hole is painted white, as in PyTorch-GAN's context encoder
lambda_adv = 0.001        # PyTorch-GAN's weights for L_G = lambda_adv * L_adv + lambda_rec * L_rec
lambda_rec = 0.999
decoder_width = 64
discriminator_width = 32
multitask_weight = 10.0   # L_G is ~0.02 (pixel MSE); scaled so it shapes the shared backbone

[reverse]                 # twice inpaint's budget; steps of eps/4, as inpaint
eps = "16/255"
step_size = "4/255"
steps = 10
random_start = false
''',  # noqa: E501 (verbatim)
    (
        "attacks",
        "fgsm-eps16",
    ): """description = "FGSM at eps = 16/255: the budget at which the source report's multitask FGSM accuracy (1.26%) is met (benchmarks/seed_settings.py)."
kind = "fgsm"

[params]
eps = "16/255"
""",  # noqa: E501 (verbatim)
    (
        "attacks",
        "pgd2-eps16",
    ): """description = "L-inf PGD, 2 steps of eps/2 from the clean image at eps = 16/255: with fgsm-eps16, the settings the source report's numbers imply."
kind = "pgd"

[params]
eps = "16/255"
step_size = "8/255"
steps = 2
random_start = false
""",  # noqa: E501 (verbatim)
    (
        "attacks",
        "pgd20",
    ): """description = "L-inf PGD (Madry et al. 2018), 20 steps of 2/255 from a uniform random start."
kind = "pgd"

[params]
eps = "8/255"
step_size = "2/255"
steps = 20
random_start = true
""",
    (
        "attacks",
        "sanity-pgd10-eps128",
    ): """description = "Sanity check, not a threat model: PGD with eps = 128/255 must drive accuracy to about zero."
kind = "pgd"

[params]
eps = "128/255"
step_size = "32/255"
steps = 10
random_start = true
""",
}


def _loader(folder):
    return load_task_config if folder == "tasks" else load_attack_config


@pytest.mark.parametrize("folder, name", sorted(BEFORE_EXTENDS))
def test_files_rewritten_with_extends_resolve_as_before(tmp_path, folder, name):
    from ssrbench.run.config import builtin_config_dir

    assert "extends" in (builtin_config_dir(folder) / f"{name}.toml").read_text()
    _write(tmp_path, folder, name, BEFORE_EXTENDS[(folder, name)])
    from ssrbench.run.config import ConfigDeprecationWarning

    # the task file was written with the key `kind` had then, `task`: read, with a warning to rename it
    with pytest.warns(ConfigDeprecationWarning) if folder == "tasks" else contextlib.nullcontext():
        old = _loader(folder)(name, [tmp_path])
    new = _loader(folder)(name)
    assert old.source == str(tmp_path / folder / f"{name}.toml") and new.source != old.source
    assert new.model_dump(mode="json") == old.model_dump(mode="json")
    assert "extends" not in new.model_dump() and "source" not in new.model_dump()
    assert config_hash(new) == config_hash(old)


def test_committed_leaderboards_record_the_configs_extends_resolves_to():
    from pathlib import Path

    from ssrbench.leaderboard import store

    seen = set()
    for path in sorted((Path(__file__).resolve().parent.parent / "leaderboards").glob("*.json")):
        config = store.load(path).config
        for folder in ("tasks", "attacks"):
            for recorded in config[folder]:
                if (folder, recorded["name"]) in BEFORE_EXTENDS:
                    seen.add(recorded["name"])
                    assert _loader(folder)(recorded["name"]).model_dump(mode="json") == recorded, path
    assert {"inpaint-rev16", "fgsm-eps16", "pgd2-eps16", "sanity-pgd10-eps128"} <= seen


def test_extends_merges_tables_key_by_key(tmp_path):
    _write(tmp_path, "tasks", "small", 'extends = "inpaint"\n[params]\ndecoder_width = 32\n[reverse]\nsteps = 3\n')
    cfg, parent = load_task_config("small", [tmp_path]), load_task_config("inpaint")
    assert cfg.kind == "inpaint" and cfg.description == parent.description
    assert cfg.params == {**parent.params, "decoder_width": 32}
    assert cfg.reverse == parent.reverse.model_copy(update={"steps": 3})
    assert "extends" not in cfg.model_dump()


def test_extends_a_chain_and_a_kind_without_file(tmp_path):
    _write(tmp_path, "attacks", "a", 'extends = "b"\ndescription = "a"\n[params]\nsteps = 3\n')
    _write(tmp_path, "attacks", "b", 'extends = "pgd"\n[params]\neps = "4/255"\nstep_size = "1/255"\n')
    cfg = load_attack_config("a", [tmp_path])
    assert cfg.kind == "pgd" and cfg.description == "a"
    assert cfg.params == {
        **load_attack_config("pgd").params,
        "eps": pytest.approx(4 / 255),
        "step_size": pytest.approx(1 / 255),
        "steps": 3,
    }


def test_a_file_extending_its_own_name_extends_the_one_it_shadows(tmp_path):
    _write(tmp_path, "tasks", "inpaint", 'extends = "inpaint"\n[reverse]\nsteps = 2\n')
    cfg = load_task_config("inpaint", [tmp_path])
    assert cfg.reverse.steps == 2 and cfg.params == load_task_config("inpaint").params


def test_extends_cycle_is_refused_naming_the_chain(tmp_path):
    _write(tmp_path, "tasks", "a", 'extends = "b"\n')
    _write(tmp_path, "tasks", "b", 'extends = "c"\n')
    _write(tmp_path, "tasks", "c", 'extends = "a"\n')
    with pytest.raises(ConfigError, match=r"circle: a \(.*\) -> b \(.*\) -> c \(.*\) -> a \("):
        load_task_config("a", [tmp_path])


def test_extends_unknown_or_malformed_names_the_file(tmp_path):
    path = _write(tmp_path, "tasks", "typo", 'extends = "inpant"\n')
    with pytest.raises(ConfigError, match="(?i)extends: unknown task 'inpant'. did you mean 'inpaint'") as err:
        load_task_config("typo", [tmp_path])
    assert str(path) in str(err.value)
    _write(tmp_path, "tasks", "bad", "extends = 3\n")
    with pytest.raises(ConfigError, match="extends must be the name"):
        load_task_config("bad", [tmp_path])


def test_a_parents_invalid_value_is_reported_with_the_chain(tmp_path):
    parent = _write(tmp_path, "tasks", "parent", 'kind = "inpaint"\n[params]\nmask_fraction = 1.5\n')
    _write(tmp_path, "tasks", "child", 'extends = "parent"\n')
    with pytest.raises(ConfigError, match=r"params\.mask_fraction") as err:
        load_task_config("child", [tmp_path])
    assert f"(extends {parent})" in str(err.value)


# -- where a config came from: recorded, never hashed; shadowing a built-in is said -------------------


def test_source_is_recorded_but_not_dumped(tmp_path):
    from ssrbench.run.config import builtin_config_dir

    cfg = load_task_config("inpaint")
    assert cfg.source == str(builtin_config_dir("tasks") / "inpaint.toml")
    assert "source" not in cfg.model_dump() and load_attack_config("pgd").source is None
    _write(tmp_path, "attacks", "sneaky", 'kind = "fgsm"\nsource = "elsewhere"\n')
    with pytest.raises(ConfigError, match="source cannot be set"):
        load_attack_config("sneaky", [tmp_path])


def test_shadowing_a_builtin_is_noticeable(tmp_path):
    from ssrbench.run.config import builtin_config_dir, shadowed_builtins, shadows_builtin

    fgsm = _write(tmp_path, "attacks", "fgsm", 'kind = "fgsm"\n[params]\neps = "4/255"\n')
    _write(tmp_path, "attacks", "pgd", 'kind = "pgd"\n[params]\nsteps = 3\n')
    _write(tmp_path, "attacks", "mine", 'kind = "pgd"\n')
    mine = [load_attack_config(n, [tmp_path]) for n in ("fgsm", "pgd", "mine")]
    assert shadows_builtin(mine[0]) == str(builtin_config_dir("attacks") / "fgsm.toml")
    assert shadows_builtin(mine[1]) == "the built-in attack kind 'pgd' (its defaults)"
    assert shadows_builtin(mine[2]) is None
    assert all(shadows_builtin(load_attack_config(n)) is None for n in ("fgsm", "pgd", "pgd2"))
    notices = shadowed_builtins([*mine, load_task_config("inpaint")])
    assert len(notices) == 2 and str(fgsm) in notices[0] and "'fgsm'" in notices[0]


def test_a_task_file_s_old_task_key_is_read_and_announced(tmp_path):
    """`task = ...` is what task files said before `kind`: the same config and hash, and a warning naming the file."""
    from ssrbench.run.config import ConfigDeprecationWarning

    _write(tmp_path, "tasks", "old", 'task = "inpaint"\n[params]\ndecoder_width = 32\n')
    _write(tmp_path, "tasks", "new", 'kind = "inpaint"\n[params]\ndecoder_width = 32\n')
    with pytest.warns(ConfigDeprecationWarning, match=r"old\.toml: `task = 'inpaint'` is the old name of `kind"):
        old = load_task_config("old", [tmp_path])
    new = load_task_config("new", [tmp_path])
    assert old.kind == new.kind == "inpaint"
    assert old.model_dump(exclude={"name"}) == new.model_dump(exclude={"name"})
    # records keep the old key: config hashes and model-cache keys are what they were before the rename
    assert new.model_dump(mode="json")["task"] == "inpaint" and "kind" not in new.model_dump(mode="json")
    recorded = new.model_dump(mode="json")
    assert type(new).model_validate(recorded).model_dump(mode="json") == recorded  # a record reads back
    with pytest.warns(DeprecationWarning, match="TaskConfig.task is now TaskConfig.kind"):
        assert new.task == "inpaint"


def test_a_task_file_with_both_kind_and_task_is_refused(tmp_path):
    from click.testing import CliRunner

    from ssrbench.cli import cli

    _write(tmp_path, "tasks", "both", 'kind = "inpaint"\ntask = "rotation"\n')
    res = CliRunner().invoke(cli, ["run", "--config-dir", str(tmp_path), "--tasks", "both", "--preset", "smoke"])
    assert res.exit_code == 2, res.output
    line = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(line) == 1 and "both.toml: both kind and task are set; keep kind" in line[0], res.output
