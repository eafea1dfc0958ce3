"""The zoo: reference weights of the models the committed leaderboards evaluated, shipped with ssrbench.

A stage's weights are found by the key the current training code computes for it (``ModelCache.key`` of
its spec), never by name: an entry whose key the code no longer computes is *stale* and simply never
matches. The folder holds ``manifest.json`` and one ``<key>.safetensors`` per entry. Everything is checked
before a tensor is made: the manifest's shape, the file's place (inside the folder, a regular file, not a
link), size and SHA-256, and the tensors' names, shapes and dtypes against the model they are loaded into.
Safetensors only -- nothing in a zoo file can run code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import SSRBenchError, first_problem
from ..core.fileio import atomic_write, atomic_write_text, read_regular_file
from ..core.hashing import config_hash, weights_sha256
from ..core.plaintext import printable

ZOO_DIR_ENV = "SSRBENCH_ZOO_DIR"
MANIFEST = "manifest.json"
ZOO_FORMAT = 1
MAX_ENTRY_BYTES = 64 * 2**20  # the zoo's whole budget is 60 MB: no one entry is larger
MAX_MANIFEST_BYTES = 8 * 2**20
MAX_HEADER_BYTES = 1 * 2**20  # a safetensors header of a few hundred tensors is a few kB

# safetensors' dtype names of the tensors a state dict holds
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
Layout = Mapping[str, tuple[tuple[int, ...], torch.dtype]]  # a model's tensors: name -> (shape, dtype)


class ZooError(SSRBenchError):
    """A zoo entry or manifest that cannot be trusted: it is never loaded (the stage trains instead, or,
    under ``--zoo-only``, the run stops before any work)."""

    exit_code = 2


class ZooManifestError(ZooError):
    """The zoo's manifest itself cannot be trusted: no entry of it is used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Provenance(_Strict):
    """How an entry's weights were made: what a reader needs to make them again."""

    command: list[str] = Field(description="the run that trained them")
    commit: str | None = Field(description="the code's git commit")
    environment: dict[str, Any] = Field(description="device, CPU capability or GPU, torch, threads, determinism")
    seconds: float = Field(ge=0, description="training time of this stage alone, on that environment")
    final_logs: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, description="what training found wrong with the model")


class ZooEntry(_Strict):
    key: str = Field(pattern=r"^[0-9a-f]{16}$", description="the model-cache key: a hash of spec")
    file: str = Field(description="<key>.safetensors, inside the zoo folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file")
    bytes: int = Field(ge=1, le=MAX_ENTRY_BYTES)
    weights_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="ssrbench's hash of the tensors, as leaderboards record it (names, dtypes, shapes, values)",
    )
    stage: str
    backbone: str
    task: str | None = Field(description="the pretext task (None: the classifier stage)")
    mode: str
    preset: str
    seed: int = Field(ge=0)
    spec: dict[str, Any] = Field(description="everything the weights depend on; key is its hash")
    training: Provenance
    leaderboards: list[str] = Field(description="committed leaderboards that evaluated exactly these weights")

    @model_validator(mode="after")
    def _consistent(self) -> ZooEntry:
        if self.file != f"{self.key}.safetensors":
            raise ValueError(
                f"file {self.file!r} is not {self.key}.safetensors (a zoo file is named by its key, "
                f"inside the zoo folder)"
            )
        if config_hash(self.spec) != self.key:
            raise ValueError(f"key {self.key} is not the hash of its spec ({config_hash(self.spec)})")
        for field_name in ("backbone", "mode", "seed"):
            if self.spec.get(field_name) != getattr(self, field_name):
                raise ValueError(
                    f"{field_name} {getattr(self, field_name)!r} is not the spec's ({self.spec.get(field_name)!r})"
                )
        if self.spec.get("task") != self.task:
            raise ValueError(f"task {self.task!r} is not the spec's ({self.spec.get('task')!r})")
        return self


class NotInZoo(_Strict):
    """A committed leaderboard whose weights the zoo does not hold, and why."""

    leaderboard: str
    reason: str


