"""Calendar features: where each time step lies in the data's daily, weekly and yearly cycles.

The one owner of the calendar inputs of the models. :func:`cycles_of` says which cycles a
data set has, from its training split's time axis; :func:`features` gives, for any times,
the sine and cosine of ``2 pi phase`` per cycle, the inputs a generator is conditioned on
(and the discriminator judges against), so ``stgan generate --start TIME`` makes
sequences for that calendar time. Times are a ``pandas.DatetimeIndex`` or an
``xarray.CFTimeIndex`` (non-standard calendars: 360_day, noleap, all_leap, ...).

The rules:

- ``day`` when the time step is shorter than a day and the split spans a day;
- ``week`` when the step is at most a day, the split spans a week and the calendar has
  real weekdays (:data:`WEEKDAY_CALENDARS`: numpy datetimes and the standard calendars).
  Model calendars (360_day, noleap, all_leap) come from climate models, which have no
  weekly rhythm, and their weekdays are not the ones people keep;
- ``year`` when the split spans at least the calendar's shortest year (360 days on
  360_day, 365 otherwise).

Phases: time of day / 1 day; (day of week + time of day) / 7 with Monday 0; (day of
year - 1 + time of day) / days in that year on that calendar (360, 365/366, 365 noleap,
366 all_leap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

if TYPE_CHECKING:
    from stgan.data.prepared import PreparedData

CYCLES = ("day", "week", "year")
WEEKDAY_CALENDARS = ("standard", "gregorian", "proleptic_gregorian", "julian")
DAY = pd.Timedelta(days=1)


def cycles_of(time: pd.Index, step: pd.Timedelta) -> tuple[str, ...]:
    """The cycles of a data set whose training split has times ``time`` every ``step``.

    >>> hourly = pd.date_range("2001-01-01", periods=2 * 8760, freq="h")
    >>> cycles_of(hourly, pd.Timedelta(hours=1))
    ('day', 'week', 'year')
    """
    time = as_index(time)
    span = time[-1] - time[0] + step
    cycles = []
    if step < DAY and span >= DAY:
        cycles.append("day")
    if step <= DAY and span >= 7 * DAY and calendar_of(time) in WEEKDAY_CALENDARS:
        cycles.append("week")
    shortest_year = 360 if calendar_of(time) == "360_day" else 365
    if span >= shortest_year * DAY:
        cycles.append("year")
    return tuple(cycles)


def training_cycles(data: PreparedData) -> tuple[str, ...]:
    """:func:`cycles_of` the ``train`` split of prepared data: the cycles training records in
    the grid description (``time.cycles``)."""
    layout = data.layout
    return cycles_of(data.source.time[slice(*layout.splits["train"])], layout.step)


def features(times, cycles: Sequence[str]) -> np.ndarray:
    """``(N, 2 * len(cycles))`` float32: sin and cos of ``2 pi phase`` of each cycle in turn.

    ``times``: a ``DatetimeIndex``, a ``CFTimeIndex``, or an array of datetime64 or
    cftime values (N of them).
    """
    unknown = [c for c in cycles if c not in CYCLES]
    if unknown:
        raise ValueError(f"unknown cycle(s) {unknown}; known: {', '.join(CYCLES)}")
    time = as_index(times)
    columns = []
    for cycle in cycles:
        angle = 2 * np.pi * _PHASES[cycle](time)
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(time), 0), np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


def count(cycles: Sequence[str]) -> int:
    """The number of calendar features of ``cycles`` (a sine and a cosine each)."""
    return 2 * len(cycles)


def model_cycles(grid: dict, calendar: bool) -> tuple[str, ...]:
    """The cycles a model of a checkpoint is conditioned on: those its grid description
    records (none in older checkpoints), when ``model.generator.calendar`` is on."""
    return conditioned(grid.get("time", {}).get("cycles", ()), calendar)


def conditioned(cycles: Sequence[str], calendar: bool) -> tuple[str, ...]:
    """Of a data set's ``cycles``, those G and D are given: all of them when
    ``model.generator.calendar`` is on, none when it is off."""
    return tuple(cycles) if calendar else ()


def as_index(times) -> pd.Index:
    """``times`` as a ``DatetimeIndex`` or a ``CFTimeIndex``."""
    if isinstance(times, (pd.DatetimeIndex, xr.CFTimeIndex)):
        return times
    values = np.asarray(times).ravel()
    if values.dtype.kind == "M":
        return pd.DatetimeIndex(values)
    return xr.CFTimeIndex(values)


def calendar_of(time: pd.Index) -> str:
    """The CF calendar name of a time index (``standard`` for numpy datetimes)."""
    return getattr(time, "calendar", "standard")


def _day_fraction(time: pd.Index) -> np.ndarray:
    """Time of day / 1 day, in [0, 1)."""
    seconds = (
        np.asarray(time.hour) * 3600.0
        + np.asarray(time.minute) * 60.0
        + np.asarray(time.second)
        + np.asarray(time.microsecond) * 1e-6
    )
    return seconds / 86400.0


def _week_phase(time: pd.Index) -> np.ndarray:
    return (np.asarray(time.day_of_week) + _day_fraction(time)) / 7.0


def _year_phase(time: pd.Index) -> np.ndarray:
    if calendar_of(time) == "360_day":
        days = np.full(len(time), 360.0)
    else:
        days = 365.0 + np.asarray(time.is_leap_year, dtype=float)
    return (np.asarray(time.day_of_year) - 1 + _day_fraction(time)) / days


_PHASES = {"day": _day_fraction, "week": _week_phase, "year": _year_phase}
