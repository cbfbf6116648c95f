"""Per-variable normalization fitted on the train split, with an exact inverse.

Statistics stream through dask over the train split only. A transform maps
physical values ``x`` to ``z = (f(x) - offset) / scale`` with ``f`` the identity
or ``log1p``; NaN cells become ``FILL_VALUE`` in normalized space and are marked
in the mask instead, so NaN never reaches a tensor. A ``log1p`` variable that is
non-negative in the train split (counts, rainfall) gets ``lower = 0``: generated values
are bounded below by it (see ``Transforms.normalized_lower``), and the inverse clips to it.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import torch
import xarray as xr

from stgan.atomic import write_text_atomic
from stgan.errors import DataError

FILL_VALUE = 0.0


@dataclass(frozen=True)
class VariableTransform:
    """``z = (f(x) - offset) / scale``; ``f`` is ``log1p`` for kind ``log1p``.

    ``lower``: the smallest physical value of the variable's support (0 for counts and
    rainfall), or ``None`` for unbounded.
    """

    kind: str
    offset: float
    scale: float
    lower: float | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Physical → normalized, float32; NaN stays NaN (the caller masks it)."""
        return self.forward_(np.array(x, dtype=np.float32))  # a copy the in-place steps own

    def forward_(self, z: np.ndarray) -> np.ndarray:
        """:meth:`forward` in place on a float32 array (or a view of one); returns it."""
        if self.kind == "log1p":
            np.log1p(z, out=z)
        z -= np.float32(self.offset)
        z /= np.float32(self.scale)
        return z

    def inverse(self, z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Normalized → physical units, in the input's float type, clipped at ``lower``."""
        low = -np.inf if self.lower is None else self.lower
        if isinstance(z, torch.Tensor):
            x = z.double() * self.scale + self.offset
            x = torch.expm1(x) if self.kind == "log1p" else x
            return torch.where(z <= self.normalized_lower(), low, x.clamp(min=low)).to(z.dtype)
        z = np.asarray(z)
        x = z.astype(np.float64) * self.scale + self.offset
        x = np.expm1(x) if self.kind == "log1p" else x
        # at the bound's normalized value exactly the bound (float32 rounding left 6e-8 for 0)
        return np.where(z <= self.normalized_lower(), low, np.maximum(x, low)).astype(z.dtype)

    def normalized_lower(self) -> float:
        """``lower`` in normalized space (``-inf`` when unbounded)."""
        if self.lower is None:
            return -math.inf
        return float(self.forward(np.float32(self.lower)))


@dataclass(frozen=True)
class Transforms:
    """The transforms of all variables, in channel order."""

    variables: dict[str, VariableTransform]

    def forward(
        self, x: np.ndarray, channel_axis: int = -3, in_place: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalize a ``(..., C, H, W)`` array; returns ``(z, mask)`` with NaN filled.

        ``in_place``: ``x`` is a float32 array the caller gives up, normalized in its own
        memory (the data loader's windows; the same values as a copy gives).
        """
        mask = np.isfinite(x)
        z = x if in_place and x.dtype == np.float32 else np.array(x, np.float32, order="C")
        for t, channel in zip(self.variables.values(), np.moveaxis(z, channel_axis, 0)):
            t.forward_(channel)
        if not mask.all():
            np.copyto(z, FILL_VALUE, where=~mask)
        return z, mask

    def normalized_lower(self) -> torch.Tensor:
        """(C,) each variable's lower bound in normalized space, ``-inf`` where unbounded.

        The generator clamps its output to it, so the bound (a dry or empty cell) is a value
        it can produce exactly and as often as the data have it; without it the point mass
        at zero was smeared into negative counts and rainfall.
        """
        return torch.tensor(
            [t.normalized_lower() for t in self.variables.values()], dtype=torch.float32
        )

    def inverse(self, z, channel_axis: int = -3):
        """Back to physical units for a ``(..., C, H, W)`` array or tensor."""
        stack = torch.stack if isinstance(z, torch.Tensor) else np.stack
        channels = [t.inverse(c) for t, c in zip(self.variables.values(), _unbind(z, channel_axis))]
        return stack(channels, channel_axis)

    def to_dict(self) -> dict:
        """Plain data (str/float/dict) for JSON or a ``weights_only`` checkpoint."""
        return {
            "fill_value": FILL_VALUE,
            "variables": {
                k: {
                    "kind": str(v.kind),
                    "offset": float(v.offset),
                    "scale": float(v.scale),
                    "lower": None if v.lower is None else float(v.lower),
                }
                for k, v in self.variables.items()
            },
        }

    @classmethod
    def from_dict(cls, payload: dict) -> Transforms:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError`` on a malformed mapping."""
        return cls({k: VariableTransform(**v) for k, v in payload["variables"].items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically (temporary name, then rename)."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Transforms:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a valid stgan transforms file ({exc})") from None


def _unbind(z, axis: int):
    if isinstance(z, torch.Tensor):
        return z.unbind(axis)
    return list(np.moveaxis(z, axis, 0))


def train_statistics(
    ds: xr.Dataset, kinds: dict[str, str], time_dim: str, train: slice
) -> dict[str, dict]:
    """Mean, std, min, max and NaN fraction per variable over the train split, streamed.

    For ``log1p`` variables the mean and std of ``log1p(x)`` come too
    (``log_mean``, ``log_std``). All reductions run in one dask pass.
    """
    ds = ds.isel({time_dim: train})
    lazy = {}
    for name, kind in kinds.items():
        da = ds[name].astype("float64")
        stats = {
            "mean": da.mean(),
            "std": da.std(),
            "min": da.min(),
            "max": da.max(),
            "nan_fraction": da.isnull().mean(),
        }
        if kind == "log1p":
            logged = np.log1p(da.where(da > -1))
            stats.update(log_mean=logged.mean(), log_std=logged.std())
        lazy[name] = stats
    with warnings.catch_warnings():  # an all-NaN variable is reported by _fit_one
        warnings.simplefilter("ignore", RuntimeWarning)
        (computed,) = dask.compute(lazy)
    return {
        name: {k: float(v.values) for k, v in stats.items()} for name, stats in computed.items()
    }


def fit_transforms(stats: dict[str, dict], kinds: dict[str, str]) -> Transforms:
    """Build each variable's transform from its train statistics."""
    return Transforms({name: _fit_one(name, kind, stats[name]) for name, kind in kinds.items()})


def _fit_one(name: str, kind: str, s: dict) -> VariableTransform:
    if not np.isfinite(s["mean"]):
        raise DataError(
            f"variable '{name}' is all NaN in the train split; move the split or drop the variable"
        )
    if kind == "none":
        return VariableTransform(kind, 0.0, 1.0)
    if kind == "minmax":
        if s["max"] <= s["min"]:
            raise DataError(
                f"variable '{name}' is constant ({s['min']}) in the train split; use transform 'none'"
            )
        return VariableTransform(kind, (s["max"] + s["min"]) / 2, (s["max"] - s["min"]) / 2)
    if kind == "log1p":
        if s["min"] <= -1:
            raise DataError(
                f"variable '{name}' has values <= -1 (min {s['min']}); log1p needs > -1, use 'standardize'"
            )
        mean, std = s["log_mean"], s["log_std"]
        lower = 0.0 if s["min"] >= 0 else None  # counts, rainfall: never negative
    else:
        mean, std, lower = s["mean"], s["std"], None
    if not std > 0:
        raise DataError(
            f"variable '{name}' is constant ({s['mean']}) in the train split; use transform 'none'"
        )
    return VariableTransform(kind, mean, std, lower)