class Manifest(_Strict):
    format: Literal[1] = ZOO_FORMAT
    entries: list[ZooEntry] = Field(default_factory=list)
    not_in_zoo: list[NotInZoo] = Field(default_factory=list)

    @field_validator("entries")
    @classmethod
    def _unique(cls, entries: list[ZooEntry]) -> list[ZooEntry]:
        seen: set[str] = set()
        for e in entries:
            if e.key in seen:
                raise ValueError(f"entry {e.key} is listed twice")
            seen.add(e.key)
        return entries

    def entry(self, key: str) -> ZooEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)


def default_zoo_dir() -> Path:
    """``$SSRBENCH_ZOO_DIR``, else the zoo installed inside the package, else ``zoo/`` beside the package
    (a source checkout)."""
    env = os.environ.get(ZOO_DIR_ENV)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent.parent
    installed = package / "_zoo"
    return installed if installed.is_dir() else package.parent / "zoo"


def layout_of(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in state.items()}


class Zoo:
    """A zoo folder. Nothing is read until an entry is asked for; a folder without a manifest is an empty zoo."""

    def __init__(self, root: Path | str | None = None, exclude: frozenset[str] = frozenset()):
        self.root = Path(root) if root is not None else default_zoo_dir()
        self.exclude = exclude  # keys treated as absent (`zoo verify` retrains one entry on the others)
        self._manifest: Manifest | None = None

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> Manifest:
        """The folder's manifest, validated (raises ZooError, one line); an empty one when there is none."""
        if self._manifest is None:
            self._manifest = read_manifest(self.manifest_path) if self.exists() else Manifest()
        return self._manifest

    def entry(self, key: str) -> ZooEntry | None:
        return None if key in self.exclude else self.manifest().entry(key)

    def load(self, key: str, layout: Layout | None = None) -> tuple[dict[str, torch.Tensor], ZooEntry]:
        """Entry ``key``'s tensors, after every check (raises ZooError naming the entry). ``layout``: the
        model's tensors they are for; any name, shape or dtype that differs refuses the file unread."""
        entry = self.entry(key)
        if entry is None:
            raise ZooError(f"zoo {self.root}: no entry {key}")
        return read_entry(self.root, entry, layout), entry


def read_manifest(path: Path) -> Manifest:
    where = f"zoo manifest {printable(str(path))}"
    try:
        doc = json.loads(read_regular_file(path, MAX_MANIFEST_BYTES).decode("utf-8"))
    except SSRBenchError as exc:
        raise ZooManifestError(str(exc)) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ZooManifestError(
            f"{where}: not JSON ({type(exc).__name__}); restore it with `git checkout -- {path}`"
        ) from exc
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        loc, msg, rest = first_problem(exc)
        raise ZooManifestError(
            f"{where}: {_place(doc, loc)}: {msg}{rest}; the manifest is not the one ssrbench wrote "
            f"(restore it with `git checkout -- {path}`)".replace("\n", " ")
        ) from exc


def _place(doc: Any, loc: tuple) -> str:
    """Where in the manifest a problem is: ``entry 11afff21bf1fc4d2 (multitask/inpaint): sha256``."""
    if len(loc) >= 2 and loc[0] == "entries" and isinstance(loc[1], int):
        raw = doc.get("entries")[loc[1]] if isinstance(doc, dict) and isinstance(doc.get("entries"), list) else None
        key = raw.get("key") if isinstance(raw, dict) else None
        name = f"entry {printable(shown_key(key))}" if key is not None else f"entry #{loc[1] + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("stage"), str):
            name += f" ({printable(raw['stage'][:60])})"
        return f"{name}, {'.'.join(str(p) for p in loc[2:])}" if len(loc) > 2 else name
    return ".".join(str(p) for p in loc) or "<root>"


def shown_key(key: Any) -> str:
    return key[:40] if isinstance(key, str) else repr(key)[:40]


