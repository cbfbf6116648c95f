"""The one TensorBoard writer of a run: scalars, histograms, figures, hparams."""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    """Writes a run's events under ``logdir``; only rank 0 makes one."""

    def __init__(self, logdir: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(log_dir=str(logdir), purge_step=purge_step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def histograms(self, models: dict[str, nn.Module], step: int) -> None:
        """Weight and gradient histograms, e.g. ``Weights/G/stem.weight``."""
        for prefix, model in models.items():
            for name, p in model.named_parameters():
                self.writer.add_histogram(
                    f"Weights/{prefix}/{name}", p.detach().float().cpu(), step
                )
                if p.grad is not None:
                    self.writer.add_histogram(
                        f"Grads/{prefix}/{name}", p.grad.detach().float().cpu(), step
                    )

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
