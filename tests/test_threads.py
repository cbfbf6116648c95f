"""Each stgan process computes with its share of the cores (stgan.threads, stgan.processes)."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import dask
import pytest
import threadpoolctl
import torch

from stgan.errors import SpecError, StganError
from stgan.processes import ProcessRegistry
from stgan.threads import (
    REFRESH_SECONDS,
    CoreShare,
    choose_threads,
    local_processes,
    one_thread_per_worker,
    wait_passively,
)
from stgan.training.batches import BatchStream
from stgan.training.config import RESUMABLE_KEYS, load_pipeline
from stgan.training.distributed import Dist
from tests.conftest import tiny_pipeline


@pytest.fixture(autouse=True)
def restore_threads():
    """Tests apply thread counts to this process; put PyTorch's, BLAS's and dask's back."""
    before = torch.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=None), dask.config.set(num_workers=None):
        yield
    torch.set_num_threads(before)


def choose(explicit=0, environ=None, cores=8, processes=1):
    return choose_threads(explicit, environ or {}, cores, lambda: processes)


class Registry:
    """A stand-in for ProcessRegistry counting whatever the test says."""

    def __init__(self, running=1):
        self.running = running

    def join(self):
        pass

    def count(self):
        return self.running


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_explicit_wins_over_env_and_share():
    choice = choose(3, {"OMP_NUM_THREADS": "5"}, cores=8, processes=4)
    assert (choice.count, choice.source, choice.follows_share) == (3, "train.threads", False)


@pytest.mark.parametrize(
    ("environ", "count", "source"),
    [
        ({"OMP_NUM_THREADS": "5", "MKL_NUM_THREADS": "6"}, 5, "OMP_NUM_THREADS"),
        ({"MKL_NUM_THREADS": "6"}, 6, "MKL_NUM_THREADS"),
        ({"OMP_NUM_THREADS": "4,2"}, 4, "OMP_NUM_THREADS"),  # nested levels: the first
        ({"OMP_NUM_THREADS": " "}, 2, "8 cores / 4 processes"),  # blank is unset
    ],
)
def test_env_wins_over_share(environ, count, source):
    choice = choose(0, environ, cores=8, processes=4)
    assert (choice.count, choice.source) == (count, source)
    assert choice.follows_share == (source[0].isdigit())


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_env_value_is_one_line(value):
    with pytest.raises(StganError, match=f"OMP_NUM_THREADS='{value}': not a positive integer"):
        choose(0, {"OMP_NUM_THREADS": value})


@pytest.mark.parametrize(
    ("cores", "processes", "count"), [(8, 1, 8), (8, 4, 2), (8, 3, 2), (2, 3, 1), (1, 8, 1)]
)
def test_share_is_cores_over_processes_never_below_one(cores, processes, count):
    choice = choose(0, {}, cores=cores, processes=processes)
    assert choice.count == count and choice.follows_share


def test_local_processes_from_torchrun_or_the_registry():
    assert local_processes(Registry(1), {"LOCAL_WORLD_SIZE": "4"}) == 4
    assert local_processes(Registry(3), {"LOCAL_WORLD_SIZE": "2"}) == 3
    assert local_processes(Registry(2), {}) == 2
    share = CoreShare(Registry(1), environ={"LOCAL_WORLD_SIZE": "4"}, cores=lambda: 8)
    assert share.use().count == 2 and torch.get_num_threads() == 2


def test_automatic_share_follows_processes_starting_and_ending():
    registry, clock = Registry(1), Clock()
    share = CoreShare(registry, environ={}, cores=lambda: 4, clock=clock)
    assert share.use().count == 4 and torch.get_num_threads() == 4
    registry.running = 2
    assert share.follow().count == 4  # not due yet: counting is throttled
    clock.now += REFRESH_SECONDS
    assert share.follow().count == 2 and torch.get_num_threads() == 2
    registry.running = 1
    clock.now += REFRESH_SECONDS
    assert share.follow().count == 4 and torch.get_num_threads() == 4


