"""``reason``: a library's exception as one clause of a one-line user error."""

from __future__ import annotations

from stgan.errors import reason


def test_reason_is_the_first_sentence_of_the_first_line() -> None:
    err = RuntimeError(
        "PytorchStreamReader failed reading zip archive: failed finding central directory. "
        "This is an internal miniz error. If you see this\nsecond line"
    )
    assert reason(err) == (
        "PytorchStreamReader failed reading zip archive: failed finding central directory"
    )


def test_a_dotted_name_is_not_a_sentence_end() -> None:
    err = OSError("[Errno -51] NetCDF: Unknown file format: 'data/t2m.v1.nc'")
    assert reason(err) == "[Errno -51] NetCDF: Unknown file format: 'data/t2m.v1.nc'"


def test_an_exception_without_a_message_gives_its_type() -> None:
    assert reason(EOFError()) == "EOFError"
    assert reason(RuntimeError("  \n")) == "RuntimeError"
