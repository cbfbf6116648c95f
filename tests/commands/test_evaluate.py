import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import stgan.metrics.report as report_module
from stgan.cli import main
from stgan.figures import KINDS
from stgan.metrics import ACF, evaluate
from stgan.metrics.report import to_json
from tests.conftest import make_dataset, run_cli
from tests.metrics.conftest import assert_report_logged

LENGTH = 8  # steps per synthetic sample
REAL_STEPS = 100  # a long real series, cut into windows of LENGTH (4 steps left over)
SYNTHETIC_SAMPLES = 10
VARIABLES = ("tas", "pr")
REPORT_KEYS = {"variables", "cross_correlation", "n_real", "n_synthetic", "score"}
VARIABLE_KEYS = {
    "acf", "psd", "wasserstein1", "ks", "energy", "quantiles", "increments", "mmd2", "c2st",
    "precision", "recall", "density", "coverage",
}  # fmt: skip
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def with_samples(ds: xr.Dataset, length: int) -> xr.Dataset:
    """``ds`` (time, lat, lon) cut into ``(sample, time, lat, lon)`` sequences of ``length``."""
    n = ds.sizes["time"] // length
    data = {
        name: (
            ("sample", "time", "lat", "lon"),
            da.values[: n * length].reshape(n, length, *da.shape[1:]),
            da.attrs,
        )
        for name, da in ds.data_vars.items()
    }
    return xr.Dataset(data, coords={"lat": ds.lat, "lon": ds.lon})


def synthetic_dataset(**options) -> xr.Dataset:
    steps = SYNTHETIC_SAMPLES * LENGTH
    return with_samples(make_dataset(nt=steps, variables=VARIABLES, seed=1, **options), LENGTH)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """real.nc (a long series), synthetic.nc (sample dim) and garbage.nc in ``tmp_path``."""
    make_dataset(nt=REAL_STEPS, variables=VARIABLES).to_netcdf(tmp_path / "real.nc")
    synthetic_dataset().to_netcdf(tmp_path / "synthetic.nc")
    (tmp_path / "garbage.nc").write_text("this is not NetCDF\n")
    return tmp_path


def argv(directory: Path, **overrides: str | None) -> list[str]:
    """``stgan evaluate`` arguments for ``directory``; ``lags="3"`` adds, ``logdir=None`` drops."""
    options = {
        "real": "real.nc",
        "synthetic": "synthetic.nc",
        "out": "report.json",
        "logdir": "tb",
        "figures": "figures",
        "device": "cpu",
    }
    options.update(overrides)
    paths = {"real", "synthetic", "out", "logdir", "figures"}
    args = ["evaluate"]
    for key, value in options.items():
        if value is not None:
            args += [f"--{key}", str(directory / value) if key in paths else value]
    return args