def read_entry(root: Path, entry: ZooEntry, layout: Layout | None = None) -> dict[str, torch.Tensor]:
    """The tensors of ``entry``'s file in ``root``, read once and checked in this order: a regular file
    inside the folder (no link), its size and SHA-256 as the manifest says, a well-formed safetensors
    header whose names, shapes and dtypes are exactly ``layout``'s, then the tensors, all finite."""
    where = f"zoo entry {entry.key} ({entry.stage})"
    path = root / entry.file
    if path.is_symlink():
        raise ZooError(f"{where}: {printable(str(path))} is a link; a zoo holds its files itself")
    if path.resolve().parent != root.resolve():
        raise ZooError(f"{where}: {printable(str(path))} is outside the zoo folder {root}")
    try:
        data = read_regular_file(path, MAX_ENTRY_BYTES)
    except SSRBenchError as exc:
        raise ZooError(f"{where}: {exc}") from exc
    if len(data) != entry.bytes:
        raise ZooError(
            f"{where}: {len(data)} bytes, the manifest says {entry.bytes}; the file is not the one "
            f"listed (restore it with `git checkout -- {path}`)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ZooError(
            f"{where}: SHA-256 {digest[:12]}... is not the manifest's {entry.sha256[:12]}...; the file "
            f"was changed (restore it with `git checkout -- {path}`)"
        )
    header = _header(data, where)
    if layout is not None:
        _check_layout(header, layout, where)
    from safetensors.torch import load as load_safetensors

    try:
        state = load_safetensors(data)
    except Exception as exc:  # noqa: BLE001 - a malformed file is refused, whatever the library raises
        raise ZooError(f"{where}: not a readable safetensors file ({type(exc).__name__})") from exc
    if not all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()):
        raise ZooError(f"{where}: it holds NaN or infinite weights")
    if weights_sha256(state) != entry.weights_sha256:  # the file is the listed one, the manifest's record is not
        raise ZooError(
            f"{where}: its tensors' hash is not the manifest's weights_sha256 {entry.weights_sha256[:12]}...; "
            f"the manifest was changed (restore it with `git checkout -- {root / MANIFEST}`)"
        )
    return state


def _header(data: bytes, where: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """The tensors a safetensors file declares (name -> shape, dtype name), read from its JSON header alone."""
    bad = ZooError(f"{where}: not a safetensors file (its header is malformed)")
    if len(data) < 8:
        raise bad
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise bad
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad from exc
    if not isinstance(header, dict):
        raise bad
    out = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not (
            isinstance(info, dict)
            and isinstance(info.get("shape"), list)
            and info.get("dtype") in DTYPES
            and all(type(d) is int and d >= 0 for d in info["shape"])
        ):
            raise bad
        offsets = info.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            raise bad
        width = torch.empty((), dtype=DTYPES[info["dtype"]]).element_size()
        if offsets[1] - offsets[0] != math.prod(info["shape"]) * width or offsets[0] < 0:
            raise bad
        end = max(end, offsets[1])
        out[name] = (tuple(info["shape"]), info["dtype"])
    if 8 + size + end != len(data):
        raise bad
    return out


def _check_layout(header: dict[str, tuple[tuple[int, ...], str]], layout: Layout, where: str) -> None:
    missing = sorted(set(layout) - set(header))
    extra = sorted(set(header) - set(layout))
    if missing or extra:
        what = (
            f"{len(missing)} tensors missing, e.g. {printable(missing[0])}"
            if missing
            else f"{len(extra)} tensors the model does not have, e.g. {printable(extra[0])}"
        )
        raise ZooError(f"{where}: {what}; the file is not for this model (refused unread)")
    for name, (shape, dtype) in layout.items():
        got_shape, got_dtype = header[name]
        if got_shape != tuple(shape) or DTYPES[got_dtype] != dtype:
            raise ZooError(
                f"{where}: tensor {printable(name)} is {got_dtype} {list(got_shape)}, the model's is "
                f"{_dtype_name(dtype)} {list(shape)}; the file is not for this model (refused unread)"
            )


def _dtype_name(dtype: torch.dtype) -> str:
    return next((k for k, v in DTYPES.items() if v == dtype), str(dtype))


def write_entry(root: Path, key: str, state: Mapping[str, torch.Tensor]) -> tuple[str, int]:
    """Write ``state`` as ``<key>.safetensors`` in ``root`` (atomically); its SHA-256 and size."""
    from safetensors.torch import save as save_safetensors

    data = save_safetensors({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata={"key": key})
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(root / f"{key}.safetensors", lambda fh: fh.write(data))
    return hashlib.sha256(data).hexdigest(), len(data)


def write_manifest(root: Path, manifest: Manifest) -> None:
    Manifest.model_validate(manifest.model_dump(mode="json"))  # never write what read_manifest would refuse
    text = json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=False) + "\n"
    atomic_write_text(root / MANIFEST, text)
