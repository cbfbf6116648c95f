"""scripts/screenshots.py refuses, in one line before starting anything, a run older
than the code: the README's pictures must show what this version does."""

from __future__ import annotations

from torch.utils.tensorboard import SummaryWriter

from scripts.screenshots import check_run, main, run_versions
from stgan import __version__
from stgan.logging import VERSION_TAG, RunLogger


def _session(logdir, version: str | None = None) -> None:
    """One training session's events: RunLogger's (this version) or an older writer's."""
    if version is None:
        logger = RunLogger(logdir)
        logger.scalars({"Loss/G": 1.0}, 1)
        logger.close()
    else:
        with SummaryWriter(str(logdir)) as writer:
            writer.add_text(VERSION_TAG, version, 0)


def test_each_session_of_a_run_records_the_version_that_wrote_it(tmp_path):
    _session(tmp_path, "0.4.2")
    _session(tmp_path)
    assert sorted(run_versions(tmp_path)) == ["0.4.2", __version__]


def test_a_run_of_this_version_passes(tmp_path):
    _session(tmp_path)
    check_run(tmp_path)  # no error


def test_an_old_or_unversioned_run_is_refused_in_one_line(tmp_path, capsys):
    old = tmp_path / "old"
    _session(old)
    _session(old, "0.4.2")  # resumed or begun by an older stgan: the oldest counts
    unversioned = tmp_path / "unversioned"
    with SummaryWriter(str(unversioned)) as writer:
        writer.add_scalar("Loss/G", 1.0, 1)
    for logdir, why in [
        (old, f"written by stgan 0.4.2, older than this code's {__version__}"),
        (unversioned, "records no stgan version"),
        (tmp_path / "missing", "is not a directory"),
    ]:
        assert main([str(logdir), str(tmp_path / "images")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("screenshots: error: ") and err.count("\n") == 1, err
        assert why in err and "Traceback" not in err
    assert not (tmp_path / "images").exists()  # nothing started, nothing written
