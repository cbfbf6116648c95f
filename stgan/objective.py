"""The adversarial objective of a training run: one loss per phase, as StyleGAN2-ADA's loss.

D sees reals and fakes with instance noise (one std per training step, annealed to 0),
missing cells zeroed by the mask, the calendar features of their frames (when the models
take them) and, for a conditional G, the context frames it was given, all transformed
alike by ``loss.augment`` (DiffAugment: :mod:`stgan.augment`) when it names any;
D's loss adds the penalties (R1, WGAN-GP) on their lazy schedule. G's loss averages D's
verdict over ``loss.generation_samples`` samples of one context and adds DGMR's grid-cell
regulariser on their mean (``loss.grid_cell_weight``). The maths of each piece is a pure
function in :mod:`stgan.losses`; the loop samples the fakes (as many as
``generation_samples`` says) and owns the optimizers: when to step, clip, scale and average.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from stgan import losses
from stgan.augment import augment
from stgan.training.config import LossConfig
from stgan.training.health import batch_diversity

Tensor = torch.Tensor
Report = Callable[[str, "float | Tensor"], None]


@contextlib.contextmanager
def frozen(module: nn.Module):
    """``module``'s parameters need no gradient inside; those that needed one do again after."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in trainable:
            p.requires_grad_(True)


