"""The pipeline config: data forms, the cross-section rules of ``resolve``, derived values,
and the keys that may change on ``--resume``."""

from __future__ import annotations

import pytest
import yaml

from stgan.data.spec import DataSpec
from stgan.errors import CheckpointError, SpecError
from stgan.training.checkpoint import check_compatible
from stgan.training.config import (
    RESUMABLE_KEYS,
    load_pipeline,
    pipeline_from_dict,
    resolved_dict,
    set_dotted,
)
from tests.conftest import run_cli, tiny_pipeline, write_spec

SPEC = {
    "files": "data.nc",
    "variables": ["tas", "pr"],
    "window": {"length": 8, "stride": 1},
    "split": {"fractions": [0.6, 0.2, 0.2]},
}


def config(**changes):
    """The pipeline of SPEC inline, with ``dotted__key=value`` changes (``__`` for ``.``)."""
    raw = {"data": SPEC, "train": {"steps": 100}}
    for key, value in changes.items():
        raw = set_dotted(raw, key.replace("__", "."), value)
    return pipeline_from_dict(raw)


# -- the data spec, in each accepted form ---------------------------------------------


def test_data_is_a_spec_in_every_accepted_form(tmp_path):
    write_spec(tmp_path / "spec.yaml", window={"length": 6, "stride": 1})
    by_path = pipeline_from_dict({"data": "spec.yaml"}, base_dir=tmp_path)
    with_override = pipeline_from_dict({"data": {"spec": "spec.yaml", "patch": 4}}, tmp_path)
    inline = pipeline_from_dict({"data": SPEC}, base_dir=tmp_path)
    for cfg in (by_path, with_override, inline):
        assert isinstance(cfg.data, DataSpec) and cfg.spec is cfg.data
    assert by_path.data.window.length == 6 and by_path.data.base_dir == str(tmp_path)
    assert with_override.data.patch == 4 and with_override.data.window.length == 6
    assert inline.data.variable_names == ["tas", "pr"] and inline.data.base_dir == str(tmp_path)
    # a run's resolved config (spec inline with its base_dir) reads back the same
    assert pipeline_from_dict(resolved_dict(with_override)) == with_override


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "x"}, r"^data: required key is missing"),
        ({"data": 3}, r"^data: expected a data spec path or mapping, found 3$"),
        ({"data": {**SPEC, "windw": {"length": 4}}}, r"windw: unknown key"),
        ({"data": SPEC, "trian": {}}, r"trian: unknown key; did you mean 'train'\?"),
    ],
)
def test_bad_data_or_sections_name_the_key(raw, message):
    with pytest.raises(SpecError, match=message):
        pipeline_from_dict(raw)


# -- cross-section rules: each one line naming the keys and the fix ---------------------

CONDITIONAL = {"model__generator__conditional": True}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {**CONDITIONAL, "model__generator__context_frames": 8},
            "model.generator.context_frames: 8 leaves 0 of data.window.length 8 to generate "
            "and the ACF metrics need 2; use context_frames <= 6 or a longer window",
        ),
        (
            {**CONDITIONAL, "model__generator__context_frames": 7},
            "model.generator.context_frames: 7 leaves 1 of data.window.length 8 to generate",
        ),
        (
            {**CONDITIONAL, "model__generator__context_frames": 0},
            "model.generator.context_frames: 0 is out of range; use an integer >= 1",
        ),
        (
            {
                **CONDITIONAL,
                "model__generator__context_frames": 3,
                "model__generator__name": "conv3d",
            },
            "model.generator.temporal_up_stages: 1 needs generated frames divisible by 2, but "
            "data.window.length 8 minus model.generator.context_frames 3 gives 5; "
            "change the window length or temporal_up_stages",
        ),
        (
            {"model__discriminator__name": "dual", "model__discriminator__num_frames": 9},
            "model.discriminator.num_frames: 9 is more than the 8 generated frames "
            "(data.window.length 8); use num_frames <= 8",
        ),
        (
            {"eval__every": 101},
            "eval.every: 101 is more than train.steps 100, so no evaluation would run; "
            "use eval.every <= 100, or 0 to turn evaluation off",
        ),
        (
            {"eval__every": 10, "eval__lags": 8},
            "eval.lags: 8 does not fit the 8 generated frames (data.window.length 8); "
            "use 1 <= eval.lags < 8",
        ),
        (
            {"eval__every": 10, "eval__split": "valid"},
            "eval.split: 'valid' is not a split of the data spec, which defines "
            "train, val, test; use one of them or add it to data.split",
        ),
        (
            {"report__split": "tset"},
            "report.split: 'tset' is not a split of the data spec, which defines "
            "train, val, test; use one of them or add it to data.split",
        ),
        (
            {"data__split": {"fractions": [0.8, 0.2, 0.0]}},
            "report.split: 'test' is not a split of the data spec, which defines train, val;",
        ),
    ],
)
def test_a_rule_across_sections_fails_in_one_line(changes, message):
    with pytest.raises(SpecError) as error:
        config(**changes)
    assert str(error.value).startswith(message)
    assert len(str(error.value).splitlines()) == 1


