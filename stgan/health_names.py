"""The names of the health detectors and of the training scalars they watch, read by the
monitor and by the TensorBoard layout.

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

# Training scalars the loop logs every ``train.log_every`` steps: the monitor watches
# them and the TensorBoard layout charts each alone.
LOSS_AND_D_SCALARS = (
    "Loss/G",
    "Loss/D",
    "Loss/penalty",
    "D/real_score",
    "D/fake_score",
    "D/real_acc",
    "D/fake_acc",
    "Grad/G_norm",
    "Grad/D_norm",
)
DIVERSITY_SCALARS = ("Health/real_diversity", "Health/fake_diversity")
# Each network's parameter L2 norm: weights that blow up while the losses stay finite.
WEIGHT_SCALARS = ("Weights/G_norm", "Weights/D_norm")
