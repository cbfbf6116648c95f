"""The training loop. Reads top to bottom:

setup (data, models, optimizers, resume) → for each step: D phase (n_critic
times), G phase, EMA, schedules, stats → log, checkpoint, evaluate → final
checkpoint. The loss maths lives in ``stgan.losses``; this file owns the
optimizers and decides when to step, clip and average.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from stgan import __version__, losses
from stgan.atomic import write_text_atomic
from stgan.data import prepare
from stgan.data.transforms import Transforms
from stgan.errors import CheckpointError
from stgan.logging import RunLogger
from stgan.models import build_discriminator, build_generator
from stgan.training import checkpoint as ckpt
from stgan.training.batches import BatchStream
from stgan.training.config import RESUMABLE_KEYS, PipelineConfig, resolved_dict
from stgan.training.distributed import Dist, init_distributed, resolve_device, shutdown
from stgan.training.optim import EMA, adam_pair, scheduler
from stgan.training.stats import Stats

# Called every eval.every steps with the run; [C] plugs the domain metrics in here.
EvalHook = Callable[["Run", int], None]


@dataclass
class Run:
    """Everything the loop and its hooks share."""

    config: PipelineConfig
    logdir: Path
    device: torch.device
    dist: Dist
    g: nn.Module  # the (possibly DDP-wrapped / compiled) generator used for forward passes
    d: nn.Module
    g_module: nn.Module  # the bare modules: state dicts, sampling, EMA
    d_module: nn.Module
    ema: EMA
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    loss: losses.Loss
    batches: BatchStream
    transforms: Transforms
    stats: Stats
    logger: RunLogger | None
    step: int = 0
    d_steps: int = 0

    @property
    def autocast(self):
        bf16 = self.config.train.precision == "bf16" or (
            self.config.train.precision == "auto" and self.device.type == "cuda"
        )
        if bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def train(
    config: PipelineConfig,
    logdir: Path,
    device: str = "auto",
    resume: bool = False,
    max_steps: int | None = None,
    eval_hook: EvalHook | None = None,
) -> dict[str, float]:
    """Train G and D; returns the last logged statistics.

    ``max_steps`` stops early (after a checkpoint); ``resume`` continues from the
    newest valid checkpoint in ``logdir``.
    """
    logdir = Path(logdir)
    torch_device = resolve_device(device)
    dist = init_distributed(torch_device)
    if dist.enabled and torch_device.type == "cuda":
        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    try:
        run = setup(config, logdir, torch_device, dist, resume)
        stop = min(config.train.steps, max_steps) if max_steps else config.train.steps
        return loop(run, stop, eval_hook)
    finally:
        shutdown(dist)


def setup(
    config: PipelineConfig, logdir: Path, device: torch.device, dist: Dist, resume: bool
) -> Run:
    """Data, models, optimizers and logger; restores the newest checkpoint when resuming."""
    logdir.mkdir(parents=True, exist_ok=True)
    state = _resume_state(config, logdir, resume)
    seed_everything(config.train.seed + dist.rank)
    transforms = Transforms.load(logdir / "transforms.json") if state else None
    data = prepare(config.spec, transforms=transforms)
    dataset = data.dataset("train")
    frames, channels, height, width = dataset[0][0].shape  # (T, C, H, W)
    gcfg = config.model.generator
    out_frames = frames - gcfg.context_frames if gcfg.conditional else frames
    g_module = build_generator(gcfg, channels, height, width, out_frames).to(device)
    d_module = build_discriminator(
        config.model.discriminator, channels, height, width, out_frames
    ).to(device)
    ema = EMA(g_module, config.optim.ema_decay)
    opt_g, opt_d = adam_pair(g_module, d_module, config.optim)
    total = config.train.steps
    run = Run(
        config=config,
        logdir=logdir,
        device=device,
        dist=dist,
        g=_wrap(g_module, config, dist, device),
        d=_wrap(d_module, config, dist, device),
        g_module=g_module,
        d_module=d_module,
        ema=ema,
        opt_g=opt_g,
        opt_d=opt_d,
        sched_g=scheduler(opt_g, config.optim, total),
        sched_d=scheduler(opt_d, config.optim, total),
        loss=losses.get_loss(config.loss.name, label_smoothing=config.loss.label_smoothing),
        batches=BatchStream(
            dataset, config.train.batch_size, config.train.num_workers, config.train.seed, dist
        ),
        transforms=data.transforms,
        stats=Stats(),
        logger=None,
    )
    if state:
        restore(run, state)
    if dist.is_main:
        _write_run_files(run)
        run.logger = RunLogger(logdir, purge_step=run.step + 1 if state else None)
    return run


def loop(run: Run, stop: int, eval_hook: EvalHook | None) -> dict[str, float]:
    cfg = run.config
    bar = tqdm(
        total=stop, initial=run.step, desc="train", disable=not run.dist.is_main, dynamic_ncols=True
    )
    last: dict[str, float] = {}
    tick, seen = time.perf_counter(), 0
    while run.step < stop:
        for _ in range(cfg.optim.n_critic):
            batch = d_phase(run)
        g_phase(run, batch)
        run.stats.report("LR/G", run.opt_g.param_groups[0]["lr"])  # the rates this step used
        run.stats.report("LR/D", run.opt_d.param_groups[0]["lr"])
        run.sched_g.step()
        run.sched_d.step()
        run.step += 1
        seen += (
            cfg.train.batch_size * cfg.optim.n_critic * cfg.optim.grad_accum * run.dist.world_size
        )
        bar.update(1)
        if run.step % cfg.train.log_every == 0 or run.step == stop:
            run.stats.report("Perf/samples_per_s", seen / (time.perf_counter() - tick))
            tick, seen = time.perf_counter(), 0
            last = log_step(run, bar)
        if run.step % cfg.train.ckpt_every == 0 or run.step == stop:
            save(run)
        if eval_hook and cfg.eval.every and run.step % cfg.eval.every == 0:
            eval_hook(run, run.step)
    bar.close()
    if run.logger:
        run.logger.close()
    return last


def d_phase(run: Run) -> tuple[torch.Tensor, ...]:
    """One D optimizer step over ``grad_accum`` real batches; returns the last batch."""
    cfg = run.config
    run.opt_d.zero_grad(set_to_none=True)
    for _ in range(cfg.optim.grad_accum):
        batch = next_batch(run)
        real, mask, context = batch
        with torch.no_grad(), run.autocast:
            fake = generate(run, run.g_module, real.shape[0], context)
        noise_std = losses.annealed_std(
            run.step, cfg.loss.instance_noise, cfg.loss.instance_noise_steps
        )
        real_in = losses.apply_mask(losses.instance_noise(real, noise_std), mask)
        fake_in = losses.apply_mask(losses.instance_noise(fake.float(), noise_std), mask)
        both_context = () if context is None else (torch.cat([context, context]),)
        with run.autocast:
            logits = run.d(torch.cat([real_in, fake_in]), *both_context).float()  # (2B,)
        real_logits, fake_logits = logits.chunk(2)
        loss = run.loss.d_loss(real_logits, fake_logits)
        penalty = penalties(run, real_in, fake_in, mask, context)
        ((loss + penalty) / cfg.optim.grad_accum).backward()
        run.stats.report("Loss/D", loss)
        run.stats.report("Loss/penalty", penalty)
        for name, value in run.loss.scores(real_logits, fake_logits).items():
            run.stats.report(f"D/{name}", value)
    run.stats.report("Grad/D_norm", clip(run.d_module, cfg.optim.grad_clip))
    run.opt_d.step()
    run.d_steps += 1
    return batch


def penalties(
    run: Run, real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor, context
) -> torch.Tensor:
    """R1 and/or WGAN-GP on the masked inputs, when due (lazy regularization)."""
    cfg = run.config.loss
    total = real.new_zeros(())
    if not losses.penalty_due(run.d_steps, cfg.penalty_interval):
        return total
    extra = () if context is None else (context,)
    masked_d = lambda x, *a: run.d(losses.apply_mask(x, mask), *a)  # noqa: E731
    if cfg.r1_gamma:
        total = total + losses.r1_penalty(
            masked_d, real, *extra, gamma=cfg.r1_gamma, interval=cfg.penalty_interval
        )
    if cfg.gp_weight:
        total = total + losses.gradient_penalty(
            masked_d, real, fake, *extra, weight=cfg.gp_weight, interval=cfg.penalty_interval
        )
    return total


def g_phase(run: Run, batch: tuple[torch.Tensor, ...]) -> None:
    """One G optimizer step, scored by D on the mask (and context) of the last real batch."""
    cfg = run.config
    _, mask, context = batch
    run.opt_g.zero_grad(set_to_none=True)
    for _ in range(cfg.optim.grad_accum):
        with run.autocast:
            fake = generate(run, run.g, mask.shape[0], context)
        noise_std = losses.annealed_std(
            run.step, cfg.loss.instance_noise, cfg.loss.instance_noise_steps
        )
        fake_in = losses.apply_mask(losses.instance_noise(fake.float(), noise_std), mask)
        extra = () if context is None else (context,)
        with run.autocast:
            # The bare D: its gradients here are discarded, so DDP need not average them.
            logits = run.d_module(fake_in, *extra).float()
        loss = run.loss.g_loss(logits)
        (loss / cfg.optim.grad_accum).backward()
        run.stats.report("Loss/G", loss)
    run.stats.report("Grad/G_norm", clip(run.g_module, cfg.optim.grad_clip))
    run.opt_g.step()
    run.ema.update(run.g_module)


def next_batch(run: Run) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(target, mask, context)`` on the device; context is the first T_in frames when conditional."""
    x, mask = run.batches.next()  # (B, T, C, H, W)
    x = x.to(run.device, non_blocking=True)
    mask = mask.to(run.device, non_blocking=True).float()
    gcfg = run.config.model.generator
    if not gcfg.conditional:
        return x, mask, None
    t_in = gcfg.context_frames
    return x[:, t_in:], mask[:, t_in:], x[:, :t_in]


