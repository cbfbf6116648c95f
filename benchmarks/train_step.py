"""Training-step benchmark: samples/s and peak memory per G/D combination.

One step = one D update (hinge loss on a real and a generated batch) plus one G
update, as in ``stgan.training.loop``. Each combination runs in its own process
so that peak RSS (CPU) or peak allocated memory (CUDA) belongs to it alone.

Run: ``python benchmarks/train_step.py [--size 64] [--frames 16] [--batch 8] [--device cpu]``

``--dgmr`` runs DGMR's configuration side by side (:mod:`dgmr_side_by_side`): stgan's
conditional convgru G with the dual D and DGMR's step recipe, beside the public DGMR port.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time

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
        "--dgmr",
        action="store_true",
        help="DGMR's configuration beside the DGMR port (options: --dgmr --help)",
    )
    if "--dgmr" in sys.argv[1:]:
        from dgmr_side_by_side import main as dgmr_main

        dgmr_main([a for a in sys.argv[1:] if a != "--dgmr"])
        return
    args = parser.parse_args()
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
