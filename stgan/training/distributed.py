"""torch.distributed set-up from torchrun's environment, and the device to use."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from stgan.errors import StganError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` takes CUDA when present, else CPU; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StganError(
                "--device cuda: no CUDA device is available here; use --device cpu or auto"
            )
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if name != "cpu":
        raise StganError(f"--device {name}: unknown device; use auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device: torch.device) -> Dist:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU); no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()
