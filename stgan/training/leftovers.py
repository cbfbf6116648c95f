"""Leftovers of killed writes in a run directory, removed when a run starts.

A process killed while ``stgan.atomic`` writes (a checkpoint, ``best.pt``, ``config.yaml``)
leaves its hidden temporary ``.NAME.PID.XXXXXXXX.tmp`` beside the target. The next write
to the same target removes it, but a target that is never written again (the checkpoint
of a step the resumed run does not reach twice) keeps it. Only names of that pattern
whose writer process has exited are removed: ``stgan.atomic`` parses the names, so the
pattern has one owner.
"""

from __future__ import annotations

from pathlib import Path

from stgan.atomic import remove_stale_temporaries_in

# The run directory's folders that atomic writers write into (the run directory itself
# holds config.yaml, transforms.json and stgan run's outputs).
WRITTEN_FOLDERS = ("", "checkpoints")


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete the temporaries of killed atomic writes in ``run_dir`` and its checkpoints.

    Returns
    -------
    list[Path]
        The files removed; other files, including other ``*.tmp`` files, are kept.
    """
    removed: list[Path] = []
    for folder in (Path(run_dir) / name for name in WRITTEN_FOLDERS):
        if folder.is_dir():
            removed += remove_stale_temporaries_in(folder)
    return sorted(removed)
