"""The training loop. Reads top to bottom:

setup (data, models, optimizers, resume) → for each step: D phase (n_critic
times), G phase, EMA, schedules, stats → log and health checks, evaluate (domain
metrics, best.pt), checkpoint (holding that evaluation), act on the evaluation →
final checkpoint.

The adversarial objective (instance noise, masking, context, penalties) lives in
``stgan.objective``; the training state and checkpoints in ``stgan.training.state``;
rollback in ``stgan.training.rollback``. This file owns the optimizers and decides
when to step, clip and average.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from stgan.atomic import write_text_atomic
from stgan.data import PreparedData, calendar, prepare
from stgan.data.transforms import Transforms
from stgan.errors import TrainingStopped
from stgan.logging import RunLogger
from stgan.models import build_discriminator, build_generator
from stgan.objective import AdversarialObjective
from stgan.run_lock import hold_run_directory
from stgan.threads import use_threads
from stgan.training.batches import BatchStream, CalendarWindows
from stgan.training.checkpoint import seed_everything
from stgan.training.config import PipelineConfig, resolved_dict
from stgan.training.distributed import Dist, init_distributed, resolve_device, shutdown
from stgan.training.evaluation import Evaluation, Evaluator, training_grid
from stgan.training.health import Event, Monitor, nonfinite_parameters, weight_norm
from stgan.training.health_log import HealthLog
from stgan.training.hparams import hparam_metrics, hparam_values
from stgan.training.leftovers import remove_leftovers
from stgan.training.optim import EMA, adam_pair, scheduler
from stgan.training.rollback import rollback, snapshot
from stgan.training.state import (
    RUN_CONFIG,
    Network,
    Observers,
    Run,
    TrainingData,
    autocast,
    restore,
    resume_state,
    save,
    training_state,
)
from stgan.training.stats import Stats

# torch.compile's options for G and D (train.compile): one static graph per input shape (D
# sees 2B windows in the D phase, B in the G phase; a dynamic batch graph is slower on CPU)
COMPILE_OPTIONS: dict = {"dynamic": False}

# Called on rank 0 after each in-training evaluation (e.g. by `stgan sweep` to prune);
# an exception raised there ends training after the logs are closed.
OnEvaluation = Callable[[Run, Evaluation], None]


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
    row, metrics = hparam_values(config, hparams), hparam_metrics(config, hparams)
    try:
        # one writer per run directory: rank 0 writes for all ranks
        with hold_run_directory(logdir) if dist.is_main else contextlib.nullcontext():
            run = setup(config, logdir, torch_device, dist, resume)
            if run.logger:
                run.logger.hparams_start(row, metrics)
            stop = min(config.train.steps, max_steps) if max_steps else config.train.steps
            try:
                return loop(run, stop, on_evaluation)
            finally:
                if run.logger:  # also when stopped or pruned, so the HParams row has an end
                    run.logger.hparams_end(row, metrics)
                    run.logger.close()
    finally:
        shutdown(dist)


def setup(
    config: PipelineConfig, logdir: Path, device: torch.device, dist: Dist, resume: bool
) -> Run:
    """Data, models, optimizers and logger; restores the newest checkpoint when resuming."""
    logdir.mkdir(parents=True, exist_ok=True)
    if dist.is_main:  # rank 0 writes the run directory (and holds its lock)
        _remove_leftovers(logdir)
    state = resume_state(config, logdir, resume)
    if resume and state is None and dist.is_main:
        print(
            f"stgan: --resume: no checkpoint in {logdir} yet; starting from step 0", file=sys.stderr
        )
    seed_everything(config.train.seed + dist.rank)
    transforms = Transforms.load(logdir / "transforms.json") if state else None
    data = prepare(config.spec, transforms=transforms)
    # the data's cycles (a property of the data, recorded in the grid) and the ones G and
    # D are given (none when model.generator.calendar is off)
    cycles = calendar.conditioned(calendar.training_cycles(data), config.model.generator.calendar)
    table = calendar.features(data.source.time, cycles)  # (N_time, F)
    dataset = CalendarWindows(data.dataset("train"), table)
    g, d, ema = build_networks(config, data, dataset[0][0].shape, dist, device, table.shape[1])
    stats = Stats()
    evaluate_here = dist.is_main and config.eval_steps  # rank 0 evaluates
    # one pass for the static mask; only rank 0 writes checkpoints and evaluates
    grid = training_grid(config, data) if dist.is_main else {}
    run = Run(
        config=config,
        logdir=logdir,
        device=device,
        dist=dist,
        g=g,
        d=d,
        ema=ema,
        objective=AdversarialObjective(
            config.loss,
            d.wrapped,
            d.module,
            stats.report,
            functools.partial(autocast, config.train.precision, device),
        ),
        data=TrainingData(
            batches=BatchStream(
                dataset, config.train.batch_size, config.train.num_workers, config.train.seed, dist
            ),
            transforms=data.transforms,
            grid=grid,
        ),
        stats=stats,
        observers=Observers(
            monitor=Monitor(config.health, config.loss.name) if config.health.enabled else None,
            evaluator=Evaluator(config, data, device, grid) if evaluate_here else None,
        ),
    )
    if state:
        restore(run, state)
    else:
        run.initial = snapshot(training_state(run))
    if dist.is_main:
        _write_run_files(run, fresh=state is None)
        # on resume, TensorBoard and health.jsonl drop what the killed run logged after
        # its checkpoint
        run.observers.logger = RunLogger(logdir, purge_step=run.step + 1 if resume else None)
        if resume:
            HealthLog(logdir).drop_after(run.step)
        run.logger.layout(data.spec.variable_names)
    return run


def build_networks(
    config: PipelineConfig,
    data: PreparedData,
    window: tuple[int, ...],
    dist: Dist,
    device: torch.device,
    calendar_features: int = 0,
) -> tuple[Network, Network, EMA]:
    """G and D for windows of shape ``window`` ``(T, C, H, W)`` with ``calendar_features``
    per frame, with their optimizers and schedules, and the EMA of G."""
    _, channels, height, width = window
    out_frames = config.output_frames
    g_module = build_generator(
        config.model.generator, channels, height, width, out_frames, calendar_features
    )
    # the data's support (no negative counts), set before EMA copies G
    g_module.set_lower(data.transforms.normalized_lower())
    g_module = g_module.to(device)
    d_module = build_discriminator(
        config.model.discriminator, channels, height, width, out_frames, calendar_features
    ).to(device)
    ema = EMA(g_module, config.optim.ema_decay)
    opt_g, opt_d = adam_pair(g_module, d_module, config.optim)
    g = _network(g_module, opt_g, config, dist, device, compiled=config.train.compile)
    # R1 and WGAN-GP differentiate D's gradient: torch.compile has no double backward
    d_compiled = config.train.compile and not (config.loss.r1_gamma or config.loss.gp_weight)
    return g, _network(d_module, opt_d, config, dist, device, compiled=d_compiled), ema


def loop(run: Run, stop: int, on_evaluation: OnEvaluation | None) -> dict[str, float]:
    cfg = run.config
    bar = tqdm(
        total=stop, initial=run.step, desc="train", disable=not run.dist.is_main, dynamic_ncols=True
    )
    last: dict[str, float] = {}
    tick, seen = time.perf_counter(), 0
    while run.step < stop:
        train_step(run)
        for side, network in (("G", run.g), ("D", run.d)):
            run.stats.report(f"LR/{side}", network.opt.param_groups[0]["lr"])  # this step's rate
            network.sched.step()
        run.step += 1
        seen += (
            cfg.train.batch_size * cfg.optim.n_critic * cfg.optim.grad_accum * run.dist.world_size
        )
        if run.step % cfg.train.log_every == 0 or run.step == stop:
            run.stats.report("Perf/samples_per_s", seen / (time.perf_counter() - tick))
            tick, seen = time.perf_counter(), 0
            last = log_step(run, bar)
            check_health(run, last)
        # this step's evaluation before its checkpoint, so the checkpoint holds it (the
        # evaluator's best, the monitor's view of it); acting on it comes after
        scored = evaluate(run) if run.step in cfg.eval_steps else None
        if run.step in cfg.quick_eval_steps:  # between full evaluations, for the curves
            quick_evaluate(run)
        if run.step % cfg.train.ckpt_every == 0 or run.step == stop:
            save(run)
        if scored:
            act_on_evaluation(run, *scored, on_evaluation)
        bar.update(run.step - bar.n)  # one step on, or back to where a rollback went
    bar.close()
    return last


def train_step(run: Run) -> None:
    """``optim.n_critic`` D steps, then one G step (on the last D step's fakes with
    ``optim.reuse_fakes``)."""
    run.objective.begin_step(run.step)
    n_critic, kept = run.config.optim.n_critic, None
    for i in range(n_critic):
        last = i == n_critic - 1  # only the last D step's fakes need G's graph
        kept = d_phase(run, run.d_steps + i, keep=run.config.optim.reuse_fakes and last)
    g_phase(run, kept)


Kept = tuple["Batch", torch.Tensor]  # a D step's batch and its fakes, G's graph attached


def d_phase(run: Run, d_step: int, keep: bool = False) -> Kept | None:
    """One D optimizer step over ``grad_accum`` real batches and as many fakes; with ``keep``
    (``optim.reuse_fakes``, one micro-batch) the fakes are made with G's graph and returned
    with their batch for the G step."""
    accum = run.config.optim.grad_accum
    run.d.opt.zero_grad(set_to_none=True)
    for _ in range(accum):
        batch = next_batch(run)
        real, mask, context, days = batch  # (B, T, C, H, W)
        with torch.set_grad_enabled(keep), run.autocast():
            fake = generate(run, real.shape[0], context, days)
        loss = run.objective.d_loss(real, fake.detach(), mask, context, d_step, days)
        (loss / accum).backward()
    run.stats.report("Grad/D_norm", clip(run.d.module, run.config.optim.grad_clip))
    run.d.opt.step()
    return (batch, fake) if keep else None


def g_phase(run: Run, kept: Kept | None = None) -> None:
    """One G optimizer step over ``grad_accum`` fake batches, each with its own real batch's
    mask, context and future (``loss.generation_samples`` fakes of that context); or over
    the ``kept`` fakes of the last D step, against that step's batch."""
    accum = run.config.optim.grad_accum
    run.g.opt.zero_grad(set_to_none=True)
    for _ in range(accum):
        if kept:
            (real, mask, context, days), fake = kept
            fakes = [fake]
        else:
            real, mask, context, days = next_batch(run)
            with run.autocast():
                fakes = [
                    generate(run, mask.shape[0], context, days)
                    for _ in range(run.objective.generation_samples)
                ]
        loss = run.objective.g_loss(fakes, mask, context, real, days)
        (loss / accum).backward()
    run.stats.report("Grad/G_norm", clip(run.g.module, run.config.optim.grad_clip))
    run.g.opt.step()
    run.ema.update(run.g.module)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def next_batch(run: Run) -> Batch:
    """``(target, mask, context, calendar)`` on the device; context is the first T_in frames
    when conditional; calendar ``(B, T_in + T, F)`` the features of all the window's frames
    (context first), None when the models take none."""
    x, mask, days = run.data.batches.next()  # (B, T, C, H, W), (B, T, F)
    x = x.to(run.device, non_blocking=True)
    mask = mask.to(run.device, non_blocking=True).float()
    days = days.to(run.device, non_blocking=True) if days.shape[-1] else None
    t_in = run.config.context_frames
    if not t_in:
        return x, mask, None, days
    return x[:, t_in:], mask[:, t_in:], x[:, :t_in], days


