"""The default recipe: a pipeline derived from a data spec alone (stgan/recipe.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stgan import recipe
from stgan.cli import main
from stgan.recipe import DataFacts, derive
from stgan.training.config import load_pipeline, pipeline_from_dict
from tests.conftest import make_dataset, write_spec

WINDOWS = {"train": 200, "val": 40, "test": 40}


def facts(height: int, width: int, frames: int = 8, variables=("tas",), windows=None, **kw):
    return DataFacts(
        name="d",
        height=height,
        width=width,
        frames=frames,
        variables=tuple(variables),
        windows=dict(windows or WINDOWS),
        time_steps=kw.pop("time_steps", 2000),
        **kw,
    )


def resolved(raw: dict, tmp_path: Path, frames: int = 8):
    """The derived mapping validated and resolved, its spec a tiny file of ``frames``."""
    write_spec(tmp_path / "spec.yaml", window={"length": frames, "stride": 2})
    raw = {k: v for k, v in raw.items() if k != "profiles"}
    return pipeline_from_dict({**raw, "data": {**raw["data"], "spec": "spec.yaml"}}, tmp_path)


def spec_dir(directory: Path, ny: int = 13, nx: int = 10, nt: int = 60, **spec) -> Path:
    """A tiny NetCDF (two variables, an odd non-square grid) and its spec in ``directory``."""
    make_dataset(nt=nt, ny=ny, nx=nx, variables=("tas", "pr")).to_netcdf(directory / "data.nc")
    fields = {
        "name": "tiny",
        "variables": {"tas": {}, "pr": {"transform": "log1p"}},
        "window": {"length": 4, "stride": 2},
        "split": {"fractions": [0.6, 0.2, 0.2]},
        **spec,
    }
    return write_spec(directory / "spec.yaml", **fields)


def test_the_demos_grid_gets_the_demos_recipe(tmp_path):
    """64 x 64 with the synthetic spec's 16-step window: the demo pipeline's choices."""
    raw = derive(facts(64, 64, frames=16, variables=("tas", "pr")), "spec.yaml")
    assert raw["data"] == {"spec": "spec.yaml", "coarsen": 2, "cache": "memory"}
    g, d = raw["model"]["generator"], raw["model"]["discriminator"]
    assert (g["name"], g["base_channels"], g["num_layers"], g["up_stages"]) == ("convgru", 32, 1, 2)
    assert (d["name"], d["num_stages"], d["num_frames"], d["spectral_norm"]) == ("dual", 3, 4, True)
    assert raw["loss"] == {
        "name": "bce",
        "label_smoothing": 0.1,
        "instance_noise": 0.2,
        "instance_noise_steps": raw["train"]["steps"],
    }
    assert raw["optim"]["lr_g"] == raw["optim"]["lr_d"] == 4e-4  # twice the demo's
    assert raw["optim"]["betas_g"] == [0.0, 0.9] and raw["optim"]["ema_decay"] == 0.99
    # a 32 x 32 grid gets MIN_BATCH, half the demo's batch of 8, for about twice the steps
    # (the demo's 500 at batch 8 use about 2/3 of the budget)
    assert raw["train"]["batch_size"] == 4
    assert 1300 <= raw["train"]["steps"] <= 1800
    assert raw["eval"] == {"every": raw["train"]["steps"] // 2, "samples": 40}
    config = resolved(raw, tmp_path, frames=16)
    assert len(config.eval_steps) == 2


@pytest.mark.parametrize(
    "height, width, coarsen, patch, grid",
    [
        (13, 10, 1, None, (13, 10)),  # tiny and odd: as it is
        (32, 32, 1, None, (32, 32)),  # the working size itself
        (18, 26, 1, None, (18, 26)),  # non-square
        (100, 60, 3, None, (33, 20)),  # big: the smallest coarsen that fits 1024 cells
        (1000, 800, 4, 32, (32, 32)),  # huge: coarsen 4, then 32 x 32 patches
        (2000, 40, 4, 10, (10, 10)),  # a strip: the patch is the short side
    ],
)
def test_big_grids_are_coarsened_then_patched(height, width, coarsen, patch, grid):
    assert recipe.shrink(height, width) == (coarsen, patch)
    assert recipe.working_grid(height, width, coarsen, patch) == grid
    raw = derive(facts(height, width, coarsen=2), "s.yaml")
    assert raw["data"].get("coarsen", 1) == (2 * coarsen if coarsen > 1 else 1)
    assert raw["data"].get("patch") == patch


@pytest.mark.parametrize(
    "height, width, up, d_stages",
    [(13, 10, 0, 1), (18, 26, 1, 2), (32, 32, 2, 3), (33, 20, 1, 2), (8, 8, 0, 1), (3, 5, 0, 1)],
)
def test_stages_keep_the_recurrence_and_ds_last_map_big_enough(height, width, up, d_stages):
    assert recipe.up_stages(height, width) == up
    assert recipe.discriminator_stages(height, width) == d_stages
    low_side = -(-min(height, width) // 2**up)
    assert low_side >= recipe.MIN_LOW_SIDE or up == 0


def test_width_grows_with_the_variables_and_depth_with_the_window():
    assert [recipe.generator_width(c) for c in (1, 2, 3, 4, 5, 12)] == [32, 32, 48, 48, 64, 64]
    assert recipe.recurrent_layers(16) == 1 and recipe.recurrent_layers(48) == 2


def test_batch_follows_the_grid_and_never_exceeds_the_train_windows():
    assert recipe.batch_size(32, 32, 1000) == 4
    assert recipe.batch_size(13, 10, 1000) == 8  # 2048 // 130 cells = 15, down to a power of two
    assert recipe.batch_size(8, 8, 1000) == 32
    assert recipe.batch_size(64, 64, 1000) == 4
    assert recipe.batch_size(8, 8, 11) == 11


def test_steps_fill_the_cpu_budget():
    small = recipe.step_seconds(32, 8, 13, 10, 0)
    demo = recipe.step_seconds(8, 16, 32, 32, 2)
    # the calibration points (CPU s a step measured on six suite sets): within 20 %
    measured = {
        (8, 16, 32, 32, 2): 0.42,  # synthetic
        (16, 16, 16, 24, 1): 0.48,  # ar1_smooth
        (16, 24, 16, 24, 1): 0.77,  # ERA5
        (32, 16, 12, 20, 0): 0.91,  # cycles
        (32, 24, 16, 12, 0): 1.18,  # traffic
        (32, 24, 14, 8, 0): 0.51,  # NYC
    }
    for shape, seconds in measured.items():
        assert recipe.step_seconds(*shape) == pytest.approx(seconds, rel=0.2)
    assert recipe.step_seconds(8, 16, 32, 32, 2, base=64) > demo
    for seconds in (small, demo):
        steps = recipe.train_steps(seconds)
        budget = recipe.CPU_BUDGET_S * recipe.TRAIN_SHARE
        assert steps * seconds == pytest.approx(budget, rel=0.1) or steps in (200, 3000)
    assert recipe.train_steps(100.0) == recipe.MIN_STEPS
    assert recipe.train_steps(1e-4) == recipe.MAX_STEPS


@pytest.mark.parametrize("variables", [("tas",), ("tas", "pr")])
@pytest.mark.parametrize("height, width", [(13, 10), (18, 26), (64, 64), (2000, 1500)])
def test_every_derived_pipeline_resolves(tmp_path, variables, height, width):
    raw = derive(facts(height, width, variables=variables), "spec.yaml")
    config = resolved(raw, tmp_path)
    assert config.train.steps % 50 == 0 and config.train.batch_size <= WINDOWS["train"]
    assert config.eval.samples <= WINDOWS["val"] and len(config.eval_steps) == 2
    assert config.train.ckpt_every == config.train.steps // 5


def test_few_windows_turn_evaluation_off_and_report_on_what_there_is(tmp_path):
    few = {"train": 5, "val": 3, "test": 2}
    raw = derive(facts(13, 10, windows=few), "spec.yaml")
    assert raw["train"]["batch_size"] == 5
    assert raw["eval"]["every"] == 0
    assert raw["report"]["split"] == "test" and raw["report"]["samples"] == 6
    many_val = derive(facts(13, 10, windows={"train": 50, "val": 9, "test": 2}), "s.yaml")
    assert many_val["eval"] == {"every": many_val["train"]["steps"] // 2, "samples": 9}
    assert many_val["report"]["split"] == "val" and many_val["report"]["samples"] == 9
    resolved(raw, tmp_path)


def test_a_short_window_gets_as_many_d_frames_as_it_has(tmp_path):
    raw = derive(facts(13, 10, frames=3), "spec.yaml")
    assert raw["model"]["discriminator"]["num_frames"] == 3
    resolved(raw, tmp_path, frames=3)


def test_is_data_spec_tells_a_spec_from_a_pipeline():
    assert recipe.is_data_spec({"files": "a.nc", "variables": ["tas"]})
    assert not recipe.is_data_spec({"data": {"files": "a.nc"}, "model": {}})
    assert not recipe.is_data_spec({"data": "spec.yaml"})


def test_a_spec_loads_as_its_derived_pipeline(tmp_path):
    spec = spec_dir(tmp_path)
    config = load_pipeline(spec)
    assert config.name == "tiny"  # so stgan run's default logdir is runs/tiny
    assert sorted(config.data.variable_names) == ["pr", "tas"]
    assert config.model.generator.up_stages == 0 and config.train.batch_size == 8
    assert config.eval.every == 0  # 4 val windows: too few to evaluate


def test_the_schedule_follows_an_overridden_step_count_unless_set(tmp_path):
    spec = spec_dir(tmp_path, nt=120)
    config = load_pipeline(spec, ("train.steps=40",))
    assert config.train.steps == 40 and config.eval.every == 20
    assert config.train.ckpt_every == config.train.hist_every == 8
    assert config.loss.instance_noise_steps == 40
    kept = load_pipeline(spec, ("train.steps=40", "eval.every=10", "train.ckpt_every=40"))
    assert (kept.eval.every, kept.train.ckpt_every, kept.train.hist_every) == (10, 40, 8)
    gpu = load_pipeline(spec, (), "gpu")
    assert gpu.train.steps == 10 * load_pipeline(spec).train.steps
    assert gpu.eval.every == gpu.train.steps // 2


@pytest.mark.parametrize("command", ["run", "train"])
def test_dry_run_prints_a_pipeline_that_loads_back_to_the_same_config(tmp_path, capsys, command):
    (tmp_path / "data").mkdir()
    spec = spec_dir(tmp_path / "data")
    args = [command, str(spec), "--dry-run", "--set", "optim.lr_d=1e-4"]
    assert main([*args, "--logdir", str(tmp_path / "r")] if command == "train" else args) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Derived by stgan's default recipe") and str(spec) in text
    raw = yaml.safe_load(text)
    assert raw["optim"]["lr_d"] == 1e-4 and "gpu" in raw["profiles"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for saved in (elsewhere / "my_pipeline.yaml", spec.parent / "my_pipeline.yaml"):
        saved.write_text(text)
        assert load_pipeline(saved) == load_pipeline(spec, ("optim.lr_d=1e-4",))
        assert load_pipeline(saved, (), "gpu") == load_pipeline(spec, ("optim.lr_d=1e-4",), "gpu")
    assert not (tmp_path / "r").exists()


def test_stgan_run_spec_dry_run_via_the_cli(tmp_path):
    spec = spec_dir(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "stgan", "run", str(spec), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    raw = yaml.safe_load(result.stdout)
    assert raw["name"] == "tiny" and raw["data"]["spec"] == str(spec.resolve())
    assert raw["model"]["generator"]["name"] == "convgru"
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_a_spec_with_a_missing_file_is_one_line(tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.yaml", files="missing.nc")
    assert main(["run", str(spec), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.nc" in err and "Traceback" not in err


def test_train_a_spec_on_an_odd_grid_end_to_end(tmp_path, capsys):
    """13 x 10 (odd, non-square, two variables): derived, trained for 2 steps."""
    spec = spec_dir(tmp_path)
    logdir = tmp_path / "r"
    args = ["train", str(spec), "--logdir", str(logdir), "--device", "cpu", "--set"]
    assert main([*args, "train.steps=2"]) == 0
    assert (logdir / "checkpoints" / "ckpt_00000002.pt").is_file()
    written = yaml.safe_load((logdir / "config.yaml").read_text())
    assert written["train"]["steps"] == 2 and written["data"]["variables"]["pr"] == {
        "transform": "log1p"
    }
