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


REPO_ROOT = Path(__file__).resolve().parents[1]


def method_files(method) -> list[Path]:
    """The source files of a method's classes: its own plugin file and the module of every method
    class it derives from, never the harness's base class."""
    import inspect

    from harness.methods.contract import Method

    files = []
    for cls in type(method).__mro__:
        if not (isinstance(cls, type) and issubclass(cls, Method)) or cls is Method:
            continue
        try:
            path = Path(inspect.getfile(cls)).resolve()
        except (TypeError, OSError):
            continue
        if path.is_file() and path not in files:
            files.append(path)
    return files


@functools.lru_cache(maxsize=256)
def git_state(path: Path, root: Path = REPO_ROOT) -> str:
    """``tracked``, ``modified``, ``untracked`` or ``outside the repository`` (``unknown`` without
    git): what the commit stamp says about this file."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return "outside the repository"

    def git(*cmd: str) -> int:
        return subprocess.run(["git", *cmd], cwd=root, capture_output=True, timeout=5).returncode

    try:
        if git("ls-files", "--error-unmatch", "--", str(rel)) != 0:
            return "untracked" if git("rev-parse", "--git-dir") == 0 else "unknown"
        return "modified" if git("diff", "--quiet", "HEAD", "--", str(rel)) != 0 else "tracked"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def method_provenance(method, root: Path = REPO_ROOT, commit: str | None = None) -> dict[str, str]:
    """What ran for ``method``: a hash of its source files, the files with their git state, and
    the commit stamp, ``+dirty`` when one of them is untracked or modified (a plugin file git does
    not track is otherwise invisible in a clean commit)."""
    import hashlib

    files = method_files(method)
    digest = hashlib.sha256()
    states = []
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        state = git_state(path, root)
        try:
            shown = str(path.relative_to(Path(root).resolve()))
        except ValueError:
            shown = str(path)
        states.append((shown, state))
    commit = git_commit() if commit is None else commit
    if commit != "unknown" and not commit.endswith("+dirty") and \
            any(st in ("untracked", "modified") for _, st in states):
        commit += "+dirty"
    return {"method_hash": digest.hexdigest()[:16] if files else "unknown",
            "method_files": "; ".join(f"{f} ({st})" for f, st in states) or "unknown",
            "git_commit": commit}


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
