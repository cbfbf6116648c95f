"""The faster forms of the models compute the same function as the straightforward ones.

Each reference below is the plain formulation (one step at a time over the concatenated
inputs, NCHW, ``Tensor.var``); the models' forms (all steps at once, split convolutions,
channels-last) must give the same outputs and gradients for the same weights, to 1e-5.
"""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
from torch import nn

from stgan.models import layers
from stgan.models.generator import StemInputs
from tests.models.conftest import B, T

TOL = {"rtol": 1e-5, "atol": 1e-5}


def reference_generator(g: nn.Module, z, noise, context=None, calendar=None) -> torch.Tensor:
    """RecurrentGenerator.forward as written before: stem and cells step by step."""
    b, t = noise.shape[:2]
    z_map = g.z_proj(z).view(b, -1, *g.low_hw)
    noise = g.scale_noise(noise)
    states = g.initial_states(z, context)
    clock = g.clock(z, t)
    if calendar is not None:
        clock = torch.cat([clock, calendar], dim=2)  # (B, T, K + F)
    clock = clock[..., None, None].expand(-1, -1, -1, *g.low_hw)
    outputs = []
    for step in range(t):
        x = g.stem(torch.cat([z_map, noise[:, step], clock[:, step]], dim=1))
        for i, cell in enumerate(g.cells):
            x, states[i] = cell(x, states[i])
        outputs.append(x)
    x = torch.stack(outputs, dim=1).flatten(0, 1)
    x = g.to_grid(g.decoder.net(x))  # the decoder's layers on NCHW
    return g.bounded(g.out_act(x.view(b, t, *x.shape[1:])))


def reference_trunk(trunk: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ConvTrunk.forward on NCHW / NCDHW (no channels-last)."""
    h, w = x.shape[-2:]
    x = layers.pad_grid(x, layers.padded_size(h, trunk.factor), layers.padded_size(w, trunk.factor))
    return trunk.head(trunk.features(x).flatten(2).mean(dim=2)).squeeze(1)


def reference_minibatch_std(module: layers.MinibatchStd, x: torch.Tensor) -> torch.Tensor:
    n, *rest = x.shape
    group = math.gcd(n, module.group_size)
    y = x.reshape(group, n // group, *rest)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().flatten(1).mean(dim=1)
    std = std.repeat(group).view(n, 1, *[1] * (len(rest) - 1))
    return torch.cat([x, std.expand(n, 1, *rest[1:])], dim=1)


def grads(module: nn.Module, *inputs: torch.Tensor) -> list[torch.Tensor]:
    tensors = [*module.parameters(), *inputs]
    return [t.grad.clone() if t.grad is not None else torch.zeros_like(t) for t in tensors]


def outputs_and_grads(module: nn.Module, run, *inputs: torch.Tensor):
    """``run(*inputs)`` and the gradients of a fixed random projection of it."""
    module.zero_grad(set_to_none=True)
    inputs = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = run(*inputs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    (out * weights).sum().backward()
    return out.detach(), grads(module, *inputs)


def assert_same(a, b) -> None:
    out_a, grads_a = a
    out_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, **TOL)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, **TOL)


@pytest.mark.parametrize("cell_cls", [layers.ConvGRUCell, layers.ConvLSTMCell])
def test_unrolled_cell_equals_stepping_forward(cell_cls):
    torch.manual_seed(0)
    cell = cell_cls(5, 6)
    xs, h = torch.randn(B, T, 5, 4, 4), torch.randn(B, 6, 4, 4)

    def stepped(xs, h):
        state, outs = cell.initial_state(h), []
        for step in range(xs.shape[1]):
            out, state = cell(xs[:, step], state)
            outs.append(out)
        return torch.stack(outs, dim=1)

    def unrolled(xs, h):
        return cell.unroll(xs, cell.initial_state(h))[0]

    assert_same(outputs_and_grads(cell, unrolled, xs, h), outputs_and_grads(cell, stepped, xs, h))


@pytest.mark.parametrize("name", ["convgru", "convlstm"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_recurrent_generator_equals_the_step_by_step_form(make_g, name, num_layers):
    torch.manual_seed(0)
    g = make_g(name=name, num_layers=num_layers, time_features=2)
    with torch.no_grad():  # a noise strength of zero would hide the per-step inputs' part
        g.noise_strength.fill_(0.5)
    z, noise = g.latents(B)
    fast = outputs_and_grads(g, g, z, noise)
    assert_same(fast, outputs_and_grads(g, lambda *a: reference_generator(g, *a), z, noise))


def test_split_stem_equals_the_stem_over_the_concatenation(make_g):
    torch.manual_seed(0)
    g = make_g(time_features=2)
    per_sequence = [torch.randn(B, 8, 4, 4), torch.randn(B, 2, 4, 4)]
    per_step = [torch.randn(B, T, 2, 4, 4), torch.randn(B, T, 2, 4, 4)]
    g.stem = layers.conv_stack(2, 14, 8, 1, sn=False)  # 10 per-sequence + 4 per-step channels
    inputs = StemInputs(per_sequence, per_step)
    assert inputs.steps == T and inputs.sequence_channels == 10
    expected = torch.stack([g.stem(inputs.at(s)) for s in range(T)], dim=1)
    torch.testing.assert_close(g.stem_all_steps(inputs), expected, **TOL)


def test_a_spectral_normalized_generator_keeps_one_power_iteration_per_step(make_g):
    torch.manual_seed(0)
    g = make_g(spectral_norm=True)
    g_ref = copy.deepcopy(g)
    z, noise = g.latents(B)
    torch.testing.assert_close(g(z, noise), reference_generator(g_ref, z, noise), **TOL)
    # the power iterations' vectors advanced as often in both
    torch.testing.assert_close(g.state_dict(), g_ref.state_dict(), **TOL)


@pytest.mark.parametrize("name", ["dual", "conv3d"])
def test_channels_last_discriminator_equals_nchw(make_d, real, name):
    torch.manual_seed(0)
    d = make_d(name=name, spectral_norm=False)
    trunks = [d.spatial, d.temporal] if name == "dual" else [d.trunk]
    for trunk in trunks:
        shape = (B * 2, 1, 8, 8) if trunk.features[0][0].weight.dim() == 4 else (B, 1, T, 8, 8)
        x = torch.randn(shape)
        assert_same(
            outputs_and_grads(trunk, trunk, x),
            outputs_and_grads(trunk, functools.partial(reference_trunk, trunk), x),
        )


@pytest.mark.parametrize("shape", [(8, 5, 3, 3), (6, 4, 2, 3, 3), (3, 2, 4, 4)])
def test_minibatch_std_equals_the_variance_formula(shape):
    module = layers.MinibatchStd(4)
    x = torch.randn(shape)
    assert_same(
        outputs_and_grads(module, module, x),
        outputs_and_grads(module, lambda x: reference_minibatch_std(module, x), x),
    )
