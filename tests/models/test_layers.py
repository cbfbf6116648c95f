import pytest
import torch
from torch.nn.utils import parametrize

from stgan.errors import StganError
from stgan.models import layers


def _maps(state):
    return state if isinstance(state, tuple) else (state,)  # LSTM: (h, c); GRU: h


@pytest.mark.parametrize("cell_cls", [layers.ConvGRUCell, layers.ConvLSTMCell])
def test_recurrent_cell_keeps_state_shape(cell_cls):
    cell = cell_cls(3, 5)
    x, h = torch.randn(2, 3, 4, 6), torch.randn(2, 5, 4, 6)
    state = cell.initial_state(h)
    out, new_state = cell(x, state)
    assert out.shape == (2, 5, 4, 6)
    for old, new in zip(_maps(state), _maps(new_state), strict=True):
        assert new.shape == old.shape
        assert not torch.equal(new, old)


def test_gru_state_stays_bounded_when_unrolled():
    cell = layers.ConvGRUCell(1, 4)
    h = cell.initial_state(torch.zeros(1, 4, 5, 5))
    for _ in range(20):
        _, h = cell(torch.randn(1, 1, 5, 5) * 10, h)
    assert h.abs().max() <= 1  # convex mix of tanh candidates


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (4, 2, 3, 5, 5)])
def test_minibatch_std_appends_the_batch_std(shape):
    x = torch.randn(shape)
    y = layers.MinibatchStd(group_size=4)(x)
    assert y.shape == (shape[0], shape[1] + 1, *shape[2:])
    assert torch.equal(y[:, :-1], x)
    expected = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[:, -1], torch.full_like(y[:, -1], expected.item()))


def test_minibatch_std_groups_divide_odd_batches():
    x = torch.randn(6, 2, 3, 3)
    y = layers.MinibatchStd(group_size=4)(x)  # group of 2: samples (i, i + 3)
    first = (x[[0, 3]].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(y[3, -1, 0, 0], first)
    assert layers.MinibatchStd(4)(torch.randn(3, 2, 3, 3)).isfinite().all()


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    layer = layers.linear(6, 4, sn=True)
    for _ in range(30):  # power iteration runs once per training-mode forward
        layer(torch.randn(1, 6))
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=1e-3)
    assert not parametrize.is_parametrized(layers.linear(6, 4))


@pytest.mark.parametrize("dims, stride, size", [(2, 1, 8), (2, 2, 4), (3, 2, 4)])
def test_conv_keeps_or_halves_the_size(dims, stride, size):
    x = torch.randn(1, 2, *[8] * dims)
    assert layers.conv(dims, 2, 3, stride=stride)(x).shape == (1, 3, *[size] * dims)


def test_stage_channels_halve_down_to_eight():
    assert [layers.stage_channels(64, s) for s in range(5)] == [64, 32, 16, 8, 8]
    assert layers.stage_channels(4, 2) == 4


def test_frame_check_names_frames_factor_and_fix():
    with pytest.raises(StganError, match="6 frames are not divisible by 4.*e.g. 4"):
        layers.check_frames(6, 4, "generator")


def test_window_clock_is_sines_and_cosines_from_each_samples_phase():
    phase = torch.tensor([0.0, 3.5])
    clock = layers.window_clock(6, 4, 4, phase)  # T=4: periods 8 and 4 steps
    assert clock.shape == (2, 6, 4)
    t = phase[:, None] + torch.arange(6.0)
    expected = [torch.sin(torch.pi * t / 4), torch.sin(torch.pi * t / 2)]
    expected += [torch.cos(torch.pi * t / 4), torch.cos(torch.pi * t / 2)]
    torch.testing.assert_close(clock, torch.stack(expected, dim=2))
