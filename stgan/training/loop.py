"""The training loop. Reads top to bottom:

setup (data, models, optimizers, resume) → for each step: D phase (n_critic
times), G phase, EMA, schedules, stats → log and health checks, checkpoint,
evaluate (domain metrics, best.pt) → final checkpoint. The loss maths lives in ``stgan.losses``; this file owns the
optimizers and decides when to step, clip and average.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import time
from collections.abc import Callable
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
from stgan.data.cf import describe_grid
from stgan.data.transforms import Transforms
from stgan.errors import CheckpointError, TrainingStopped
from stgan.logging import RunLogger
from stgan.models import build_discriminator, build_generator
from stgan.threads import use_threads
from stgan.training import checkpoint as ckpt
from stgan.training.batches import BatchStream
from stgan.training.config import RESUMABLE_KEYS, PipelineConfig, resolved_dict
from stgan.training.distributed import Dist, init_distributed, resolve_device, shutdown
from stgan.training.evaluation import Evaluation, Evaluator
from stgan.training.health import Event, Monitor, batch_diversity, nonfinite_parameters
from stgan.training.optim import EMA, adam_pair, scheduler
from stgan.training.stats import Stats

# Called on rank 0 after each in-training evaluation (e.g. by `stgan sweep` to prune);
# an exception raised there ends training after the logs are closed.
OnEvaluation = Callable[["Run", Evaluation], None]


@dataclasses.dataclass
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
    evaluator: Evaluator | None = None  # rank 0 only, when eval.every > 0
    monitor: Monitor | None = None
    hparams: dict | None = None
    grid: dict | None = None  # coordinates and attributes for `stgan generate` (rank 0)
    initial: dict | None = None  # the state at step 0: the rollback target before any checkpoint
    rollbacks: int = 0
    bar: tqdm | None = None
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
    on_evaluation: OnEvaluation | None = None,
    hparams: dict | None = None,
) -> dict[str, float]:
    """Train G and D; returns the last logged statistics.

    ``max_steps`` stops early (after a checkpoint); ``resume`` continues from the
    newest valid checkpoint in ``logdir``. ``hparams`` adds entries to the run's
    HParams row (e.g. the values a sweep chose).
    """
    logdir = Path(logdir)
    use_threads(config.train.threads)
    torch_device = resolve_device(device)
    dist = init_distributed(torch_device)
    if dist.enabled and torch_device.type == "cuda":
        torch_device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(torch_device)
    try:
        run = setup(config, logdir, torch_device, dist, resume, hparams)
        stop = min(config.train.steps, max_steps) if max_steps else config.train.steps
        try:
            return loop(run, stop, on_evaluation)
        finally:
            if run.logger:  # also when stopped or pruned, so the HParams row has an end
                run.logger.hparams_end(hparam_values(run), hparam_metrics(run))
                run.logger.close()
    finally:
        shutdown(dist)


def setup(
    config: PipelineConfig,
    logdir: Path,
    device: torch.device,
    dist: Dist,
    resume: bool,
    hparams: dict | None = None,
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
    g_module = build_generator(gcfg, channels, height, width, out_frames)
    # the data's support (no negative counts), set before EMA copies G
    g_module.set_lower(data.transforms.normalized_lower())
    g_module = g_module.to(device)
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
        hparams=hparams,
    )
    if dist.is_main and config.eval.every:
        run.evaluator = Evaluator(config, data, device)
    run.monitor = Monitor(config.health, config.loss.name) if config.health.enabled else None
    if dist.is_main:
        run.grid = describe_grid(data.source, config.spec.patch)  # one pass for the static mask
    if state:
        restore(run, state)
    else:
        run.initial = _copy(training_state(run))
    if dist.is_main:
        _write_run_files(run)
        run.logger = RunLogger(logdir, purge_step=run.step + 1 if state else None)
        run.logger.layout(data.spec.variable_names)
        run.logger.hparams_start(hparam_values(run), hparam_metrics(run))
    return run


def loop(run: Run, stop: int, on_evaluation: OnEvaluation | None) -> dict[str, float]:
    cfg = run.config
    bar = run.bar = tqdm(
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
            check_health(run, last)
        if run.step % cfg.train.ckpt_every == 0 or run.step == stop:
            save(run)
        if cfg.eval.every and run.step % cfg.eval.every == 0:
            evaluate(run, on_evaluation)
    bar.close()
    return last


def evaluate(run: Run, on_evaluation: OnEvaluation | None) -> Evaluation | None:
    """Domain metrics of the EMA generator (rank 0): logged, and best.pt kept by score."""
    if run.evaluator is None:
        return None
    tick = time.perf_counter()
    evaluation = run.evaluator(run.ema.model, run.step, figures=run.logger is not None)
    if evaluation.is_best:
        save(run, best=evaluation)
    if run.logger:
        run.logger.scalars(evaluation.scalars, run.step)
        run.logger.figures(evaluation.figures, run.step)
        run.logger.scalars({"Perf/eval_seconds": time.perf_counter() - tick}, run.step)
        run.logger.flush()
    if run.monitor:
        events = run.monitor.observe_evaluation(
            run.step, evaluation.scalars, evaluation.score, evaluation.report.get("n_real")
        )
        if run.dist.enabled:  # only rank 0 evaluates: a rollback or stop there alone would
            events = [dataclasses.replace(e, action="warn") for e in events]  # split the ranks
        act_on(run, events)
    if on_evaluation:
        on_evaluation(run, evaluation)
    return evaluation


def check_health(run: Run, values: dict[str, float]) -> None:
    """Feed the detectors the averaged stats (the same on every rank) and act on events."""
    if run.monitor is None:
        return
    events = run.monitor.observe(run.step, values)
    if run.logger:
        run.logger.scalars(run.monitor.scalars(), run.step)
    act_on(run, events)


def act_on(run: Run, events: list[Event]) -> None:
    """Warn about each event, then stop or roll back if any event's action says so."""
    for event in events:
        if run.dist.is_main:
            tqdm.write(f"stgan: warning: step {event.step}: {event.message}", file=sys.stderr)
        if run.logger:
            run.logger.text("Health/events", f"step {event.step}: {event.message}", event.step)
    actions = {event.action for event in events}
    if "stop" in actions:
        stopping = [e for e in events if e.action == "stop"]
        raise TrainingStopped(
            f"stopped by the health check at step {run.step}: {stopping[0].message}"
        )
    if "rollback" in actions:
        rollback(run)


