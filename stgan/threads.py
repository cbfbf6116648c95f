"""How many threads a stgan process computes with: its share of the cores.

Several stgan processes at once (two runs, a sweep beside a run, torchrun's local
ranks) each starting one intra-op thread per core spin against each other. The count,
first match wins:

1. ``train.threads`` when > 0;
2. ``OMP_NUM_THREADS``, then ``MKL_NUM_THREADS``, when the user set them;
3. ``max(1, usable cores // local processes)``, local processes being the larger of
   torchrun's ``LOCAL_WORLD_SIZE`` and the stgan processes computing on this machine
   now (``stgan.processes``). This share is taken again, at most every
   ``REFRESH_SECONDS``, each time ``follow_share`` is called (once per training step),
   so a run started alone gives cores back when a second one starts, and takes them
   again when it ends.

The count applies to PyTorch (intra-op, and inter-op once, before parallel work), to
the BLAS of NumPy/SciPy and to dask's threaded scheduler (``num_workers``: its default is
one thread per core). DataLoader workers compute with one thread each.

OpenMP threads waiting for work sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``,
set by the CLI before PyTorch loads unless the user set it or ``GOMP_SPINCOUNT``): beside
other jobs, a spinning thread burns the time slices its team's last thread needs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass

from stgan.errors import StganError
from stgan.processes import ProcessRegistry, registry_dir

ENV_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
REFRESH_SECONDS = 2.0


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from."""

    count: int
    source: str  # "train.threads", "OMP_NUM_THREADS", ... or "2 cores / 2 processes"
    follows_share: bool  # automatic: taken again as processes start and end


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not all the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def local_processes(registry: ProcessRegistry, environ: Mapping[str, str] = os.environ) -> int:
    """Processes sharing this machine's cores: torchrun's local ranks or running stgan processes."""
    return max(_env_int("LOCAL_WORLD_SIZE", environ, default=1), registry.count())


def choose_threads(
    explicit: int,
    environ: Mapping[str, str],
    cores: int,
    processes: Callable[[], int],
) -> ThreadChoice:
    """The thread count: ``explicit`` (> 0) wins, then the OMP/MKL variables, then the share.

    ``processes`` is called only when the share decides (counting takes a directory scan).
    """
    if explicit > 0:
        return ThreadChoice(explicit, "train.threads", follows_share=False)
    for name in ENV_VARIABLES:
        if environ.get(name, "").strip():
            return ThreadChoice(_env_int(name, environ), name, follows_share=False)
    sharing = processes()
    share = max(1, cores // sharing)
    return ThreadChoice(share, f"{cores} cores / {sharing} processes", follows_share=True)


def _env_int(name: str, environ: Mapping[str, str], default: int | None = None) -> int:
    """A positive integer variable; OMP_NUM_THREADS's nested form ``4,2`` gives its first level."""
    text = environ.get(name, "").strip()
    if not text and default is not None:
        return default
    first = text.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise StganError(f"{name}={text!r}: not a positive integer; set it to e.g. 2, or unset it")
    return int(first)


def wait_passively(environ: MutableMapping[str, str] = os.environ) -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the user chose how OpenMP waits; before torch loads."""
    if not any(environ.get(name) for name in WAIT_VARIABLES):
        environ["OMP_WAIT_POLICY"] = "PASSIVE"


def apply_threads(count: int) -> None:
    """PyTorch's intra-op threads (and inter-op ones while still allowed), the BLAS threads
    and the threads of dask's threaded scheduler."""
    import dask
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(count)
    threadpool_limits(limits=count, user_api="blas")
    dask.config.set(num_workers=count)
    with contextlib.suppress(RuntimeError):  # allowed once, before inter-op parallel work
        torch.set_num_interop_threads(count)


def one_thread_per_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker computes with one thread (PyTorch and BLAS)."""
    apply_threads(1)


class CoreShare:
    """This process's thread count: decided by ``use``, taken again by ``follow``."""

    def __init__(
        self,
        registry: ProcessRegistry,
        environ: Mapping[str, str] = os.environ,
        cores: Callable[[], int] = usable_cores,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.environ = environ
        self.cores = cores
        self.clock = clock
        self.choice: ThreadChoice | None = None
        self._next_check = 0.0

    def use(self, explicit: int = 0) -> ThreadChoice:
        """Count this process among the running ones, decide its thread count and apply it."""
        self.registry.join()
        self.choice = self._choose(explicit)
        apply_threads(self.choice.count)
        self._next_check = self.clock() + REFRESH_SECONDS
        return self.choice

    def follow(self) -> ThreadChoice | None:
        """Take the share again when automatic and due; cheap enough to call every step."""
        if self.choice is None or not self.choice.follows_share or self.clock() < self._next_check:
            return self.choice
        self._next_check = self.clock() + REFRESH_SECONDS
        choice = self._choose(0)
        if choice.count != self.choice.count:
            apply_threads(choice.count)
        self.choice = choice
        return choice

    def _choose(self, explicit: int) -> ThreadChoice:
        return choose_threads(
            explicit,
            self.environ,
            self.cores(),
            lambda: local_processes(self.registry, self.environ),
        )


_process_share: CoreShare | None = None


def process_share() -> CoreShare:
    """The one ``CoreShare`` of this process (its registry in ``stgan.processes.registry_dir()``)."""
    global _process_share
    if _process_share is None:
        _process_share = CoreShare(ProcessRegistry(registry_dir()))
    return _process_share


def use_threads(explicit: int = 0) -> ThreadChoice:
    """Decide and apply this process's thread count (``explicit``: ``train.threads``, 0 = auto).

    Call at the start of each command that computes, and of ``train()`` with its config.
    """
    return process_share().use(explicit)


def follow_share() -> None:
    """Re-take this process's share of the cores if it is automatic (call once per step)."""
    if _process_share is not None:
        _process_share.follow()
