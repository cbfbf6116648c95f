"""Time axis: step, gaps, train/val/test splits and the windows inside them.

Splits are half-open ranges of time positions that never overlap; windows are
``length`` consecutive steps that lie inside one split and one gap-free segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stgan.data.spec import SplitSpec, WindowSpec
from stgan.errors import DataError, SpecError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TimeLayout:
    """Where the windows of each split start.

    ``gaps`` lists ``(i, delta)``: time ``i + 1`` follows time ``i`` after
    ``delta`` instead of ``step``. ``splits`` maps a split name to its half-open
    position range; ``windows`` maps it to the window start positions.
    """

    step: pd.Timedelta
    gaps: tuple[tuple[int, pd.Timedelta], ...]
    segments: tuple[tuple[int, int], ...]
    splits: dict[str, tuple[int, int]]
    windows: dict[str, np.ndarray]


def time_steps(time: pd.Index) -> tuple[pd.Timedelta, tuple[tuple[int, pd.Timedelta], ...]]:
    """The regular step (the most common difference) and every irregular one.

    Raises ``DataError`` for duplicate or decreasing times, naming the first.
    """
    if len(time) < 2:
        raise DataError(f"time: only {len(time)} time step(s); need a series")
    deltas = pd.TimedeltaIndex(time[1:] - time[:-1])
    bad = np.flatnonzero(deltas <= pd.Timedelta(0))
    if bad.size:
        i = int(bad[0])
        kind = "duplicate" if deltas[i] == pd.Timedelta(0) else "non-monotonic"
        raise DataError(
            f"time: {kind} time {time[i + 1]} after {time[i]} (position {i + 1}); "
            f"times must increase strictly, sort or deduplicate the files"
        )
    step = deltas.value_counts().index[0]
    gaps = tuple((int(i), deltas[i]) for i in np.flatnonzero(deltas != step))
    return step, gaps


def segments(n: int, gaps: tuple[tuple[int, pd.Timedelta], ...]) -> tuple[tuple[int, int], ...]:
    """Half-open gap-free runs of positions covering ``0 .. n``."""
    cuts = [0] + [i + 1 for i, _ in gaps] + [n]
    return tuple(zip(cuts[:-1], cuts[1:]))


def split_ranges(time: pd.Index, split: SplitSpec) -> dict[str, tuple[int, int]]:
    """Position ranges per split, by fractions of the series or by inclusive date ranges."""
    if split.fractions is not None:
        ranges, start = {}, 0
        for name, fraction in zip(SPLITS, split.fractions):
            stop = min(start + int(round(fraction * len(time))), len(time))
            if stop > start:
                ranges[name] = (start, stop)
            start = stop
        return ranges
    ranges = {
        name: _date_range(time, name, getattr(split, name))
        for name in SPLITS
        if getattr(split, name)
    }
    _check_disjoint(ranges, time)
    return ranges


def _date_range(time: pd.Index, name: str, bounds: tuple[str, str]) -> tuple[int, int]:
    start, end = bounds
    key = f"split.{name}"
    try:
        selected = time.slice_indexer(start, end)
        before = time.slice_indexer(None, start)
        after = time.slice_indexer(end, None)
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecError(f"{key}: [{start}, {end}] is not a valid date range ({exc})") from None
    span = f"the data cover {time[0]} to {time[-1]}"
    if before.stop <= (before.start or 0):
        raise SpecError(f"{key}: starts {start}, before the data; {span}")
    if after.stop <= after.start:
        raise SpecError(f"{key}: ends {end}, after the data; {span}")
    if selected.stop <= selected.start:
        raise SpecError(f"{key}: [{start}, {end}] selects no time step; {span}")
    return int(selected.start), int(selected.stop)


def _check_disjoint(ranges: dict[str, tuple[int, int]], time: pd.Index) -> None:
    ordered = sorted(ranges.items(), key=lambda item: item[1])
    for (a, (_, a_stop)), (b, (b_start, _)) in zip(ordered, ordered[1:]):
        if b_start < a_stop:
            raise SpecError(
                f"split: '{a}' and '{b}' overlap from {time[b_start]}; make the date ranges disjoint"
            )


def window_starts(
    ranges: dict[str, tuple[int, int]],
    runs: tuple[tuple[int, int], ...],
    window: WindowSpec,
) -> dict[str, np.ndarray]:
    """Start positions of windows lying wholly inside one split and one gap-free run."""
    starts = {}
    for name, (a, b) in ranges.items():
        pieces = [
            np.arange(max(a, s), min(b, e) - window.length + 1, window.stride) for s, e in runs
        ]
        starts[name] = np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, np.int64)
        if starts[name].size == 0:
            longest = max((min(b, e) - max(a, s) for s, e in runs), default=0)
            raise SpecError(
                f"window.length: {window.length} steps is longer than split '{name}' "
                f"(longest gap-free run {max(longest, 0)} steps); shorten the window or widen the split"
            )
    return starts


def spread_evenly(total: int, count: int) -> np.ndarray:
    """Indices of ``min(count, total)`` of ``total`` windows, spread evenly from the first
    to the last: the windows an evaluation compares."""
    return np.linspace(0, total - 1, min(count, total)).round().astype(int)


def build_layout(time: pd.Index, split: SplitSpec, window: WindowSpec) -> TimeLayout:
    """Analyse the time axis and place the windows of each split."""
    step, gaps = time_steps(time)
    runs = segments(len(time), gaps)
    ranges = split_ranges(time, split)
    return TimeLayout(step, gaps, runs, ranges, window_starts(ranges, runs, window))
