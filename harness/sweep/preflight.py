"""The sweep's own preflight, before Ray starts: bodies, data and tracking store, all at once.

A sweep whose trials cannot load their body, read their data or log to MLflow used to start Ray,
run (or hang on) every trial and end in tracebacks. These checks run on the driver in seconds,
report every problem in one message each (:class:`~harness.cluster.ClusterIssue`), and the sweep
exits 2 before anything starts. On a multi-node cluster :func:`harness.cluster.preflight` repeats
the body and data checks on every node once Ray is up.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from harness.cluster.issues import ERROR, HTTP_TIMEOUT, ClusterIssue
from harness.methods.contract import recorded_backbone
from harness.sweep.planning import SweepPlan


def planned_bodies(sp: SweepPlan) -> dict[str, list[str]]:
    """body name -> the planned cells (``task/method``) that load it."""
    bodies: dict[str, list[str]] = defaultdict(list)
    for task, method in sp.planned():
        body = recorded_backbone(sp.profile, method, task)
        if body is not None:
            bodies[body].append(f"{task.name}/{method.name}")
    return dict(bodies)


def check_bodies(bodies: dict[str, list[str]]) -> list[ClusterIssue]:
    """One issue per planned body whose weights are not on this machine."""
    from harness.cluster.bodies import local_body_issues

    return local_body_issues(bodies)


def data_problem(task, data_root: Path) -> str | None:
    """Why ``task``'s data cannot be read under ``data_root``, or None (opens, reads nothing big)."""
    from harness.data.errors import DataError
    from harness.data.readers import find_file, open_h5

    try:
        path = Path(find_file(task.file, data_root, task.name))
        if path.suffix in (".h5", ".hdf5"):
            open_h5(path).close()
        elif path.is_file():
            with open(path, "rb") as f:
                f.read(1)
        elif not os.access(path, os.R_OK | os.X_OK):
            return f"data for task {task.name!r}: {path} is not readable by this user"
    except DataError as exc:
        return str(exc)
    except OSError as exc:
        return f"data for task {task.name!r} cannot be read: {type(exc).__name__}: {exc}"
    return None


def check_data(sp: SweepPlan, data_root: Path) -> list[ClusterIssue]:
    """One issue per planned task whose data file is missing or unreadable."""
    issues = []
    for task in sp.tasks:
        problem = data_problem(task, data_root)
        if problem:
            lines = problem.strip().splitlines()
            issues.append(ClusterIssue(
                ERROR, lines[0], f"every trial of task {task.name!r} reads it",
                "\n".join(lines[1:]).strip() or f"put the file under {data_root}"))
    return issues


def check_tracking(tracking_uri: str, timeout: float = HTTP_TIMEOUT) -> list[ClusterIssue]:
    """An issue when an ``http(s)://`` tracking server does not answer within ``timeout`` s, or the
    folder of a ``sqlite:///`` store cannot be written."""
    from harness.cluster.stores import _redact, _scheme, _server_answers
    from harness.store_uri import sqlite_file

    if _scheme(tracking_uri) in ("http", "https"):
        why_not = _server_answers(tracking_uri, timeout=timeout)
        if why_not is None:
            return []
        return [ClusterIssue(
            ERROR, f"tracking server {_redact(tracking_uri)} does not answer within {timeout:.0f} s "
                   f"({why_not})",
            "the sweep opens its MLflow run before the first trial",
            f"start the server (`mlflow server --backend-store-uri sqlite:///mlflow.db --port "
            f"PORT`), check `curl {_redact(tracking_uri).rstrip('/')}/health`, or leave "
            "--tracking-uri out to use the sweep's own sqlite store")]
    db = sqlite_file(tracking_uri)
    if db is None:
        return []
    folder = db.parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent        # the folder is created on first use: its nearest existing parent
    if not os.access(probe, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        return [ClusterIssue(
            ERROR, f"tracking database {db} cannot be written by this user",
            "MLflow records every run there", "fix the permissions, or pass --runs-dir or "
            "--tracking-uri somewhere this user can write")]
    return []


def sweep_preflight(sp: SweepPlan, data_root: Path, tracking_uri: str) -> list[ClusterIssue]:
    """Every problem the driver can see before Ray starts: bodies, data, tracking store."""
    return check_bodies(planned_bodies(sp)) + check_data(sp, data_root) + check_tracking(tracking_uri)
