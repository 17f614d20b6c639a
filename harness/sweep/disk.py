"""A sweep's disk: what it uses (the closing line) and a one-line headline when the disk is full."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

#: what a sweep leaves under ``runs/<name>/``, reported one by one in :func:`disk_use_line`
PARTS = ("tune", "cache", "results")
MARGIN = 50_000_000      # results, experiment state, MLflow: a generous allowance beyond checkpoints


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of the files under ``path`` (0 if it does not exist); links are not followed."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:          # removed meanwhile (a trial's checkpoint being pruned)
                pass
    return total


def megabytes(n: float) -> str:
    """``n`` bytes as a short human number (``1.2 MB``, ``3.4 GB``)."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def disk_use_line(sweep_dir: Path, freed: int = 0) -> str:
    """One line: the sweep folder's size, its largest parts, and what checkpoint pruning freed."""
    total = folder_bytes(sweep_dir)
    parts = ", ".join(f"{p} {megabytes(folder_bytes(sweep_dir / p))}" for p in PARTS
                      if (sweep_dir / p).exists())
    line = f"Disk use:   {sweep_dir} holds {megabytes(total)}" + (f" ({parts})" if parts else "")
    if freed:
        line += f"; checkpoints of ended trials removed: {megabytes(freed)} freed"
    return line


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The ``OSError(ENOSPC)`` (errno 28) behind ``exc`` (itself, a cause or a context), if any.

    Ray Tune re-raises a callback's error wrapped in its own; a trial's error reaches the driver
    as text only, so that is matched by its message.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        if "[Errno 28]" in str(exc) or "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        exc = exc.__cause__ or exc.__context__
    return None


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_full_headline(err: OSError, sweep_dir: Path, trials_at_once: int = 1) -> str:
    """``error: disk full ...``: the folder, its free space, about how much more the sweep needs
    (a trial checkpoint for every trial running at once, and a margin for results and the
    experiment state), and what to do."""
    from harness.engine.checkpoints import largest_checkpoint_seen

    folder = Path(err.filename).parent if getattr(err, "filename", None) else sweep_dir
    free = shutil.disk_usage(_existing(folder)).free
    largest = largest_checkpoint_seen()
    for ckpt in (sweep_dir / "tune").glob("*/*/checkpoint_*"):     # live trials' checkpoints
        largest = max(largest, folder_bytes(ckpt))
    slots = max(1, trials_at_once)
    needed = largest * slots + MARGIN
    return (f"error: disk full: no space left on device under {folder} ({megabytes(free)} free; "
            f"the sweep needs about {megabytes(needed)} more: a {megabytes(largest)} trial "
            f"checkpoint for each of {slots} trial(s) at once, plus {megabytes(MARGIN)} for results "
            f"and the experiment state). Finished cells are saved: free space and run the same "
            f"command again to resume.")
