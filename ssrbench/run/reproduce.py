"""The zoo's work at the run level: put a run's weights in, say which entries the code no longer computes,
and re-run a committed leaderboard on the zoo's weights to check it image by image.

A zoo entry's key is a hash of what its weights depend on, computed by the training code; an entry is
*stale* when the run that trained it (its recorded command, resolved by the current code: today's presets,
configs and defaults) no longer yields its key. A stale entry is never loaded -- nothing asks for its key --
and a committed leaderboard whose stages are stale must be regenerated with its weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import SSRBenchError
from ..core.hashing import weights_sha256
from ..core.progress import Reporter
from ..data.datasets import ImageDataset, display_path
from ..leaderboard.compare import CellComparison, compare
from ..leaderboard.schema import Cell, Leaderboard
from ..training.cache import ModelCache
from ..training.modes import DataIdentity
from ..training.zoo import (
    Manifest,
    NotInZoo,
    Provenance,
    Zoo,
    ZooEntry,
    ZooError,
    read_entry,
    write_entry,
    write_manifest,
)
from .runner import run
from .spec import RunSpec
from .units import planned_stages

MAX_ZOO_BYTES = 60_000_000  # the zoo's budget in the repository, fp32 weights
CommandSpec = Callable[[list[str]], RunSpec]  # a recorded `ssrbench run` command -> what today's code resolves


def _committed_path(path: Path) -> str | None:
    """``path`` as the manifest lists a committed leaderboard: relative to the working folder, inside it."""
    shown = display_path(path)
    return None if Path(shown).is_absolute() or shown.startswith("..") else shown


# options of `ssrbench run` that say where files go and what is printed: weights never depend on them, and
# their values (a machine's folders) do not belong in the manifest
_WHERE_OPTIONS = {"--cache-dir": 1, "--out": 1, "--progress": 1, "--quiet": 0, "-q": 0}


def training_command(command: list[str]) -> list[str]:
    """A run's command as a zoo entry records it: without the options that only say where files go."""
    out, skip = [], 0
    for arg in command:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in _WHERE_OPTIONS:
            skip = 0 if "=" in arg else _WHERE_OPTIONS[name]
            continue
        out.append(arg)
    return out


def add_to_zoo(board: Leaderboard, path: Path, cache: ModelCache, zoo: Zoo) -> list[str]:
    """Put every stage of ``board`` into ``zoo``: weights trained by the run that wrote it come from ``cache``
    (checked against the file's hash of them) with the run's command, commit and environment; a stage whose
    weights are already an entry adds ``path`` to the entry's leaderboards. One line per stage, said."""
    manifest = zoo.manifest()
    entries = {e.key: e for e in manifest.entries}
    listed = _committed_path(path)
    where = display_path(path)
    said = []
    for r in board.training:
        if "checkpoint_sha256" in r.spec:
            said.append(f"{r.stage}: a user's checkpoint, not ssrbench's weights -- left out")
            continue
        known = entries.get(r.key)
        if known is not None:
            if known.weights_sha256 != r.weights_sha256:
                raise ZooError(
                    f"{where}: stage {r.stage} ({r.key}) evaluated other weights than the zoo's entry "
                    f"(weights sha256 {str(r.weights_sha256)[:12]}..., the zoo's {known.weights_sha256[:12]}"
                    f"...); the zoo keeps one set of weights per key"
                )
            if listed and listed not in known.leaderboards:
                entries[r.key] = known.model_copy(update={"leaderboards": [*known.leaderboards, listed]})
            said.append(f"{r.stage}: entry {r.key} already in the zoo" + (f", used by {listed}" if listed else ""))
            continue
        if r.cached or r.zoo_sha256:
            raise ZooError(
                f"{where}: stage {r.stage} ({r.key}) was loaded in that run, not trained; add the "
                f"leaderboard of the run that trained it"
            )
        if board.git_dirty is not False or board.git_commit is None:
            raise ZooError(
                f"{where}: its run's code is not a clean commit (git_dirty {board.git_dirty}); zoo weights "
                f"must be traceable to a commit -- rerun from a clean checkout"
            )
        hit = ModelCache(cache.root).load(r.key)
        if hit is None:
            raise ZooError(
                f"{where}: the weights of stage {r.stage} ({r.key}) are not in the model cache "
                f"{display_path(cache.root)}; give the --cache-dir the run trained into"
            )
        state, _ = hit
        if weights_sha256(state) != r.weights_sha256:
            raise ZooError(
                f"{where}: the cache's weights for stage {r.stage} ({r.key}) are not the ones the file "
                f"evaluated; the cache was retrained since"
            )
        sha, size = write_entry(zoo.root, r.key, state)
        entries[r.key] = ZooEntry(
            key=r.key,
            file=f"{r.key}.safetensors",
            sha256=sha,
            bytes=size,
            weights_sha256=r.weights_sha256,
            stage=r.stage,
            backbone=r.spec["backbone"],
            task=r.spec.get("task"),
            mode=r.spec["mode"],
            preset=board.preset,
            seed=r.spec["seed"],
            spec=r.spec,
            training=Provenance(
                command=training_command(board.command),
                commit=board.git_commit,
                environment=r.trained_on,
                seconds=r.seconds,
                final_logs=r.final_logs,
                warnings=r.warnings,
            ),
            leaderboards=[listed] if listed else [],
        )
        said.append(f"{r.stage}: entry {r.key} added ({size / 1e6:.2f} MB)")
    updated = Manifest(
        entries=list(entries.values()), not_in_zoo=[n for n in manifest.not_in_zoo if n.leaderboard != listed]
    )
    if updated.total_bytes > MAX_ZOO_BYTES:
        raise ZooError(
            f"the zoo would hold {updated.total_bytes / 1e6:.1f} MB, more than its budget of "
            f"{MAX_ZOO_BYTES / 1e6:.0f} MB; list the leaderboard under not_in_zoo with the reason instead"
        )
    write_manifest(zoo.root, updated)
    return said


