"""The tracking store: its default URI, artifact location, and the command that opens its UI."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse


def default_tracking_uri(base_dir: str | os.PathLike) -> str:
    """``sqlite:///<abs base_dir>/mlflow.db`` (creating ``base_dir``).

    A :class:`Tracker` on this URI puts artifacts under ``<base_dir>/mlartifacts``.
    """
    base = Path(base_dir).expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}"


def _is_remote(tracking_uri: str) -> bool:
    return urlparse(tracking_uri).scheme in ("http", "https")


def _check_store_uri(tracking_uri: str) -> None:
    scheme = urlparse(tracking_uri).scheme
    looks_like_path = scheme == "" and ("/" in tracking_uri or os.sep in tracking_uri
                                        or tracking_uri.startswith("."))
    if (scheme == "file" or looks_like_path) \
            and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise ValueError(
            f"tracking URI {tracking_uri!r} is a plain file store, which MLflow 3.17 refuses; "
            "use a database, e.g. harness.tracking.default_tracking_uri(base_dir) -> sqlite:///..."
        )


def _artifact_location(root: str | os.PathLike) -> str:
    s = str(root)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", s) and not re.match(r"^[A-Za-z]:[\\/]", s):
        return s  # already a URI (file:, s3:, mlflow-artifacts:, ...)
    p = Path(s).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p.as_uri()


def _safe_segment(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("._") or "experiment"


def ui_command(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> str:
    """The command line that opens the MLflow UI on this store, in its low-memory form
    (2 processes, ~0.5 GB, instead of ~16 processes and ~3 GB).

    For a remote ``http(s)://`` tracking server there is nothing to start: the server is the UI,
    and its URL is returned.
    """
    if _is_remote(tracking_uri):
        return tracking_uri
    return (
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow ui "
        f"--backend-store-uri {shlex.quote(tracking_uri)} --workers 1 "
        f"--host {shlex.quote(host)} --port {int(port)}"
    )
