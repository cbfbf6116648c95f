"""Plumbing shared by every metric: a two-sided init → update → merge → compute shell.

A metric compares real data R with synthetic data S. Each side has its own accumulator
(sums, counts, reservoirs: plain tensors and arrays, so partial states can be gathered or
all-reduced across processes); ``compute`` scores the two sides together.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch

from stgan.errors import DataError

Array = np.ndarray | torch.Tensor


class Accumulator(Protocol):
    """State of one side: fed batches one at a time, merged with a peer's state."""

    def update(self, batch: Array) -> None: ...

    def merge(self, other: Any) -> None: ...


A = TypeVar("A", bound=Accumulator)


class PairMetric(Generic[A]):
    """A two-sample metric: one accumulator per side, scored together by ``compute``.

    ``compute`` returns ``{report key: JSON-serialisable value}`` (``{"acf": {...}}``,
    ``{"ks": 0.02}``), so a report is the union of its metrics' dicts.
    """

    name = ""

    def __init__(self, real: A, synthetic: A) -> None:
        self.real = real
        self.synthetic = synthetic

    def update(self, real: Array | None = None, synthetic: Array | None = None) -> None:
        """Add a batch to either side or both."""
        if real is not None:
            self.real.update(real)
        if synthetic is not None:
            self.synthetic.update(synthetic)

    def merge(self, other: PairMetric[A]) -> None:
        """Fold in the state of the same metric fed with other batches (another rank)."""
        self.real.merge(other.real)
        self.synthetic.merge(other.synthetic)

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError


def as_tensor(x: Array, device: torch.device | str | None = None) -> torch.Tensor:
    """``x`` as a float tensor on ``device`` (default: its own; CPU for arrays).

    float64 stays float64; every other dtype becomes float32.
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    return t.to(device=device if device is not None else t.device, dtype=dtype)


def as_numpy(x: Array) -> np.ndarray:
    """``x`` as a float NumPy array: float64 stays float64, anything else becomes float32."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return a if a.dtype == np.float64 else a.astype(np.float32)


def check_ndim(x: Array, ndim: int, layout: str) -> None:
    """Raise DataError unless ``x`` has ``ndim`` dimensions laid out as ``layout``."""
    if x.ndim != ndim:
        raise DataError(
            f"expected a {ndim}-D array {layout}, got shape {tuple(x.shape)}; "
            "reshape it (a series without a sample dimension: stgan.metrics.to_samples)"
        )


def add_state(mine: torch.Tensor | None, other: torch.Tensor | None) -> torch.Tensor | None:
    """Sum two optional states; ``None`` means nothing seen yet."""
    if mine is None or other is None:
        return other if mine is None else mine
    return mine + other.to(mine.device)
