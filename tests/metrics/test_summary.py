import copy

import pytest

from stgan.metrics.summary import format_report

from .conftest import small_report

HEADER = [
    "variable", "acf.error", "lsd_db", "wasserstein1", "ks", "increment_w1", "energy", "mmd2", "c2st",
    "precision", "recall", "density", "coverage",
]  # fmt: skip


@pytest.fixture(scope="module")
def report() -> dict:
    return small_report(("tas", "pr"), seed=3)


def cells(entry: dict) -> list[str]:
    numbers = [entry["acf"]["error"], entry["psd"]["lsd_db"], entry["wasserstein1"], entry["ks"]]
    numbers += [entry["increments"]["wasserstein1"]]
    numbers += [entry[name] for name in HEADER[6:]]
    return [f"{x:.4g}" for x in numbers]


def test_one_row_per_variable_with_its_floor_below(report):
    lines = format_report(report).splitlines()
    assert lines[0].split() == HEADER
    table = lines[:5]
    assert [line.split()[0] for line in table[1:]] == ["tas", "floor", "pr", "floor"]
    assert table[1].split()[1:] == cells(report["variables"]["tas"])
    assert table[2].split()[1:] == cells(report["floor"]["tas"])
    assert table[4].split()[1:] == cells(report["floor"]["pr"])
    assert len({len(line) for line in table}) == 1  # fixed width, numbers right-aligned
    error = report["cross_correlation"]["mean_abs_diff"]
    assert f"cross-correlation error  {error:.4g}" in lines
    assert f"samples  real {report['n_real']}  synthetic {report['n_synthetic']}" in lines


def test_notes_on_nan_only_in_synthetic_and_on_subsamples(report):
    text = format_report(report, nan_notes={"tas": 0, "pr": 1234})
    assert "note: synthetic 'pr' has NaN in 1234 cells where real has none" in text
    assert "'tas' has NaN" not in text and "subsample" not in text
    changed = copy.deepcopy(report)
    changed["variables"]["tas"]["values_subsample"] = {"real": 100, "synthetic": 90}
    assert (
        "note: 'tas': marginal scores on a random subsample of 100 real and 90 synthetic values"
        in format_report(changed)
    )


def test_missing_numbers_show_as_dashes(report):
    changed = copy.deepcopy(report)
    changed["variables"]["tas"]["ks"] = None
    changed["cross_correlation"]["mean_abs_diff"] = None
    del changed["floor"]
    lines = format_report(changed).splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["tas", "pr"]
    assert lines[1].split()[HEADER.index("ks")] == "-"
    assert "cross-correlation error  -" in lines
