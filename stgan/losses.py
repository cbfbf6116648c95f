"""Adversarial losses and penalties, as pure functions of tensors and modules.

``get_loss(name)`` returns a ``Loss`` with ``d_loss(real_logits, fake_logits)`` and
``g_loss(fake_logits)``, both scalar tensors, plus ``scores`` for logging. Penalties
take the discriminator and its extra positional arguments (e.g. the context), so
``d(x, *d_args)`` is what gets differentiated. ``stgan.objective.AdversarialObjective``
puts them together per phase: instance noise, masking (``apply_mask``), context and the
penalty schedule (``penalty_due``); the training loop owns the optimizers.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from stgan.errors import StganError

Tensor = torch.Tensor


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor, real_target: float = 1.0) -> Tensor:
    """Logistic D loss; ``real_target=0.9`` is one-sided label smoothing."""
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_target)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def bce_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss: -log sigmoid(D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def lsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def lsgan_g_loss(fake_logits: Tensor) -> Tensor:
    return 0.5 * ((fake_logits - 1) ** 2).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def wgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return fake_logits.mean() - real_logits.mean()


def mean_g_loss(fake_logits: Tensor) -> Tensor:
    """G loss of hinge and WGAN: -E[D(G(z))]."""
    return -fake_logits.mean()


@dataclasses.dataclass(frozen=True)
class Loss:
    """One adversarial formulation; ``scores`` maps logits to D scores for logging."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    sigmoid_scores: bool  # report mean sigmoid (a probability) or mean raw logit

    def score(self, logits: Tensor) -> Tensor:
        """Mean D score of a batch, detached (a 0-d tensor; no device sync)."""
        logits = logits.detach()
        return (torch.sigmoid(logits) if self.sigmoid_scores else logits).mean()

    def scores(self, real_logits: Tensor, fake_logits: Tensor) -> dict[str, Tensor]:
        """Mean D scores and accuracies (fraction of each side D classifies correctly)."""
        real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
        cut = self.decision_threshold(real_logits, fake_logits)
        return {
            "real_score": self.score(real_logits),
            "fake_score": self.score(fake_logits),
            "real_acc": (real_logits > cut).float().mean(),
            "fake_acc": (fake_logits <= cut).float().mean(),
        }

    def decision_threshold(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor | float:
        """The logit that separates "real" from "fake": 0 (bce, hinge), 0.5 (lsgan targets 0/1);
        WGAN critics have no fixed scale, so the midpoint of the two batch means."""
        if self.name == "wgan":
            return (real_logits.mean() + fake_logits.mean()) / 2
        return 0.5 if self.name == "lsgan" else 0.0


LOSSES: dict[str, Loss] = {
    "bce": Loss("bce", bce_d_loss, bce_g_loss, sigmoid_scores=True),
    "lsgan": Loss("lsgan", lsgan_d_loss, lsgan_g_loss, sigmoid_scores=False),
    "hinge": Loss("hinge", hinge_d_loss, mean_g_loss, sigmoid_scores=False),
    "wgan": Loss("wgan", wgan_d_loss, mean_g_loss, sigmoid_scores=False),
}


def get_loss(name: str, label_smoothing: float = 0.0) -> Loss:
    """The loss called ``name``; ``label_smoothing`` (bce only) sets the real target to 1 - it."""
    if name not in LOSSES:
        raise StganError(f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}")
    if not label_smoothing:
        return LOSSES[name]
    if name != "bce" or not 0 < label_smoothing < 1:
        raise StganError(
            f"label_smoothing {label_smoothing!r} is not allowed with loss {name!r}; "
            "use it only with 'bce', between 0 and 1 (e.g. 0.1 for a real target of 0.9)"
        )
    smoothed = functools.partial(bce_d_loss, real_target=1.0 - label_smoothing)
    return dataclasses.replace(LOSSES[name], d_loss=smoothed)


def _input_grad_norms(d: nn.Module, x: Tensor, *d_args: object) -> Tensor:
    """Per-sample ||dD(x)/dx||_2 (B,), differentiable (for the penalty's own backward)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, *d_args).sum(), x, create_graph=True)
    return grad.flatten(1).norm(dim=1)  # (B,)


def r1_penalty(
    d: nn.Module, real: Tensor, *d_args: object, gamma: float = 1.0, interval: int = 1
) -> Tensor:
    """R1: ``gamma / 2 * interval * E[||grad_x D(x)||^2]`` on reals (Mescheder et al. 2018).

    ``interval`` > 1 is StyleGAN2's lazy regularization: compute the penalty only when
    ``penalty_due(step, interval)`` and scale it up by ``interval`` to compensate.
    """
    return gamma / 2 * interval * (_input_grad_norms(d, real, *d_args) ** 2).mean()


def gradient_penalty(
    d: nn.Module,
    real: Tensor,
    fake: Tensor,
    *d_args: object,
    weight: float = 10.0,
    interval: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP: ``weight * interval * E[(||grad D(x_hat)||_2 - 1)^2]`` (Gulrajani et al. 2017).

    ``x_hat`` interpolates each real/fake pair with one U(0, 1) weight per sample, drawn
    with ``generator`` (on the data's device) or the global RNG.
    """
    alpha = torch.rand(
        real.shape[0], *[1] * (real.dim() - 1), generator=generator, device=real.device
    )
    x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()  # (B, T, C, H, W)
    return weight * interval * ((_input_grad_norms(d, x_hat, *d_args) - 1) ** 2).mean()


GRID_CELL_WEIGHT_CAP = 24.0  # DGMR's ceiling on the per-cell weight (precip_weight_cap)


def grid_cell_weights(real: Tensor, cap: float = GRID_CELL_WEIGHT_CAP) -> Tensor:
    """DGMR's per-cell weight ``w(y) = min(max(y, 0) + 1, cap)``: heavier where ``y`` is larger.

    The paper writes ``max(y + 1, 24)`` and means a clip "for robustness to outliers"; the
    port (``dgmr`` 1.4.4) takes that max literally, which makes every weight >= 24. Here the
    cap is a ceiling, as the port's docstring says. Values below 0 (possible on stgan's
    normalized scale, never for DGMR's rain rates) weigh as 0 does.
    """
    return (real.clamp(min=0) + 1).clamp(max=cap)


def grid_cell_loss(
    fake_mean: Tensor, real: Tensor, mask: Tensor, cap: float = GRID_CELL_WEIGHT_CAP
) -> Tensor:
    """DGMR's grid-cell regulariser: weighted mean absolute error of the samples' mean.

    ``mean(|E[G(z)] - y| * w(y))`` over the valid cells (Ravuri et al. 2021, eq. 5), with
    ``w`` from :func:`grid_cell_weights`, on the scale G is trained on.

    Parameters
    ----------
    fake_mean
        ``(B, T, C, H, W)``, the mean of the generator samples drawn from one context.
    real
        ``(B, T, C, H, W)``, the real future those samples forecast.
    mask
        ``(B, T, C, H, W)``, 1 where a cell is valid, 0 where missing (left out of the mean).

    Notes
    -----
    The port divides the L1 sum by T and then *multiplies* by H and W
    (``norm(p=1) / T * H * W``, an operator-precedence slip); this is the paper's mean.
    """
    weighted = (fake_mean - real).abs() * grid_cell_weights(real, cap) * mask
    return weighted.sum() / mask.sum().clamp(min=1)


def penalty_due(step: int, interval: int) -> bool:
    """Whether a lazily regularized penalty runs at ``step`` (every ``interval`` steps)."""
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    return step % interval == 0


def apply_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the invalid cells (mask 0) so they never reach D or a loss.

    Apply it after ``instance_noise`` so masked cells stay exactly zero.
    """
    return x * mask


def instance_noise(x: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """``x`` plus Gaussian noise of standard deviation ``std`` (unchanged when 0)."""
    if std == 0:
        return x
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def annealed_std(step: int, start_std: float, anneal_steps: int) -> float:
    """Instance-noise std decaying linearly from ``start_std`` at step 0 to 0 at ``anneal_steps``."""
    if step >= anneal_steps:
        return 0.0
    return start_std * (1 - step / anneal_steps)
