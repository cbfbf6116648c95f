"""Calendar features and the cycles rule, pinned by hand for known times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stgan.data.calendar import count, cycles_of, features, model_cycles


def phases(times, cycle: str) -> np.ndarray:
    """The phase in [0, 1) that the (sin, cos) pair of ``cycle`` encodes."""
    sin, cos = features(times, [cycle]).T
    return np.mod(np.arctan2(sin, cos) / (2 * np.pi), 1.0)


def test_hour_six_is_a_quarter_of_the_day():
    times = pd.DatetimeIndex(["2001-03-04 06:00", "2001-03-04 18:00", "2001-03-05 00:00"])
    np.testing.assert_allclose(phases(times, "day"), [0.25, 0.75, 0.0], atol=1e-6)
    sin, cos = features(times[:1], ["day"])[0]
    assert sin == pytest.approx(1.0) and cos == pytest.approx(0.0, abs=1e-6)


def test_weekday_of_a_known_date():
    # 2024-01-01 was a Monday (day 0); 2024-01-07 12:00 is Sunday noon: (6 + 0.5) / 7
    times = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-07 12:00"])
    np.testing.assert_allclose(phases(times, "week"), [0.0, 6.5 / 7], atol=1e-6)


def test_year_length_follows_leap_years():
    # 31 Dec noon: day 366 of 2024 (366 days), day 365 of 2023 (365 days)
    leap, common = pd.DatetimeIndex(["2024-12-31 12:00"]), pd.DatetimeIndex(["2023-12-31 12:00"])
    assert phases(leap, "year")[0] == pytest.approx(365.5 / 366, abs=1e-6)
    assert phases(common, "year")[0] == pytest.approx(364.5 / 365, abs=1e-6)


def test_360_day_calendar_has_360_day_years():
    # 360_day: every month 30 days, so 1 July is day 181 (phase 180 / 360 = 0.5)
    times = xr.date_range("2001-07-01", periods=2, freq="6h", calendar="360_day", use_cftime=True)
    np.testing.assert_allclose(phases(times, "year"), [0.5, 180.25 / 360], atol=1e-6)
    np.testing.assert_allclose(phases(times, "day"), [0.0, 0.25], atol=1e-6)


def test_features_of_cftime_values_equal_those_of_their_index():
    times = xr.date_range("2001-02-27", periods=9, freq="12h", calendar="noleap", use_cftime=True)
    table = features(times, ["day", "year"])
    assert table.shape == (9, 4) and table.dtype == np.float32
    np.testing.assert_array_equal(features(np.asarray(times), ["day", "year"]), table)
    # noleap: two days after 27 Feb is 1 March, day 60 of 365
    assert phases(times[4:5], "year")[0] == pytest.approx(59.0 / 365, abs=1e-6)


def test_no_cycles_no_columns():
    times = pd.date_range("2001-01-01", periods=3, freq="D")
    assert features(times, []).shape == (3, 0)
    assert count(["day", "week"]) == 4


@pytest.mark.parametrize(
    ("times", "step", "expected"),
    [
        (pd.date_range("2001-01-01", periods=2 * 8760, freq="h"), "1h", ("day", "week", "year")),
        (pd.date_range("2001-01-01", periods=30 * 48, freq="30min"), "30min", ("day", "week")),
        (pd.date_range("2001-01-01", periods=800, freq="D"), "1D", ("week", "year")),
        (
            xr.date_range("2001-01-01", periods=180, freq="D", calendar="360_day", use_cftime=True),
            "1D",
            (),
        ),
        (
            xr.date_range("2001-01-01", periods=4 * 360, freq="6h", calendar="360_day"),
            "6h",
            ("day", "year"),
        ),
        (pd.date_range("2001-01-01", periods=12, freq="h"), "1h", ()),  # half a day
        (pd.date_range("2001-01-01", periods=40, freq="MS"), "31D", ("year",)),
    ],
)
def test_cycles_rule(times, step, expected):
    assert cycles_of(times, pd.Timedelta(step)) == expected


def test_model_cycles_come_from_the_grid_when_the_calendar_is_on():
    grid = {"time": {"cycles": ["day", "year"]}}
    assert model_cycles(grid, calendar=True) == ("day", "year")
    assert model_cycles(grid, calendar=False) == ()
    assert model_cycles({"time": {}}, calendar=True) == ()  # an older checkpoint


def test_unknown_cycle_is_refused():
    with pytest.raises(ValueError, match="unknown cycle"):
        features(pd.date_range("2001-01-01", periods=2), ["month"])
