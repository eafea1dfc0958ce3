"""The zoo's commands (list, add, verify, remove, missing) and reproduce."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.console import Console

from ..core.limits import MAX_IMAGES, MAX_THREADS
from ..core.plaintext import printable, text
from ..data.datasets import DATASETS
from ..training.cache import CACHE_DIR_ENV
from .app import (
    DATA_DIR,
    PROGRESS,
    ZOO_DIR,
    _friendly,
    cli,
)
from .run_command import command_spec


@cli.group()
def zoo() -> None:
    """The zoo: reference weights of every model a committed leaderboard evaluated, shipped with ssrbench.

    `ssrbench run` loads a stage's weights from the zoo when its key -- the hash of everything the weights
    depend on, computed by the current training code -- is an entry, and the file's SHA-256, names, shapes
    and dtypes check out; --no-zoo trains instead.
    """


@zoo.command(name="list")
@ZOO_DIR
@click.option(
    "--stale",
    is_flag=True,
    help="only the stale entries: those the run that trained them, resolved by "
    "the current code, no longer keys the same (never loaded; regenerate them)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown"]),
    default="rich",
    show_default=True,
    help="markdown: per committed leaderboard, its entries or why it is not in the zoo (the docs' zoo table)",
)
@_friendly
def zoo_list(zoo_dir, stale, fmt) -> None:
    """List the zoo's entries (key, stage, size, where and how long they trained, the leaderboards that use them,
    stale or current) and the committed leaderboards whose weights it does not hold, with the reason."""
    from rich.table import Table

    from ..leaderboard.render import wide_console
    from ..run.reproduce import entry_status, zoo_markdown
    from ..training.zoo import Zoo

    z = Zoo(zoo_dir)
    manifest = z.manifest()
    if fmt == "markdown":
        click.echo(zoo_markdown(manifest))
        return
    statuses = [entry_status(e, command_spec) for e in manifest.entries]
    shown = [st for st in statuses if st.stale or not stale]
    tbl = Table(
        title=f"zoo {z.root}: {len(manifest.entries)} entries, {manifest.total_bytes / 1e6:.1f} MB"
        + (f" -- {len(shown)} stale" if stale else "")
    )
    for col in ("entry", "stage", "preset", "seed", "MB", "trained on", "min", "leaderboards", "status"):
        tbl.add_column(col)
    for st in shown:
        e, env = st.entry, st.entry.training.environment
        where = " ".join(str(env.get(k)) for k in ("device", "cpu_capability") if env.get(k))
        tbl.add_row(
            text(e.key),
            text(e.stage),
            text(e.preset),
            str(e.seed),
            f"{e.bytes / 1e6:.2f}",
            text(where),
            f"{e.training.seconds / 60:.1f}",
            text(", ".join(e.leaderboards) or "-"),
            text("stale: " + st.why if st.stale else "current", style="red" if st.stale else "green"),
        )
    console = wide_console()
    console.print(tbl)
    if not stale:
        for n in manifest.not_in_zoo:
            console.print(text(f"not in the zoo: {n.leaderboard} -- {n.reason}"))


@zoo.command(name="add")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=CACHE_DIR_ENV,
    default=None,
    show_envvar=True,
    help="the model cache the run that wrote FILE trained into",
)
@ZOO_DIR
@_friendly
def zoo_add(file, cache_dir, zoo_dir) -> None:
    """Put the weights of leaderboard FILE's stages into the zoo, from the model cache its run trained into.

    \b
    The regeneration recipe (a change to training code changes the keys; the zoo then needs new weights):
      ssrbench run ... --no-zoo --cache-dir C --out F     # from a clean checkout: the weights and F
      ssrbench zoo add F --cache-dir C                    # F's weights into zoo/ with their provenance
    A stage whose weights are already an entry only adds FILE (when inside this folder) to the entry's
    leaderboards. FILE's run must be of a clean commit; the zoo's budget is 60 MB.
    """
    from ..leaderboard import store
    from ..run.reproduce import add_to_zoo
    from ..training.cache import ModelCache
    from ..training.zoo import Zoo

    board = store.load(file)
    for line in add_to_zoo(board, file, ModelCache(cache_dir), Zoo(zoo_dir)):
        click.echo(printable(line))


@zoo.command(name="verify")
@click.argument("entry")
@DATA_DIR
@ZOO_DIR
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="where the stage is trained again (default: a temporary folder, removed after)",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 ...")
@click.option(
    "--against",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="when the weights differ: the leaderboard whose cells are evaluated again on them and compared "
    "(default: the first committed leaderboard the entry lists, if it is here)",
)
@click.option("--weights-only", is_flag=True, help="when the weights differ, do not evaluate any cells")
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help="torch CPU threads (default: the entry's own, as its training recorded them: another count rounds "
    "differently, and bit-identical weights need the same)",
)
@PROGRESS
@_friendly
def zoo_verify(entry, data_dir, zoo_dir, cache_dir, device, against, weights_only, threads, progress) -> None:
    """Train zoo ENTRY (its key, or the key's first 8+ characters) again from scratch -- its recorded command
    under the current code, the stages it starts from taken from the zoo -- and say whether the weights are
    bit-identical (deterministic training on the same kind of CPU). Exit 1 when they are not.

    \b
    Weights that differ are then judged where it matters, on the cells: the leaderboard --against (default:
    the entry's first committed one) is evaluated again with the new weights, every other stage from the
    zoo, and compared with the file as `ssrbench compare` does, seed-aware -- other weights must differ
    by more than seed-to-seed variation, which needs two seeds or more a side; with one the cells using
    the entry say "undecided".
    """
    import tempfile

    import torch

    from ..core.progress import Reporter
    from ..leaderboard import store
    from ..leaderboard.render import render_comparison
    from ..models.environment import resolve_device
    from ..run.reproduce import verify_cells, verify_entry
    from ..training.zoo import Zoo, ZooError

    z = Zoo(zoo_dir)
    found = [e for e in z.manifest().entries if len(entry) >= 8 and e.key.startswith(entry)]
    if len(found) != 1:
        raise ZooError(
            f"{printable(entry)!s}: {'no' if not found else 'more than one'} zoo entry has that key; "
            f"`ssrbench zoo list` shows them"
        )
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    console = Console(stderr=True)
    with (
        tempfile.TemporaryDirectory(prefix="ssrbench-verify-") as tmp,
        Reporter(console, mode=progress or "auto") as reporter,
    ):
        e = found[0]
        data = DATASETS.get(e.spec["dataset"])(data_dir, download=False)
        if data.fingerprint != e.spec.get("data_fingerprint"):
            raise ZooError(
                f"zoo entry {e.key}: trained on other data ({str(e.spec.get('data_fingerprint'))[:12]}...) "
                f"than --data-dir holds ({data.fingerprint[:12]}...)"
            )
        if against is None and not weights_only:
            against = next((Path(rel) for rel in e.leaderboards if Path(rel).is_file()), None)
        board = store.load(against) if against is not None and not weights_only else None  # bad file: before training
        root = cache_dir or Path(tmp)
        torch.set_num_threads(threads or e.training.environment.get("threads") or torch.get_num_threads())
        v = verify_entry(e, command_spec, data, device=dev, zoo=z, cache_root=root, reporter=reporter)
        env = e.training.environment
        click.echo(
            printable(
                f"zoo entry {e.key} ({e.stage}): trained again in {v.seconds / 60:.1f} min -- "
                + (
                    "bit-identical weights"
                    if v.identical
                    else f"other weights: {v.tensors_differ} tensors differ, by at most {v.max_abs_diff:.3g}"
                )
                + f" (the entry was trained on {env.get('device_name', env.get('device'))}"
                + f" {env.get('cpu_capability', '')})"
            )
        )
        if v.identical:
            return
        if board is None:
            click.echo(
                printable(
                    "cells not compared: "
                    + (
                        "--weights-only"
                        if weights_only
                        else "the entry lists no committed leaderboard here; give --against FILE"
                    )
                )
            )
        else:
            _, result = verify_cells(board, against, e, data, device=dev, zoo=z, cache_root=root, reporter=reporter)
            shown = render_comparison(result, "rich")
            if shown is not None:
                click.echo(shown)
            verdicts = Counter(ch.verdict for r in result for ch in r.changes)
            click.echo(
                printable(
                    f"{against} evaluated again on the new weights: {len(result)} cells "
                    f"({sum(r.weights == 'differ' for r in result)} on other weights), metrics "
                    + ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items()))
                    + (
                        "; 'undecided': one seed a side cannot tell other weights from seed variation (run --seeds 3)"
                        if verdicts.get("undecided")
                        else ""
                    )
                )
            )
    raise click.exceptions.Exit(1)


@zoo.command(name="remove")
@click.argument("keys", nargs=-1)
@click.option("--stale", is_flag=True, help="every stale entry (those `zoo list --stale` shows)")
@ZOO_DIR
@_friendly
def zoo_remove(keys, stale, zoo_dir) -> None:
    """Take entries out of the zoo: KEYS (full keys), or --stale for every entry the current training code no
    longer computes. Their files are deleted after the manifest is rewritten; the committed leaderboards that
    used them are named, to regenerate (`zoo add`) or list with a reason (`zoo missing`)."""
    from ..run.reproduce import entry_status, remove_entries
    from ..training.zoo import Zoo

    if not keys and not stale:
        raise click.UsageError("give the KEYS of the entries to remove, or --stale")
    z = Zoo(zoo_dir)
    chosen = list(keys)  # remove_entries takes a key given twice once
    if stale:
        chosen += [e.key for e in z.manifest().entries if entry_status(e, command_spec).stale]
    if not chosen:
        click.echo("no stale entry: nothing removed")
        return
    for line in remove_entries(z, chosen):
        click.echo(printable(line))


@zoo.command(name="missing")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--reason", required=True, help="why its weights are not in the zoo (shown by `zoo list` and the docs)")
@ZOO_DIR
@_friendly
def zoo_missing(file, reason, zoo_dir) -> None:
    """List committed leaderboard FILE as one whose weights the zoo does not hold, with the reason."""
    from ..run.reproduce import mark_missing
    from ..training.zoo import Zoo

    mark_missing(Zoo(zoo_dir), file, reason)
    click.echo(printable(f"{file}: listed as not in the zoo"))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--images",
    type=click.IntRange(min=1, max=MAX_IMAGES),
    default=None,
    help="only the file's first N images (default: all it evaluated)",
)
@DATA_DIR
@ZOO_DIR
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu, cuda, cuda:1 ... (the file's numbers were computed on the device its environment names)",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help="torch CPU threads (default: the file's own, as recorded)",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="also write the re-run's leaderboard here",
)
@click.option("--check", is_flag=True, help="exit 1 unless every image of every cell agrees")
@click.option("--quiet", "-q", is_flag=True, help="only the summary line")
@PROGRESS
@_friendly
def reproduce(file, images, data_dir, zoo_dir, device, threads, out, check, quiet, progress) -> None:
    """Re-run leaderboard FILE's own recorded configuration on the zoo's weights -- nothing trained, nothing
    cached -- and report, per cell, on how many images every accuracy it records (Clean, Clean+Rev, Adv,
    Adv+Rev, every draw, transfer) is the same.

    \b
    Expected: 100% on the CPU kind (or GPU) and thread count the file names; another kind of kernel can round
    an image across a decision boundary, and the count says how many did.
    """
    import torch
    from rich.table import Table

    from ..core.fileio import check_writable
    from ..core.progress import Reporter
    from ..leaderboard import store
    from ..leaderboard.render import wide_console
    from ..models.environment import capture, resolve_device
    from ..run.reproduce import reproduce as run_reproduction
    from ..training.zoo import Zoo

    board = store.load(file)
    if out is not None:
        check_writable(out)
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    torch.set_num_threads(threads or board.environment.threads)
    console = Console(stderr=True)
    with Reporter(console, mode=progress or ("none" if quiet else "auto")) as reporter:
        data = DATASETS.get(board.dataset.name)(data_dir, download=False)
        result = run_reproduction(board, file, data, device=dev, zoo=Zoo(zoo_dir), reporter=reporter, images=images)
    if out is not None:
        store.save(result.board, out)
    here = capture(dev)
    there = board.environment
    if not quiet:
        tbl = Table(title=f"{file}: per-image agreement with the file, on its zoo weights")
        for col in ("cell", "images", "agree", "differs in"):
            tbl.add_column(col)
        for c in result.cells:
            tbl.add_row(
                text(c.label),
                str(c.n),
                f"{100 * c.agree / c.n:.1f}%" if c.n else "-",
                text(", ".join(c.differing) or "-"),
            )
        wide_console().print(tbl)
    pct = 100 * result.agree / result.total if result.total else 0.0
    summary = (
        f"{file}: {result.agree}/{result.total} cell-images agree ({pct:.2f}%), {len(result.cells)} cells on "
        f"the first {result.board.dataset.eval_images} images; here {here.device_name} {here.cpu_capability or ''}"
        f" {here.threads} threads, the file's {there.device_name} {there.cpu_capability or '(kind not recorded)'}"
        f" {there.threads} threads"
    )
    if result.other_weights:
        summary += (
            f"; the zoo's weights of {', '.join(result.other_weights)} are not the ones the file evaluated "
            f"(trained elsewhere): agreement below 100% is expected there"
        )
    click.echo(printable(summary))
    if check and result.agree != result.total:
        raise click.exceptions.Exit(1)
