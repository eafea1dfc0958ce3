"""Atomic writes: a reader sees the old file or the new one, never half of one.

Temporary files carry the writing process's id, so a later run can tell an abandoned one (its writer
was killed) from one being written right now, and sweep only the former.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, IO

from .errors import SSRBenchError

STALE_AFTER_S = 24 * 3600  # a temp file this old is abandoned even if its pid was reused
MIN_AGE_S = 60.0  # younger files may belong to a writer on another host sharing the folder


class UnwritableError(SSRBenchError):
    """A path the user gave cannot be written: bad input, found before any work."""

    exit_code = 2


class DiskFullError(UnwritableError):
    """The disk (or quota) filled up while writing: not the input's fault, so exit 1; the file is untouched."""

    exit_code = 1


FULL = (errno.ENOSPC, errno.EDQUOT)


def _failed(path: Path, exc: OSError) -> UnwritableError:
    if exc.errno in FULL:
        return DiskFullError(f"{path}: cannot write ({exc.strerror or exc}); the file there, if any, is untouched -- "
                             f"free some space and run the same command again")
    return UnwritableError(f"{path}: cannot write ({exc.strerror or exc})")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _target(path: Path, shown: str) -> Path:
    """The file an atomic write replaces: a symlink's target (the link stays a link), never a device, pipe or
    socket -- ``os.replace`` would put a regular file in its place (``--out /dev/full`` as root replaced the
    device itself)."""
    target = path.resolve() if path.is_symlink() else path
    if target.exists() and not target.is_file() and not target.is_dir():
        raise UnwritableError(f"{shown}: is not a regular file (a device, pipe or socket); give a file path")
    return target


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    path = _target(Path(path), str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _failed(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file should read like any other
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _failed(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def check_writable(path: Path | str, option: str = "--out") -> None:
    """Fail before hours of training, not after: create and remove a file beside the target."""
    path = Path(path)
    if path.is_dir():
        raise UnwritableError(f"{option} {path}: is a directory; {option} takes a file path")
    target = _target(path, f"{option} {path}")
    check_writable_dir(target.parent, option, shown=path)


def check_writable_dir(folder: Path | str, option: str, shown: Path | str | None = None) -> None:
    """``folder`` exists (or can be made) and takes new files; errors name the path the user gave."""
    folder = Path(folder)
    shown = shown if shown is not None else folder
    if folder.exists() and not folder.is_dir():
        raise UnwritableError(f"{option} {shown}: {folder} is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ssrbench-write-check.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UnwritableError(f"{option} {shown}: cannot write there ({exc.strerror or exc}); choose a writable "
                              f"path") from exc


def sweep_stale_temps(folder: Path | str, name: str = "*") -> list[Path]:
    """Remove temp files of ``atomic_write`` (for files matching ``name``) left by killed writers."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".{name}.*.tmp"):
        parts = tmp.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        try:
            age = time.time() - tmp.stat().st_mtime
            abandoned = age > STALE_AFTER_S or (age > MIN_AGE_S and (pid is None or not _alive(pid)))
            if abandoned:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