def generate(run: Run, g: nn.Module, batch: int, context: torch.Tensor | None) -> torch.Tensor:
    z, noise = run.g_module.latents(batch)
    return g(z, noise, context)  # (B, T_out, C, H, W)


def clip(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip (when max_norm > 0) and return the total gradient norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))


def log_step(run: Run, bar: tqdm) -> dict[str, float]:
    if run.device.type == "cuda":
        run.stats.report("Perf/gpu_mem_gb", torch.cuda.max_memory_allocated(run.device) / 2**30)
    values = run.stats.collect()  # averaged across ranks
    if run.logger:
        run.logger.scalars(values, run.step)
        if run.step % run.config.train.hist_every == 0:
            run.logger.histograms({"G": run.g_module, "D": run.d_module}, run.step)
        bar.set_postfix(
            G=f"{values['Loss/G']:.3f}",
            D=f"{values['Loss/D']:.3f}",
            sps=f"{values['Perf/samples_per_s']:.0f}",
        )
    return values


def save(run: Run) -> None:
    if not run.dist.is_main:
        return
    config = resolved_dict(run.config)
    state = {
        "version": __version__,
        "step": run.step,
        "d_steps": run.d_steps,
        "G": run.g_module.state_dict(),
        "D": run.d_module.state_dict(),
        "EMA": run.ema.model.state_dict(),
        "opt_G": run.opt_g.state_dict(),
        "opt_D": run.opt_d.state_dict(),
        "sched_G": run.sched_g.state_dict(),
        "sched_D": run.sched_d.state_dict(),
        "scaler": {},  # bf16 autocast needs no gradient scaler
        "data": run.batches.state(),
        "rng": ckpt.capture_rng(),
        "config": config,
        "config_hash": ckpt.config_hash(config),
    }
    ckpt.save_checkpoint(
        run.logdir / "checkpoints", run.step, state, run.config.train.keep_checkpoints
    )
    if run.logger:
        run.logger.flush()