def mark_missing(zoo: Zoo, path: Path, reason: str) -> None:
    """List the committed leaderboard ``path`` as one whose weights the zoo lacks, with ``reason``."""
    listed = _committed_path(path)
    if listed is None:
        raise ZooError(f"{display_path(path)}: not a committed leaderboard (give its path inside this folder)")
    if not reason.strip():
        raise ZooError("--reason is empty; say why its weights are not in the zoo")
    manifest = zoo.manifest()
    kept = [n for n in manifest.not_in_zoo if n.leaderboard != listed]
    write_manifest(
        zoo.root,
        manifest.model_copy(update={"not_in_zoo": [*kept, NotInZoo(leaderboard=listed, reason=reason.strip())]}),
    )


def remove_entries(zoo: Zoo, keys: list[str]) -> list[str]:
    """Take ``keys`` out of ``zoo``: the manifest first (atomically), then their files, so that a stop in between
    leaves unlisted files (never read), not listed entries without files. One line per entry, said; the
    committed leaderboards that lose their weights are named, to regenerate or list with a reason."""
    manifest = zoo.manifest()
    unknown = [k for k in keys if manifest.entry(k) is None]
    if unknown:
        raise ZooError(f"{unknown[0]}: no zoo entry has that key; `ssrbench zoo list` shows them")
    gone = [manifest.entry(k) for k in dict.fromkeys(keys)]
    write_manifest(
        zoo.root, manifest.model_copy(update={"entries": [e for e in manifest.entries if e.key not in keys]})
    )
    said = []
    for e in gone:
        (zoo.root / e.file).unlink(missing_ok=True)
        said.append(
            f"{e.stage}: entry {e.key} removed ({e.bytes / 1e6:.2f} MB)"
            + (
                f"; {', '.join(e.leaderboards)} lose(s) its weights: regenerate, or `ssrbench zoo missing "
                f"FILE --reason ...`"
                if e.leaderboards
                else ""
            )
        )
    return said


@dataclass(frozen=True)
class EntryStatus:
    entry: ZooEntry
    stale: bool
    why: str  # for a stale entry: what the code computes instead


def entry_status(entry: ZooEntry, command_spec: CommandSpec) -> EntryStatus:
    """Is ``entry`` still what the current code trains for its recorded command? (On the entry's own data
    identity and device kind: a stage's key reads both.)"""
    try:
        spec = command_spec(entry.training.command)
    except (SSRBenchError, Exception) as exc:  # noqa: BLE001 - a command today's code refuses is stale by definition
        return EntryStatus(entry, True, f"its command no longer resolves ({str(exc).splitlines()[0][:200]})")
    data = DataIdentity(entry.spec.get("dataset", ""), entry.spec.get("data_fingerprint", ""))
    device = torch.device("cuda" if entry.training.environment.get("device") == "cuda" else "cpu")
    stages = planned_stages(spec, data, device)
    if stages is None:
        return EntryStatus(entry, True, "its run's stages can no longer be planned")
    same_stage = [key for stage, key, _ in stages if stage == entry.stage]
    if entry.key in {key for _, key, _ in stages}:
        return EntryStatus(entry, False, "")
    return EntryStatus(
        entry, True, f"its command now trains stage {entry.stage} as {same_stage[0] if same_stage else 'no such stage'}"
    )


@dataclass(frozen=True)
class CellAgreement:
    label: str
    agree: int
    n: int
    differing: tuple[str, ...]  # the accuracies (clean, adv_rev, transfer.to_base ...) that differ somewhere


