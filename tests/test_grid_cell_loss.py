"""DGMR's step recipe: the grid-cell regulariser and several generator samples per G step."""

import copy
import math

import pytest
import torch
from torch import nn

from stgan import losses
from stgan.errors import SpecError
from stgan.objective import AdversarialObjective
from stgan.training import loop
from stgan.training.config import LossConfig, load_pipeline
from tests.conftest import tiny_pipeline

SHAPE = (2, 3, 1, 4, 4)  # (B, T, C, H, W)


def port_grid_cell(generated, targets, cap=24.0):
    """dgmr 1.4.4's ``GridCellLoss(weight_fn=weight_fn)`` written out, with its two slips
    corrected as marked; ``targets`` are ``[B, T, C, H, W]`` rain rates (>= 0)."""
    weights = torch.min(targets + 1, torch.tensor(cap))  # port: torch.max, i.e. always >= cap
    difference = ((generated - targets) * weights).norm(p=1)
    return difference / (targets.size(1) * targets.size(3) * targets.size(4))  # port: / T * H * W


@pytest.mark.parametrize("shape", [(1, 18, 1, 8, 8), (3, 4, 2, 5, 6)])
def test_grid_cell_loss_is_the_ports_formula_per_sample_and_channel(shape):
    torch.manual_seed(0)
    real = 30 * torch.rand(shape)  # both sides of the cap: y + 1 > 24 where y > 23
    fake_mean = 30 * torch.rand(shape)
    ours = losses.grid_cell_loss(fake_mean, real, torch.ones(shape))
    batch, channels = shape[0], shape[2]
    # the port sums over the batch and channels; stgan's is the mean over every cell
    assert ours.item() == pytest.approx(port_grid_cell(fake_mean, real).item() / (batch * channels))
    assert (real > 23).any() and (real < 23).any()


def test_weights_grow_with_the_value_up_to_the_cap_and_negatives_weigh_as_zero():
    y = torch.tensor([-3.0, -0.5, 0.0, 1.5, 22.0, 23.0, 100.0])
    assert losses.grid_cell_weights(y).tolist() == [1.0, 1.0, 1.0, 2.5, 23.0, 24.0, 24.0]


def test_missing_cells_stay_out_of_the_grid_cell_mean():
    torch.manual_seed(0)
    real, fake_mean, mask = torch.rand(SHAPE), torch.rand(SHAPE), torch.ones(SHAPE)
    mask[..., :2] = 0
    loss = losses.grid_cell_loss(fake_mean, real, mask)
    fake_mean[..., :2] = 1e6  # whatever G makes where data are missing
    assert losses.grid_cell_loss(fake_mean, real, mask) == loss
    valid = mask.bool()
    cells = (fake_mean - real).abs()[valid] * (real[valid] + 1)
    assert loss.item() == pytest.approx(cells.mean().item())