def rollback(run: Run) -> None:
    """Reload the newest checkpoint with finite weights, scale both rates, reseed."""
    cfg = run.config.health
    run.rollbacks += 1
    if run.rollbacks > cfg.max_rollbacks:
        raise TrainingStopped(
            f"training diverged again after {cfg.max_rollbacks} rollbacks (step {run.step}); "
            "lower optim.lr_g/optim.lr_d, set optim.grad_clip, or raise health.max_rollbacks"
        )
    state = _healthy_state(run)
    rollbacks, bar_step = run.rollbacks, run.step
    restore(run, state, monitor=False)
    run.rollbacks = rollbacks
    for opt, sched in ((run.opt_g, run.sched_g), (run.opt_d, run.sched_d)):
        scale = cfg.lr_factor**rollbacks / _lr_scale(state)
        sched.base_lrs = [lr * scale for lr in sched.base_lrs]
        for group in opt.param_groups:
            group["lr"] *= scale
    seed_everything(run.config.train.seed + run.dist.rank + 104_729 * rollbacks)
    run.monitor.reset_after_rollback()
    if run.bar is not None:
        run.bar.update(run.step - bar_step)
    if run.dist.is_main:
        tqdm.write(
            f"stgan: rolled back to step {run.step}, learning rates x{cfg.lr_factor**rollbacks:g} "
            f"(rollback {rollbacks} of {cfg.max_rollbacks})",
            file=sys.stderr,
        )


def _healthy_state(run: Run) -> dict:
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
    return _copy(run.initial)


def _finite(state_dict: dict) -> bool:
    return all(torch.isfinite(t).all() for t in state_dict.values() if t.is_floating_point())


def _lr_scale(state: dict) -> float:
    return float(state.get("health", {}).get("lr_scale", 1.0))


