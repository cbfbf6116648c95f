import pytest
import torch
from scipy import stats

from stgan.errors import StganError
from stgan.models import GeneratorConfig, build_generator
from stgan.training.health import batch_diversity
from tests.models.conftest import TINY_G, H, T, W

NAMES = ["convgru", "convlstm", "conv3d"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_sample_shape_and_finite(make_g, real, context, name, conditional, spectral_norm):
    g = make_g(name=name, conditional=conditional, spectral_norm=spectral_norm)
    x = g(*g.latents(2), context if conditional else None)
    assert x.shape == real.shape
    assert x.isfinite().all()


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_reproducible_with_a_generator(make_g, name):
    g = make_g(name=name)
    a = g(*g.latents(2, generator=torch.Generator().manual_seed(3)))
    b = g(*g.latents(2, generator=torch.Generator().manual_seed(3)))
    c = g(*g.latents(2, generator=torch.Generator().manual_seed(4)))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_noise_changes_frames_and_z_is_shared(make_g, name):
    g = make_g(name=name)
    z, noise = g.latents(2, generator=torch.Generator().manual_seed(0))
    assert z.shape == (2, 8)
    assert noise.shape[0] == 2 and noise.shape[2:] == (2, 2, 2)  # 2 noise channels at 8/4
    other = torch.randn_like(noise)
    # the noise strength is learned from zero: a fresh G ignores the noise ...
    assert torch.equal(g(z, noise), g(z, other))
    # ... and once the strength has grown, the noise changes the frames
    with torch.no_grad():
        g.noise_strength.fill_(0.5)
    assert not torch.allclose(g(z, noise), g(z, other))


def test_context_drives_the_conditional_output(make_g, context):
    g = make_g(conditional=True)
    z, noise = g.latents(2)
    assert not torch.allclose(g(z, noise, context), g(z, noise, context + 1))


@pytest.mark.parametrize("name", ["convgru", "convlstm"])
def test_recurrent_generator_unrolls_any_length(make_g, name):
    g = make_g(name=name)
    assert g(*g.latents(1, frames=7)).shape == (1, 7, 1, 8, 8)


def test_conv3d_generator_is_built_for_its_frames(make_g):
    with pytest.raises(ValueError, match="built for 4 frames, asked for 8"):
        g = make_g(name="conv3d")
        g(*g.latents(1, frames=8))


def test_tanh_bounds_the_output(make_g):
    g = make_g(output_activation="tanh")
    x = g(*g.latents(2))
    assert x.abs().max() <= 1


def test_context_must_match_the_mode(make_g, context):
    conditional, unconditional = make_g(conditional=True), make_g()
    with pytest.raises(ValueError, match="needs context"):
        conditional(*conditional.latents(2))
    with pytest.raises(ValueError, match="takes no context"):
        unconditional(*unconditional.latents(2), context)
    with pytest.raises(ValueError, match="context: expected shape"):
        conditional(*conditional.latents(2), context[:, :1])


def test_a_grid_not_divisible_by_the_downsampling_factor_is_generated_padded():
    g = build_generator(GeneratorConfig(up_stages=2), channels=1, height=33, width=49, frames=4)
    assert g.padded_hw == (36, 52) and g(*g.latents(1)).shape == (1, 4, 1, 33, 49)


def test_frames_not_divisible_by_the_conv3d_temporal_factor():
    cfg = GeneratorConfig(name="conv3d", up_stages=2, temporal_up_stages=2)
    with pytest.raises(StganError, match="6 frames are not divisible by 4"):
        build_generator(cfg, channels=1, height=8, width=8, frames=6)


@pytest.mark.parametrize("name", NAMES)
def test_a_fresh_generator_is_not_collapsed(name):
    """He init: samples from different latents differ by an RMS of tenths per element.

    With PyTorch's default init the signal shrinks at each layer and a demo-sized
    convgru's samples differed by about 0.003 per element (standardized data: ~1.4), so
    training began from a collapsed G that never recovered.
    """
    torch.manual_seed(0)
    cfg = GeneratorConfig(name=name, base_channels=32, up_stages=3)
    g = build_generator(cfg, 1, 32, 32, 8)
    with torch.no_grad():
        x = g(*g.latents(8, generator=torch.Generator().manual_seed(0)))
    assert batch_diversity(x) > 0.05


@pytest.mark.parametrize("name", ["convgru", "convlstm"])
def test_the_clock_starts_at_a_uniform_phase_drawn_from_z(make_g, name):
    """Windows start anywhere in the data's cycles, so each sample's clock starts at a
    uniform phase in [0, 2T) read from z[:, 0]; a conditional G's clock starts at 0."""
    g = make_g(name=name, time_features=2)
    z = torch.randn(4000, 8, generator=torch.Generator().manual_seed(0))
    phase = torch.atan2(*g.clock(z, 1)[:, 0].T) % (2 * torch.pi) / torch.pi * T  # in steps
    assert stats.kstest(phase.numpy(), stats.uniform(0, 2 * T).cdf).pvalue > 0.01
    zero = make_g(name=name, time_features=2, conditional=True).clock(z[:3], 1)
    torch.testing.assert_close(zero[:, 0], torch.tensor([[0.0, 1.0]] * 3))


def test_an_unconditional_recurrent_generator_starts_from_a_state_of_z(make_g):
    g = make_g(time_features=0)
    with torch.no_grad():  # the per-step input then carries nothing of z (noise strength is 0)
        g.z_proj.weight.zero_()
        g.z_proj.bias.zero_()
    z, noise = g.latents(2, generator=torch.Generator().manual_seed(0))
    first = g(z, noise)[:, 0]
    # only the initial state can tell the two samples apart
    assert not torch.allclose(first[0], first[1])
    torch.testing.assert_close(g(z[[0, 0]], noise)[:, 0], first[[0, 0]])


@pytest.mark.parametrize("name", NAMES)
def test_a_lower_bound_bounds_its_channel_exactly_and_travels_with_the_weights(name):
    cfg = GeneratorConfig(**{**TINY_G, "name": name})
    g = build_generator(cfg, 2, 8, 8, T)
    g.set_lower(torch.tensor([0.0, -float("inf")]))
    x = g(*g.latents(4, generator=torch.Generator().manual_seed(0)))
    bounded, free = x[:, :, 0], x[:, :, 1]
    assert bounded.min() == 0 and (bounded == 0).float().mean() > 0.1  # a point mass at 0
    assert free.min() < 0
    # gradients flow through the cells above the bound and not from those clamped to it
    z, noise = g.latents(4, generator=torch.Generator().manual_seed(0))
    z.requires_grad_(True)
    out = g(z, noise)
    above = (out[:, :, 0] > 0).float()
    grad = torch.autograd.grad(out[:, :, 0], z, above, retain_graph=True)
    assert grad[0].abs().sum() > 0
    grad = torch.autograd.grad(out[:, :, 0], z, 1 - above)
    assert grad[0].abs().sum() == 0
    # the bound is part of the state dict, so a loaded checkpoint keeps it
    fresh = build_generator(cfg, 2, 8, 8, T)
    fresh.load_state_dict(g.state_dict())
    assert fresh.has_lower.tolist() == [True, False] and fresh.lower[0] == 0


@pytest.mark.parametrize("name", ["convgru", "convlstm"])
def test_decoder_noise_is_drawn_on_the_output_grid_and_the_stem_takes_it_subsampled(name):
    config = {**TINY_G, "name": name, "up_stages": 2}
    plain = build_generator(GeneratorConfig(**config), 1, 10, 7, T)
    fine = build_generator(GeneratorConfig(**config, decoder_noise=True), 1, 10, 7, T)
    fine.load_state_dict(plain.state_dict(), strict=False)  # the same weights
    z, noise = fine.latents(2, generator=torch.Generator().manual_seed(0))
    assert noise.shape == (2, T, 2, 12, 8)  # the grid padded to the factor 4
    with torch.no_grad():
        plain.noise_strength.fill_(0.5)
        fine.noise_strength.fill_(0.5)
    # the decoder's strengths start at zero: G is the plain one on the subsampled noise
    assert torch.allclose(fine(z, noise), plain(z, noise[..., ::4, ::4]), atol=1e-6)


def test_decoder_noise_adds_detail_to_one_frame_where_it_is_drawn():
    g = build_generator(GeneratorConfig(**TINY_G, up_stages=2, decoder_noise=True), 1, H, W, T)
    with torch.no_grad():
        for strength in g.decoder.noise_strength:
            strength.fill_(1.0)
    z, noise = g.latents(1, generator=torch.Generator().manual_seed(0))
    other = noise.clone()
    # the output grid's points take noise channel 2 % 2 = 0 at every cell; the stem and
    # the coarser points see (5, 3) in no channel (strides 4 and 2)
    other[0, 1, 0, 5, 3] += 3.0
    changed = (g(z, other) - g(z, noise)).abs()[0, :, 0] > 0  # (T, H, W)
    assert changed[1].any() and not changed[[0, 2, 3]].any()  # that frame only
    rows, cols = changed[1].nonzero().T
    assert rows.min() >= 4 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 4


def test_decoder_noise_strengths_learn_from_zero():
    g = build_generator(GeneratorConfig(**TINY_G, up_stages=1, decoder_noise=True), 1, H, W, T)
    assert all(torch.equal(s, torch.zeros_like(s)) for s in g.decoder.noise_strength)
    g(*g.latents(2)).square().mean().backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in g.decoder.noise_strength)


def test_noise_init_sets_every_noise_strength_and_the_noise_then_changes_the_frames():
    g = build_generator(GeneratorConfig(**TINY_G, decoder_noise=True, noise_init=0.1), 1, H, W, T)
    strengths = [g.noise_strength, *g.decoder.noise_strength]
    assert all(torch.equal(s, torch.full_like(s, 0.1)) for s in strengths)
    z, noise = g.latents(2, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(g(z, noise), g(z, torch.randn_like(noise)))
