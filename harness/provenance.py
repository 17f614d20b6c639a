"""Where a result came from: package versions, git commit, hardware, host."""
from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "ray", "transformers", "timm", "POT", "optuna", "mlflow", "numpy",
            "pandas", "h5py", "scikit-learn", "recraft-bench")


@functools.lru_cache(maxsize=1)
def package_versions() -> str:
    """JSON of the versions of the packages that shape results."""
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    out["python"] = platform.python_version()
    return json.dumps(out, sort_keys=True)


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The repository's HEAD commit (with ``+dirty`` when the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware() -> str:
    """``"<GPU name> xN"`` when CUDA is visible, else ``"cpu xN"`` (logical cores)."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    except Exception:  # noqa: BLE001
        pass
    return f"cpu x{os.cpu_count()}"


def hostname() -> str:
    return socket.gethostname()
