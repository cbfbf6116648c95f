"""Seeded generators of small spatiotemporal test data with known structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.metrics.report import evaluate_arrays
from stgan.metrics.tensorboard import report_scalars


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


def small_report(names: tuple[str, ...], seed: int) -> dict:
    """A report on small AR(1) variables ``names``: real (12 samples) against less
    persistent synthetic ones (10, phi 0.3), with a floor (9 more real samples)."""
    rng = np.random.default_rng(seed)
    real = {name: space_time(rng, (12, 6, 5, 4)) for name in names}
    synthetic = {name: space_time(rng, (10, 6, 5, 4), phi=0.3) for name in real}
    floor = {name: space_time(rng, (9, 6, 5, 4)) for name in real}
    return evaluate_arrays(real, synthetic, floor_real=floor)


def assert_report_logged(logdir: Path, report: dict, step: int) -> EventAccumulator:
    """Assert ``logdir`` holds exactly the scalars of ``report_scalars(report)``, each once
    at ``step`` with its value; return the events for further checks."""
    events = EventAccumulator(str(logdir))
    events.Reload()
    scalars = report_scalars(report)
    assert set(events.Tags()["scalars"]) == set(scalars)
    for tag, value in scalars.items():
        (logged,) = events.Scalars(tag)
        assert logged.step == step and logged.value == pytest.approx(value, rel=1e-6, abs=1e-12)
    return events


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
