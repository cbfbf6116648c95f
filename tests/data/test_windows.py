import numpy as np
import pandas as pd
import pytest
import xarray as xr

from stgan.data.spec import SplitSpec, WindowSpec
from stgan.data.windows import build_layout, time_steps
from stgan.errors import DataError, SpecError


def hourly(n, calendar="standard", start="2000-01-01"):
    return xr.date_range(
        start, periods=n, freq="h", calendar=calendar, use_cftime=calendar != "standard"
    )


def covered(layout, name, length):
    return {int(s) + k for s in layout.windows[name] for k in range(length)}


@pytest.mark.parametrize("calendar", ["standard", "noleap", "360_day"])
def test_date_splits_never_leak(calendar):
    time = hourly(24 * 6, calendar)
    split = SplitSpec(
        train=("2000-01-01", "2000-01-03"),
        val=("2000-01-04", "2000-01-04"),
        test=("2000-01-05", "2000-01-06"),
    )
    layout = build_layout(time, split, WindowSpec(length=6, stride=1))
    assert layout.splits == {"train": (0, 72), "val": (72, 96), "test": (96, 144)}
    for name, (a, b) in layout.splits.items():
        assert covered(layout, name, 6) <= set(range(a, b))
    assert not covered(layout, "train", 6) & covered(layout, "val", 6)
    assert len(layout.windows["val"]) == 24 - 6 + 1


def test_fraction_splits_are_contiguous_and_disjoint():
    layout = build_layout(
        hourly(100), SplitSpec(fractions=(0.7, 0.2, 0.1)), WindowSpec(length=5, stride=3)
    )
    assert layout.splits == {"train": (0, 70), "val": (70, 90), "test": (90, 100)}
    np.testing.assert_array_equal(layout.windows["test"], [90, 93])


def test_gaps_are_reported_and_never_spanned():
    time = hourly(50).delete([20, 21, 22])  # 3 steps missing after position 19
    layout = build_layout(time, SplitSpec(fractions=(1.0, 0, 0)), WindowSpec(length=4))
    assert layout.step == pd.Timedelta("1h")
    assert layout.gaps == ((19, pd.Timedelta("4h")),)
    assert all(not (s <= 19 < s + 3) for s in layout.windows["train"])
    assert 16 in layout.windows["train"] and 17 not in layout.windows["train"]


@pytest.mark.parametrize(
    ("time", "message"),
    [
        (
            pd.DatetimeIndex(["2000-01-01", "2000-01-02", "2000-01-02", "2000-01-03"]),
            "duplicate time 2000-01-02",
        ),
        (
            pd.DatetimeIndex(["2000-01-01", "2000-01-03", "2000-01-02"]),
            "non-monotonic time 2000-01-02",
        ),
    ],
)
def test_bad_time_axis(time, message):
    with pytest.raises(DataError, match=message):
        time_steps(time)


def test_window_longer_than_split():
    with pytest.raises(
        SpecError,
        match=r"window\.length: 30 steps is longer than split 'val' \(longest gap-free run 20",
    ):
        build_layout(hourly(100), SplitSpec(fractions=(0.7, 0.2, 0.1)), WindowSpec(length=30))


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (SplitSpec(train=("1999-12-01", "2000-01-02")), "starts 1999-12-01, before the data"),
        (SplitSpec(train=("2000-01-01", "2000-02-01")), "ends 2000-02-01, after the data"),
        (
            SplitSpec(train=("2000-01-01", "2000-01-02"), val=("2000-01-02", "2000-01-03")),
            "'train' and 'val' overlap",
        ),
    ],
)
def test_bad_date_splits(split, message):
    with pytest.raises(SpecError, match=message):
        build_layout(hourly(24 * 5), split, WindowSpec(length=4))
