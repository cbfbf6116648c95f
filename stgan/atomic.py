"""Write outputs atomically: to a temporary name beside the target, then rename.

A run killed half-way leaves the previous file (or none), never a partial one. A
process killed outright (SIGKILL) cannot clean up, so temporary names carry the
writer's process id and the next write to the same target removes the leftovers
of writers that are gone.

A write that fails for the file system (disk full, quota, read-only, permissions) is
one ``StganError`` line naming the file and what to free or change, with the temporary
file removed: this is the one place every output goes through.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from stgan.errors import StganError

# What torch.save (its zip writer, miniz) says when the disk fills under it.
TORCH_WRITE_FAILURES = ("inline_container.cc", "PytorchStreamWriter failed", "file write failed")
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
DENIED = (errno.EROFS, errno.EACCES, errno.EPERM)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s directory; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched; a file
    system failure (:func:`write_failure`) is raised as one ``StganError`` line.
    """
    path = Path(path)
    try:
        remove_stale_temporaries(path)
        prefix = f".{path.name}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        failure = write_failure(path, exc)
        if failure is None:
            raise
        raise failure from None
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        failure = write_failure(path, exc)
        if failure is not None:
            raise failure from None
        raise


def write_failure(path: Path, exc: BaseException) -> StganError | None:
    """``exc`` as one line naming ``path`` and what to free or change, when it is a file
    system failure (an ``OSError`` with an errno, or torch.save's failed write); else None.
    """
    full = isinstance(exc, RuntimeError) and any(s in str(exc) for s in TORCH_WRITE_FAILURES)
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if full or code in FULL:
        return StganError(
            f"writing {path} failed: no space left on the device "
            f"({_free(path.parent)} free in {path.parent}); free disk space or write elsewhere "
            "(--logdir/--out), then run again (a training resumes with --resume)"
        )
    if code in DENIED:
        return StganError(
            f"writing {path} failed: {exc.strerror} (read-only file system or permissions); "
            "give a writable --logdir/--out"
        )
    if code is not None:
        return StganError(f"writing {path} failed: {exc.strerror}; check the disk and the path")
    return None


def _free(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free / 2**20:.0f} MiB"
    except OSError:
        return "unknown space"


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete ``.NAME.PID.*.tmp`` files beside ``path`` whose writer process has exited."""
    path = Path(path)
    candidates = path.parent.glob(f".{glob.escape(path.name)}.*.tmp")
    return _remove_stale(tmp for tmp in candidates if _temporary_of(tmp)[0] == path.name)


def remove_stale_temporaries_in(folder: str | Path) -> list[Path]:
    """Delete every ``.NAME.PID.*.tmp`` file in ``folder`` whose writer process has exited."""
    return _remove_stale(Path(folder).glob(".*.tmp"))


def _remove_stale(candidates: Iterable[Path]) -> list[Path]:
    removed = []
    for tmp in candidates:
        pid = _temporary_of(tmp)[1]
        if pid is not None and not _alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _temporary_of(tmp: Path) -> tuple[str | None, int | None]:
    """(target name, writer's PID) of an ``atomic_path`` temporary ``.NAME.PID.XXXXXXXX.tmp``;
    ``(None, None)`` for any other name (mkstemp's random part has no dot)."""
    if not (tmp.name.startswith(".") and tmp.name.endswith(".tmp")):
        return None, None
    parts = tmp.name[1 : -len(".tmp")].rsplit(".", 2)  # NAME, PID, XXXXXXXX
    if len(parts) != 3 or not all(parts) or not parts[1].isdigit():
        return None, None
    return parts[0], int(parts[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
