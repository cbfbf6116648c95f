"""Tests for stgan.training.checkpoint."""

from __future__ import annotations

import datetime
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stgan.errors import CheckpointError, StganError
from stgan.training.checkpoint import (
    capture_rng,
    check_compatible,
    config_diff,
    config_hash,
    load_checkpoint,
    load_latest,
    restore_rng,
    save_checkpoint,
    seed_everything,
)


class Opaque:
    """A class weights_only loading refuses."""


def trained_pair() -> tuple[torch.nn.Linear, torch.optim.Adam]:
    """A tiny Linear and its Adam optimizer after one step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).square().mean().backward()
    opt.step()
    return model, opt


def draws() -> tuple[float, np.ndarray, torch.Tensor]:
    return random.random(), np.random.rand(3), torch.rand(3)


def assert_same_draws(a, b) -> None:
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    assert torch.equal(a[2], b[2])


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_round_trip_restores_model_and_optimizer(tmp_path: Path) -> None:
    model, opt = trained_pair()
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "meta": {"k": [1, (2, None)]}}
    path = save_checkpoint(tmp_path, 7, state, keep=3)
    assert path == tmp_path / "ckpt_00000007.pt"
    torch.load(path, weights_only=True)  # loads without allowlisting anything
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7
    assert loaded["meta"] == {"k": [1, (2, None)]}
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["opt"])
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i, slot in a["state"].items():
        for name, value in slot.items():
            assert torch.equal(value, b["state"][i][name])


def test_keeps_only_last_k(tmp_path: Path) -> None:
    for step in (1, 2, 3, 10, 20):
        save_checkpoint(tmp_path, step, {"x": torch.zeros(1)}, keep=2)
    assert files(tmp_path) == ["ckpt_00000010.pt", "ckpt_00000020.pt"]


def test_bad_keep_and_step_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        save_checkpoint(tmp_path, 1, {}, keep=0)
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, 1, {"step": 2}, keep=1)


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    first = save_checkpoint(tmp_path, 1, {"x": torch.ones(2)}, keep=1)

    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, {"x": torch.zeros(2)}, keep=1)
    assert files(tmp_path) == [first.name]
    assert torch.equal(load_checkpoint(first)["x"], torch.ones(2))


def test_latest_skips_truncated_newest(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "absent") is None
    good = save_checkpoint(tmp_path, 5, {"x": torch.ones(3)}, keep=5)
    data = good.read_bytes()
    (tmp_path / "ckpt_00000009.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.warns(UserWarning, match="ckpt_00000009.pt"):
        assert load_latest(tmp_path)[0] == good


def test_latest_prefers_highest_step(tmp_path: Path) -> None:
    for step in (3, 100, 20):
        save_checkpoint(tmp_path, step, {}, keep=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_latest(tmp_path)[0] == tmp_path / "ckpt_00000100.pt"


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "ckpt_00000001.pt")


@pytest.mark.parametrize("cut", [10, 0.5, -5])
def test_truncated_checkpoint(tmp_path: Path, cut: float) -> None:
    path = save_checkpoint(tmp_path, 1, {"x": torch.ones(100)}, keep=1)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)] if isinstance(cut, float) else data[:cut])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    line = str(info.value)
    assert "\n" not in line
    # PyTorch's first sentence, whole, without the miniz internals that follow it
    assert "(RuntimeError: PytorchStreamReader failed reading zip archive: " in line
    assert "miniz" not in line
    assert line.endswith("); delete it or pick another checkpoint")


@pytest.mark.parametrize("blob", [b"", b"hello world, not a checkpoint"])
def test_garbage_checkpoint(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "ckpt_00000001.pt"
    path.write_bytes(blob)
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(path)
    assert ": )" not in str(info.value)  # an empty message leaves the exception's name alone
    assert str(info.value).endswith("); delete it or pick another checkpoint")


@pytest.mark.parametrize("obj", [Opaque(), datetime.date(2020, 1, 1)])
def test_pickled_objects_are_refused(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "ckpt_00000001.pt"
    torch.save({"step": 1, "obj": obj}, path)
    with pytest.raises(CheckpointError, match="holds pickled Python objects") as info:
        load_checkpoint(path)
    assert type(obj).__name__ in str(info.value)
    assert "corrupt" not in str(info.value)
    assert "\n" not in str(info.value)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this checkpoint ran code",))


def test_a_checkpoint_that_would_run_code_is_refused_for_safety(tmp_path: Path, capfd) -> None:
    path = tmp_path / "ckpt_00000001.pt"
    torch.save({"step": 1, "obj": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused it for safety") as info:
        load_checkpoint(path)
    line = str(info.value)
    assert f"({os.system.__module__}.system)" in line  # posix.system
    assert "corrupt" not in line and "\n" not in line
    assert "ran code" not in capfd.readouterr().out


@pytest.mark.parametrize("payload", [[1, 2], {"model": {}}])
def test_not_a_checkpoint(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "ckpt_00000001.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="'step' key"):
        load_checkpoint(path)


def test_rng_round_trip() -> None:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.randn()  # leaves a cached Gaussian in the NumPy state
    state = capture_rng()
    expected = draws()
    draws()
    restore_rng(state)
    assert_same_draws(draws(), expected)


def test_seed_everything_repeats_every_global_rng() -> None:
    seed_everything(5)
    first = draws()
    seed_everything(6)
    other = draws()
    seed_everything(5)
    assert_same_draws(draws(), first)
    assert first[0] != other[0] and not torch.equal(first[2], other[2])


def test_rng_round_trip_through_file(tmp_path: Path) -> None:
    state = capture_rng()
    expected = draws()
    path = save_checkpoint(tmp_path, 3, {"rng": state}, keep=1)
    draws()
    restore_rng(load_checkpoint(path)["rng"])
    assert_same_draws(draws(), expected)


def test_config_hash_is_stable_and_order_free() -> None:
    a = {"model": {"width": 32, "depth": 2}, "lr": 1e-4, "vars": ("tas", "pr")}
    b = {"lr": 1e-4, "vars": ["tas", "pr"], "model": {"depth": 2, "width": 32}}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) == config_hash(dict(a))
    assert len(config_hash(a)) == 64
    assert config_hash(a) != config_hash({**a, "lr": 2e-4})


def test_config_diff_nested() -> None:
    saved = {"model": {"width": 32, "depth": 2, "act": "relu"}, "train": {"lr": 1e-4}, "seed": 0}
    current = {
        "model": {"width": 64, "depth": 2, "norm": "batch"},
        "train": {"lr": 2e-4, "steps": 10},
        "seed": 0,
        "logdir": "runs/b",
    }
    assert config_diff(saved, saved) == []
    assert config_diff(saved, current) == [
        "logdir",
        "model.act",
        "model.norm",
        "model.width",
        "train.lr",
        "train.steps",
    ]
    assert config_diff(saved, current, ignore=("train", "logdir", "model.norm")) == [
        "model.act",
        "model.width",
    ]
    # "model" must not match "model_x": ignore works on whole dotted parts
    assert config_diff({"model_x": 1}, {"model_x": 2}, ignore=("model",)) == ["model_x"]
    assert config_diff({"a": {"b": 1}}, {"a": 1}) == ["a"]


def test_check_compatible_names_keys() -> None:
    saved = {"model": {"width": 32}, "seed": 0}
    check_compatible(saved, {"seed": 0, "model": {"width": 32}})
    with pytest.raises(CheckpointError) as info:
        check_compatible(saved, {"model": {"width": 64}, "seed": 1})
    assert isinstance(info.value, StganError)
    assert str(info.value) == (
        "checkpoint config differs from the current config in: model.width, seed; "
        "resume with the original config or start a new logdir"
    )
    check_compatible(saved, {"model": {"width": 64}, "seed": 0}, ignore=("model.width",))
