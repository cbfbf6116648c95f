"""Tests for benchmarks/quality.py: the suite, the goal checks and aggregation on hand-made
reports, the pipeline written from a template, and the runner on stand-in children."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stgan.cli import main as stgan_main

ROOT = Path(__file__).resolve().parents[1]


def _load_quality():
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["quality"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


quality = _load_quality()


def _entry(acf=0.05, lsd=2.0, w1=0.1, ks=0.05, c2st=0.3, coverage=0.6) -> dict:
    return {
        "acf": {"error": acf},
        "psd": {"lsd_db": lsd},
        "wasserstein1": w1,
        "ks": ks,
        "c2st": c2st,
        "coverage": coverage,
    }


def _report(gan: dict, floor: dict | None = None, untrained: dict | None = None) -> dict:
    floor = floor or _entry(acf=0.01, lsd=0.5, w1=0.02, ks=0.01, c2st=0.05, coverage=0.9)
    untrained = untrained or _entry(acf=0.2, lsd=8.0, w1=1.0, ks=0.5, c2st=0.5, coverage=0.0)
    return {
        "variables": {"tas": gan},
        "floor": {"tas": floor},
        "score": 1.0,
        "baselines": {
            "untrained": {"variables": {"tas": untrained}, "score": 9.0},
            "ar1": {"variables": {"tas": _entry(acf=0.02)}, "score": 2.0},
        },
    }


# -- the suite -------------------------------------------------------------------------------


def test_suite_has_eight_sets_split_into_tune_and_held_out() -> None:
    suite = quality.SUITE
    assert len(suite) >= 8
    assert all((ROOT / spec).is_file() for spec, _ in suite.values())
    assert {part for _, part in suite.values()} == {quality.TUNE, quality.HELD_OUT}
    tune = [name for name, (_, part) in suite.items() if part == quality.TUNE]
    assert "synthetic" in tune and len(tune) == 3
    assert all(suite[name][0].startswith("benchmarks/suite/") for name in tune[1:] if tune)
    for shipped in ("era5_t2m_uk", "nyc_bike"):
        assert suite[shipped] == (f"data_specs/{shipped}.yaml", quality.HELD_OUT)
    listed = {Path(spec).name for spec, _ in suite.values()}
    assert {p.name for p in (ROOT / "benchmarks" / "suite").glob("*.yaml")} <= listed


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # the generated files, written on first use


@pytest.mark.parametrize("spec", sorted((ROOT / "benchmarks" / "suite").glob("*.yaml")), ids=str)
def test_every_generated_suite_spec_passes_inspect(spec, cache, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STGAN_CACHE_DIR", str(cache))
    assert stgan_main(["inspect", str(spec), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for split in ("train", "val", "test"):
        assert summary["splits"][split]["windows"] >= 8, (spec.name, split)
    assert summary["time"]["gaps"] == []


# -- goals and aggregation (pure) -----------------------------------------------------------------


def test_values_of_reads_every_source_and_metric() -> None:
    values = quality.values_of(_report(_entry(acf=0.07)), "tas")
    assert list(values) == list(quality.SOURCES)
    assert values["GAN"]["acf_error"] == 0.07 and values["floor"]["lsd_db"] == 0.5
    assert values["untrained"]["coverage"] == 0.0 and values["ar1"]["acf_error"] == 0.02
    no_baselines = {"variables": {"tas": _entry()}}
    assert math.isnan(quality.values_of(no_baselines, "tas")["floor"]["ks"])


def test_mean_and_spread_over_seeds() -> None:
    assert quality.mean_spread([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert quality.mean_spread([4.0, math.nan]) == (4.0, 0.0)
    assert all(math.isnan(v) for v in quality.mean_spread([math.nan]))


def test_a_spread_of_float_rounding_is_not_printed() -> None:
    # the floor is the same real data on every seed: its values differ in the last bits only
    floor = [0.338, 0.338 + 1e-16, 0.338 - 1e-16]
    assert quality._pm(*quality.mean_spread(floor)) == "0.338"
    assert quality._pm(*quality.mean_spread([0.4, 0.45, 0.5])) == "0.45±0.05"
    assert quality._pm(*quality.mean_spread([0.0, 0.0])) == "0"


def test_goals_met_on_every_seed() -> None:
    good = _entry(acf=0.02, lsd=1.2, w1=0.05, ks=0.03, c2st=0.2, coverage=0.7)
    row = quality.aggregate([quality.values_of(_report(good), "tas")] * 2)
    assert row["met"] and quality.goal_text(row) == "met"
    assert row["margins"]["acf_error"] == pytest.approx(0.01)  # 0.01 + 0.02 - 0.02
    assert row["margins"]["c2st"] == pytest.approx(0.25)
    assert row["stats"]["GAN"]["lsd_db"] == {"mean": 1.2, "spread": 0.0}


def test_worst_seed_decides_and_the_miss_is_shown() -> None:
    seeds = [
        _entry(acf=0.02, lsd=1.0, ks=0.03, c2st=0.2),
        _entry(acf=0.05, lsd=1.8, ks=0.03, c2st=0.48),  # acf 0.02, lsd 0.3, c2st 0.03 over
    ]
    row = quality.aggregate([quality.values_of(_report(s), "tas") for s in seeds])
    assert not row["met"]
    assert row["margins"]["acf_error"] == pytest.approx(-0.02)
    assert row["margins"]["lsd_db"] == pytest.approx(-0.3)
    assert row["margins"]["ks"] == pytest.approx(0.02)
    assert row["margins"]["c2st"] == pytest.approx(-0.03)  # absolute goal: 0.45
    assert row["stats"]["GAN"]["acf_error"]["mean"] == pytest.approx(0.035)
    assert row["stats"]["GAN"]["acf_error"]["spread"] == pytest.approx(0.0212, abs=1e-4)
    assert quality.goal_text(row) == "acf_error +0.02; lsd_db +0.3; c2st +0.03"
    assert row["floor_misses"] == []


def test_an_absolute_goal_the_floor_misses_too_says_so() -> None:
    floor = _entry(acf=0.01, lsd=0.5, w1=0.02, ks=0.01, c2st=0.47, coverage=0.9)
    gan = _entry(acf=0.02, lsd=1.0, ks=0.03, c2st=0.49)
    row = quality.aggregate([quality.values_of(_report(gan, floor=floor), "tas")])
    assert row["floor_misses"] == ["c2st"]
    assert quality.goal_text(row) == "c2st +0.04 (the floor too)"


def test_gan_must_beat_the_untrained_generator_in_each_direction() -> None:
    untrained = _entry(acf=0.2, lsd=8.0, w1=1.0, ks=0.5, c2st=0.5, coverage=0.5)
    gan = _entry(acf=0.02, lsd=1.0, w1=1.0, ks=0.03, c2st=0.2, coverage=0.4)  # w1 tie, cov lower
    values = quality.values_of(_report(gan, untrained=untrained), "tas")
    assert quality.worse_than_untrained(values) == ["wasserstein1", "coverage"]
    row = quality.aggregate([values])
    assert not row["met"]
    assert quality.goal_text(row) == "not better than untrained: wasserstein1, coverage"


def test_a_missing_goal_metric_is_not_met() -> None:
    gan = _entry(acf=0.02, lsd=1.0, ks=0.03, c2st=0.2)
    del gan["c2st"]
    row = quality.aggregate([quality.values_of(_report(gan), "tas")])
    assert not row["met"] and quality.goal_text(row).startswith("c2st n/a")


def test_table_shows_tune_and_held_out_apart() -> None:
    row = quality.aggregate([quality.values_of(_report(_entry()), "tas")])
    results = {
        "cycles": {"part": quality.HELD_OUT, "failed": [], "cpu_minutes": [3.0, 5.0],
                   "variables": {"tas": row}},
        "synthetic": {"part": quality.TUNE, "failed": [1], "cpu_minutes": [2.0],
                      "variables": {"tas": row}},
        "rain": {"part": quality.HELD_OUT, "failed": [0], "cpu_minutes": [math.nan],
                 "variables": {}},
    }  # fmt: skip
    text = quality.table(results)
    assert text.index("== tune ==") < text.index("synthetic") < text.index("== held-out ==")
    assert text.index("== held-out ==") < text.index("cycles")
    assert "4.0±1.4" in text  # CPU minutes over seeds
    assert "(failed seeds: 1)" in text and "all seeds failed" in text
    assert len([line for line in text.splitlines() if "tas" in line]) == 2  # one per set
    markdown = quality.table(results, markdown=True)
    assert "**tune**" in markdown and "| set | variable | source | acf_error" in markdown


def test_results_json_has_no_nan() -> None:
    document = quality.finite({"a": [1.0, math.nan], "b": {"c": math.inf, "d": (2, 3)}})
    assert document == {"a": [1.0, None], "b": {"c": None, "d": [2, 3]}}
    json.dumps(document, allow_nan=False)


# -- running ----------------------------------------------------------------------------------


def test_pipeline_from_template_replaces_only_data(tmp_path: Path) -> None:
    spec = ROOT / "benchmarks" / "suite" / "rain.yaml"
    path = quality.write_pipeline(ROOT / "pipelines" / "demo.yaml", spec, tmp_path / "rain")
    written = yaml.safe_load(path.read_text())
    template = yaml.safe_load((ROOT / "pipelines" / "demo.yaml").read_text())
    assert written["data"] == str(spec) and written["name"] == "rain"
    assert {k: v for k, v in written.items() if k not in ("data", "name")} == {
        k: v for k, v in template.items() if k not in ("data", "name")
    }


def test_command_is_one_thread_with_the_seed_and_steps(tmp_path: Path) -> None:
    run = quality.Run("rain", 2, tmp_path / "seed2", Path("spec.yaml"), 30)
    command = run.command(force=False)
    assert command[1:5] == ["-m", "stgan", "run", "spec.yaml"]
    joined = " ".join(command)
    assert f"--logdir {tmp_path / 'seed2'}" in joined and "--set train.seed=2" in joined
    assert "--set train.threads=1" in joined and "--set train.steps=30" in joined
    assert "--force" not in joined and "--force" in run.command(force=True)
    assert "train.steps" not in " ".join(
        quality.Run("r", 0, tmp_path, Path("s"), None).command(False)
    )


@dataclass(frozen=True)
class _StandIn(quality.Run):
    """A child that burns a little CPU and writes a report, in place of ``stgan run``."""

    def command(self, force: bool) -> list[str]:
        script = (
            "import json, os, sys, time\n"
            "end = time.process_time() + 0.2\n"
            "while time.process_time() < end: pass\n"
            "d = sys.argv[1]\n"
            "open(os.path.join(d, 'started'), 'a').write(os.environ['OMP_NUM_THREADS'])\n"
            "json.dump({'variables': {'tas': {'ks': 0.1}}}, open(os.path.join(d, 'report.json'), 'w'))\n"
            "sys.exit(3 if d.endswith('seed9') else 0)\n"
        )  # fmt: skip
        return [sys.executable, "-c", script, str(self.directory)]


def test_runner_records_cpu_reuses_finished_runs_and_reports_failures(tmp_path: Path) -> None:
    runs = [_StandIn("cycles", seed, tmp_path / f"seed{seed}", Path("s"), 5) for seed in (0, 1, 9)]
    lines: list[str] = []
    quality.execute(runs, parallel=2, echo=lines.append)
    for run in runs:
        record = run.record()
        assert record["rc"] == (3 if run.seed == 9 else 0)
        assert record["cpu_s"] >= 0.15  # the child's own CPU time, from os.wait4
        assert (run.directory / "started").read_text() == "1"  # OMP_NUM_THREADS=1
    assert any("seed 9: FAILED (exit 3)" in line for line in lines)

    lines.clear()
    quality.execute(runs, parallel=2, echo=lines.append)  # again: only the failed run reruns
    assert sum("reused" in line for line in lines) == 2
    assert (runs[0].directory / "started").read_text() == "1"
    assert (runs[2].directory / "started").read_text() == "11"
    assert runs[2].record()["cpu_s"] >= 0.35  # a rerun adds to the recorded CPU time

    results = quality.collect(runs)["cycles"]
    assert results["seeds"] == [0, 1] and results["failed"] == [9]
    assert results["variables"]["tas"]["stats"]["GAN"]["ks"]["mean"] == pytest.approx(0.1)


def test_unknown_set_is_one_line_and_exit_2(capsys) -> None:
    assert quality.main(["--sets", "synthetic,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown set(s) nope" in err and "era5_t2m_uk" in err
