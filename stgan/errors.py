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


def reason(exc: BaseException) -> str:
    """``exc`` as one clause for a one-line error: its message's first sentence, or its
    type's name when it has none. Libraries go on with advice or internals that a user's
    bad file does not need (torch.load's ``weights_only`` default, miniz, SQLAlchemy links)."""
    lines = str(exc).strip().splitlines()
    return lines[0].split(". ", 1)[0].rstrip(".") if lines else type(exc).__name__