class AdversarialObjective:
    """What D and G minimize, given real windows, fakes, masks and context.

    Parameters
    ----------
    config
        The ``loss:`` section: formulation, label smoothing, penalties, instance noise.
    d
        The discriminator the D phase differentiates (compiled and/or DDP-wrapped, so its
        gradients are averaged across ranks).
    d_module
        The bare discriminator for the G phase, whose D gradients are discarded, so DDP
        need not average them.
    report
        Where the losses, D scores and input diversities go (``Stats.report``).
    autocast
        A context-manager factory for D's forward passes (bf16 on CUDA, or nothing).
    """

    def __init__(
        self,
        config: LossConfig,
        d: nn.Module,
        d_module: nn.Module,
        report: Report,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.config = config
        self.loss = losses.get_loss(config.name, label_smoothing=config.label_smoothing)
        self.d = d
        self.d_module = d_module
        self.report = report
        self.autocast = autocast
        self.noise_std = 0.0

    def begin_step(self, step: int) -> None:
        """Set the instance-noise std that every D input of training ``step`` gets."""
        cfg = self.config
        self.noise_std = losses.annealed_std(step, cfg.instance_noise, cfg.instance_noise_steps)

    def d_loss(
        self,
        real: Tensor,
        fake: Tensor,
        mask: Tensor,
        context: Tensor | None,
        d_step: int,
        calendar: Tensor | None = None,
    ) -> Tensor:
        """D's loss on a real and a fake batch, plus the penalties when ``d_step`` is due.

        Parameters
        ----------
        real, fake
            ``(B, T, C, H, W)``; ``fake`` needs no gradient.
        mask
            ``(B, T, C, H, W)``, 1 where a cell is valid, 0 where missing.
        context
            ``(B, T_in, C, H, W)`` frames a conditional G was given, or None.
        d_step
            How many D optimizer steps came before this one (the lazy-penalty clock).
        calendar
            ``(B, T_in + T, F)`` calendar features of the context and the generated frames
            (real and fake share them), or None when the models take none.
        """
        real_in, real_mask, real_context, real_calendar = self._seen(real, mask, context, calendar)
        fake_in, _, fake_context, fake_calendar = self._seen(fake, mask, context, calendar)
        both = _d_args(_stacked(real_context, fake_context), _stacked(real_calendar, fake_calendar))
        with self.autocast():
            logits = self.d(torch.cat([real_in, fake_in]), *both).float()  # (2B,)
        real_logits, fake_logits = logits.chunk(2)
        loss = self.loss.d_loss(real_logits, fake_logits)
        # on what D saw of the reals (augmented: their mask and context moved with them)
        penalty = self.penalties(real_in, fake_in, real_mask, real_context, d_step, real_calendar)
        self.report("Loss/D", loss)
        self.report("Loss/penalty", penalty)
        for name, value in self.loss.scores(real_logits, fake_logits).items():
            self.report(f"D/{name}", value)
        self.report("Health/real_diversity", batch_diversity(real_in))
        self.report("Health/fake_diversity", batch_diversity(fake_in))
        return loss + penalty

    @property
    def generation_samples(self) -> int:
        """Generator samples per G micro-batch (``loss.generation_samples``; DGMR draws 6)."""
        return self.config.generation_samples

    def g_loss(
        self,
        fake: Tensor | Sequence[Tensor],
        mask: Tensor,
        context: Tensor | None,
        real: Tensor | None = None,
        calendar: Tensor | None = None,
    ) -> Tensor:
        """G's loss: D's verdict on each sample, masked and noised as reals are, averaged; plus
        ``loss.grid_cell_weight`` x the grid-cell regulariser on the samples' mean (DGMR).

        Parameters
        ----------
        fake
            ``(B, T, C, H, W)``, or a sequence of ``generation_samples`` of them drawn from
            the same context; D scores each one on its own, as in DGMR.
        mask
            ``(B, T, C, H, W)``, 1 where a cell is valid.
        context
            ``(B, T_in, C, H, W)`` frames a conditional G was given, or None.
        real
            ``(B, T, C, H, W)``, the real future; needed when ``loss.grid_cell_weight`` > 0.
        calendar
            ``(B, T_in + T, F)`` calendar features the fakes were made for, or None.
        """
        fakes = [fake] if isinstance(fake, Tensor) else list(fake)
        adversarial = []
        # D's weights stay put in this phase: spectral norm computes each one once for all
        # the samples (its power iteration advances once per G step, not once per sample),
        # and the backward pass skips their gradients (the D phase sets its own to none)
        with parametrize.cached(), frozen(self.d_module):
            for sample in fakes:
                seen, _, seen_context, seen_calendar = self._seen(sample, mask, context, calendar)
                with self.autocast():
                    logits = self.d_module(seen, *_d_args(seen_context, seen_calendar)).float()
                adversarial.append(self.loss.g_loss(logits))
        loss = adversarial[0] if len(adversarial) == 1 else torch.stack(adversarial).mean()
        self.report("Loss/G", loss)
        weight = self.config.grid_cell_weight
        if not weight:
            return loss
        if real is None:
            raise ValueError("g_loss: loss.grid_cell_weight > 0 needs the real future (real=)")
        fake_mean = fakes[0] if len(fakes) == 1 else torch.stack(fakes).mean(dim=0)
        grid = losses.grid_cell_loss(fake_mean.float(), real.float(), mask)
        self.report("Loss/grid_cell", grid)
        return loss + weight * grid

    def penalties(
        self,
        real: Tensor,
        fake: Tensor,
        mask: Tensor,
        context: Tensor | None,
        d_step: int,
        calendar: Tensor | None = None,
    ) -> Tensor:
        """R1 and/or WGAN-GP on D's (masked) inputs when ``d_step`` is due; 0 otherwise.
        The gradient is D's with respect to the data, not to the calendar channels."""
        cfg = self.config
        total = real.new_zeros(())
        if not losses.penalty_due(d_step, cfg.penalty_interval):
            return total
        extra = _d_args(context, calendar)

        def masked_d(x: Tensor, *args: object) -> Tensor:
            # masked cells stay out of the penalty's gradient too
            return self.d(losses.apply_mask(x, mask), *args)

        if cfg.r1_gamma:
            total = total + losses.r1_penalty(
                masked_d, real, *extra, gamma=cfg.r1_gamma, interval=cfg.penalty_interval
            )
        if cfg.gp_weight:
            total = total + losses.gradient_penalty(
                masked_d, real, fake, *extra, weight=cfg.gp_weight, interval=cfg.penalty_interval
            )
        return total

    def _seen(
        self, x: Tensor, mask: Tensor, context: Tensor | None, calendar: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """What D sees of ``x``: float32 with this step's instance noise, missing cells
        zeroed after it, then ``loss.augment``'s transforms (DiffAugment), which move the
        mask, the context and the calendar with the frames."""
        x = losses.apply_mask(losses.instance_noise(x.float(), self.noise_std), mask)
        return augment(self.config.augment, x, mask, context, calendar)


def _stacked(real: Tensor | None, fake: Tensor | None) -> Tensor | None:
    """The reals' and the fakes' inputs stacked along the batch, or None."""
    return None if real is None else torch.cat([real, fake])


def _d_args(context: Tensor | None, calendar: Tensor | None) -> tuple:
    """D's arguments after the sequence: ``(context, calendar)`` as far as given (a D of a
    model without calendar inputs is called as before)."""
    if calendar is None:
        return () if context is None else (context,)
    return (context, calendar)
