"""The stgan processes computing on this machine now, so each can take its share of the cores.

Each computing process holds an exclusive ``flock`` on its own file in one directory
per user (``$STGAN_PROCESS_DIR``, else ``<tmp>/stgan-<uid>/processes``). The kernel
drops a process's locks when it ends, even when it is killed, so a file whose lock can
be taken belongs to an ended process and is removed; a reused process id cannot fool
the count. Where ``fcntl`` is missing (Windows), only this process is counted.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

DIR_VARIABLE = "STGAN_PROCESS_DIR"
SUFFIX = ".lock"


def registry_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the running processes' lock files live: ``$STGAN_PROCESS_DIR`` or a per-user tmp dir."""
    if environ.get(DIR_VARIABLE):
        return Path(environ[DIR_VARIABLE])
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"stgan-{user}" / "processes"


class ProcessRegistry:
    """Lock files in ``directory``, one per computing stgan process."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None
        self._pid: int | None = None

    @property
    def joined(self) -> bool:
        return self._fd is not None and self._pid == os.getpid()

    def join(self) -> None:
        """Count this process until it ends or calls ``leave`` (a second call does nothing)."""
        if self.joined or fcntl is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid = os.getpid()
        # Locked under a name the count skips, then renamed: a counter never sees it unlocked.
        hidden = self.directory / f".{pid}{SUFFIX}.new"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(hidden, self._own_file(pid))
        self._fd, self._pid = fd, pid
        atexit.register(self.leave)

    def leave(self) -> None:
        """Stop counting this process (only the process that joined can leave)."""
        if not self.joined:
            return
        with contextlib.suppress(FileNotFoundError):
            self._own_file(os.getpid()).unlink()
        os.close(self._fd)
        self._fd = self._pid = None

    def count(self) -> int:
        """Running stgan processes that joined, this one included; at least 1."""
        if fcntl is None or not self.directory.is_dir():
            return 1
        own = self._own_file(os.getpid()) if self.joined else None
        alive = sum(1 for path in self._files() if path == own or _held(path))
        return max(1, alive + (0 if self.joined else 1))

    def _files(self) -> list[Path]:
        with contextlib.suppress(FileNotFoundError):
            return [p for p in self.directory.iterdir() if p.name.endswith(SUFFIX)]
        return []

    def _own_file(self, pid: int) -> Path:
        return self.directory / f"{pid}{SUFFIX}"


def _held(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock; an ended process's file is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    finally:
        os.close(fd)
