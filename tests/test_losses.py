import math

import pytest
import torch
from torch import nn

from stgan import losses
from stgan.errors import StganError
from stgan.models import DiscriminatorConfig, build_discriminator

REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def test_bce_matches_the_formula():
    loss = losses.get_loss("bce")
    d = -_mean(_log_sigmoid(r) for r in REAL.tolist()) - _mean(
        _log_sigmoid(-f) for f in FAKE.tolist()
    )
    g = -_mean(_log_sigmoid(f) for f in FAKE.tolist())
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_bce_label_smoothing_targets_09_for_reals_only():
    loss = losses.get_loss("bce", label_smoothing=0.1)
    real = -_mean(0.9 * _log_sigmoid(r) + 0.1 * _log_sigmoid(-r) for r in REAL.tolist())
    fake = -_mean(_log_sigmoid(-f) for f in FAKE.tolist())
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(real + fake, rel=1e-6)
    assert loss.g_loss is losses.get_loss("bce").g_loss


@pytest.mark.parametrize(
    "name, d, g",
    [
        # lsgan: 0.5*mean((r-1)^2) + 0.5*mean(f^2); G: 0.5*mean((f-1)^2)
        ("lsgan", 0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2, 0.5 * (0.25 + 16) / 2),
        # hinge: mean(relu(1-r)) + mean(relu(1+f)); G: -mean(f)
        ("hinge", (0 + 2) / 2 + (1.5 + 0) / 2, 1.25),
        # wgan: mean(f) - mean(r); G: -mean(f)
        ("wgan", -1.25 - 0.5, 1.25),
    ],
)
def test_losses_match_hand_values(name, d, g):
    loss = losses.get_loss(name)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d)
    assert loss.g_loss(FAKE).item() == pytest.approx(g)


def test_scores_are_probabilities_for_bce_and_logits_otherwise():
    bce = losses.get_loss("bce").scores(REAL, FAKE)
    assert bce["real_score"].item() == pytest.approx(
        _mean(math.exp(_log_sigmoid(r)) for r in REAL.tolist())
    )
    wgan = losses.get_loss("wgan").scores(REAL, FAKE)
    assert (wgan["real_score"].item(), wgan["fake_score"].item()) == (0.5, -1.25)


def test_unknown_loss_and_bad_smoothing():
    with pytest.raises(
        StganError, match="unknown loss 'ns'; choose one of bce, hinge, lsgan, wgan"
    ):
        losses.get_loss("ns")
    with pytest.raises(StganError, match="label_smoothing 0.1 is not allowed with loss 'hinge'"):
        losses.get_loss("hinge", label_smoothing=0.1)
    with pytest.raises(StganError, match="between 0 and 1"):
        losses.get_loss("bce", label_smoothing=1.5)


class LinearD(nn.Module):
    """D(x, c) = w . x + sum(c): the input gradient is w, so ||grad D|| = ||w||."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        score = (x * self.w).flatten(1).sum(dim=1)  # (B,)
        return score if context is None else score + context.flatten(1).sum(dim=1)


W = torch.full((1, 2, 1, 3, 3), 0.5)  # ||w||^2 = 18 * 0.25 = 4.5


@pytest.mark.parametrize("context", [None, torch.ones(4, 1, 1, 3, 3)])
def test_r1_is_the_squared_gradient_norm(context):
    d, real = LinearD(W.clone()), torch.randn(4, 2, 1, 3, 3)
    args = () if context is None else (context,)
    assert losses.r1_penalty(d, real, *args, gamma=10.0).item() == pytest.approx(10 / 2 * 4.5)
    assert losses.r1_penalty(d, real, *args, gamma=10.0, interval=4).item() == pytest.approx(
        4 * 10 / 2 * 4.5
    )


@pytest.mark.parametrize("context", [None, torch.ones(4, 1, 1, 3, 3)])
def test_gradient_penalty_is_the_squared_distance_of_the_norm_to_one(context):
    d = LinearD(W.clone())
    real, fake = torch.randn(4, 2, 1, 3, 3), torch.randn(4, 2, 1, 3, 3)
    args = () if context is None else (context,)
    expected = (math.sqrt(4.5) - 1) ** 2
    gp = losses.gradient_penalty(d, real, fake, *args, weight=10.0, interval=2)
    assert gp.item() == pytest.approx(2 * 10 * expected)


def test_gradient_penalty_matches_autograd_on_interpolates():
    d = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    real, fake = torch.randn(3, 6), torch.randn(3, 6)
    alpha = torch.rand(3, 1, generator=torch.Generator().manual_seed(7))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat)
    expected = ((grad.norm(dim=1) - 1) ** 2).mean()
    gp = losses.gradient_penalty(
        d, real, fake, weight=1.0, generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(gp, expected)


@pytest.mark.parametrize("name", ["conv3d", "dual"])
def test_penalties_backpropagate_through_real_discriminators(name):
    d = build_discriminator(
        DiscriminatorConfig(name=name, base_channels=4), channels=1, height=8, width=8, frames=4
    )
    real, fake, context = (
        torch.randn(2, 4, 1, 8, 8),
        torch.randn(2, 4, 1, 8, 8),
        torch.randn(2, 2, 1, 8, 8),
    )
    penalty = losses.r1_penalty(d, real, context) + losses.gradient_penalty(d, real, fake, context)
    penalty.backward()
    assert penalty.isfinite()
    # Biases feeding piecewise-linear layers barely move grad_x D; every weight must.
    weights = [(n, p) for n, p in d.named_parameters() if "weight" in n]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in weights)


def test_penalty_due_every_interval():
    assert [losses.penalty_due(step, 4) for step in range(6)] == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert all(losses.penalty_due(step, 1) for step in range(3))
    with pytest.raises(ValueError, match="interval must be >= 1"):
        losses.penalty_due(0, 0)


def test_apply_mask_zeroes_invalid_cells():
    x, mask = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])
    assert losses.apply_mask(x, mask).tolist() == [1.0, 0.0, 3.0]


def test_instance_noise_has_the_asked_std_and_is_reproducible():
    x = torch.zeros(100_000)
    assert losses.instance_noise(x, 0.0) is x
    noisy = losses.instance_noise(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.5, rel=0.02)
    assert torch.equal(
        noisy, losses.instance_noise(x, 0.5, generator=torch.Generator().manual_seed(0))
    )


def test_annealed_std_decays_linearly_to_zero():
    curve = [losses.annealed_std(step, 0.2, 4) for step in range(6)]
    assert curve == pytest.approx([0.2, 0.15, 0.1, 0.05, 0.0, 0.0])
    assert losses.annealed_std(0, 0.2, 0) == 0.0
