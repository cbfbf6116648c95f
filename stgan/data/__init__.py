"""Data specs, lazy NetCDF reading, splits, transforms and the torch Dataset.

Names are imported on first use, so that light modules (``stgan.data.synthetic``,
``stgan.data.spec``) load without torch.
"""

import importlib

_EXPORTS = {
    "DataSpec": "stgan.data.spec",
    "load_spec": "stgan.data.spec",
    "spec_from_dict": "stgan.data.spec",
    "PreparedData": "stgan.data.prepared",
    "prepare": "stgan.data.prepared",
    "Transforms": "stgan.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stgan.data' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
