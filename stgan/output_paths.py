"""Output paths checked before any work: each command's directories and files can be written.

Every command calls these on its output options first, so a ``--logdir`` that is a file,
an unwritable directory or an ``--out`` in a directory that cannot be made is one line
(exit 2) before any data is read or any step trained. A directory that does not exist
yet passes when it can be created: its nearest existing ancestor is a writable directory.

Write failures during the work (a full disk) are turned into one line by
:mod:`stgan.atomic`, the one place outputs are written.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from stgan.errors import StganError


def writable_dir(path: str | Path, option: str) -> Path:
    """``path`` as a Path if it is, or can be created as, a writable directory.

    Parameters
    ----------
    path : str or Path
        The directory an option names.
    option : str
        The option, for the message (e.g. ``"--logdir"``).

    Raises
    ------
    StganError
        If ``path`` is a file, lies under a file, or is (or would be made in) a directory
        this process cannot write.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StganError(
            f"{option} {path}: is a file, not a directory; give a directory path or move the file"
        )
    _check_directory(path, f"{option} {path}")
    return path


def writable_file(path: str | Path, option: str) -> Path:
    """``path`` as a Path if a file can be written there (its directory may be made).

    Raises
    ------
    StganError
        If ``path`` is a directory, or its directory fails the checks of
        :func:`writable_dir`.
    """
    path = Path(path)
    if path.is_dir():
        raise StganError(f"{option} {path}: is a directory; give a file name inside it")
    _check_directory(path.parent, f"{option} {path}")
    return path


def _check_directory(path: Path, named: str) -> None:
    """Raise unless ``path`` is, or can be made as, a writable directory; ``named`` starts
    the message (the option and the path it was given)."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise StganError(
            f"{named}: {existing} is a file, not a directory; give a path in a directory "
            "(or move the file)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StganError(
            f"{named}: directory {existing} is not writable (read-only file system or "
            "permissions); give a writable path"
        )


def make_parent(path: str | Path, option: str) -> Path:
    """Create ``path``'s directory (and its parents) at write time; return ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StganError(
            f"{option} {path}: cannot create directory {path.parent} ({exc.strerror}); "
            "give a writable path"
        ) from None
    return path


def tensorboard_command(logdir: str | Path) -> str:
    """The command that views ``logdir``: ``tensorboard`` when it is on PATH, else the
    tensorboard installed beside this Python (a virtual environment not activated)."""
    if shutil.which("tensorboard") is None:
        beside = Path(sys.executable).parent / "tensorboard"
        if beside.is_file():
            return f"{beside} --logdir {logdir}"
        return f"{sys.executable} -m tensorboard.main --logdir {logdir}"
    return f"tensorboard --logdir {logdir}"


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (as a file or a directory)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
