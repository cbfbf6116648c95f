"""DiffAugment in space and time: each transform against a plain NumPy reading of it."""

import numpy as np
import pytest
import torch

from stgan.augment import AUGMENTATIONS, augment, cutout, time_shift, translate
from stgan.objective import AdversarialObjective
from stgan.training.config import LossConfig

B, T, C, H, W = 6, 8, 2, 16, 12


def distinct(shape=(B, T, C, H, W)) -> torch.Tensor:
    """Values that are all different and none zero, so every moved cell can be traced."""
    return torch.arange(1, 1 + int(np.prod(shape)), dtype=torch.float32).view(shape)


def shifted(a: np.ndarray, shift: int, axis: int) -> np.ndarray:
    """``a`` with out[i] = a[i + shift] along ``axis``, zero where i + shift falls outside."""
    out = np.zeros_like(a)
    n = a.shape[axis]
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis] = slice(max(shift, 0), n + min(shift, 0))
    dst[axis] = slice(max(-shift, 0), n + min(-shift, 0))
    out[tuple(dst)] = a[tuple(src)]
    return out


def find_shift(sample: np.ndarray, moved: np.ndarray, axes: tuple[int, ...], reach: int):
    """The shifts (one per axis, each within ``reach``) that turn ``sample`` into ``moved``."""
    found = []
    for shifts in np.ndindex(*(2 * reach + 1,) * len(axes)):
        candidate = sample
        for axis, s in zip(axes, shifts):
            candidate = shifted(candidate, s - reach, axis)
        if np.array_equal(candidate, moved):
            found.append(tuple(s - reach for s in shifts))
    return found


def test_translation_moves_each_sample_by_one_shift_within_an_eighth_of_the_grid():
    torch.manual_seed(0)
    x = distinct()
    moved = translate(x).numpy()
    seen = set()
    for b in range(B):
        # one (dy, dx) for the whole sample: every frame and channel moved alike
        (shift,) = find_shift(x[b].numpy(), moved[b], axes=(2, 3), reach=2)
        seen.add(shift)
    assert len(seen) > 1  # drawn per sample


def test_cutout_zeroes_one_half_size_rectangle_in_every_frame():
    torch.manual_seed(1)
    x = distinct()
    out = cutout(x).numpy()
    for b in range(B):
        zero = out[b] == 0
        assert (zero == zero[:1, :1]).all()  # the same cells in every frame and channel
        rows, cols = np.nonzero(zero[0, 0])
        # a rectangle of at most H/2 x W/2 (cut by the edge), the rest unchanged
        assert rows.max() - rows.min() + 1 <= H // 2 and cols.max() - cols.min() + 1 <= W // 2
        assert zero[0, 0].sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        np.testing.assert_array_equal(out[b][~zero], x[b].numpy()[~zero])


def test_time_shift_moves_frames_and_their_calendar_together():
    torch.manual_seed(2)
    x = distinct()
    calendar = torch.arange(1, 1 + B * T * 3, dtype=torch.float32).view(B, T, 3)
    moved, moved_calendar = time_shift(x, calendar)
    shifts = set()
    for b in range(B):
        (shift,) = find_shift(x[b].numpy(), moved[b].numpy(), axes=(0,), reach=1)
        np.testing.assert_array_equal(
            moved_calendar[b].numpy(), shifted(calendar[b].numpy(), shift[0], 0)
        )
        shifts.add(shift)
    assert len(shifts) > 1


def test_augment_moves_the_mask_and_the_context_with_the_frames():
    torch.manual_seed(3)
    context, x = distinct((B, 3, C, H, W)), distinct() + 10_000
    mask = torch.ones(B, T, C, H, W, dtype=torch.bool)
    mask[:, :, :, :, :3] = False  # the western columns are missing
    x = x * mask
    out, out_mask, out_context, _ = augment(["translation"], x, mask, context)
    assert out_mask.dtype == torch.bool and out_context.shape == context.shape
    whole = torch.cat([context, x], dim=1).numpy()
    for b in range(B):  # context and future moved by the same shift
        joined = np.concatenate([out_context[b].numpy(), out[b].numpy()])
        assert len(find_shift(whole[b], joined, axes=(2, 3), reach=2)) == 1
    # invalid exactly where the value is zero: moved-in, cut-out or missing cells
    np.testing.assert_array_equal(out_mask.numpy(), out.numpy() != 0)
    out, out_mask, *_ = augment(["translation", "cutout", "time_shift"], x, mask, context)
    np.testing.assert_array_equal(out_mask.numpy(), out.numpy() != 0)


def test_augmentation_is_differentiable_and_off_by_default():
    x = torch.randn(B, T, C, H, W, requires_grad=True)
    mask = torch.ones_like(x, dtype=torch.bool)
    out, *_ = augment(AUGMENTATIONS, x, mask)
    out.sum().backward()
    # each kept cell's gradient is 1 (moved once), every other 0
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0} and x.grad.sum() == (out != 0).sum()
    assert augment((), x, mask)[0] is x
    assert LossConfig().augment == ()


def test_both_phases_show_d_augmented_inputs_and_g_gets_a_gradient_through_them():
    seen = []

    class Critic(torch.nn.Module):
        def forward(self, x, *extra):
            seen.append(x.detach())
            return x.flatten(1).sum(1)

    critic = Critic()
    made = AdversarialObjective(
        LossConfig(name="hinge", augment=("translation", "cutout")), critic, critic, lambda *a: None
    )
    torch.manual_seed(4)
    real, fake = torch.randn(B, T, C, H, W), torch.randn(B, T, C, H, W, requires_grad=True)
    mask = torch.ones(B, T, C, H, W)
    made.d_loss(real, fake.detach(), mask, None, d_step=1)
    made.g_loss(fake, mask, None).backward()
    both, g_view = seen
    # the cut-out cells reach D as zeros in both phases; the real data have none
    assert (both == 0).flatten(1).sum(1).min() >= (H // 2) * (W // 2) * T * C // 4
    assert (g_view == 0).any() and fake.grad is not None and (fake.grad != 0).any()


def test_a_typo_in_the_augmentation_names_the_choices():
    with pytest.raises(ValueError, match="one of"):
        augment(["flip"], torch.zeros(1, 2, 1, 4, 4), torch.ones(1, 2, 1, 4, 4))
