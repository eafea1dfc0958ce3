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
