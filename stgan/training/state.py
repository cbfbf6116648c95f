"""Training state: what a run holds, and the checkpoint built from it, saved and restored.

A :class:`Run` groups the two networks (each with its optimizer and schedule), the EMA,
the objective, the data and the observers. :func:`training_state` turns it into a
checkpoint (tensors and plain containers only), :func:`save` writes one, :func:`restore`
loads one back, and :func:`resume_state` finds the checkpoint to resume from (none: a
run killed before its first starts again) and checks that its config is compatible with
the current one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path

import torch
import yaml
from torch import nn
from tqdm import tqdm

from stgan import __version__
from stgan.data.transforms import Transforms
from stgan.errors import CheckpointError, reason
from stgan.logging import RunLogger
from stgan.objective import AdversarialObjective
from stgan.training import checkpoint as ckpt
from stgan.training.batches import BatchStream
from stgan.training.config import RESUMABLE_KEYS, PipelineConfig, resolved_dict
from stgan.training.distributed import Dist
from stgan.training.evaluation import Evaluation, Evaluator
from stgan.training.health import Monitor, nonfinite_parameters
from stgan.training.optim import EMA
from stgan.training.stats import Stats

# The resolved config a run writes into its directory when it starts.
RUN_CONFIG = "config.yaml"

# What a checkpoint must hold to resume training from it.
_RESUME_KEYS = ("G", "D", "EMA", "opt_G", "opt_D", "config", "rng", "data")


@dataclasses.dataclass
class Network:
    """One side of the game and what trains it."""

    module: nn.Module  # the bare module: state dicts, sampling, EMA, clipping
    wrapped: nn.Module  # the one forward passes use: compiled and/or DDP-wrapped
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler


@dataclasses.dataclass
class TrainingData:
    """The batches G and D train on, and what a checkpoint needs to generate like them."""

    batches: BatchStream
    transforms: Transforms
    grid: dict  # coordinates and attributes for `stgan generate` (rank 0; {} elsewhere)


@dataclasses.dataclass
class Observers:
    """Who watches training: the TensorBoard writer, the health monitor, the evaluator."""

    logger: RunLogger | None = None  # rank 0 only
    monitor: Monitor | None = None  # when health.enabled
    evaluator: Evaluator | None = None  # rank 0 only, when eval.every > 0


@dataclasses.dataclass
class Run:
    """Everything the loop and its hooks share."""

    config: PipelineConfig
    logdir: Path
    device: torch.device
    dist: Dist
    g: Network
    d: Network
    ema: EMA
    objective: AdversarialObjective
    data: TrainingData
    stats: Stats
    observers: Observers
    step: int = 0
    rollbacks: int = 0
    initial: dict | None = None  # the state at step 0: the rollback target before any checkpoint

    @property
    def logger(self) -> RunLogger | None:
        """The run's writer (rank 0), for ``on_evaluation`` hooks such as `stgan sweep`'s."""
        return self.observers.logger

    @property
    def d_steps(self) -> int:
        """D optimizer steps before this training step (``optim.n_critic`` per step)."""
        return self.step * self.config.optim.n_critic

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of this run's forward passes (see :func:`autocast`)."""
        return autocast(self.config.train.precision, self.device)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``precision`` is ``"bf16"`` or ``"auto"``; nothing otherwise."""
    if device.type == "cuda" and precision in ("bf16", "auto"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_state(run: Run) -> dict:
    """Everything a checkpoint holds: tensors and plain containers only."""
    config = resolved_dict(run.config)
    observers = run.observers
    return {
        "version": __version__,
        "step": run.step,
        "G": run.g.module.state_dict(),
        "D": run.d.module.state_dict(),
        "EMA": run.ema.model.state_dict(),
        "opt_G": run.g.opt.state_dict(),
        "opt_D": run.d.opt.state_dict(),
        "sched_G": run.g.sched.state_dict(),
        "sched_D": run.d.sched.state_dict(),
        "data": run.data.batches.state(),
        "rng": ckpt.capture_rng(),
        "config": config,
        "config_hash": ckpt.config_hash(config),
        "evaluator": observers.evaluator.state_dict() if observers.evaluator else {},
        "health": {
            "monitor": observers.monitor.state_dict() if observers.monitor else {},
            "rollbacks": run.rollbacks,
            "lr_scale": run.config.health.lr_factor**run.rollbacks,
        },
        "grid": run.data.grid,
        "transforms": run.data.transforms.to_dict(),
    }


def save(run: Run, best: Evaluation | None = None) -> None:
    """A training checkpoint (rank 0); with ``best``, checkpoints/best.pt and its evaluation."""
    if not run.dist.is_main:
        return
    if nonfinite_parameters(run.g.module, run.d.module):
        tqdm.write(
            f"stgan: warning: step {run.step}: weights are not finite; checkpoint skipped",
            file=sys.stderr,
        )
        return
    state = training_state(run)
    directory = run.logdir / "checkpoints"
    if best is not None:
        state["evaluation"] = {"step": best.step, "score": best.score, "metrics": best.scalars}
        ckpt.save_best(directory, state)
        return
    ckpt.save_checkpoint(directory, run.step, state, run.config.train.keep_checkpoints)
    if run.logger:
        run.logger.flush()


def restore(run: Run, state: dict, observers: bool = True) -> None:
    """Load ``state`` (a :func:`training_state`) into ``run``; ``observers=False`` keeps
    the evaluator's best and the health monitor's history (a rollback's choice: they
    describe best.pt and the run so far, which a rollback leaves as they are). Keys no
    longer written (e.g. the old ``"scaler"``) are ignored."""
    for network, side in ((run.g, "G"), (run.d, "D")):
        network.module.load_state_dict(state[side])
        network.opt.load_state_dict(state[f"opt_{side}"])
        network.sched.load_state_dict(state[f"sched_{side}"])
    run.ema.model.load_state_dict(state["EMA"])
    run.step = int(state["step"])
    run.data.batches.epoch = int(state["data"]["epoch"])
    run.data.batches.position = int(state["data"]["position"])
    health = state.get("health", {})
    run.rollbacks = int(health.get("rollbacks", 0))
    if observers:
        _restore_observers(run.observers, state)
    if run.dist.rank == 0:
        ckpt.restore_rng(state["rng"])
    else:  # only rank 0's RNG is saved; other ranks continue on their own stream
        ckpt.seed_everything(run.config.train.seed + run.dist.rank + 7919 * run.step)


def _restore_observers(observers: Observers, state: dict) -> None:
    """The evaluator's and the monitor's state as ``state`` holds them (where it does)."""
    if observers.evaluator and state.get("evaluator"):
        observers.evaluator.load_state_dict(state["evaluator"])
    monitor = state.get("health", {}).get("monitor")
    if observers.monitor and monitor:
        observers.monitor.load_state_dict(monitor)


def resume_state(config: PipelineConfig, logdir: Path, resume: bool) -> dict | None:
    """The newest checkpoint in ``logdir`` to resume from, or None to start from step 0.

    With ``resume`` and no checkpoint yet (a run killed before its first), None: the run
    starts again from step 0, if the ``config.yaml`` it left is compatible.

    Raises
    ------
    CheckpointError
        If ``logdir`` holds checkpoints but ``resume`` is False; if ``resume`` finds
        checkpoints of which none loads; or if the newest one is not a training checkpoint,
        or it (or, before the first checkpoint, the run's config.yaml) was written with a
        config that differs in a key that cannot change on resume.
    """
    directory = logdir / "checkpoints"
    found = ckpt.load_latest(directory) if directory.is_dir() else None
    if not resume:
        if found is not None:
            raise CheckpointError(
                f"{logdir} already holds checkpoints; pass --resume to continue it or choose a new --logdir"
            )
        return None
    if found is None:
        if ckpt.list_checkpoints(directory):
            raise CheckpointError(
                f"--resume: no valid checkpoint in {directory} (none of them loads); move "
                "them away to start again from step 0, or choose a new --logdir"
            )
        _check_run_config(logdir / RUN_CONFIG, config)
        return None
    newest, state = found
    for key in _RESUME_KEYS:
        if key not in state:
            raise CheckpointError(
                f"{newest}: not an stgan training checkpoint (no '{key}'); pick another"
            )
    ckpt.check_compatible(state["config"], resolved_dict(config), ignore=RESUMABLE_KEYS)
    return state


def _check_run_config(path: Path, config: PipelineConfig) -> None:
    """Refuse to start over in a run directory whose ``config.yaml`` (written at the start
    of the run there) is another pipeline's."""
    if not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CheckpointError(
            f"--resume: {path} is unreadable ({reason(err)}); delete it or choose a new --logdir"
        ) from err
    differ = ckpt.config_diff(
        saved if isinstance(saved, dict) else {}, resolved_dict(config), RESUMABLE_KEYS
    )
    if differ:
        raise CheckpointError(
            f"--resume: {path} differs from the current config in: {', '.join(differ)}; "
            "resume with the original config or choose a new --logdir"
        )