def _copy(state: dict) -> dict:
    return {
        k: (_copy(v) if isinstance(v, dict) else v.clone() if torch.is_tensor(v) else v)
        for k, v in state.items()
    }


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
        run.stats.report("Health/real_diversity", batch_diversity(real_in))
        run.stats.report("Health/fake_diversity", batch_diversity(fake_in))
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
    run.stats.report("Health/nonfinite", float(nonfinite_parameters(run.g_module, run.d_module)))
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


def save(run: Run, best: Evaluation | None = None) -> None:
    """A training checkpoint (rank 0); with ``best``, checkpoints/best.pt and its evaluation."""
    if not run.dist.is_main:
        return
    if nonfinite_parameters(run.g_module, run.d_module):
        tqdm.write(
            f"stgan: warning: step {run.step}: weights are not finite; checkpoint skipped",
            file=sys.stderr,
        )
        return
    state = training_state(run)
    if best is not None:
        state["evaluation"] = {"step": best.step, "score": best.score, "metrics": best.scalars}
        ckpt.save_best(run.logdir / "checkpoints", state)
        return
    ckpt.save_checkpoint(
        run.logdir / "checkpoints", run.step, state, run.config.train.keep_checkpoints
    )
    if run.logger:
        run.logger.flush()


def training_state(run: Run) -> dict:
    """Everything a checkpoint holds: tensors and plain containers only."""
    config = resolved_dict(run.config)
    return {
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
        "evaluator": run.evaluator.state_dict() if run.evaluator else {},
        "health": {
            "monitor": run.monitor.state_dict() if run.monitor else {},
            "rollbacks": run.rollbacks,
            "lr_scale": run.config.health.lr_factor**run.rollbacks,
        },
        "grid": run.grid or {},
        "transforms": run.transforms.to_dict(),
    }


def restore(run: Run, state: dict, monitor: bool = True) -> None:
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
    if run.evaluator and state.get("evaluator"):
        run.evaluator.load_state_dict(state["evaluator"])
    health = state.get("health", {})
    run.rollbacks = int(health.get("rollbacks", 0))
    if monitor and run.monitor and health.get("monitor"):
        run.monitor.load_state_dict(health["monitor"])
    if run.dist.rank == 0:
        ckpt.restore_rng(state["rng"])
    else:  # only rank 0's RNG is saved; other ranks continue on their own stream
        seed_everything(run.config.train.seed + run.dist.rank + 7919 * run.step)


def _resume_state(config: PipelineConfig, logdir: Path, resume: bool) -> dict | None:
    directory = logdir / "checkpoints"
    found = ckpt.load_latest(directory) if directory.is_dir() else None
    if not resume:
        if found is not None:
            raise CheckpointError(
                f"{logdir} already holds checkpoints; pass --resume to continue it or choose a new --logdir"
            )
        return None
    if found is None:
        raise CheckpointError(
            f"--resume: no valid checkpoint in {directory}; train without --resume first"
        )
    newest, state = found
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


def hparam_values(run: Run) -> dict:
    """The HParams row: the settings users tune most, plus what a sweep chose."""
    cfg = run.config
    values = {
        "generator": cfg.model.generator.name,
        "discriminator": cfg.model.discriminator.name,
        "loss": cfg.loss.name,
        "lr_g": cfg.optim.lr_g,
        "lr_d": cfg.optim.lr_d,
        "n_critic": cfg.optim.n_critic,
        "batch_size": cfg.train.batch_size,
        "r1_gamma": cfg.loss.r1_gamma,
        "ema_decay": cfg.optim.ema_decay,
        "spectral_norm_d": cfg.model.discriminator.spectral_norm,
    }
    return {**values, **(run.hparams or {})}


def hparam_metrics(run: Run) -> list[str]:
    """The metric tags the HParams dashboard shows beside each run's settings."""
    names = ["Metrics/score"] if run.config.eval.every else []
    for v in run.config.spec.variable_names if run.config.eval.every else ():
        names += [f"Metrics/{v}/{m}" for m in (*run.config.eval.criterion, "recall", "coverage")]
    if run.hparams and "sweep.trial" in run.hparams:
        names.append("Sweep/value")  # the value `stgan sweep` ranks trials by
    return names + ["Loss/G", "Loss/D"]
