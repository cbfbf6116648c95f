import pytest
import torch

from stgan.errors import StganError
from stgan.models import DiscriminatorConfig, build_discriminator
from stgan.models.discriminator import with_increments


@pytest.mark.parametrize("name", ["conv3d", "dual"])
@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("minibatch_std", [False, True])
@pytest.mark.parametrize("conditional", [False, True])
def test_scores_one_finite_logit_per_sample(
    make_d, real, context, name, spectral_norm, minibatch_std, conditional
):
    d = make_d(name=name, spectral_norm=spectral_norm, minibatch_std=minibatch_std)
    logits = d(real, context if conditional else None)
    assert logits.shape == (2,)
    assert logits.isfinite().all()


@pytest.mark.parametrize("name", ["conv3d", "dual"])
def test_any_grid_and_length_work(name):
    d = build_discriminator(
        DiscriminatorConfig(name=name, base_channels=4), channels=2, height=9, width=7, frames=5
    )
    assert d(torch.randn(3, 5, 2, 9, 7)).shape == (3,)


def test_dual_frame_choice_is_reproducible(make_d, real):
    d = make_d(name="dual", num_frames=1).eval()  # eval: spectral norm stops its power iteration
    d.generator = torch.Generator()
    runs = []
    for _ in range(2):
        d.generator.manual_seed(5)
        runs.append(torch.stack([d(real) for _ in range(4)]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[0][:1].expand(4, -1))  # other frames, other scores
    d.generator = None  # the global RNG
    torch.manual_seed(0)
    first = d(real)
    torch.manual_seed(0)
    assert torch.equal(first, d(real))


def test_dual_spatial_d_sees_only_num_frames(make_d, real):
    d = make_d(name="dual", num_frames=1)
    seen = []
    d.spatial.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    d(real)
    assert seen == [(2, 1, 8, 8)]


def test_dual_num_frames_must_fit_the_sequence():
    with pytest.raises(StganError, match="num_frames is 5 but sequences have only 4 frames"):
        build_discriminator(
            DiscriminatorConfig(name="dual", num_frames=5), channels=1, height=8, width=8, frames=4
        )


@pytest.mark.parametrize("g_name", ["convgru", "convlstm", "conv3d"])
@pytest.mark.parametrize("d_name", ["conv3d", "dual"])
@pytest.mark.parametrize("conditional", [False, True])
def test_gradients_reach_every_parameter(make_g, make_d, context, g_name, d_name, conditional):
    torch.manual_seed(0)
    g = make_g(name=g_name, conditional=conditional, spectral_norm=True)
    d = make_d(name=d_name, spectral_norm=True, minibatch_std=True)
    ctx = context if conditional else None
    d(g(*g.latents(2), ctx), ctx).sum().backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert p.grad.abs().sum() > 0, name


def test_increments_are_each_frames_change_from_the_one_before():
    seq = torch.randn(2, 3, 5, 4, 4)  # (B, C, T, H, W)
    both = with_increments(seq)
    assert torch.equal(both[:, :3], seq)
    assert torch.equal(both[:, 3:, 0], torch.zeros_like(seq[:, :, 0]))
    assert torch.allclose(both[:, 3:, 1:], seq[:, :, 1:] - seq[:, :, :-1])


@pytest.mark.parametrize("name", ["conv3d", "dual"])
def test_a_d_with_increments_scores_any_sequence(make_d, real, context, name):
    d = make_d(name=name, increments=True)
    trunk = d.trunk if name == "conv3d" else d.temporal
    assert trunk.features[0][0].in_channels == 2  # the frames and their increments
    assert d(real).shape == d(real, context).shape == (2,)