@dataclass(frozen=True)
class Reproduction:
    board: Leaderboard  # what this machine computed
    cells: list[CellAgreement]
    other_weights: list[str]  # stages whose zoo weights are not the ones the file evaluated

    @property
    def agree(self) -> int:
        return sum(c.agree for c in self.cells)

    @property
    def total(self) -> int:
        return sum(c.n for c in self.cells)


def reproduction_spec(board: Leaderboard, images: int | None) -> RunSpec:
    """``board``'s own recorded configuration (not today's defaults), on its first ``images`` images."""
    if board.merged_from:
        raise ZooError(
            "a merged leaderboard has no one configuration to re-run; reproduce each of its parts "
            "(merged_from lists them)"
        )
    spec = RunSpec.model_validate(board.config)
    n = board.dataset.eval_images if images is None else min(images, board.dataset.eval_images)
    return spec.model_copy(update={"preset": spec.preset.model_copy(update={"eval_images": n})})


def missing_weights(board: Leaderboard, zoo: Zoo) -> tuple[list[str], list[str]]:
    """The stages of ``board`` the zoo lacks, and those it holds with other weights than the file evaluated."""
    missing, other = [], []
    for r in board.training:
        entry = zoo.entry(r.key)
        if entry is None:
            missing.append(f"{r.stage} ({r.key})")
        elif r.weights_sha256 is not None and entry.weights_sha256 != r.weights_sha256:
            other.append(f"{r.stage} ({r.key})")
    return missing, other


def require_weights(board: Leaderboard, path: Path, zoo: Zoo, then: str) -> list[str]:
    """Every stage of ``board`` must be in ``zoo`` (else one line: which, why the manifest says, ``then``); the
    stages it holds with other weights than the file evaluated."""
    missing, other = missing_weights(board, zoo)
    if missing:
        reason = next((n.reason for n in zoo.manifest().not_in_zoo if n.leaderboard == _committed_path(path)), None)
        raise ZooError(
            f"the zoo has no weights for {len(missing)} stage(s) of {display_path(path)} "
            f"({', '.join(missing[:3])}{', ...' * (len(missing) > 3)})"
            + (f": {reason}" if reason else "")
            + f"; {then}"
        )
    return other


def reproduce(
    board: Leaderboard,
    path: Path,
    data: ImageDataset,
    *,
    device: torch.device,
    zoo: Zoo,
    reporter: Reporter,
    images: int | None = None,
) -> Reproduction:
    """Re-run ``board``'s recorded configuration on the zoo's weights (nothing trained, nothing cached) and
    compare, cell by cell, image by image, every accuracy the file records."""
    if data.fingerprint != board.dataset.fingerprint:
        raise ZooError(
            f"the data folder's {data.name} ({data.fingerprint[:12]}...) is not the data the file was "
            f"computed on ({board.dataset.fingerprint[:12]}...); give --data-dir the copy it names "
            f"({board.dataset.source})"
        )
    spec = reproduction_spec(board, images)
    other = require_weights(board, path, zoo, "nothing to reproduce")
    cache = ModelCache(enabled=False, zoo=zoo, zoo_only=True)
    again = run(spec, data, device=device, cache=cache, reporter=reporter, command=None)
    return Reproduction(again, agreement(board, again), other)


def _cell_id(c: Cell) -> tuple:
    return (c.task.name, c.mode, c.attack.name, c.seed)


def agreement(committed: Leaderboard, again: Leaderboard) -> list[CellAgreement]:
    """Per cell of ``committed``: on how many of ``again``'s images every per-image accuracy is the same."""
    by_id = {_cell_id(c): c for c in again.cells}
    out = []
    for c in committed.cells:
        other = by_id.get(_cell_id(c))
        label = c.label
        if other is None:
            out.append(CellAgreement(label, 0, 0, ("missing",)))
            continue
        mine, theirs = c.accuracies(), other.accuracies()
        n = other.clean.n
        same = np.ones(n, dtype=bool)
        differing = []
        for name, acc in mine.items():
            if name not in theirs:
                differing.append(name)
                same[:] = False
                continue
            equal = acc.flags()[:n] == theirs[name].flags()
            if not equal.all():
                differing.append(name)
            same &= equal
        out.append(CellAgreement(label, int(same.sum()), n, tuple(differing)))
    return out


