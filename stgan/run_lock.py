"""One writer per run directory: an exclusive lock held for a run's lifetime.

``stgan train``, ``stgan run``, sweep trials and ``stgan generate`` into a run directory
hold an exclusive ``flock`` on ``RUN/.stgan.lock``, which names the holder (process id,
host, start time). A second process is refused with one line naming the holder. The
kernel drops a lock when its process ends, even when killed, so a lock file left by a
killed process is not held and the next process takes it over. The lock is re-entrant
within a process (``stgan run`` holds it across its stages, its train stage takes it
again). Where ``fcntl`` is missing (Windows), nothing is locked.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stgan.errors import StganError, reason

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".stgan.lock"


class RunDirectoryBusy(StganError):
    """Another live process holds the run directory's lock."""


@dataclass
class _Held:
    fd: int
    depth: int


_held: dict[Path, _Held] = {}  # run directory (resolved) -> this process's lock on it
_guard = threading.Lock()


def lock_file(run_dir: Path) -> Path:
    """The lock file of ``run_dir``."""
    return Path(run_dir) / LOCK_NAME


@contextlib.contextmanager
def hold_run_directory(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock (creating the directory) until the block ends.

    Raises
    ------
    RunDirectoryBusy
        If another live process holds it.
    StganError
        If the directory or its lock file cannot be created.
    """
    key = _acquire(Path(run_dir))
    try:
        yield
    finally:
        _release(key)


@contextlib.contextmanager
def hold_if_run_directory(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s lock if it is a run directory (has a lock file); else nothing."""
    if lock_file(directory).is_file():
        with hold_run_directory(directory):
            yield
    else:
        yield


def _acquire(run_dir: Path) -> Path:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(f"{run_dir}: cannot create the run directory ({reason(exc)})") from None
    key = run_dir.resolve()
    with _guard:
        if key in _held:
            _held[key].depth += 1
            return key
        if fcntl is not None:
            _held[key] = _Held(_lock(run_dir), 1)
        return key


def _release(key: Path) -> None:
    with _guard:
        held = _held.get(key)
        if held is None:
            return
        held.depth -= 1
        if held.depth == 0:
            del _held[key]
            # emptied, not removed: a process that opened the file just now must lock
            # the same file as the next one, or both would hold "the" lock
            with contextlib.suppress(OSError):
                os.ftruncate(held.fd, 0)
            os.close(held.fd)


def _lock(run_dir: Path) -> int:
    """An open descriptor holding the exclusive lock of ``run_dir``'s lock file."""
    path = lock_file(run_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StganError(f"{run_dir}: cannot create its lock file ({reason(exc)})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        who = _description(path) or "another stgan process"
        raise RunDirectoryBusy(
            f"{run_dir} is in use by {who}; wait for it to end or use another directory"
        ) from None
    # not held before, or held by a process that ended (killed): ours now
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {started}\n".encode(), 0)
    return fd


def _description(path: Path) -> str | None:
    """The holder named in ``path`` as a phrase, or None if it has not written itself yet."""
    try:
        fields = path.read_text(errors="replace").split()
    except OSError:
        return None
    if len(fields) < 2:
        return None
    started = f" (started {fields[2]})" if len(fields) > 2 else ""
    return f"stgan process {fields[0]} on host {fields[1]}{started}"
