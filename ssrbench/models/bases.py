"""Published and user classifiers as classifier-first's frozen base (``run --base``).

Three forms name one:

- ``robustbench:NAME`` -- a CIFAR-10 L-inf model of RobustBench's zoo, built and loaded by RobustBench's own
  ``load_model`` from ``--model-dir`` in RobustBench's layout (``DIR/cifar10/Linf/NAME.pt``). ssrbench never
  downloads: a missing file is refused with the command that fetches it (RobustBench's, when online).
- ``NAME`` -- a factory registered in the ``ssrbench.bases`` entry-point group, plus ``--base-checkpoint``.
- ``module:factory`` -- a factory importable from the current environment, plus ``--base-checkpoint``.

Every file is first read with ``torch.load(weights_only=True)`` through a regular-file check, so a checkpoint
with code in it is refused before any loader sees it; its SHA-256 is the base's identity. The model must take
[0, 1] pixels (RobustBench's do, standardising inside) and end in global average pooling and a linear layer;
where its feature map is read is declared per architecture (``foreign.py``) and checked numerically.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import importlib.util
import io
import json
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.errors import ConfigError
from ..core.extras import require
from ..core.fileio import UnreadableError, read_regular_file, refusal_reason
from ..core.registry import Registry
from ..data.datasets import display_path
from ..leaderboard.records import BaseIdentity
from .foreign import ForeignBackbone, adapt

ROBUSTBENCH = "robustbench:"
DEFAULT_MODEL_DIR = Path("models")  # RobustBench's own default for load_model(model_dir=...)
MAX_CHECKPOINT_BYTES = 4 << 30  # the largest CIFAR-10 models of RobustBench's zoo are about 1 GiB
BASES: Registry = Registry("base", "ssrbench.bases")  # name -> factory() returning the classifier (an nn.Module)
REPORTED = Path(__file__).with_name("robustbench_reported.json")  # scripts/robustbench_reported.py writes it


@dataclass
class LoadedBase:
    """A base ready to be the backbone: the adapted model and what the leaderboard records of it."""

    backbone: ForeignBackbone
    identity: BaseIdentity


def robustbench_file(model: str, model_dir: Path) -> Path:
    """Where RobustBench's loader keeps a CIFAR-10 L-inf model: its layout under ``model_dir``."""
    return model_dir / "cifar10" / "Linf" / f"{model}.pt"


@dataclass(frozen=True)
class BaseChoice:
    """A base as a run names it: ``--base`` and where its file is. Loads once per process."""

    name: str
    model_dir: Path | None = None
    checkpoint: Path | None = None

    def check(self) -> None:
        """Refuse the options that cannot go with this base, reading nothing (``run --estimate`` loads no file)."""
        if self.name.startswith(ROBUSTBENCH):
            if self.checkpoint is not None:
                raise ConfigError(
                    f"--base-checkpoint {self.checkpoint}: a RobustBench base reads its file from --model-dir "
                    f"(DIR/cifar10/Linf/NAME.pt); leave --base-checkpoint out"
                )
            return
        if self.model_dir is not None:
            raise ConfigError(
                f"--model-dir is where a --base robustbench:NAME is found; --base {self.name} takes --base-checkpoint"
            )
        if self.checkpoint is None:
            raise ConfigError(
                f"--base {self.name}: a module base needs its weights: add --base-checkpoint FILE "
                f"(torch.save(model.state_dict()) of the model the factory builds)"
            )

    def file(self) -> Path:
        self.check()
        if self.name.startswith(ROBUSTBENCH):
            return robustbench_file(self.name[len(ROBUSTBENCH) :], self.model_dir or DEFAULT_MODEL_DIR)
        return self.checkpoint

    def load(self) -> LoadedBase:
        path = self.file()
        try:
            st = path.stat()
            signature = (st.st_size, st.st_mtime_ns)
        except OSError:
            signature = None
        return _load_once(self.name, self.model_dir, self.checkpoint, signature)