def generate(
    run: Run, batch: int, context: torch.Tensor | None, days: torch.Tensor | None = None
) -> torch.Tensor:
    """``batch`` fakes ``(B, T_out, C, H, W)`` from the wrapped G (so DDP sees every pass),
    for the calendar of the generated frames (the last T_out of ``days``)."""
    z, noise = run.g.module.latents(batch)
    days = None if days is None else days[:, run.config.context_frames :]
    return run.g.wrapped(z, noise, context, days)


def clip(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip (when max_norm > 0) and return the total gradient norm."""
    params = [p for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))


def log_step(run: Run, bar: tqdm) -> dict[str, float]:
    run.stats.report("Health/nonfinite", float(nonfinite_parameters(run.g.module, run.d.module)))
    run.stats.report("Weights/G_norm", weight_norm(run.g.module))
    run.stats.report("Weights/D_norm", weight_norm(run.d.module))
    if run.device.type == "cuda":
        run.stats.report("Perf/gpu_mem_gb", torch.cuda.max_memory_allocated(run.device) / 2**30)
    values = run.stats.collect()  # averaged across ranks
    if run.logger:
        run.logger.scalars(values, run.step)
        if run.step % run.config.train.hist_every == 0:
            run.logger.histograms({"G": run.g.module, "D": run.d.module}, run.step)
        bar.set_postfix(
            G=f"{values['Loss/G']:.3f}",
            D=f"{values['Loss/D']:.3f}",
            sps=f"{values['Perf/samples_per_s']:.0f}",
        )
    return values


def evaluate(run: Run) -> tuple[Evaluation, list[Event]] | None:
    """Domain metrics of the EMA generator (rank 0): best.pt kept by score, logged, and
    shown to the health monitor; returns the evaluation and the events it started."""
    evaluator, monitor = run.observers.evaluator, run.observers.monitor
    if evaluator is None:
        return None
    tick = time.perf_counter()
    evaluation = evaluator(run.ema.model, run.step, figures=run.logger is not None)
    if evaluation.is_best:
        save(run, best=evaluation)
    if run.logger:
        run.logger.scalars(evaluation.scalars, run.step)
        run.logger.figures(evaluation.figures, run.step)
        run.logger.scalars({"Perf/eval_seconds": time.perf_counter() - tick}, run.step)
        run.logger.flush()
    if not monitor:
        return evaluation, []
    events = monitor.observe_evaluation(
        run.step, evaluation.scalars, evaluation.score, evaluation.report.get("n_real")
    )
    if run.dist.enabled:  # only rank 0 evaluates: a rollback or stop there alone would
        events = [dataclasses.replace(e, action="warn") for e in events]  # split the ranks
    return evaluation, events


def quick_evaluate(run: Run) -> None:
    """The cheap metrics of the EMA generator (rank 0), logged as run ``quick``, and the
    seconds they took (``Perf/quick_eval_seconds``); nothing else reads them."""
    evaluator = run.observers.evaluator
    if evaluator is None or run.logger is None:
        return
    tick = time.perf_counter()
    scalars = evaluator.quick(run.ema.model)
    run.logger.quick_scalars(scalars, run.step)
    run.logger.scalars({"Perf/quick_eval_seconds": time.perf_counter() - tick}, run.step)


def act_on_evaluation(
    run: Run, evaluation: Evaluation, events: list[Event], on_evaluation: OnEvaluation | None
) -> None:
    """Warn, roll back or stop on an evaluation's events, then call ``on_evaluation``."""
    act_on(run, events)
    if on_evaluation:
        on_evaluation(run, evaluation)


def check_health(run: Run, values: dict[str, float]) -> None:
    """Feed the detectors the averaged stats (the same on every rank) and act on events."""
    monitor = run.observers.monitor
    if monitor is None:
        return
    events = monitor.observe(run.step, values)
    if run.logger:
        run.logger.scalars(monitor.scalars(), run.step)
    act_on(run, events)


def act_on(run: Run, events: list[Event]) -> None:
    """Warn about each event, then stop or roll back if any event's action says so."""
    if run.logger:  # rank 0: health.jsonl, for stgan doctor and stgan sweep
        HealthLog(run.logdir).append(events)
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


def _network(
    module: nn.Module,
    opt: torch.optim.Optimizer,
    config: PipelineConfig,
    dist: Dist,
    device: torch.device,
    compiled: bool,
) -> Network:
    """``module`` with its optimizer, LR schedule and compiled and/or DDP-wrapped forward.

    ``compiled`` compiles ``module`` in place (:data:`COMPILE_OPTIONS`), so the bare module
    the G phase scores fakes with (``Network.module``) runs compiled too; its state dict keeps
    its keys. D under R1 or WGAN-GP stays eager (``build_networks``): their gradient of D's
    gradient is a double backward, which compiled graphs do not support.
    """
    if compiled:
        module.compile(**COMPILE_OPTIONS)
    wrapped = module
    if dist.enabled:
        wrapped = DDP(wrapped, device_ids=[device.index] if device.type == "cuda" else None)
    return Network(module, wrapped, opt, scheduler(opt, config.optim, config.train.steps))


def _write_run_files(run: Run, fresh: bool) -> None:
    """config.yaml, and transforms.json when starting from step 0 (a resumed run reads it)."""
    write_text_atomic(
        run.logdir / RUN_CONFIG, yaml.safe_dump(resolved_dict(run.config), sort_keys=False)
    )
    if fresh or not (run.logdir / "transforms.json").exists():
        run.data.transforms.save(run.logdir / "transforms.json")


def _remove_leftovers(logdir: Path) -> None:
    """Remove what killed writes left in ``logdir``, saying so in one line."""
    removed = remove_leftovers(logdir)
    if removed:
        names = ", ".join(str(p.relative_to(logdir)) for p in removed)
        print(
            f"stgan: removed {len(removed)} temporary file(s) of a killed write: {names}",
            file=sys.stderr,
        )
