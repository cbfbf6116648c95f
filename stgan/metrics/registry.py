"""Metrics by name: ``get_metric("acf", lags=5)`` gives a fresh, empty metric."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from stgan.errors import StganError
from stgan.metrics import distribution, diversity
from stgan.metrics.acf import ACF
from stgan.metrics.base import PairMetric
from stgan.metrics.correlation import CrossCorrelation
from stgan.metrics.spectra import PSD

METRICS: dict[str, Callable[..., PairMetric]] = {
    "acf": ACF,
    "psd": PSD,
    **{name: partial(distribution.Marginal, scores=(name,)) for name in distribution.SCORES},
    **{name: partial(diversity.Sequences, scores=(name,)) for name in diversity.SCORES},
    "cross_correlation": CrossCorrelation,
}


def get_metric(name: str, **options: Any) -> PairMetric:
    """A new metric called ``name``, built with ``options`` (e.g. ``lags``, ``device``).

    Raises
    ------
    StganError
        For an unknown name; the message lists the known ones.
    """
    if name not in METRICS:
        raise StganError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    return METRICS[name](**options)