def test_dask_threads_follow_the_share():
    share = CoreShare(Registry(4), environ={}, cores=lambda: 4)
    assert share.use().count == 1 and dask.config.get("num_workers") == 1

    def nap(i):
        time.sleep(0.02)  # long enough for a second pool thread to take the next task
        return threading.get_ident()

    idents = dask.compute(*[dask.delayed(nap)(i) for i in range(8)], scheduler="threads")
    assert len(set(idents)) == 1  # dask's default pool has a thread per core


@pytest.mark.parametrize(("explicit", "environ"), [(3, {}), (0, {"OMP_NUM_THREADS": "3"})])
def test_explicit_or_env_count_is_kept(explicit, environ):
    registry, clock = Registry(1), Clock()
    share = CoreShare(registry, environ=environ, cores=lambda: 4, clock=clock)
    assert share.use(explicit).count == 3
    registry.running, clock.now = 4, clock.now + REFRESH_SECONDS
    assert share.follow().count == 3 and torch.get_num_threads() == 3


def blas_threads():
    return [
        pool["num_threads"]
        for pool in threadpoolctl.threadpool_info()
        if pool["user_api"] == "blas"
    ]


def test_worker_init_sets_one_thread():
    torch.set_num_threads(2)
    threadpoolctl.threadpool_limits(limits=2, user_api="blas")
    one_thread_per_worker(0)
    assert torch.get_num_threads() == 1
    assert blas_threads() and set(blas_threads()) == {1}


class ThreadsDataset(torch.utils.data.Dataset):
    """Each item: the BLAS thread counts of the process that loads it."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.tensor(max(blas_threads())), torch.tensor(torch.get_num_threads())

    def set_epoch(self, epoch):
        pass


def test_batch_stream_workers_compute_with_one_thread():
    threadpoolctl.threadpool_limits(limits=2, user_api="blas")
    stream = BatchStream(ThreadsDataset(), batch_size=2, num_workers=1, seed=0, dist=Dist())
    blas, intra = stream.next()
    assert blas.tolist() == [1, 1] and intra.tolist() == [1, 1]


def test_registry_counts_live_processes_and_drops_ended_ones(tmp_path):
    registry = ProcessRegistry(tmp_path)
    assert registry.count() == 1  # this process, about to compute
    registry.join()
    assert registry.count() == 1
    (tmp_path / "999999999.lock").touch()  # a process that ended: its lock is gone
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from stgan.processes import ProcessRegistry; "
            f"ProcessRegistry({str(tmp_path)!r}).join(); print('joined', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline() == "joined\n"
        assert registry.count() == 2
        assert not (tmp_path / "999999999.lock").exists()
    finally:
        other.communicate("")
    assert registry.count() == 1
    registry.leave()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("environ", "policy"),
    [
        ({}, "PASSIVE"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
        ({"GOMP_SPINCOUNT": "10000"}, None),
    ],
)
def test_openmp_waits_passively_unless_the_user_chose(environ, policy):
    wait_passively(environ)
    assert environ.get("OMP_WAIT_POLICY") == policy


def test_threads_setting_validated_and_resumable(tmp_path):
    path = tiny_pipeline(tmp_path)
    assert load_pipeline(path, ("train.threads=2",)).train.threads == 2
    assert load_pipeline(path).train.threads == 0
    with pytest.raises(SpecError, match="train.threads: -1 must be >= 0"):
        load_pipeline(path, ("train.threads=-1",))
    assert "train.threads" in RESUMABLE_KEYS


CHILD = """
import os, sys
from stgan.cli import main
code = main(sys.argv[1:])
import torch
print("threads", torch.get_num_threads(), "code", code, "wait", os.environ.get("OMP_WAIT_POLICY"))
"""


@pytest.mark.parametrize(("extra", "threads"), [(["--set", "train.threads=2"], 2), ([], 1)])
def test_cli_train_honours_train_threads(tmp_path, extra, threads):
    pipeline = tiny_pipeline(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STGAN_PROCESS_DIR": str(tmp_path / "procs")}
    for name in ("MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(name, None)
    args = ["train", str(pipeline), "--logdir", str(tmp_path / "r"), "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), *args, "--max-steps", "1", *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    assert f"threads {threads} code 0 wait PASSIVE" in result.stdout, result.stderr
