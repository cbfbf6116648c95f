"""Domain metrics for synthetic spatiotemporal sequences (definitions: docs/metrics.md).

Each metric follows init → update(real=..., synthetic=...) → merge(other) → compute(), so
evaluation streams over batches and partial states merge across processes.
"""

from stgan.metrics.acf import ACF, acf_curves, acf_error, default_lags
from stgan.metrics.correlation import CrossCorrelation
from stgan.metrics.distribution import Marginal, energy, ks, quantiles, wasserstein1
from stgan.metrics.diversity import Sequences, c2st, mmd2
from stgan.metrics.inputs import dataset_arrays, to_samples
from stgan.metrics.prdc import prdc
from stgan.metrics.registry import METRICS, headline, selection_score
from stgan.metrics.report import evaluate, evaluate_arrays
from stgan.metrics.spectra import PSD, lsd_db, power_spectra_sum, radial_average

__all__ = [
    "ACF",
    "METRICS",
    "PSD",
    "CrossCorrelation",
    "Marginal",
    "Sequences",
    "acf_curves",
    "acf_error",
    "c2st",
    "dataset_arrays",
    "default_lags",
    "energy",
    "evaluate",
    "evaluate_arrays",
    "headline",
    "ks",
    "lsd_db",
    "mmd2",
    "power_spectra_sum",
    "prdc",
    "quantiles",
    "radial_average",
    "selection_score",
    "to_samples",
    "wasserstein1",
]