@functools.lru_cache(maxsize=2)
def architecture(choice: BaseChoice) -> ForeignBackbone:
    """The base's model for counting its cost (``run --estimate``): loaded (and so checked) when its file is
    there, else RobustBench's (or the factory's) architecture with its initial weights -- the same operations."""
    has_file = choice.checkpoint is not None or choice.file().is_file()
    if has_file:
        return choice.load().backbone
    where = f"--base {choice.name}"
    model = choice.name[len(ROBUSTBENCH) :]
    net = _built(_zoo_entry(model)["model"], where)
    return adapt(net, where)


@functools.lru_cache(maxsize=2)
def _load_once(name, model_dir, checkpoint, signature) -> LoadedBase:
    return load_base(name, model_dir, checkpoint)


def is_module_path(name: str) -> bool:
    return ":" in name and not name.startswith(ROBUSTBENCH)


def load_base(name: str, model_dir: Path | None = None, checkpoint: Path | None = None) -> LoadedBase:
    """The base ``name`` names (see the module docstring), loaded, checked and adapted; a ConfigError (exit 2)
    naming the file or the name otherwise."""
    BaseChoice(name, model_dir, checkpoint).check()
    if name.startswith(ROBUSTBENCH):
        return _robustbench_base(name[len(ROBUSTBENCH) :], model_dir or DEFAULT_MODEL_DIR)
    if is_module_path(name):
        factory, source = _importable(name), "module"
    else:
        factory, source = BASES.get(name), "entry-point"
    where = f"--base {name}"
    net = _built(factory, where)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{where}: the factory returned {type(net).__name__}, not a torch nn.Module")
    state, data = _checked(checkpoint, "--base-checkpoint")
    sha = hashlib.sha256(data).hexdigest()
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    _check_tensors(state, checkpoint)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"--base-checkpoint {checkpoint}: does not fit {where}: {_first_problems(exc)}") from exc
    return _adapted(net, where, source, name, checkpoint, sha, reported=None)


def _zoo_entry(model: str) -> dict:
    """RobustBench's entry for a CIFAR-10 L-inf ``model``, or a ConfigError: an unknown name (with the close ones),
    an ensemble, or a model RobustBench builds from timm's pretrained weights (that would download)."""
    robustbench()
    import timm
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    where = f"--base {ROBUSTBENCH}{model}"
    zoo = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf]
    if model not in zoo:
        close = difflib.get_close_matches(model, list(zoo), n=3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"{where}: RobustBench has no CIFAR-10 L-inf model {model!r}.{hint} "
            f"The names: https://robustbench.github.io (or robustbench.model_zoo.model_dicts)"
        )
    entry = zoo[model]
    if isinstance(entry.get("gdrive_id"), list):
        raise ConfigError(f"{where}: an ensemble of several files; ssrbench takes a single model as the base")
    timm_name = f"{model.lower().replace('-', '_')}_cifar10_linf"  # what RobustBench's loader tries first
    if entry.get("gdrive_id") is None or timm.is_model(timm_name):
        raise ConfigError(
            f"{where}: RobustBench builds this model from timm's pretrained weights, downloading them; ssrbench "
            f"takes only models RobustBench loads from a file in --model-dir"
        )
    return entry


