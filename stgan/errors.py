"""User errors: each message names what is wrong and how to fix it.

The CLI prints a ``StganError`` as one line ``stgan: error: ...`` and exits 2.
``assert`` stays for programmer invariants only.
"""


class StganError(Exception):
    """A problem the user can fix (bad input, bad config, bad file)."""


class SpecError(StganError):
    """A data spec or pipeline config is invalid."""


class DataError(StganError):
    """A data file is missing, unreadable or inconsistent with the spec."""


class CheckpointError(StganError):
    """A checkpoint is missing, corrupt or incompatible."""


class TrainingStopped(StganError):
    """A health check whose action is ``stop`` fired, or rollbacks ran out."""
