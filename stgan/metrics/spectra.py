"""Spatial structure: radially averaged power spectrum over frames (batched torch).

Each frame's spectrum is ``pysteps.utils.spectral.rapsd(frame, fft_method=numpy.fft)``;
NaN cells are filled with the frame's mean over valid cells, all-NaN frames are skipped.
Ring averaging is linear, so the state is the sum of the 2-D spectra and the frame count,
and the rings are averaged once, in ``compute``.
"""

from __future__ import annotations

from typing import Any

import torch

from stgan.errors import DataError
from stgan.metrics.base import PairMetric, check_ndim
from stgan.metrics.mean import MeanAccumulator


def power_spectra_sum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over frames of ``|fftshift(fft2(frame))|^2 / frame.size``.

    Parameters
    ----------
    x : torch.Tensor
        ``(sample, time, y, x)``, NaN for missing cells.

    Returns
    -------
    power : torch.Tensor
        ``(y, x)`` float64, zero frequency at ``(y // 2, x // 2)``.
    frames : torch.Tensor
        Number of frames summed (those not all NaN).
    """
    check_ndim(x, 4, "(sample, time, y, x)")
    ny, nx = x.shape[-2:]
    anomaly, mean = _anomalies(x.reshape(-1, ny, nx))  # (F, Y, X), (F,)
    if len(mean) == 0:  # FFT libraries reject empty batches
        return x.new_zeros((ny, nx), dtype=torch.float64), torch.tensor(0, device=x.device)
    # The anomaly, not the field, is transformed: a large mean would swamp the small
    # high-wavenumber power with rounding error in float32. The mean only enters the
    # zero-frequency bin, whose power |sum|^2 / size = size * mean^2 is set exactly below.
    spectrum = torch.fft.rfft2(anomaly)  # (F, Y, X // 2 + 1)
    half = (spectrum.real.square() + spectrum.imag.square()).sum(0, dtype=torch.float64)
    power = _hermitian_full(half, nx) / (ny * nx)
    power[0, 0] = ny * nx * mean.to(torch.float64).square().sum()
    return torch.fft.fftshift(power, dim=(0, 1)), torch.tensor(len(mean), device=x.device)


def _anomalies(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames minus their mean over valid cells, NaN set to 0 (= filled with the mean).

    All-NaN frames are dropped. Returns ``(F', Y, X)`` anomalies and the ``(F',)`` means.
    """
    missing = frames.isnan()
    if missing.any():  # the NaN-aware path costs several passes; skip it for complete data
        frames = frames[~missing.flatten(1).all(1)]
        mean = frames.nanmean((1, 2))
        return torch.where(frames.isnan(), 0, frames - mean[:, None, None]), mean
    mean = frames.mean((1, 2))
    return frames - mean[:, None, None], mean


def _hermitian_full(half: torch.Tensor, nx: int) -> torch.Tensor:
    """Full ``(y, nx)`` power spectrum of real fields from its ``rfft2`` half.

    The power of a real field is symmetric, ``P(-ky, -kx) = P(ky, kx)``.
    """
    ny = half.shape[0]
    full = half.new_empty(ny, nx)
    full[:, : half.shape[1]] = half
    negative = torch.arange(half.shape[1], nx, device=half.device)  # kx < 0 columns
    mirrored_rows = (-torch.arange(ny, device=half.device)) % ny
    full[:, negative] = half[mirrored_rows][:, nx - negative]
    return full


def ring_index(ny: int, nx: int, device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """Ring (rounded radius, index units) of each cell of a centred ``(ny, nx)`` spectrum.

    Returns the ``(ny, nx)`` ring indices and the ring count: ``L // 2`` for even
    ``L = max(ny, nx)``, ``L // 2 + 1`` for odd, as pysteps ``rapsd``.
    """
    y = torch.arange(ny, device=device, dtype=torch.float64) - ny // 2
    x = torch.arange(nx, device=device, dtype=torch.float64) - nx // 2
    rings = torch.sqrt(y[:, None] ** 2 + x[None, :] ** 2).round().long()
    size = max(ny, nx)
    return rings, size // 2 + size % 2


def radial_average(power: torch.Tensor) -> torch.Tensor:
    """Mean of a centred ``(y, x)`` spectrum over each ring ``r = 0 .. n_rings - 1``."""
    rings, n_rings = ring_index(*power.shape, device=power.device)
    inside = rings < n_rings
    sums = torch.zeros(n_rings, dtype=power.dtype, device=power.device)
    sums.index_add_(0, rings[inside], power[inside])
    return sums / torch.bincount(rings[inside], minlength=n_rings)


def lsd_db(real: torch.Tensor, synthetic: torch.Tensor) -> float:
    """Log-spectral distance ``sqrt(mean_{r>=1} (10 log10(P_R / P_S))^2)`` in dB."""
    ratio_db = 10 * torch.log10(real[1:] / synthetic[1:])
    return float(ratio_db.square().mean().sqrt())


class PSD(PairMetric[MeanAccumulator]):
    """Mean radially averaged power spectra of R and S and their log-spectral distance."""

    name = "psd"

    def __init__(self, device: torch.device | str | None = None) -> None:
        sides = ("real", "synthetic")
        super().__init__(
            *(MeanAccumulator(power_spectra_sum, device, f"{s} frames") for s in sides)
        )

    def compute(self) -> dict[str, Any]:
        real, synthetic = self.real.mean(), self.synthetic.mean()
        if real.shape != synthetic.shape:
            raise DataError(
                f"psd: real grid {tuple(real.shape)} differs from synthetic "
                f"{tuple(synthetic.shape)}; regrid one onto the other"
            )
        real, synthetic = radial_average(real), radial_average(synthetic)
        curves = {"real": real.tolist(), "synthetic": synthetic.tolist()}
        return {"psd": {**curves, "lsd_db": lsd_db(real, synthetic)}}
