"""Atomic writes: no partial file at the target, and no temporaries left for long."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stgan.atomic import atomic_path, write_text_atomic

KILLED_WRITER = """
import os, sys
from stgan.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    os.kill(os.getpid(), 9)
"""


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_next_write_removes_what_a_killed_writer_left(tmp_path):
    target = tmp_path / "out.txt"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], check=False)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.txt.") and not target.exists()
    write_text_atomic(target, "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_live_writers_temporary_is_kept(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as mine:
        mine.write_text("in progress")
        write_text_atomic(tmp_path / "other.txt", "x")
        write_text_atomic(target, "concurrent")  # same process: its temporary is alive
        assert mine.exists()
