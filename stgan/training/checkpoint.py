"""Checkpoints: atomic save with keep-last-K, safe load, RNG seeding and state, config checks.

A checkpoint is ``ckpt_{step:08d}.pt`` holding a dict of tensors and plain containers,
so it loads with ``torch.load(..., weights_only=True)`` and never runs pickled code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgan.atomic import atomic_path
from stgan.errors import CheckpointError, reason

_NAME = re.compile(r"ckpt_(\d+)\.pt")
# torch's weights_only refusals: "GLOBAL m.C was not an allowed global" (a class) or
# "unsupported GLOBAL posix.system whose module posix is blocked" (a function such as os.system)
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``ckpt_*.pt`` in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(_NAME.fullmatch(p.name), p) for p in directory.glob("ckpt_*.pt")]
    return sorted((int(m.group(1)), p) for m, p in found if m)


def save_checkpoint(directory: Path, step: int, state: dict, keep: int) -> Path:
    """Write ``directory/ckpt_{step:08d}.pt`` atomically and keep only the newest ``keep``.

    Parameters
    ----------
    directory
        Where checkpoints live; created if missing.
    step
        Training step; names the file and is stored under ``"step"``.
    state
        Tensors and plain containers only (dict/list/tuple/int/float/str/bool/None).
    keep
        How many checkpoints to keep (>= 1); older ones, by step, are deleted.

    Returns
    -------
    Path
        The checkpoint written.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if state.get("step", step) != step:
        raise ValueError(f"state['step'] is {state['step']} but step is {step}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ckpt_{step:08d}.pt"
    with atomic_path(path) as tmp:
        torch.save({**state, "step": step}, tmp)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def save_best(directory: Path, state: dict) -> Path:
    """Write ``directory/best.pt`` atomically (the checkpoint chosen by domain metrics)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "best.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _load_error(path: Path, err: Exception) -> CheckpointError:
    """Turn what ``torch.load`` raised into a one-line ``CheckpointError``."""
    message = str(err)
    refused = _GLOBAL.search(message)
    if isinstance(err, pickle.UnpicklingError) and refused:
        return CheckpointError(
            f"checkpoint {path} holds pickled Python objects ({refused.group(1)}), which can "
            "run code when loaded, so stgan refused it for safety (weights_only=True); use a "
            "checkpoint written by stgan (only tensors and plain containers are allowed)"
        )
    cause = f"{type(err).__name__}: {reason(err)}" if message.strip() else type(err).__name__
    return CheckpointError(
        f"checkpoint {path} is corrupt or truncated ({cause}); delete it or pick another checkpoint"
    )


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint onto the CPU with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt or truncated, holds pickled Python objects, or is
        not a dict with a ``"step"`` key.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} not found; check the path or pick a ckpt_*.pt file that exists"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad files
        raise _load_error(path, err) from err
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(
            f"checkpoint {path} is not an stgan checkpoint (expected a dict with a 'step' "
            f"key, found {type(state).__name__}); pick a ckpt_*.pt written by stgan"
        )
    return state


def load_latest(directory: Path) -> tuple[Path, dict] | None:
    """The newest ``ckpt_*.pt`` in ``directory`` that loads, with its state, or None.

    Newer checkpoints that fail to load are skipped with a warning naming them.
    """
    for _, path in reversed(list_checkpoints(Path(directory))):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"skipping {path.name}: {err}", stacklevel=2)
    return None


def seed_everything(seed: int) -> None:
    """Seed every global RNG a run draws from: Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict:
    """Every RNG state (Python, NumPy global, torch CPU, CUDA) as tensors and plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),  # uint32 -> int64, lossless
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict) -> None:
    """Restore the RNG states captured by :func:`capture_rng`.

    CUDA states are restored only when CUDA is available with the same device count.
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (npy["bit_generator"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = list(state["cuda"])
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    elif cuda:
        warnings.warn(
            f"checkpoint holds {len(cuda)} CUDA RNG state(s) but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); CUDA draws will not repeat",
            stacklevel=2,
        )


def _canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, tuples as lists, other non-JSON values as ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of ``config``'s canonical JSON; independent of key order."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == prefix or key.startswith(prefix + ".") for prefix in ignore)


def _diff(saved: Any, current: Any, prefix: str) -> list[str]:
    if not (isinstance(saved, dict) and isinstance(current, dict)):
        return [] if _canonical(saved) == _canonical(current) else [prefix]
    missing = object()
    keys = set(saved) | set(current)
    out = []
    for key in keys:
        dotted = f"{prefix}.{key}" if prefix else str(key)
        a, b = saved.get(key, missing), current.get(key, missing)
        if a is missing or b is missing:
            out.append(dotted)
        else:
            out.extend(_diff(a, b, dotted))
    return out


def config_diff(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Sorted dotted keys whose values differ between two nested plain-data configs.

    Keys present on one side only count as differences. A dotted key equal to, or under,
    an entry of ``ignore`` is skipped (``ignore=("train",)`` skips ``train.lr``).
    Tuples and lists with the same items are equal, as in :func:`config_hash`.
    """
    return sorted(key for key in _diff(saved, current, "") if not _ignored(key, ignore))


def check_compatible(saved: dict, current: dict, ignore: tuple[str, ...] = ()) -> None:
    """Raise ``CheckpointError`` naming the keys where ``saved`` and ``current`` differ."""
    keys = config_diff(saved, current, ignore)
    if keys:
        raise CheckpointError(
            f"checkpoint config differs from the current config in: {', '.join(keys)}; "
            "resume with the original config or start a new logdir"
        )