def leaves(tree: object) -> list[float | None]:
    """Every number of a nested report in a fixed order, ``None`` kept, names left out."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in leaves(tree[key])]
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in leaves(item)]
    return [] if isinstance(tree, str) else [tree]


def reject_constant(name: str) -> None:
    raise AssertionError(f"{name} in the report: not strict JSON")


def test_report_json_and_table(files, capsys):
    assert main(argv(files, logdir=None, figures=None)) == 0
    out = capsys.readouterr().out

    report = json.loads((files / "report.json").read_text(), parse_constant=reject_constant)
    assert set(report) == REPORT_KEYS
    assert set(report["variables"]) == set(VARIABLES)
    assert all(set(entry) == VARIABLE_KEYS for entry in report["variables"].values())
    # the long real series is cut into windows of the synthetic sequence length
    assert report["n_real"] == REAL_STEPS // LENGTH
    assert report["n_synthetic"] == SYNTHETIC_SAMPLES
    expected = json.loads(
        to_json(evaluate(*(xr.open_dataset(files / f) for f in ("real.nc", "synthetic.nc"))))
    )
    assert leaves(report) == pytest.approx(leaves(expected), rel=1e-12)
    series = xr.open_dataset(files / "real.nc")["tas"].values  # (time, lat, lon)
    windows = series[: report["n_real"] * LENGTH].reshape(-1, LENGTH, *series.shape[1:])
    acf = ACF(lags=LENGTH - 1)
    acf.update(real=windows, synthetic=windows)
    assert report["variables"]["tas"]["acf"]["real"] == pytest.approx(
        acf.compute()["acf"]["real"], rel=1e-12
    )

    lines = out.splitlines()
    assert lines[0].split()[:3] == ["variable", "acf.error", "lsd_db"]
    for name in VARIABLES:
        row = next(line for line in lines if line.startswith(f"{name} ")).split()
        entry = report["variables"][name]
        assert row[4] == f"{entry['ks']:.4g}" and row[9] == f"{entry['recall']:.4g}"
    assert lines[-1] == f"wrote the report to {files / 'report.json'}"
    assert not (files / "tb").exists() and not (files / "figures").exists()


@pytest.mark.slow
def test_cli_logs_to_tensorboard_and_writes_figures(files):
    result = run_cli(*argv(files, variables="tas"))  # one variable: half the figures to draw
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.startswith("variable  acf.error")
    report = json.loads((files / "report.json").read_text())
    assert list(report["variables"]) == ["tas"]

    events = assert_report_logged(files / "tb", report, step=0)
    figures = {f"tas/{kind}" for kind in KINDS}
    assert set(events.Tags()["images"]) == {f"Figures/{key}" for key in figures}

    for key in figures:
        png = files / "figures" / f"{key.replace('/', '_')}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_nan_only_in_synthetic_is_noted(files, capsys):
    # real misses cell (0, 0) throughout; synthetic misses (0, 0) and (1, 2): one is new
    make_dataset(nt=REAL_STEPS, variables=VARIABLES, nan_cells=((0, 0),)).to_netcdf(
        files / "real.nc"
    )
    synthetic_dataset(nan_cells=((0, 0), (1, 2))).to_netcdf(files / "synthetic.nc")
    assert main(argv(files, logdir=None, figures=None)) == 0
    out = capsys.readouterr().out
    cells = SYNTHETIC_SAMPLES * LENGTH  # every step of every sample at (1, 2)
    for name in VARIABLES:
        assert f"note: synthetic {name!r} has NaN in {cells} cells where real has none" in out


def test_progress_bar_on_stderr(files, capsys, monkeypatch):
    monkeypatch.setattr(report_module, "PROGRESS_DELAY_S", 0)
    assert main(argv(files, logdir=None, figures=None)) == 0
    err = capsys.readouterr().err
    assert "evaluate" in err and "batch" in err


def case(change=None, message="", **overrides):
    """A bad input: a change to the synthetic dataset and/or to the arguments."""
    return pytest.param(change, overrides, message, id=message.split(":")[0][:40])


def set_units(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign(tas=ds.tas.assign_attrs(units="degC"))


@pytest.mark.parametrize(
    ("change", "overrides", "message"),
    [
        case(message="absent.nc: file not found", real="absent.nc"),
        case(message="garbage.nc: cannot be read as NetCDF", synthetic="garbage.nc"),
        case(lambda ds: ds.assign_coords(lat=ds.lat + 1), "'pr': real and synthetic grids differ"),
        case(lambda ds: ds.drop_vars("pr"), "variables differ: only in real ['pr']"),
        case(
            message="'rain' in real, 'rain' in synthetic; real has ['pr', 'tas']", variables="rain"
        ),
        case(set_units, "'tas': real units 'K', synthetic 'degC'"),
        case(message=f"too short for {LENGTH} lags", lags=str(LENGTH)),
        case(message="--lags 0: must be >= 1", lags="0"),
        case(lambda ds: ds.assign(pr=ds.pr * np.nan), "'pr' is all NaN in the synthetic data"),
        case(message="garbage.nc is a file, not a directory", out="garbage.nc/report.json"),
        pytest.param(
            None,
            {"device": "cuda"},
            "no CUDA device",
            id="no CUDA",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, capsys, change, overrides, message):
    if change is not None:
        change(xr.load_dataset(files / "synthetic.nc")).to_netcdf(files / "changed.nc")
        overrides = {**overrides, "synthetic": "changed.nc"}
    assert main(argv(files, **overrides)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("stgan: error: ") and captured.err.count("\n") == 1
    assert message in captured.err and captured.out == ""
    assert not any((files / name).exists() for name in ("report.json", "tb", "figures"))


def test_bad_input_in_a_child_process(files):
    synthetic_dataset().assign(tas=lambda ds: ds.tas * np.nan).to_netcdf(files / "synthetic.nc")
    result = run_cli(*argv(files))
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr
        == "stgan: error: 'tas' is all NaN in the synthetic data; drop it or fix the file\n"
    )
    assert not (files / "report.json").exists()


def test_to_json_is_strict_with_null_for_non_finite():
    text = to_json({"a": math.nan, "b": [1.0, -math.inf], "c": np.float32(2.5), "d": None})
    assert json.loads(text, parse_constant=reject_constant) == {
        "a": None,
        "b": [1.0, None],
        "c": 2.5,
        "d": None,
    }


def test_a_yaml_real_side_takes_no_variables_and_a_file_takes_no_split(tmp_path, tiny):
    synthetic = tmp_path / "s.nc"
    with_samples(make_dataset(nt=40), 4).to_netcdf(synthetic)
    out = str(tmp_path / "r.json")
    spec = str(tiny / "spec.yaml")
    cases = [
        (("--real", spec, "--variables", "tas"), "--variables: with a YAML --real"),
        (("--real", str(synthetic), "--split", "val"), "--split val: only with a data spec"),
        (
            ("--real", spec, "--split", "nope"),
            "split 'nope' is not defined; defined: train, val, test",
        ),
    ]
    for args, message in cases:
        result = run_cli("evaluate", *args, "--synthetic", str(synthetic), "--out", out)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert not Path(out).exists()
