"""Training-step benchmark: samples/s and peak memory per G/D combination.

One step = one D update (hinge loss on a real and a generated batch) plus one G
update, as in ``stgan.training.loop``. Each combination runs in its own process
so that peak RSS (CPU) or peak allocated memory (CUDA) belongs to it alone.

Run: ``python benchmarks/train_step.py [--size 64] [--frames 16] [--batch 8] [--device cpu]``

``--dgmr`` runs DGMR's configuration side by side (:mod:`dgmr_side_by_side`): stgan's
conditional convgru G with the dual D and DGMR's step recipe, beside the public DGMR port.

``--compile`` times the demo pipeline's training step (``pipelines/demo.yaml``: its data,
models, loss and batch; ``stgan.training.loop``'s D and G phases) eager and with
``train.compile: true`` (inductor), one thread, each in its own process. ``--warmup`` steps
first absorb the compile time (printed apart: the first steps' time beyond the steady
step's), then ``--steps`` steps are timed; prints the speed-up (goal >= 1.3x).

    python benchmarks/train_step.py --compile --steps 20 [--warmup 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "pipelines" / "demo.yaml"
GENERATORS = ("convgru", "convlstm", "conv3d")
DISCRIMINATORS = ("conv3d", "dual")


def measure(g_name: str, d_name: str, args: argparse.Namespace) -> dict:
    import torch

    from stgan.config import build
    from stgan.losses import get_loss
    from stgan.models import (
        DiscriminatorConfig,
        GeneratorConfig,
        build_discriminator,
        build_generator,
    )

    device = torch.device(args.device)
    gcfg = build(GeneratorConfig, {"name": g_name, "up_stages": 3}, "generator")
    dcfg = build(DiscriminatorConfig, {"name": d_name, "num_stages": 3}, "discriminator")
    g = build_generator(gcfg, args.channels, args.size, args.size, args.frames).to(device)
    d = build_discriminator(dcfg, args.channels, args.size, args.size, args.frames).to(device)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    loss = get_loss("hinge")
    real = torch.randn(args.batch, args.frames, args.channels, args.size, args.size, device=device)

    def step() -> None:
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = g(*g.latents(args.batch))
        logits = d(torch.cat([real, fake]))
        loss.d_loss(*logits.chunk(2)).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss.g_loss(d(g(*g.latents(args.batch)))).backward()
        opt_g.step()

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {"s_per_step": seconds, "samples_per_s": args.batch / seconds, "peak_gib": peak}


def demo_step_times(compiled: bool, args: argparse.Namespace) -> dict:
    """Seconds of each of the demo's first ``warmup + steps`` training steps, one thread."""
    import torch

    from stgan.training.config import load_pipeline
    from stgan.training.distributed import Dist
    from stgan.training.loop import setup, train_step

    torch.set_num_threads(1)
    overrides = (f"train.compile={str(compiled).lower()}", "train.threads=1", "eval.every=0")
    config = load_pipeline(DEMO, overrides)
    with tempfile.TemporaryDirectory() as logdir:
        run = setup(config, Path(logdir), torch.device("cpu"), Dist(), resume=False)

        def step() -> None:
            train_step(run)
            run.step += 1

        times = []
        for _ in range(args.warmup + args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        with torch.profiler.profile() as prof:
            step()
    # convolutions (forward and backward) stay ATen/oneDNN calls under inductor on CPU
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    conv = sum(e.self_cpu_time_total for e in prof.key_averages() if "conv" in e.key)
    return {"times": times, "batch": config.train.batch_size, "conv_share": conv / total}


def compare_compile(args: argparse.Namespace) -> None:
    """Eager against compiled demo steps, each mode in its own process (fresh caches)."""
    print(f"demo step ({DEMO.name}), CPU, 1 thread: {args.warmup} warm-up + {args.steps} timed")
    steady = {}
    for mode in ("eager", "compiled"):
        child = [sys.executable, __file__, "--compile-one", mode, *sys.argv[1:]]
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode:
            print(f"{mode}: failed\n{done.stderr[-3000:]}")
            return
        r = json.loads(done.stdout.strip().splitlines()[-1])
        timed = sorted(r["times"][args.warmup :])
        steady[mode] = timed[len(timed) // 2]  # the median step: robust to other jobs' bursts
        extra = sum(r["times"][: args.warmup]) - args.warmup * steady[mode]
        print(
            f"{mode:<9} {steady[mode]:>7.3f} s/step (median) {r['batch'] / steady[mode]:>7.1f} "
            f"samples/s; warm-up {args.warmup} steps {sum(r['times'][: args.warmup]):.1f} s "
            f"({extra:.1f} s beyond steady steps: {'compile' if mode == 'compiled' else 'first-step'} time)"
        )
        print(f"{'':<9} convolution ops: {r['conv_share']:.0%} of the step's CPU time")
    print(f"speed-up compiled/eager: {steady['eager'] / steady['compiled']:.2f}x (goal >= 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", nargs=2, metavar=("G", "D"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--compile", action="store_true", help="the demo step eager against torch.compile"
    )
    parser.add_argument("--warmup", type=int, default=3, help="--compile: untimed first steps")
    parser.add_argument("--compile-one", choices=("eager", "compiled"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--dgmr",
        action="store_true",
        help="DGMR's configuration beside the DGMR port (options: --dgmr --help)",
    )
    if "--dgmr" in sys.argv[1:]:
        from dgmr_side_by_side import main as dgmr_main

        dgmr_main([a for a in sys.argv[1:] if a != "--dgmr"])
        return
    args = parser.parse_args()
    if args.compile_one:
        print(json.dumps(demo_step_times(args.compile_one == "compiled", args)))
        return
    if args.compile:
        compare_compile(args)
        return
    if args.one:
        print(json.dumps(measure(*args.one, args)))
        return
    print(f"{args.size}x{args.size}, T={args.frames}, batch {args.batch}, device {args.device}")
    print(f"{'G':<9} {'D':<7} {'s/step':>8} {'samples/s':>10} {'peak GiB':>9}")
    for g_name, d_name in itertools.product(GENERATORS, DISCRIMINATORS):
        child = [sys.executable, __file__, "--one", g_name, d_name, *sys.argv[1:]]
        r = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
        print(
            f"{g_name:<9} {d_name:<7} {r['s_per_step']:>8.2f} {r['samples_per_s']:>10.1f} {r['peak_gib']:>9.2f}"
        )


if __name__ == "__main__":
    main()
