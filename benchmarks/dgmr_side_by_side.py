"""DGMR's configuration side by side: stgan beside the public PyTorch DGMR port.

Both sides make 18 frames from 4 context frames and take DGMR's step: 2 D steps, then
1 G step on 6 generator samples with the grid-cell regulariser (weight 20) on their mean.

- stgan: the conditional convgru G with the dual D, through ``stgan.objective``
  (``loss.generation_samples: 6``, ``loss.grid_cell_weight: 20``, hinge), the step of
  ``stgan.training.loop`` (D fakes without gradient, Adam, gradient norms, EMA of G).
- the port: ``dgmr`` 1.4.4 (openclimatefix/skillful_nowcasting, MIT licence), its own
  ``DGMR.training_step`` called unchanged without a Lightning Trainer, as the anchor's
  harness does (``../shared/dgmr_anchor/bench_dgmr.py``): ``optimizers()`` gives the Adam
  pair, ``manual_backward`` is ``backward``, ``log_dict`` does nothing; anomaly detection
  off. Its source is imported from ``--dgmr-source`` (the anchor's vendored copy) or, when
  that is empty, an installed ``dgmr``; it runs in ``--dgmr-python``, an interpreter with
  its imports (torch, einops, pytorch_lightning, huggingface_hub; torchvision is used only
  by its image logging and stands in as an empty module when missing).

Each (side, grid, batch) runs in its own process (clean peak RSS) with the same threads:
warm-up steps, timed steps, then one more step under ``torch.profiler`` (CPU activity)
whose ``aten::`` events are the ops per step. Inputs are U[0, 1) tensors of
``(B, 4, 1, S, S)`` and ``(B, 18, 1, S, S)``. Prints parameter counts, samples/s, peak
memory and ops per step per side, and stgan / port ratios against the goals (>= 3x the
samples/s, <= 0.5x the peak memory, <= 1/20 of the ops). On ``--device cuda`` the peak is
``torch.cuda.max_memory_allocated`` and the profiler also counts GPU kernels.

    python benchmarks/train_step.py --dgmr [--sizes 128 256] [--batches 1 2] [--steps 2]
        [--dgmr-python /work/dgmr-venv/bin/python] [--dgmr-source ../shared/dgmr_anchor]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTEXT, FORECAST = 4, 18  # DGMR: 4 context frames -> 18 frames
D_STEPS, GENERATION_SAMPLES, GRID_CELL_WEIGHT = 2, 6, 20.0  # DGMR's step
# stgan's widths: about as many parameters as the port (within 2x), most of them at the
# lowest resolution (S/16), where they cost the fewest operations per parameter
STGAN_G = {
    "name": "convgru",
    "base_channels": 512,
    "num_layers": 2,
    "up_stages": 4,
    "conditional": True,
    "context_frames": CONTEXT,
}
STGAN_D = {"name": "dual", "base_channels": 32, "num_stages": 4, "num_frames": 8}
GOALS = {"samples_per_s": (3.0, ">="), "peak_gib": (0.5, "<="), "ops_per_step": (1 / 20, "<=")}


def stgan_step(size: int, batch: int, device, args: argparse.Namespace):
    """stgan's DGMR step: ``(step, G params, D params)``."""
    import torch

    from stgan.config import build
    from stgan.models import (
        DiscriminatorConfig,
        GeneratorConfig,
        build_discriminator,
        build_generator,
    )
    from stgan.objective import AdversarialObjective
    from stgan.training.config import LossConfig, OptimConfig
    from stgan.training.optim import EMA, adam_pair

    g_cfg = build(GeneratorConfig, STGAN_G, "model.generator")
    frames = args.forecast
    d_cfg = build(
        DiscriminatorConfig,
        {**STGAN_D, "num_frames": min(STGAN_D["num_frames"], frames)},
        "model.discriminator",
    )
    g = build_generator(g_cfg, 1, size, size, frames).to(device)
    d = build_discriminator(d_cfg, 1, size, size, frames).to(device)
    optim = OptimConfig()
    opt_g, opt_d = adam_pair(g, d, optim)
    ema = EMA(g, optim.ema_decay)
    loss = {
        "name": "hinge",
        "generation_samples": args.samples,
        "grid_cell_weight": GRID_CELL_WEIGHT,
    }
    objective = AdversarialObjective(
        build(LossConfig, loss, "loss"), d, d, report=lambda name, value: None
    )
    context = torch.rand(batch, CONTEXT, 1, size, size, device=device)  # (B, T_in, C, H, W)
    future = torch.rand(batch, frames, 1, size, size, device=device)  # (B, T, C, H, W)
    mask = torch.ones_like(future)

    def step() -> None:  # stgan.training.loop's d_phase x 2, then g_phase
        for d_step in range(D_STEPS):
            opt_d.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = g(*g.latents(batch), context)
            objective.d_loss(future, fake, mask, context, d_step).backward()
            torch.nn.utils.clip_grad_norm_(d.parameters(), float("inf"))
            opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        fakes = [g(*g.latents(batch), context) for _ in range(objective.generation_samples)]
        objective.g_loss(fakes, mask, context, future).backward()
        torch.nn.utils.clip_grad_norm_(g.parameters(), float("inf"))
        opt_g.step()
        ema.update(g)

    return step, count(g), count(d)


