"""The names of the health detectors, read by the monitor and by the TensorBoard layout.

A leaf module, so that ``stgan.logging`` can lay out ``Health/<detector>`` charts
without importing the training package.
"""

from __future__ import annotations

DETECTORS = (
    "divergence",
    "overpowering",
    "vanishing_gradients",
    "exploding_gradients",
    "collapse",
    "one_way",
    "stagnation",
)