def restore(run: Run, state: dict) -> None:
    run.g_module.load_state_dict(state["G"])
    run.d_module.load_state_dict(state["D"])
    run.ema.model.load_state_dict(state["EMA"])
    run.opt_g.load_state_dict(state["opt_G"])
    run.opt_d.load_state_dict(state["opt_D"])
    run.sched_g.load_state_dict(state["sched_G"])
    run.sched_d.load_state_dict(state["sched_D"])
    run.step, run.d_steps = int(state["step"]), int(state["d_steps"])
    run.batches.epoch, run.batches.position = (
        int(state["data"]["epoch"]),
        int(state["data"]["position"]),
    )
    if run.dist.rank == 0:
        ckpt.restore_rng(state["rng"])
    else:  # only rank 0's RNG is saved; other ranks continue on their own stream
        seed_everything(run.config.train.seed + run.dist.rank + 7919 * run.step)


def _resume_state(config: PipelineConfig, logdir: Path, resume: bool) -> dict | None:
    directory = logdir / "checkpoints"
    newest = ckpt.latest_checkpoint(directory) if directory.is_dir() else None
    if not resume:
        if newest is not None:
            raise CheckpointError(
                f"{logdir} already holds checkpoints; pass --resume to continue it or choose a new --logdir"
            )
        return None
    if newest is None:
        raise CheckpointError(
            f"--resume: no valid checkpoint in {directory}; train without --resume first"
        )
    state = ckpt.load_checkpoint(newest)
    for key in ("G", "D", "EMA", "opt_G", "opt_D", "config", "rng", "data"):
        if key not in state:
            raise CheckpointError(
                f"{newest}: not an stgan training checkpoint (no '{key}'); pick another"
            )
    ckpt.check_compatible(state["config"], resolved_dict(config), ignore=RESUMABLE_KEYS)
    return state


def _wrap(module: nn.Module, config: PipelineConfig, dist: Dist, device: torch.device) -> nn.Module:
    wrapped = torch.compile(module) if config.train.compile else module
    if dist.enabled:
        wrapped = DDP(wrapped, device_ids=[device.index] if device.type == "cuda" else None)
    return wrapped


def _write_run_files(run: Run) -> None:
    write_text_atomic(
        run.logdir / "config.yaml", yaml.safe_dump(resolved_dict(run.config), sort_keys=False)
    )
    if not (run.logdir / "transforms.json").exists():
        run.transforms.save(run.logdir / "transforms.json")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
