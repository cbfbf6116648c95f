"""A seeded, mergeable uniform subsample of at most ``cap`` rows."""

from __future__ import annotations

import numpy as np


class Reservoir:
    """Keeps every row until more than ``cap`` were seen, then a uniform subsample of ``cap``.

    Each row draws a random key from a seeded generator and the reservoir keeps the rows
    with the ``cap`` smallest keys: a uniform sample without replacement of all rows seen,
    independent of how they were split into batches, and two reservoirs merge by keeping
    the smallest keys of both. Rows stay in arrival order. Give each process its own seed.

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
        self._rows: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._held = 0

    def add(self, rows: np.ndarray) -> None:
        """Offer ``rows`` (first axis: one row per item)."""
        self._extend([rows], [self.rng.random(len(rows))], len(rows))

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
        self._rows, self._keys, self._held = [rows], [keys], len(keys)
