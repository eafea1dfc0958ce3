"""Stable short hashes of JSON-able values: cache keys and config hashes (a leaf, used everywhere)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


def config_hash(obj: Any) -> str:
    """Stable short hash of any JSON-able value (pydantic models are dumped first)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def weights_sha256(state: dict) -> str:
    """SHA-256 of a state dict's tensors (names, dtypes, shapes and bytes, in name order): equal hashes
    mean the same weights, whatever file or device they came from."""
    import torch  # a leaf that configs can import without torch's start-up cost

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        flat = t.detach().to("cpu").reshape(-1).contiguous()
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return h.hexdigest()
