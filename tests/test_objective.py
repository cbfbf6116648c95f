import pytest
import torch
from torch import nn

from stgan.objective import AdversarialObjective
from stgan.training.config import LossConfig

SHAPE = (2, 3, 1, 4, 4)  # (B, T, C, H, W)


class RecordingD(nn.Module):
    """A linear critic that remembers what it was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(SHAPE[1:]))
        self.seen: list[tuple[torch.Tensor, tuple]] = []

    def forward(self, x, *context):
        self.seen.append((x.detach(), context))
        return (x * self.weight).flatten(1).sum(1) ** 2  # (B,); squared: R1 is not constant


def objective(d=None, d_module=None, **loss):
    reports = {}

    def report(name, value):
        reports.setdefault(name, []).append(float(torch.as_tensor(value).detach()))

    d = d or RecordingD()
    made = AdversarialObjective(LossConfig(**loss), d, d_module or d, report)
    return made, reports


def half_mask():
    mask = torch.ones(SHAPE)
    mask[..., :2] = 0  # the western half is missing
    return mask


def test_missing_cells_reach_d_as_exact_zeros_through_the_noise_in_both_phases():
    d = RecordingD()
    made, _ = objective(d, instance_noise=1.0, instance_noise_steps=10)
    made.begin_step(0)
    made.d_loss(torch.randn(SHAPE), torch.randn(SHAPE), half_mask(), None, d_step=1)
    made.g_loss(torch.randn(SHAPE), half_mask(), None)
    (both, _), (fake, _) = d.seen
    assert both.shape == (4, *SHAPE[1:])
    for x in (both, fake):
        assert torch.all(x[..., :2] == 0) and torch.all(x[..., 2:] != 0)


def test_the_noise_level_is_set_once_per_step_and_annealed():
    made, _ = objective(instance_noise=0.4, instance_noise_steps=10)
    made.begin_step(5)
    assert made.noise_std == pytest.approx(0.2)
    made.begin_step(10)
    assert made.noise_std == 0
    zeros = torch.zeros(SHAPE)
    d = made.d
    made.d_loss(zeros, zeros, torch.ones(SHAPE), None, d_step=1)
    assert torch.all(d.seen[-1][0] == 0)  # no noise once annealed


def test_context_is_given_to_d_for_reals_and_fakes_and_in_the_g_phase():
    d = RecordingD()
    made, _ = objective(d)
    context = torch.randn(2, 1, 1, 4, 4)
    made.d_loss(torch.randn(SHAPE), torch.randn(SHAPE), torch.ones(SHAPE), context, d_step=1)
    made.g_loss(torch.randn(SHAPE), torch.ones(SHAPE), context)
    (_, (both,)), (_, (alone,)) = d.seen
    assert torch.equal(both, torch.cat([context, context])) and torch.equal(alone, context)


def test_the_g_phase_asks_the_bare_d_and_the_d_phase_the_wrapped_one():
    wrapped, bare = RecordingD(), RecordingD()
    made, reports = objective(wrapped, bare)
    made.d_loss(torch.randn(SHAPE), torch.randn(SHAPE), torch.ones(SHAPE), None, d_step=1)
    assert len(wrapped.seen) == 1 and not bare.seen
    made.g_loss(torch.randn(SHAPE), torch.ones(SHAPE), None)
    assert len(wrapped.seen) == 1 and len(bare.seen) == 1
    assert {"Loss/D", "Loss/penalty", "Loss/G", "D/real_acc", "Health/fake_diversity"} <= set(
        reports
    )


@pytest.mark.parametrize("penalty", [{"r1_gamma": 1.0}, {"gp_weight": 10.0}])
def test_penalties_run_only_on_due_d_steps_scaled_by_the_interval(penalty):
    made, reports = objective(name="wgan", penalty_interval=2, **penalty)
    real, fake, mask = torch.randn(SHAPE), torch.randn(SHAPE), half_mask()
    torch.manual_seed(0)
    due = made.d_loss(real, fake, mask, None, d_step=4)
    skipped = made.d_loss(real, fake, mask, None, d_step=5)
    assert reports["Loss/penalty"][1] == 0 and reports["Loss/penalty"][0] > 0
    assert (due - skipped).item() == pytest.approx(reports["Loss/penalty"][0])
    made.config = LossConfig(name="wgan", penalty_interval=1, **penalty)
    torch.manual_seed(0)
    made.d_loss(real, fake, mask, None, d_step=5)
    assert reports["Loss/penalty"][2] * 2 == pytest.approx(reports["Loss/penalty"][0])
