"""Disk use of trial checkpoints: a trial's checkpoints go once nothing can resume from them.

A trial reports a checkpoint every epoch (model, optimizer, scheduler, the best model so far and
the RNG state) so an interrupted trial continues where it stopped. Tune keeps the latest one per
trial (``num_to_keep=1``) for ever: 1.5 MB per smoke trial, gigabytes per trial at paper size.
Nothing reads a checkpoint once its trial has ended: final runs train afresh from the selected
configuration with their own seeds, and rows and MLflow hold every number. So the sweep callback
empties a trial's checkpoint folders when the trial completes, and those of every trial of a cell
once the cell's rows are written (an errored trial of an unfinished cell keeps its checkpoint: a
resumed sweep restarts it from there).

The ``checkpoint_*`` folders themselves stay (empty): Tune's experiment state still names them,
and a trial restored from an empty folder starts from epoch 1 (the loop resumes only from a
``state.pt``).
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_LARGEST = [0]      # the largest trial checkpoint pruned in this process (bytes)


def largest_checkpoint_seen() -> int:
    """Bytes of the largest trial checkpoint this process pruned (0: none yet): what one more
    trial needs on disk, for the disk-full message."""
    return _LARGEST[0]


def prune_trial_checkpoints(trial) -> int:
    """Delete the files in a Tune trial's ``checkpoint_*`` folders (on whatever storage it uses:
    a local folder or an object store, through the trial's pyarrow filesystem); bytes freed."""
    from pyarrow import fs as pafs

    storage = getattr(trial, "storage", None)
    if storage is None:
        return 0
    try:
        filesystem, trial_path = storage.storage_filesystem, storage.trial_fs_path
        infos = filesystem.get_file_info(pafs.FileSelector(trial_path, recursive=True,
                                                           allow_not_found=True))
    except Exception as exc:  # noqa: BLE001 - disk hygiene must never stop a sweep
        log.debug("cannot list %s: %s", getattr(trial, "trial_id", trial), exc)
        return 0
    freed = 0
    prefix = trial_path.rstrip("/") + "/"
    for info in infos:
        rel = info.path[len(prefix):] if info.path.startswith(prefix) else info.path
        if info.type != pafs.FileType.File or not rel.split("/", 1)[0].startswith("checkpoint_"):
            continue
        try:
            filesystem.delete_file(info.path)
            freed += max(0, info.size or 0)
        except Exception as exc:  # noqa: BLE001 - a file already gone, a read-only store ...
            log.debug("cannot delete %s: %s", info.path, exc)
    _LARGEST[0] = max(_LARGEST[0], freed)
    return freed
