"""Temporal structure: mean autocorrelation curve over grid-cell series (batched torch).

Matches ``statsmodels.tsa.stattools.acf(series, nlags=K, adjusted=False)`` for each series,
averaged over every (sample, cell) series with no NaN and non-zero variance.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from stgan.errors import DataError
from stgan.metrics.base import PairMetric, check_ndim
from stgan.metrics.mean import MeanAccumulator

MAX_DEFAULT_LAGS = 10


def default_lags(length: int) -> int:
    """Default lag count ``K = min(T - 1, 10)`` for sequences of ``length`` steps."""
    return min(length - 1, MAX_DEFAULT_LAGS)


def acf_curves(x: torch.Tensor, lags: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Autocorrelation at lags ``0..lags`` of every cell series of ``x``.

    Parameters
    ----------
    x : torch.Tensor
        ``(sample, time, y, x)``, NaN for missing cells.
    lags : int
        Largest lag K, ``1 <= K < time``.

    Returns
    -------
    curves : torch.Tensor
        ``(K + 1, series)`` with ``series = sample * y * x``; zero for invalid series.
    valid : torch.Tensor
        ``(series,)`` bool: the series has no NaN and is not constant.
    """
    check_ndim(x, 4, "(sample, time, y, x)")
    n_samples, length = x.shape[:2]
    if not 1 <= lags < length:
        raise DataError(f"acf: {lags} lags need sequences longer than {lags} steps, got {length}")
    series = x.reshape(n_samples, length, -1)  # (S, T, N)
    # max > min rather than variance > 0: rounding leaves a constant series a tiny variance
    valid = ~series.isnan().any(1) & (series.amax(1) > series.amin(1))  # (S, N)
    dev = torch.where(valid.unsqueeze(1), series - series.mean(1, keepdim=True), 0)
    lagged = [(dev[:, : length - k] * dev[:, k:]).sum(1) for k in range(lags + 1)]
    curves = torch.stack(lagged) / torch.where(valid, lagged[0], 1)  # (K + 1, S, N)
    return curves.reshape(lags + 1, -1), valid.reshape(-1)


def acf_error(real: torch.Tensor, synthetic: torch.Tensor) -> float:
    """``mean_{k=1..K} |r_k(R) - r_k(S)|`` of two curves over lags ``0..K``."""
    return float((real[1:] - synthetic[1:]).abs().mean())


class ACF(PairMetric[MeanAccumulator]):
    """Mean acf curves of R and S and their error.

    Parameters
    ----------
    lags : int, optional
        K; default ``min(T - 1, 10)`` from the first batch seen.
    device : torch device, optional
        Where to compute; default each batch's own device.
    """

    name = "acf"

    def __init__(self, lags: int | None = None, device: torch.device | str | None = None) -> None:
        self.lags = lags
        sides = ("real", "synthetic")
        super().__init__(
            *(MeanAccumulator(self._summarize, device, f"{s} acf series") for s in sides)
        )

    def _summarize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lags is None:
            self.lags = default_lags(x.shape[1])
        curves, valid = acf_curves(x, self.lags)
        return curves.sum(1), valid.sum()

    def compute(self) -> dict[str, Any]:
        """Curves and error; a synthetic side without one varying series (a generator
        collapsed to constant output) has no acf: its curve and the error are NaN."""
        real = self.real.mean()
        if self.synthetic.count is None or int(self.synthetic.count) == 0:
            nan = [math.nan] * len(real)
            curves = {"lags": list(range(len(real))), "real": real.tolist(), "synthetic": nan}
            return {"acf": {**curves, "error": math.nan}}
        synthetic = self.synthetic.mean()
        curves = {
            "lags": list(range(len(real))),
            "real": real.tolist(),
            "synthetic": synthetic.tolist(),
        }
        return {"acf": {**curves, "error": acf_error(real, synthetic)}}
