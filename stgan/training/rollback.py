"""Rollback after divergence: reload the newest healthy state, lower both rates, reseed.

The health monitor decides *that* training diverged (``Event.action == "rollback"``); this
module decides *where to* (the newest checkpoint with finite weights, else the state at
step 0) and how the run goes on from there.
"""

from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from stgan.errors import TrainingStopped
from stgan.training import checkpoint as ckpt
from stgan.training.state import Run, restore

# Spaces the seeds of successive rollbacks apart from the run's own seeds.
_RESEED_STRIDE = 104_729


def rollback(run: Run) -> None:
    """Reload the newest checkpoint with finite weights, scale both rates, reseed.

    The evaluator keeps its best score (best.pt stays on disk), the monitor its history.

    Raises
    ------
    TrainingStopped
        After ``health.max_rollbacks`` rollbacks, or when no state has finite weights.
    """
    cfg = run.config.health
    rollbacks = run.rollbacks + 1
    if rollbacks > cfg.max_rollbacks:
        raise TrainingStopped(
            f"training diverged again after {cfg.max_rollbacks} rollbacks (step {run.step}); "
            "lower optim.lr_g/optim.lr_d, set optim.grad_clip, or raise health.max_rollbacks"
        )
    state = _healthy_state(run)
    restore(run, state, observers=False)
    run.rollbacks = rollbacks
    scale = cfg.lr_factor**rollbacks / _lr_scale(state)  # the state's rates were scaled already
    for network in (run.g, run.d):
        network.sched.base_lrs = [lr * scale for lr in network.sched.base_lrs]
        for group in network.opt.param_groups:
            group["lr"] *= scale
    ckpt.seed_everything(run.config.train.seed + run.dist.rank + _RESEED_STRIDE * rollbacks)
    run.observers.monitor.reset_after_rollback()
    if run.dist.is_main:
        tqdm.write(
            f"stgan: rolled back to step {run.step}, learning rates x{cfg.lr_factor**rollbacks:g} "
            f"(rollback {rollbacks} of {cfg.max_rollbacks})",
            file=sys.stderr,
        )


def _healthy_state(run: Run) -> dict:
    """The newest checkpoint at or before this step with finite G and D, else ``run.initial``."""
    directory = run.logdir / "checkpoints"
    for _, path in reversed(ckpt.list_checkpoints(directory)):
        state = ckpt.load_checkpoint(path)
        if state["step"] <= run.step and _finite(state["G"]) and _finite(state["D"]):
            return state
    if run.initial is None:
        raise TrainingStopped(
            f"training diverged at step {run.step} and no checkpoint has finite weights; "
            "lower the learning rates or set optim.grad_clip"
        )
    return snapshot(run.initial)


def _finite(state_dict: dict) -> bool:
    return all(torch.isfinite(t).all() for t in state_dict.values() if t.is_floating_point())


def _lr_scale(state: dict) -> float:
    """How much the rates in ``state`` were already lowered by earlier rollbacks."""
    return float(state.get("health", {}).get("lr_scale", 1.0))


def snapshot(state: dict) -> dict:
    """``state`` with its dicts and tensors copied (e.g. ``Run.initial``, the step-0 target)."""
    return {
        k: (snapshot(v) if isinstance(v, dict) else v.clone() if torch.is_tensor(v) else v)
        for k, v in state.items()
    }