def test_eval_rules_wait_until_evaluation_is_on():
    off = config(eval__every=0, eval__split="nope", eval__lags=99)
    assert off.eval_steps == range(0)
    with pytest.raises(SpecError, match="eval.split: 'nope'"):
        config(eval__every=10, eval__split="nope")


def test_a_rule_broken_by_set_is_one_line_from_the_cli(tmp_path):
    path = tiny_pipeline(tmp_path)
    result = run_cli(
        "train", str(path), "--logdir", str(tmp_path / "r"), "--dry-run", "--set", "eval.every=7"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"stgan: error: {path}: eval.every: 7 is more than train.steps 6, so no evaluation "
        "would run; use eval.every <= 6, or 0 to turn evaluation off"
    ]
    assert result.stdout == "" and not (tmp_path / "r").exists()


# -- derived values ------------------------------------------------------------------


def test_output_frames_are_the_window_less_the_context_of_a_conditional_generator():
    plain = config(model__generator__context_frames=3)
    assert (plain.context_frames, plain.output_frames) == (0, 8)
    nowcast = config(**CONDITIONAL, model__generator__context_frames=3)
    assert (nowcast.context_frames, nowcast.output_frames) == (3, 5)
    assert nowcast.channels == 2


def test_eval_steps_are_every_multiple_of_eval_every_up_to_train_steps():
    cfg = config(eval__every=30)
    assert list(cfg.eval_steps) == [30, 60, 90]
    assert 60 in cfg.eval_steps and 59 not in cfg.eval_steps and 120 not in cfg.eval_steps
    assert list(config(eval__every=100).eval_steps) == [100]
    assert not config().eval_steps  # eval.every = 0: off


def test_split_names_come_from_the_data_spec():
    assert config().split_names == ("train", "val", "test")
    dated = {"train": ["2000-01-01", "2000-01-10"], "val": ["2000-01-11", "2000-01-12"]}
    cfg = config(data__split=dated, report__split="val")
    assert cfg.split_names == ("train", "val")


def test_derived_values_are_not_written_with_the_resolved_config():
    written = resolved_dict(config(eval__every=10))
    assert not {"output_frames", "split_names", "eval_steps", "context_frames"} & set(written)
    assert written["data"]["window"] == {"length": 8, "stride": 1}


# -- --resume ------------------------------------------------------------------------


def test_report_may_change_on_resume_but_the_model_may_not():
    saved = resolved_dict(config())
    reported = config(report__samples=128, report__split="val", report__seed=3)
    check_compatible(saved, resolved_dict(reported), ignore=RESUMABLE_KEYS)
    with pytest.raises(CheckpointError, match=r"differs from the current config in: loss.name;"):
        check_compatible(saved, resolved_dict(config(loss__name="wgan")), ignore=RESUMABLE_KEYS)


@pytest.mark.slow
def test_a_killed_run_resumes_after_report_samples_changed(tmp_path):
    from stgan.training.loop import train

    path = tiny_pipeline(tmp_path)
    train(load_pipeline(path), tmp_path / "run", device="cpu", max_steps=2)
    raw = yaml.safe_load(path.read_text())
    raw["report"]["samples"] = 32
    path.write_text(yaml.safe_dump(raw))
    train(load_pipeline(path), tmp_path / "run", device="cpu", max_steps=3, resume=True)
    assert (tmp_path / "run" / "checkpoints" / "ckpt_00000003.pt").is_file()