def zoo_markdown(manifest: Manifest) -> str:
    """Per committed leaderboard: its stages' entries (with where they trained), or why it is not in the zoo."""
    used: dict[str, list[ZooEntry]] = {}
    for e in manifest.entries:
        for rel in e.leaderboards:
            used.setdefault(rel, []).append(e)
    lines = ["| leaderboard | weights in the zoo |", "|---|---|"]
    for rel in sorted(used):
        entries = used[rel]
        envs = sorted(
            {
                " ".join(
                    str(e.training.environment.get(k))
                    for k in ("device", "cpu_capability")
                    if e.training.environment.get(k)
                )
                for e in entries
            }
        )
        lines.append(
            f"| `{rel}` | yes: {', '.join(e.stage for e in entries)} ({len(entries)} entries, "
            f"{sum(e.bytes for e in entries) / 1e6:.1f} MB, trained on {', '.join(envs)}) |"
        )
    for n in sorted(manifest.not_in_zoo, key=lambda n: n.leaderboard):
        lines.append(f"| `{n.leaderboard}` | no: {n.reason} |")
    lines.append("")
    lines.append(
        f"{len(manifest.entries)} entries, {manifest.total_bytes / 1e6:.1f} MB of the "
        f"{MAX_ZOO_BYTES / 1e6:.0f} MB budget."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Verification:
    entry: ZooEntry
    weights_sha256: str  # of the weights trained again
    identical: bool
    tensors_differ: int  # of the entry's tensors, how many are not bit-identical
    max_abs_diff: float
    seconds: float


def verify_entry(
    entry: ZooEntry,
    command_spec: CommandSpec,
    data: ImageDataset,
    *,
    device: torch.device,
    zoo: Zoo,
    cache_root: Path,
    reporter: Reporter,
) -> Verification:
    """Train ``entry``'s stage again from scratch, as its recorded command does under the current code (the
    stages it starts from -- classifier-first's classifier -- from the zoo), into ``cache_root``; compare."""
    from ..pretext.base import TASKS
    from ..training.modes import MODES, build_model, build_shared
    from .units import model_units, train_context

    spec = command_spec(entry.training.command)
    others = Zoo(zoo.root, exclude=frozenset({entry.key}))
    for unit in model_units(spec):
        cache = ModelCache(cache_root, zoo=others)
        ctx = train_context(spec, data, unit.seed, device=device, cache=cache, reporter=reporter, retrain=False)
        task = TASKS.get(unit.task.kind)(unit.task.params)
        mode = MODES.get(unit.mode)()
        stages = mode.stages(ctx, task) or []
        if entry.key not in {ModelCache.key(stage_spec) for _, stage_spec in stages}:
            continue
        built = (
            build_shared(mode, ctx) if entry.stage == stages[0][0] and len(stages) > 1 else build_model(mode, ctx, task)
        )
        record = next(r for r in built.records if r.key == entry.key)
        if record.cached:
            raise ZooError(
                f"zoo entry {entry.key}: the cache {display_path(cache_root)} already holds it; give an "
                f"empty --cache-dir so that it is trained again"
            )
        again, _ = cache.load(entry.key)
        mine = read_entry(zoo.root, entry)
        differ = [k for k in mine if not torch.equal(mine[k], again[k])]
        diff = max((float((mine[k].double() - again[k].double()).abs().max()) for k in differ), default=0.0)
        return Verification(entry, record.weights_sha256, not differ, len(differ), diff, record.seconds)
    raise ZooError(
        f"zoo entry {entry.key} ({entry.stage}): its command no longer trains it (the entry is stale; "
        f"`ssrbench zoo list --stale`)"
    )


def verify_cells(
    board: Leaderboard,
    path: Path,
    entry: ZooEntry,
    data: ImageDataset,
    *,
    device: torch.device,
    zoo: Zoo,
    cache_root: Path,
    reporter: Reporter,
) -> tuple[Leaderboard, list[CellComparison]]:
    """``board`` evaluated again with ``entry``'s stage as trained again into ``cache_root`` (``verify_entry``)
    and every other stage from the zoo, then compared with the file seed-aware (``leaderboard.compare``): the
    same weights are judged image by image, other weights against seed-to-seed variation -- with one seed a
    side that comparison has no verdict, and says so."""
    if entry.key not in {r.key for r in board.training}:
        raise ZooError(
            f"{display_path(path)} does not evaluate zoo entry {entry.key} ({entry.stage}); give --against "
            f"a leaderboard that does (`ssrbench zoo list` names them)"
        )
    spec = reproduction_spec(board, None)
    require_weights(board, path, zoo, "its cells cannot be evaluated again without training them")
    others = Zoo(zoo.root, exclude=frozenset({entry.key}))
    cache = ModelCache(cache_root, zoo=others)  # the retrained stage from cache_root, every other from the zoo
    again = run(spec, data, device=device, cache=cache, reporter=reporter, command=None)
    trained = [r.stage for r in again.training if not r.cached and r.key != entry.key]
    if trained:  # every stage but the entry's was checked to be in the zoo; training one would be a bug
        raise ZooError(f"stages {', '.join(trained)} were trained instead of read from the zoo")
    return again, compare(board, again)
