"""stgan: GANs for gridded spatiotemporal data, judged by domain metrics.

The main entry points, imported on first use (so ``stgan --help`` stays fast):

- ``stgan.evaluate(real, synthetic, ...)``: the docs/metrics.md report of two xarray datasets;
- ``stgan.generate(checkpoint, num, ...)``: synthetic sequences as an xarray dataset;
- ``stgan.train(config, logdir, ...)`` and ``stgan.load_pipeline(path)``.
"""

from __future__ import annotations

import importlib

__version__ = "0.5.0"

_EXPORTS = {
    "evaluate": "stgan.metrics.report",
    "generate": "stgan.sampling",
    "train": "stgan.training.loop",
    "load_pipeline": "stgan.training.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stgan' has no attribute {name!r}")