def port_step(size: int, batch: int, device, args: argparse.Namespace):
    """The port's own ``training_step``: ``(step, G params, D params)``."""
    import torch

    source = args.dgmr_source
    if source and Path(source, "dgmr").is_dir():
        sys.path.insert(0, str(Path(source).resolve()))
    import pytorch_lightning  # noqa: F401  (before the stand-in: torchmetrics looks for torchvision)

    try:
        import torchvision  # noqa: F401
    except Exception:  # only DGMR.visualize_step uses it (off); a CPU torch may not load it
        sys.modules["torchvision"] = types.ModuleType("torchvision")
    from dgmr import DGMR

    model = DGMR(
        forecast_steps=args.forecast,
        input_channels=1,
        output_shape=size,
        generation_steps=args.samples,
        grid_lambda=GRID_CELL_WEIGHT,
    ).to(device)
    torch.autograd.set_detect_anomaly(False)  # DGMR.__init__ turns it on for the process
    model.train()
    (opt_g, opt_d), _ = model.configure_optimizers()
    model.optimizers = lambda use_pl_optimizer=True: (opt_g, opt_d)
    model.manual_backward = lambda loss, *a, **k: loss.backward()
    model.log_dict = lambda *a, **k: None
    images = torch.rand(batch, CONTEXT, 1, size, size, device=device)
    future = torch.rand(batch, args.forecast, 1, size, size, device=device)
    calls = iter(range(10**9))

    def step() -> None:
        model.training_step((images, future), next(calls))

    return step, count(model.generator), count(model.discriminator)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def measure(side: str, size: int, batch: int, args: argparse.Namespace) -> dict:
    """One side's figures on one grid and batch, in this (fresh) process."""
    import torch

    device = torch.device(args.device)
    torch.manual_seed(0)
    build_step = stgan_step if side == "stgan" else port_step
    step, params_g, params_d = build_step(size, batch, device, args)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
    else:  # read before the profiled step, whose event records are not the model's
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    ops, kernels = profiled_ops(step, sync, device)
    return {
        "params_g": params_g,
        "params_d": params_d,
        "s_per_step": seconds,
        "samples_per_s": batch / seconds,
        "peak_gib": peak,
        "ops_per_step": ops,
        "kernels_per_step": kernels,
    }