def _robustbench_base(model: str, model_dir: Path) -> LoadedBase:
    rb = robustbench()
    where = f"--base {ROBUSTBENCH}{model}"
    _zoo_entry(model)
    path = robustbench_file(model, model_dir)
    if not path.is_file():
        raise ConfigError(
            f"{where}: {path}: no such file. ssrbench never downloads; fetch it where the network is with "
            f"RobustBench's loader: python -c \"from robustbench import load_model; load_model('{model}', "
            f"model_dir='{model_dir}', dataset='cifar10', threat_model='Linf')\", or give --model-dir"
        )
    _, data = _checked(path, where)  # code or corrupt bytes refused before RobustBench's loader sees them
    sha = hashlib.sha256(data).hexdigest()
    # RobustBench's loader reads the very bytes checked and hashed: a copy in a private folder in its layout, so a
    # file replaced meanwhile can neither be loaded unchecked nor differ from the recorded SHA-256
    with tempfile.TemporaryDirectory(prefix="ssrbench-base-") as private:
        copy = robustbench_file(model, Path(private))
        copy.parent.mkdir(parents=True)
        copy.write_bytes(data)
        del data
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                net = rb.load_model(model, model_dir=private, dataset="cifar10", threat_model="Linf")
        except Exception as exc:  # noqa: BLE001 - RobustBench raises RuntimeError, KeyError, ... for a bad file
            raise ConfigError(f"{where}: {path}: RobustBench's loader refused it: {_first_problems(exc)}") from exc
    _check_tensors(net.state_dict(), path)
    reported = _reported().get(model)
    shown = Path("cifar10", "Linf", path.name)  # in RobustBench's layout, so no machine's folder is recorded
    return _adapted(net, where, "robustbench", f"{ROBUSTBENCH}{model}", shown, sha, reported)


def robustbench():
    """RobustBench's package (the ``robustbench`` extra). Its ``eval`` module imports the reference AutoAttack
    as ``autoattack``, the name of the authors' git install; PyPI carries the same code as ``pyautoattack``,
    which is lent that name when no ``autoattack`` is installed."""
    if importlib.util.find_spec("autoattack") is None and importlib.util.find_spec("pyautoattack") is not None:
        try:
            import pyautoattack
            import pyautoattack.autoattack  # noqa: F401 - the submodules robustbench.eval imports by name
            import pyautoattack.state
        except ImportError:
            pass  # robustbench's own import then fails, and require() names the extra
        else:
            sys.modules.setdefault("autoattack", pyautoattack)
            sys.modules.setdefault("autoattack.state", pyautoattack.state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources' deprecation notice, on every import
        return require("robustbench", "--base robustbench:NAME")


def _checked(path: Path, where: str) -> tuple[dict, bytes]:
    """The file's tensors and the very bytes they were read from (once), after they loaded as tensors only: a
    pickle with code is refused, never run."""
    try:
        data = read_regular_file(path, limit=MAX_CHECKPOINT_BYTES)
    except UnreadableError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{where}: {path}: {exc.strerror or exc}") from exc
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is refused the same way
        raise ConfigError(f"{where}: {path}: not a readable checkpoint: {refusal_reason(exc)}") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{where}: {path}: holds a {type(state).__name__}, not a state dict")
    return state, data


def _check_tensors(state: dict, path: Path) -> None:
    bad = [
        k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and not v.isfinite().all()
    ]
    if bad:
        raise ConfigError(f"{path}: holds NaN or infinite weights ({', '.join(bad[:3])})")


def _first_problems(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def _built(factory, where: str) -> nn.Module:
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - a user's factory failing its own way is bad input, not a crash
        raise ConfigError(f"{where}: the factory fails: {type(exc).__name__}: {_first_problems(exc)}") from exc


def _importable(name: str):
    module, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # noqa: BLE001 - an empty or relative name, or a module that fails on import
        raise ConfigError(f"--base {name}: cannot import {attr!r} from {module!r}: {exc}") from exc
    if not callable(factory):
        raise ConfigError(f"--base {name}: {attr!r} is not callable; give a factory that returns the model")
    return factory


def _reported() -> dict[str, dict]:
    return json.loads(REPORTED.read_text())["models"]


def reported_source() -> str:
    return json.loads(REPORTED.read_text())["source"]


def _adapted(net, where, source, name, path, sha, reported) -> LoadedBase:
    backbone = adapt(net, where)
    layer = backbone.layer
    return LoadedBase(
        backbone,
        BaseIdentity(
            source=source,
            name=name,
            architecture=type(net).__name__,
            file=display_path(Path(path)),
            file_sha256=sha,
            feature_layer=layer.module + (f" ({layer.activation})" if layer.activation else ""),
            reported_clean_acc=reported["clean_acc"] if reported else None,
            reported_autoattack_acc=reported["autoattack_acc"] if reported else None,
            reported_by=reported_source() if reported else None,
        ),
    )
