"""A seeded, mergeable uniform subsample of at most ``cap`` rows, streamed in bounded memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Keys are drawn and compared this many at a time (2 MB of float64): cache-sized pieces.
KEY_CHUNK = 2**18
# Rows held beyond ``cap`` before a prune: up to ``cap`` of them (amortised linear cost),
# but no more than this many bytes, so wide rows (whole samples) stay near ``cap`` rows.
SLACK_BYTES = 2**24

# positions (ascending ints into the rows offered) -> the rows there
RowsAt = Callable[[np.ndarray], np.ndarray]


class Reservoir:
    """Keeps every row until more than ``cap`` were seen, then a uniform subsample of ``cap``.

    Each row draws a random key from a seeded generator and the reservoir keeps the rows
    with the ``cap`` smallest keys (bottom-k sampling): a uniform sample without
    replacement of all rows seen, independent of how they were split into batches, and two
    reservoirs merge by keeping the smallest keys of both. Rows stay in arrival order.
    Give each process its own seed.

    Once full, the reservoir knows its largest kept key, the threshold: a new row whose key
    is above it can never enter, so only the rows below it are taken and stored
    (``cap / seen`` of each batch), and memory stays at ``cap`` rows (``2 * cap`` between
    prunes, fewer for wide rows: ``SLACK_BYTES``) whatever the stream's length.

    Parameters
    ----------
    cap : int
        Most rows kept.
    seed : int
        Seed of the key generator.
    """

    def __init__(self, cap: int, seed: int = 0) -> None:
        self.cap = cap
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.threshold = 1.0  # keys are in [0, 1): every row may enter until the first prune
        self._rows: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._held = 0

    def add(self, rows: np.ndarray) -> None:
        """Offer ``rows`` (first axis: one row per item); only the rows taken are copied."""
        self.add_from(len(rows), lambda positions: rows[positions])

    def add_from(self, count: int, rows_at: RowsAt) -> None:
        """Offer ``count`` rows built on demand: ``rows_at(positions)`` gives the rows at
        those (ascending) positions among the ``count``.

        Only the rows that may enter are built, so a costly row (a float64 increment) is
        computed for about ``cap / seen`` of the stream, and at most ``2 * cap`` rows (fewer
        when wide) plus one piece of ``KEY_CHUNK`` are held at any time, whatever ``count``.
        """
        start = 0
        while start < count:
            positions, keys, start = self._draw(start, count)
            if len(positions):
                self._extend([rows_at(positions)], [keys], 0)
        self.seen += count

    def merge(self, other: Reservoir) -> None:
        """Fold in another reservoir's rows, as if its batches had been added here."""
        self._extend(other._rows, other._keys, other.seen)

    def rows(self) -> np.ndarray:
        """The rows kept (all rows seen, if no more than ``cap``)."""
        if not self._rows:
            return np.empty(0)
        self._prune()
        return self._rows[0]

    @property
    def subsampled(self) -> bool:
        """Whether more than ``cap`` rows were seen, so ``rows`` is a subsample."""
        return self.seen > self.cap

    def _draw(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Keys for rows ``start, start + 1, ...`` of ``count``, drawn in cache-sized
        pieces until the rows below the threshold would fill the reservoir past its slack
        (then they are taken and pruned, which lowers the threshold) or the rows run out.

        Returns the positions and keys of the rows below the threshold and where to go on.
        The stream of keys is the same however the rows are split into batches.
        """
        positions, keys, found = [], [], 0
        while start < count and self._held + found <= self.cap + self._slack():
            chunk = self.rng.random(min(KEY_CHUNK, count - start))
            below = np.flatnonzero(chunk < self.threshold)
            positions.append(below + start)
            keys.append(chunk[below])
            found += len(below)
            start += len(chunk)
        return np.concatenate(positions), np.concatenate(keys), start

    def _extend(self, rows: list[np.ndarray], keys: list[np.ndarray], seen: int) -> None:
        self._rows += rows
        self._keys += keys
        self._held += sum(len(k) for k in keys)
        self.seen += seen
        if self._held > self.cap + self._slack():
            self._prune()

    def _slack(self) -> int:
        """Rows held beyond ``cap`` before a prune (see ``SLACK_BYTES``)."""
        if not self._rows or len(self._rows[0]) == 0:
            return self.cap
        row_bytes = self._rows[0].nbytes // len(self._rows[0])
        return max(1, min(self.cap, SLACK_BYTES // max(1, row_bytes)))

    def _prune(self) -> None:
        keys = np.concatenate(self._keys)
        if len(keys) > self.cap:
            keep = np.sort(np.argpartition(keys, self.cap - 1)[: self.cap])
            rows, keys = _gather(self._rows, keep), keys[keep]
            self.threshold = float(keys.max())
        else:
            rows = np.concatenate(self._rows)
        self._rows, self._keys, self._held = [rows], [keys], len(keys)


def _gather(parts: list[np.ndarray], keep: np.ndarray) -> np.ndarray:
    """``np.concatenate(parts)[keep]`` for ascending ``keep``, without the concatenation
    (which for wide rows, whole samples, doubles the memory held)."""
    ends = np.cumsum([len(part) for part in parts])
    cuts = np.searchsorted(keep, ends[:-1])  # keep[cuts[i - 1]:cuts[i]] fall in parts[i]
    starts = np.concatenate([[0], ends[:-1]])
    pieces = np.split(keep, cuts)
    return np.concatenate([part[at - start] for part, at, start in zip(parts, pieces, starts)])
