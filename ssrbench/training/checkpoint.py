"""Bring your own classifier: a state dict that replaces classifier-first's classifier stage.

The file is loaded with ``torch.load(weights_only=True)`` only (a pickle with code in it is refused, never
run), checked against the chosen backbone parameter by parameter before any data is read, and its
SHA-256 enters the cache key of the task heads trained on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..core.errors import ConfigError
from ..core.fileio import UnreadableError, open_regular_file, refusal_reason
from ..models.ssr_model import SSRModel

OPTIONAL = ("normalize.",)  # a checkpoint may bring its own normalisation, or take the data's


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular_file(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_classifier_checkpoint(
    path: Path | str, backbone: str, num_classes: int = 10, image_size: int = 32
) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, checked against ``backbone``'s classifier; a ConfigError naming the file
    and the first mismatching parameters otherwise."""
    path = Path(path)
    where = f"--classifier-checkpoint {path}"
    if path.is_dir():
        raise ConfigError(f"{where}: is a folder; give the file torch.save(model.state_dict()) wrote")
    if not path.exists():
        raise ConfigError(f"{where}: no such file")
    try:
        with open_regular_file(path) as fh:  # a FIFO or a device is refused, never waited on or read without end
            state = torch.load(fh, map_location="cpu", weights_only=True)
    except UnreadableError as exc:
        raise ConfigError(f"--classifier-checkpoint {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is refused the same way
        raise ConfigError(f"{where}: not a readable state dict: {refusal_reason(exc)}") from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(
            f"{where}: not a state dict (expected a dict of parameter name -> tensor, as "
            f"torch.save(model.state_dict()) writes)"
        )
    with torch.random.fork_rng(devices=[]):
        expected = {
            k: v.shape
            for k, v in SSRModel(backbone, (0.5,) * 3, (0.25,) * 3, num_classes, image_size).classifier_state().items()
        }
    missing = [k for k in expected if k not in state and not k.startswith(OPTIONAL)]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k])}"
        for k in state
        if k in expected and state[k].shape != expected[k]
    ]
    problems = [
        f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''} ({len(items)})"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
        if items
    ]
    if problems:
        raise ConfigError(
            f"{where}: does not fit backbone {backbone!r} with a {num_classes}-class classifier -- "
            + "; ".join(problems)
        )
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise ConfigError(f"{where}: holds NaN or infinite weights")
    return state
