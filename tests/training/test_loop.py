import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.errors import CheckpointError
from stgan.sampling import generate
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

TAGS = {
    "Loss/G",
    "Loss/D",
    "Loss/penalty",
    "D/real_score",
    "D/fake_score",
    "Grad/G_norm",
    "Grad/D_norm",
    "LR/G",
    "LR/D",
    "Perf/samples_per_s",
}


def final_state(logdir):
    return load_checkpoint(sorted((logdir / "checkpoints").glob("ckpt_*.pt"))[-1])


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_seed_same_losses(pipeline, tmp_path):
    config = load_pipeline(pipeline)
    first = train(config, tmp_path / "a", device="cpu")
    second = train(config, tmp_path / "b", device="cpu")
    losses = lambda stats: {k: v for k, v in stats.items() if not k.startswith("Perf/")}  # noqa: E731
    assert losses(first) == losses(second) and "Loss/G" in losses(first)
    assert_same_tensors(final_state(tmp_path / "a")["G"], final_state(tmp_path / "b")["G"])


@pytest.mark.parametrize(
    "sections", [{}, {"loss": {"name": "wgan", "gp_weight": 10.0}, "optim": {"n_critic": 2}}]
)
def test_resume_is_bit_identical(tmp_path, sections):
    config = load_pipeline(tiny_pipeline(tmp_path, **sections))
    train(config, tmp_path / "whole", device="cpu")
    train(config, tmp_path / "split", device="cpu", max_steps=3)
    assert final_state(tmp_path / "split")["step"] == 3
    train(config, tmp_path / "split", device="cpu", resume=True)
    whole, split = final_state(tmp_path / "whole"), final_state(tmp_path / "split")
    assert split["step"] == 6
    for part in ("G", "D", "EMA"):
        assert_same_tensors(whole[part], split[part])


def test_tensorboard_tags_checkpoints_and_run_files(pipeline, tmp_path):
    logdir = tmp_path / "run"
    train(load_pipeline(pipeline), logdir, device="cpu")
    assert sorted(p.name for p in (logdir / "checkpoints").iterdir()) == [
        "ckpt_00000003.pt",
        "ckpt_00000006.pt",
    ]
    assert (logdir / "config.yaml").is_file() and (logdir / "transforms.json").is_file()
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0}).Reload()
    assert set(events.Tags()["scalars"]) >= TAGS
    assert [e.step for e in events.Scalars("Loss/G")] == [1, 2, 3, 4, 5, 6]
    assert any(t.startswith("Weights/G/") for t in events.Tags()["histograms"])
    assert any(t.startswith("Grads/D/") for t in events.Tags()["histograms"])
    lr = [e.value for e in events.Scalars("LR/G")]
    assert lr[0] < lr[1]  # warm-up


def test_checkpoint_holds_everything_for_resume(pipeline, tmp_path):
    train(load_pipeline(pipeline), tmp_path / "run", device="cpu", max_steps=3)
    state = final_state(tmp_path / "run")
    for key in (
        "G",
        "D",
        "EMA",
        "opt_G",
        "opt_D",
        "sched_G",
        "sched_D",
        "data",
        "rng",
        "config_hash",
    ):
        assert key in state
    assert state["data"] == {"epoch": state["data"]["epoch"], "position": state["data"]["position"]}
    assert "scaler" not in state  # bf16 autocast needs no gradient scaler


def test_resume_from_a_checkpoint_with_the_old_empty_scaler(pipeline, tmp_path):
    config = load_pipeline(pipeline)
    train(config, tmp_path / "whole", device="cpu")
    train(config, tmp_path / "old", device="cpu", max_steps=3)
    path = tmp_path / "old" / "checkpoints" / "ckpt_00000003.pt"
    torch.save({**load_checkpoint(path), "scaler": {}}, path)  # as stgan <= 0.4 wrote it
    train(config, tmp_path / "old", device="cpu", resume=True)
    assert_same_tensors(final_state(tmp_path / "whole")["G"], final_state(tmp_path / "old")["G"])


