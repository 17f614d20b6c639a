"""The sweep's names and folders, checked before anything is written: ``--name`` is a name (never a
path), ``--runs-dir`` and ``--data-root`` are folders (or, for ``--runs-dir``, can become one)."""
from __future__ import annotations

import os
import re
from pathlib import Path

# letters, digits, '.', '_' and '-', starting with a letter or digit: safe as a folder name on
# every filesystem, in a Tune experiment name and in an MLflow run name; no '/', no '..'
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX = 100
ALLOWED = ("letters, digits, '.', '_' and '-' (starting with a letter or digit, at most "
           f"{NAME_MAX} characters; no '/', no '..')")


def check_name(name: str) -> str:
    """``name`` when it is a safe sweep name, else a ``ValueError`` naming it and what is allowed.

    The name becomes the folder ``runs/<name>``: a path (``../x``, ``/abs``) would write the sweep
    outside the runs folder."""
    if (not NAME_PATTERN.fullmatch(name) or ".." in name or len(name) > NAME_MAX):
        why = ("it is a path" if ("/" in name or "\\" in name or name.startswith("."))
               else "it has characters unsafe in a file or MLflow run name" if name
               else "it is empty")
        raise ValueError(f"--name {name!r} is not a sweep name ({why}): use {ALLOWED}. "
                         f"Put the sweep somewhere else with --runs-dir, not with --name.")
    return name


def _is_dir_or_missing(path: Path, flag: str, must_exist: bool) -> None:
    """Refuse a path that is a file (or anything but a folder), or that is missing when it must
    exist; the message names the flag and the path."""
    if path.is_dir():
        return
    if path.exists():
        raise ValueError(f"{flag} {str(path)!r} is a file, not a directory: pass the folder "
                         f"{'that holds the data files' if must_exist else 'to keep sweeps in'}.")
    if must_exist:
        raise ValueError(f"{flag} {str(path)!r} does not exist: pass the folder that holds the "
                         f"suite's data files (get them with `python -m harness.data download`).")


def check_runs_dir(runs_dir: str) -> Path:
    """``--runs-dir`` resolved: an existing folder, or one that can be created (its nearest
    existing parent is a writable folder)."""
    path = Path(runs_dir).expanduser().resolve()
    _is_dir_or_missing(path, "--runs-dir", must_exist=False)
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"--runs-dir {str(path)!r} cannot be created: {str(parent)!r} is a file, "
                         f"not a directory.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--runs-dir {str(path)!r}: {str(parent)!r} is not writable by this user; "
                         f"pass a folder you can write to.")
    return path


def check_data_root(data_root: str) -> Path:
    """``--data-root`` resolved: an existing folder."""
    path = Path(data_root).expanduser().resolve()
    _is_dir_or_missing(path, "--data-root", must_exist=True)
    return path
