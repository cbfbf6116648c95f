"""Seeded generators of small spatiotemporal test data with known structure."""

from __future__ import annotations

import numpy as np
import pytest


def power_law_fields(rng: np.random.Generator, n: int, ny: int, nx: int, beta: float) -> np.ndarray:
    """``(n, ny, nx)`` zero-mean, unit-variance fields with power spectrum ``~ k^-beta``."""
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    k[0, 0] = np.inf  # no power at zero frequency: zero-mean fields
    fields = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, ny, nx))) * k ** (-beta / 2)).real
    return fields / fields.std()


def space_time(
    rng: np.random.Generator,
    shape: tuple[int, int, int, int],
    phi: float = 0.8,
    beta: float = 0.0,
) -> np.ndarray:
    """``(sample, time, y, x)`` stationary AR(1) in time (``r_k = phi^k``) of power-law fields.

    ``beta = 0`` gives white noise in space; ``phi = 0`` white noise in time.
    """
    n_samples, length, ny, nx = shape
    innovations = power_law_fields(rng, n_samples * length, ny, nx, beta).reshape(shape)
    x = np.empty(shape)
    x[:, 0] = innovations[:, 0]
    for t in range(1, length):
        x[:, t] = phi * x[:, t - 1] + np.sqrt(1 - phi**2) * innovations[:, t]
    return x


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
