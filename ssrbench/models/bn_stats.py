"""Separate BatchNorm statistics for inputs that do not look like the classifier's images.

A task that feeds the shared backbone something else (7x7 jigsaw tiles, say) would otherwise blend
its activation statistics into the running means the classifier is evaluated with. The weights stay
shared; only the running statistics are kept apart and swapped in for the task's forward passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def _norms(backbone: nn.Module) -> list[_BatchNorm]:
    return [m for m in backbone.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


class BatchNormStats(nn.Module):
    """A second set of running statistics for every BatchNorm of a backbone.

    ``bind`` (called when the task's heads are attached) starts them as a copy of the backbone's.
    """

    def bind(self, backbone: nn.Module) -> None:
        for i, m in enumerate(_norms(backbone)):
            for k in _KEYS:
                self.register_buffer(f"s{i}_{k}", m._buffers[k].detach().clone())

    @contextmanager
    def active(self, backbone: nn.Module) -> Iterator[None]:
        norms = _norms(backbone)
        if len(self._buffers) != len(_KEYS) * len(norms):
            raise RuntimeError("BatchNormStats is not bound to this backbone (call bind first)")
        self._swap(norms)
        try:
            yield
        finally:
            self._swap(norms)

    def _swap(self, norms: list[_BatchNorm]) -> None:
        for i, m in enumerate(norms):
            for k in _KEYS:
                name = f"s{i}_{k}"
                self._buffers[name], m._buffers[k] = m._buffers[k], self._buffers[name]
