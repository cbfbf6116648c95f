"""A seeded, mergeable uniform subsample of at most ``cap`` rows, streamed in bounded memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Keys are drawn and compared this many at a time (2 MB of float64): cache-sized pieces.
KEY_CHUNK = 2**18

# positions (ascending int array, or None for all rows offered) -> those rows
RowsAt = Callable[[np.ndarray | None], np.ndarray]


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
    prunes) whatever the stream's length.

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
        self.add_from(len(rows), lambda at: rows.copy() if at is None else rows[at])

    def add_from(self, count: int, rows_at: RowsAt) -> None:
        """Offer ``count`` rows built on demand: ``rows_at(positions)`` gives the rows at
        those (ascending) positions among the ``count``, or all of them for ``None``.

        Only the rows that may enter are built, so a costly row (a float64 increment) is
        computed for ``cap / seen`` of the stream, not all of it.
        """
        if count == 0:
            return
        if self.threshold >= 1.0:
            keys = self.rng.random(count)
            self._extend([rows_at(None)], [keys], count)
            return
        positions, keys = self._draw_below_threshold(count)
        self._extend([rows_at(positions)], [keys], count)

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

    def _draw_below_threshold(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Keys for ``count`` rows, drawn in cache-sized pieces; the positions and keys of
        those below the threshold. The stream of keys is the same as one ``random(count)``."""
        positions, keys = [], []
        for start in range(0, count, KEY_CHUNK):
            chunk = self.rng.random(min(KEY_CHUNK, count - start))
            below = np.flatnonzero(chunk < self.threshold)
            positions.append(below + start)
            keys.append(chunk[below])
        return np.concatenate(positions), np.concatenate(keys)

    def _extend(self, rows: list[np.ndarray], keys: list[np.ndarray], seen: int) -> None:
        self._rows += rows
        self._keys += keys
        self._held += sum(len(k) for k in keys)
        self.seen += seen
        if self._held > 2 * self.cap:  # prune in bulk: amortised linear cost
            self._prune()

    def _prune(self) -> None:
        rows, keys = np.concatenate(self._rows), np.concatenate(self._keys)
        if len(keys) > self.cap:
            keep = np.sort(np.argpartition(keys, self.cap - 1)[: self.cap])
            rows, keys = rows[keep], keys[keep]
            self.threshold = float(keys.max())
        self._rows, self._keys, self._held = [rows], [keys], len(keys)