class LinearD(nn.Module):
    """A linear critic that records every batch it scores."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(-1, 1, math.prod(SHAPE[1:])).view(SHAPE[1:]))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, *context):
        self.seen.append(x.detach())
        return (x * self.weight).flatten(1).sum(1)  # (B,)


def objective(**loss):
    reports = {}

    def report(name, value):
        reports[name] = float(value.detach())

    d = LinearD()
    return AdversarialObjective(LossConfig(**loss), d, d, report), d, reports


def test_k_samples_are_each_scored_by_d_and_their_mean_enters_the_grid_cell_term():
    torch.manual_seed(0)
    made, d, reports = objective(name="hinge", generation_samples=3, grid_cell_weight=20.0)
    fakes = [torch.rand(SHAPE, requires_grad=True) for _ in range(made.generation_samples)]
    real, mask = torch.rand(SHAPE), torch.ones(SHAPE)
    loss = made.g_loss(fakes, mask, None, real)
    assert len(d.seen) == 3 and all(torch.equal(s, f) for s, f in zip(d.seen, fakes))
    adversarial = torch.stack([-d(f).mean() for f in fakes]).mean()  # hinge G loss, per sample
    mean = (fakes[0] + fakes[1] + fakes[2]) / 3
    grid = ((mean - real).abs() * (real + 1)).mean()  # reals in [0, 1): under the cap
    assert loss.item() == pytest.approx((adversarial + 20 * grid).item())
    assert reports["Loss/grid_cell"] == pytest.approx(grid.item())
    assert reports["Loss/G"] == pytest.approx(adversarial.item())
    loss.backward()  # each sample gets D's gradient / 3 and a third of the grid term's
    grid_grad = 20 * torch.sign(mean - real) * (real + 1) / (3 * real.numel())
    for f in fakes:
        expected = -d.weight.detach().expand(SHAPE) / (3 * SHAPE[0]) + grid_grad
        assert torch.allclose(f.grad, expected, atol=1e-6)


def test_the_defaults_leave_the_g_loss_unchanged():
    torch.manual_seed(0)
    made, d, reports = objective(name="bce")
    fake, mask = torch.randn(SHAPE), torch.ones(SHAPE)
    before = losses.bce_g_loss(d(fake))
    assert made.generation_samples == 1
    assert torch.equal(made.g_loss(fake, mask, None), before)
    assert torch.equal(made.g_loss([fake], mask, None, torch.randn(SHAPE)), before)
    assert "Loss/grid_cell" not in reports


def test_the_grid_cell_term_without_the_real_future_is_a_programming_error():
    made, _, _ = objective(grid_cell_weight=1.0)
    with pytest.raises(ValueError, match="real future"):
        made.g_loss(torch.rand(SHAPE), torch.ones(SHAPE), None)


TINY_G = {"name": "convgru", "latent_dim": 4, "noise_channels": 2, "base_channels": 4}
CONDITIONAL = {  # tiny_pipeline replaces whole sections: every key of the tiny model is here
    "generator": {
        **TINY_G,
        "num_layers": 1,
        "up_stages": 1,
        "conditional": True,
        "context_frames": 2,
    },
    "discriminator": {"name": "dual", "base_channels": 4, "num_stages": 1, "num_frames": 1},
}


def test_a_conditional_run_draws_k_samples_per_g_step(tmp_path, monkeypatch):
    made = []
    real_generate = loop.generate

    def counting(run, batch, context, *calendar):
        made.append(torch.is_grad_enabled())
        return real_generate(run, batch, context, *calendar)

    monkeypatch.setattr(loop, "generate", counting)
    path = tiny_pipeline(
        tmp_path,
        model=CONDITIONAL,
        loss={"name": "hinge", "generation_samples": 3, "grid_cell_weight": 20.0},
        optim={"n_critic": 2},
        train={"steps": 1, "log_every": 1, "ckpt_every": 1},
    )
    stats = loop.train(load_pipeline(path), tmp_path / "run", device="cpu")
    # per step: 2 D phases with one fake each (no gradient), then 3 samples for G
    assert made == [False, False, True, True, True]
    assert math.isfinite(stats["Loss/grid_cell"]) and stats["Loss/grid_cell"] > 0


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ({"generation_samples": 0}, "loss.generation_samples: 0 must be >= 1"),
        ({"grid_cell_weight": -1.0}, "loss.grid_cell_weight: -1.0 must be a finite number >= 0"),
        ({"grid_cell_weight": float("inf")}, "loss.grid_cell_weight: inf must be a finite"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, loss, message):
    path = tiny_pipeline(tmp_path, model=CONDITIONAL, loss=loss)
    with pytest.raises(SpecError, match=message) as error:
        load_pipeline(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("loss", [{"grid_cell_weight": 20.0}, {"generation_samples": 6}])
def test_the_recipe_needs_a_conditional_generator(tmp_path, loss):
    with pytest.raises(SpecError, match="needs a conditional generator") as error:
        load_pipeline(tiny_pipeline(tmp_path, loss=loss))
    assert "model.generator.conditional: true" in str(error.value)
    assert "\n" not in str(error.value)
    conditional = tiny_pipeline(tmp_path, model=CONDITIONAL, loss=loss)
    assert load_pipeline(conditional).loss == LossConfig(**loss)


def test_one_sample_through_a_spectral_normed_d_is_scored_as_before():
    torch.manual_seed(0)
    d = nn.utils.parametrizations.spectral_norm(nn.Linear(math.prod(SHAPE[1:]), 1))
    critic = nn.Sequential(nn.Flatten(), d)
    reference = copy.deepcopy(critic)  # the same power-iteration state
    made = AdversarialObjective(LossConfig(), critic, critic, lambda name, value: None)
    fake = torch.randn(SHAPE)
    loss = made.g_loss(fake, torch.ones(SHAPE), None)
    assert torch.equal(loss, losses.mean_g_loss(reference(fake).squeeze(1)))