def profiled_ops(step, sync, device) -> tuple[int, int | None]:
    """``aten::`` ops (and, on CUDA, GPU kernels) of one step under ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        step()
        sync()
    events = prof.events()
    ops = sum(1 for e in events if e.name.startswith("aten::"))
    if device.type != "cuda":
        return ops, None
    return ops, sum(1 for e in events if e.device_type.name == "CUDA")


def run_child(side: str, size: int, batch: int, args: argparse.Namespace) -> dict:
    """``measure`` in a fresh process: the port's interpreter or this one; errors as notes."""
    python = args.dgmr_python if side == "port" else sys.executable
    child = [python, __file__, "--one", side, str(size), str(batch), *forwarded(args)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(
            child, capture_output=True, text=True, env=env, timeout=args.child_timeout_s
        )
    except subprocess.TimeoutExpired:
        return {"note": f"not measured: over --child-timeout-s {args.child_timeout_s:.0f}"}
    except OSError as error:
        return {"note": f"not measured: cannot start {python} ({error.strerror})"}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        return {"note": f"not measured: {lines[-1][:160]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    return [
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--device={args.device}",
        f"--forecast={args.forecast}",
        f"--samples={args.samples}",
        f"--dgmr-source={args.dgmr_source}",
    ]


def row(side: str, size: int, batch: int, r: dict) -> str:
    if "note" in r:
        return f"{side:<6} {size:>4} {batch:>5}  {r['note']}"
    params = (r["params_g"] + r["params_d"]) / 1e6
    split = f"{r['params_g'] / 1e6:.1f}+{r['params_d'] / 1e6:.1f}"
    return (
        f"{side:<6} {size:>4} {batch:>5} {params:>8.1f} {split:>11} {r['s_per_step']:>9.1f} "
        f"{r['samples_per_s']:>10.4f} {r['peak_gib']:>9.2f} {r['ops_per_step']:>10,}"
        + (f" {r['kernels_per_step']:>10,}" if r.get("kernels_per_step") is not None else "")
    )


def ratios(ours: dict, port: dict) -> str:
    if "note" in ours or "note" in port:
        return "       ratios: not measured (a side has no figures)"
    parts = [
        f"params {(ours['params_g'] + ours['params_d']) / (port['params_g'] + port['params_d']):.2f}x"
    ]
    for key, (goal, sense) in GOALS.items():
        value = ours[key] / port[key]
        met = value >= goal if sense == ">=" else value <= goal
        parts.append(f"{key} {value:.3g}x (goal {sense} {goal:.3g}: {'met' if met else 'NOT met'})")
    return "       stgan/port: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="train_step.py --dgmr",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--forecast",
        type=int,
        default=FORECAST,
        help="frames generated (DGMR: 18; fewer for a smoke test)",
    )
    parser.add_argument(
        "--samples", type=int, default=GENERATION_SAMPLES, help="G samples per G step"
    )
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads, both sides")
    parser.add_argument("--sides", nargs="+", default=["stgan", "port"], choices=["stgan", "port"])
    parser.add_argument(
        "--dgmr-source",
        default=str(ROOT.parent / "shared" / "dgmr_anchor"),
        help="folder holding the port's dgmr/ package (else an installed dgmr is used)",
    )
    parser.add_argument("--dgmr-python", default=sys.executable, help="interpreter for the port")
    parser.add_argument(
        "--budget-s", type=float, default=3600, help="skip what would start after this"
    )
    parser.add_argument("--child-timeout-s", type=float, default=1800)
    parser.add_argument("--one", nargs=3, metavar=("SIDE", "SIZE", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        side, size, batch = args.one
        print(json.dumps(measure(side, int(size), int(batch), args)))
        return
    start = time.perf_counter()
    print(
        f"DGMR step ({D_STEPS} D steps, 1 G step on {args.samples} samples, grid-cell "
        f"weight {GRID_CELL_WEIGHT:g}), {CONTEXT} -> {args.forecast} frames, device {args.device}, "
        f"{args.threads} thread(s), {args.warmup} warm-up + {args.steps} timed steps; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'side':<6} {'grid':>4} {'batch':>5} {'params M':>8} {'G+D M':>11} {'s/step':>9} "
        f"{'samples/s':>10} {'peak GiB':>9} {'aten ops':>10}"
        + (" GPU kernels" if args.device.startswith("cuda") else "")
    )
    for size in args.sizes:
        for batch in args.batches:
            results = {}
            for side in args.sides:
                if time.perf_counter() - start > args.budget_s:
                    results[side] = {"note": f"not measured: past --budget-s {args.budget_s:.0f}"}
                else:
                    results[side] = run_child(side, size, batch, args)
                print(row(side, size, batch, results[side]), flush=True)
            if len(results) == 2:
                print(ratios(results["stgan"], results["port"]), flush=True)
    print(f"total {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
