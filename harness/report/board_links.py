"""A leaderboard's links into MLflow: each cell to its cell run, each task to a compare view."""
from __future__ import annotations

from typing import Callable

from harness.leaderboard.build import Leaderboard
from harness.leaderboard.links import BoardLinks
from harness.report.links import compare_runs_url, run_url, ui_base_url


def mlflow_board_links(lb: Leaderboard, experiment_id: str, tracking_uri: str,
                       parent_of: Callable[[str], str | None]) -> BoardLinks:
    """Links for ``lb``'s HTML: a ranked cell's value opens its MLflow cell run (the parent of
    its final runs, found by ``parent_of(run_id)``), a task's header opens MLflow's compare view
    of every ranked method's final test runs of that task. Cells without runs get no link."""
    base = ui_base_url(tracking_uri)
    out = BoardLinks()
    by_task: dict[str, list[str]] = {}
    for (method, task), cell in lb.cells.items():
        if not cell.run_ids or method not in lb.method_keys:
            continue
        by_task.setdefault(task, []).extend(cell.run_ids)
        parent = parent_of(cell.run_ids[0])
        if parent:
            out.cells[(method, task)] = run_url(experiment_id, parent, base)
    for task, ids in by_task.items():
        out.tasks[task] = compare_runs_url(experiment_id, ids, base)
    return out


def tracker_parent_of(tracker) -> Callable[[str], str | None]:
    """``run_id -> parent run id`` through a :class:`harness.tracking.Tracker` (None if unknown)."""

    def parent_of(run_id: str) -> str | None:
        try:
            return tracker.get_run(run_id).data.tags.get("mlflow.parentRunId")
        except Exception:  # noqa: BLE001 - a missing link never stops a leaderboard
            return None

    return parent_of
