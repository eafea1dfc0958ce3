"""Atomic writes: a reader sees the old file or the new one, never half of one.

Temporary files carry the writing process's id, so a later run can tell an abandoned one (its writer
was killed) from one being written right now, and sweep only the former.
"""

from __future__ import annotations

import errno
import os
import pickle
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import SSRBenchError

STALE_AFTER_S = 24 * 3600  # a temp file this old is abandoned even if its pid was reused
MIN_AGE_S = 60.0  # younger files may belong to a writer on another host sharing the folder
# The most a reader takes in of one input file. The largest committed leaderboard (leaderboards/quick-sweep.json)
# is under 1 MiB; a paper-scale sweep stays in the tens of MiB. The limit is there so that a wrong path (a
# disk image, a symlink to /dev/zero) fails at once instead of reading until memory runs out.
MAX_READ_BYTES = 256 * 2**20


class UnwritableError(SSRBenchError):
    """A path the user gave cannot be written: bad input, found before any work."""

    exit_code = 2


class UnreadableError(SSRBenchError):
    """An input path the user gave cannot be read as a file: bad input, one line, exit 2."""

    exit_code = 2


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse(path: Path, why: str, fix: str = "") -> UnreadableError:
    return UnreadableError(f"{path}: cannot read ({why}){fix}")


def _open_regular(path: Path) -> int:
    """A read-only descriptor of ``path`` if it is a regular file (symlinks followed); anything else -- a
    directory, a FIFO nobody writes to, a device such as /dev/zero -- is refused before a byte is read. The
    file is checked by path and again once open (O_NONBLOCK: a FIFO that appeared in between cannot block)."""
    not_a_file = "; give a regular file"
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, _kind(mode), not_a_file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise _refuse(path, getattr(exc, "strerror", None) or str(exc)) from exc
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _refuse(path, exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _refuse(path, _kind(info.st_mode), not_a_file)
    return fd


@contextmanager
def open_regular_file(path: Path | str) -> Iterator[IO[bytes]]:
    """``path`` opened for reading in binary, if it is a regular file (see ``_open_regular``); for files read
    in a stream whatever their size (weights: ``torch.load`` takes the file object)."""
    fh = os.fdopen(_open_regular(Path(path)), "rb")
    with fh:
        yield fh


def read_regular_file(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of a regular file (see ``_open_regular``), at most ``limit`` of them (default
    ``MAX_READ_BYTES``): a reader can neither block nor read without end."""
    path = Path(path)
    limit = MAX_READ_BYTES if limit is None else limit
    too_big = _refuse(
        path, f"larger than {limit} bytes, the most ssrbench reads of one file", "; is it the right file?"
    )
    fd = _open_regular(path)
    try:
        if os.fstat(fd).st_size > limit:
            raise too_big
        chunks, size = [], 0
        while size <= limit:  # the file may grow while it is read: never take in more than the limit
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise too_big
        return b"".join(chunks)
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def read_capped(stream: IO[bytes], what: str, limit: int | None = None) -> bytes:
    """At most ``limit`` (default ``MAX_READ_BYTES``) bytes of ``stream`` (a pipe from another program); more
    is an error naming ``what``."""
    limit = MAX_READ_BYTES if limit is None else limit
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UnreadableError(f"{what}: larger than {limit} bytes, the most ssrbench reads of one file")
    return data


class DiskFullError(UnwritableError):
    """The disk (or quota) filled up while writing: not the input's fault, so exit 1; the file is untouched."""

    exit_code = 1


FULL = (errno.ENOSPC, errno.EDQUOT)


def _failed(path: Path, exc: OSError) -> UnwritableError:
    if exc.errno in FULL:
        return DiskFullError(
            f"{path}: cannot write ({exc.strerror or exc}); the file there, if any, is untouched -- "
            f"free some space and run the same command again"
        )
    return UnwritableError(f"{path}: cannot write ({exc.strerror or exc})")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _target(path: Path, shown: str) -> Path:
    """``path``, if an atomic write may replace what is there: nothing, a regular file, or a symlink -- which is
    replaced as a link, its target never written, so a link planted in a shared folder cannot redirect the
    write (to someone's ``~/.bashrc``). A device, pipe or socket is refused: ``os.replace`` would put a regular
    file in its place (``--out /dev/full`` as root replaced the device itself)."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a parent that is a file: reported below)
        return path
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnwritableError(f"{shown}: cannot write ({getattr(exc, 'strerror', None) or exc})") from exc
    if stat.S_ISLNK(mode) or stat.S_ISREG(mode) or stat.S_ISDIR(mode):  # a folder fails below, with its reason
        return path
    raise UnwritableError(f"{shown}: is not a regular file ({_kind(mode)}); give a file path")


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
        raise UnwritableError(
            f"{option} {shown}: cannot write there ({exc.strerror or exc}); choose a writable path"
        ) from exc


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


def refusal_reason(exc: BaseException) -> str:
    """Why a weights file was refused, in a few words, without torch's advice to retry with
    ``weights_only=False``: a file that needs more than tensors to load is exactly what must never be
    unpickled. Shared by the model cache, ``--classifier-checkpoint`` and ``--base``."""
    text = str(exc)
    if isinstance(exc, EOFError):
        return "it is empty or cut short"
    if "GLOBAL" in text or "global" in text.lower() and "unsupported" in text.lower():
        return "it holds objects other than tensors, and ssrbench loads weights only (refused, nothing in it was run)"
    garbage = (pickle.UnpicklingError, IndexError, KeyError, OverflowError)  # what bytes no writer made raise
    if isinstance(exc, garbage) or "weights_only" in text or "PytorchStreamReader" in text or "zip archive" in text:
        return "it is not a file torch.save writes, or it is corrupt or cut short"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first[:200]}"
