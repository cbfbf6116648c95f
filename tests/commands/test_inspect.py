import json
from pathlib import Path

import pytest

from stgan.cli import COMMANDS, main
from tests.conftest import make_dataset, run_cli, write_spec

SPECS = Path(__file__).resolve().parents[2] / "data_specs"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: stgan " + command in capsys.readouterr().out


def test_inspect_era5_summary(capsys):
    assert main(["inspect", str(SPECS / "era5_t2m_uk.yaml"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["dims"]["time"] == {"name": "time", "size": 744}
    assert s["grid"] == {"height": 32, "width": 48, "coarsen": 1}
    assert (
        s["time"]["step"] == "1h"
        and s["time"]["gaps"] == []
        and s["time"]["calendar"] == "standard"
    )
    assert s["splits"]["train"]["steps"] == 21 * 24
    assert s["splits"]["train"]["windows"] == (21 * 24 - 24) // 6 + 1
    assert 265 < s["variables"]["t2m"]["min"] < s["variables"]["t2m"]["mean"] < 292
    assert s["bytes_per_window"] == 24 * 32 * 48 * 5


def test_inspect_nyc_bike_table(capsys):
    assert main(["inspect", str(SPECS / "nyc_bike.yaml")]) == 0
    out = capsys.readouterr().out
    assert "step 30min" in out and "inflow" in out and "outflow" in out and "log1p" in out
    assert "train  2016-08-01 00:00:00  2016-09-27 23:30:00  2784" in out


def test_inspect_reports_gaps(tmp_path, capsys):
    make_dataset(nt=60, drop_steps=(30, 31)).to_netcdf(tmp_path / "data.nc")
    write_spec(tmp_path / "spec.yaml")
    assert main(["inspect", str(tmp_path / "spec.yaml"), "--json"]) == 0
    gaps = json.loads(capsys.readouterr().out)["time"]["gaps"]
    assert gaps == [{"after": "2000-01-02 05:00:00", "delta": "3h"}]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"files": "absent.nc"}, "'absent.nc' not found"),
        ({"variables": ["precip"]}, "variable 'precip' not found; variables present: tas"),
        ({"windw": {"length": 3}}, "did you mean 'window'?"),
    ],
)
def test_user_errors_are_one_line_exit_2(tiny, fields, message):
    write_spec(tiny / "spec.yaml", **fields)
    result = run_cli("inspect", str(tiny / "spec.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith("stgan: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_missing_spec_and_yaml_syntax(tmp_path):
    result = run_cli("inspect", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml: file not found" in result.stderr
    (tmp_path / "bad.yaml").write_text("files: data.nc\nwindow: {length: 3\n")
    result = run_cli("inspect", str(tmp_path / "bad.yaml"))
    assert result.returncode == 2 and "YAML syntax error at line" in result.stderr


def test_a_patch_larger_than_the_grid_is_refused_by_inspect(tiny):
    write_spec(tiny / "spec.yaml", patch=64)  # the grid is 6x8
    result = run_cli("inspect", str(tiny / "spec.yaml"))
    assert result.returncode == 2, result.stderr
    assert (
        "patch: 64 is larger than the grid 6x8 (after crop and coarsen); lower it to at most 6"
        in result.stderr
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_binary_or_directory_spec_is_one_line(tmp_path):
    (tmp_path / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = run_cli("inspect", str(tmp_path / "binary.yaml"))
    assert result.returncode == 2 and "binary.yaml: not a text file" in result.stderr
    result = run_cli("inspect", str(tmp_path))
    assert result.returncode == 2 and "is a directory, not a YAML file" in result.stderr
    assert "file not found" not in result.stderr