def test_resume_refuses_an_incompatible_config(pipeline, tmp_path):
    train(load_pipeline(pipeline), tmp_path / "run", device="cpu", max_steps=3)
    changed = load_pipeline(pipeline, ("optim.lr_g=0.5", "model.generator.latent_dim=8"))
    with pytest.raises(
        CheckpointError,
        match=r"differs from the current config in: model.generator.latent_dim, optim.lr_g",
    ):
        train(changed, tmp_path / "run", device="cpu", resume=True)


def test_existing_checkpoints_need_resume(pipeline, tmp_path):
    train(load_pipeline(pipeline), tmp_path / "run", device="cpu", max_steps=3)
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(load_pipeline(pipeline), tmp_path / "run", device="cpu")


@pytest.mark.parametrize(
    "sections",
    [
        {
            "model": {
                "generator": {
                    "name": "convlstm",
                    "latent_dim": 4,
                    "base_channels": 4,
                    "num_layers": 1,
                    "up_stages": 1,
                },
                "discriminator": {
                    "name": "dual",
                    "base_channels": 4,
                    "num_stages": 1,
                    "num_frames": 2,
                },
            },
            "loss": {
                "name": "bce",
                "label_smoothing": 0.1,
                "r1_gamma": 1.0,
                "penalty_interval": 2,
                "instance_noise": 0.1,
                "augment": ["translation", "cutout", "time_shift"],
            },
            "optim": {"grad_accum": 2, "grad_clip": 1.0, "schedule": "cyclic", "cycle_steps": 4},
        },
        {
            "model": {
                "generator": {
                    "name": "convgru",
                    "latent_dim": 4,
                    "base_channels": 4,
                    "num_layers": 1,
                    "up_stages": 1,
                    "conditional": True,
                    "context_frames": 2,
                }
            },
            "loss": {"name": "lsgan", "augment": ["time_shift", "translation"]},
            "optim": {"schedule": "step", "step_size": 2},
        },
    ],
)
def test_other_remedies_train_finitely(tmp_path, sections):
    stats = train(
        load_pipeline(tiny_pipeline(tmp_path, **sections)),
        tmp_path / "run",
        device="cpu",
        max_steps=4,
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


@pytest.mark.slow
def test_torchrun_two_gloo_processes(pipeline, tmp_path):
    logdir = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "stgan",
        "train",
        str(pipeline),
        "--logdir",
        str(logdir),
        "--device",
        "cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert final_state(logdir)["step"] == 6
    events = EventAccumulator(str(logdir)).Reload()
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1  # only rank 0 writes
    assert [e.step for e in events.Scalars("Loss/D")] == [1, 2, 3, 4, 5, 6]


def test_a_non_negative_log1p_variable_is_generated_with_exact_zeros(tmp_path):
    pr = {"transform": "log1p"}
    pipeline = tiny_pipeline(tmp_path, data={"variables": {"tas": {}, "pr": pr}})
    with xr.open_dataset(tmp_path / "data.nc") as ds:
        ds = ds.load()
    ds["pr"] = 3 * np.maximum(ds["pr"] - ds["pr"].mean(), 0)  # dry about half the time
    ds.to_netcdf(tmp_path / "data.nc")
    config = load_pipeline(pipeline)
    train(config, tmp_path / "run", device="cpu")
    state = final_state(tmp_path / "run")
    bounded = dict(zip(state["grid"]["variables"], state["EMA"]["has_lower"].tolist()))
    assert bounded == {"tas": False, "pr": True}
    synthetic = generate(tmp_path / "run", 8, seed=0, progress=False)
    pr, tas = synthetic["pr"].values, synthetic["tas"].values
    assert np.nanmin(pr) == 0 and (pr == 0).mean() > 0.05  # a point mass at zero, no rain < 0
    # tas has no bound: generated below the training data's smallest anomaly as well
    assert np.nanmin(tas) < np.nanmean(tas) - 1
