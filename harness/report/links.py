"""URLs into the MLflow UI (3.17) for a sweep's experiment and runs.

MLflow 3.17's UI keeps a "GenAI | Model training" switch (stored in the browser's local storage,
default GenAI): opened at its root it shows the GenAI home, and an experiment's side bar shows the
GenAI pages (Overview, Traces, ...). The URL query ``workflowType=machine_learning`` flips that
switch, and the experiment's ``/runs`` route is the run table, so :func:`runs_table_url` opens the
model-training view directly (checked in a headless Chromium by tests/test_report.py).
"""
from __future__ import annotations

import json
from urllib.parse import quote

DEFAULT_UI = "http://127.0.0.1:5000"   # where ``harness.tracking.ui_command`` starts the UI
_ML_VIEW = "workflowType=machine_learning"


def ui_base_url(tracking_uri: str) -> str:
    """The UI's address: the server itself for an ``http(s)://`` store, else the local UI."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return DEFAULT_UI


def _json_list(items) -> str:
    return quote(json.dumps([str(i) for i in items], separators=(",", ":")))


def runs_table_url(experiment_id: str, base: str = DEFAULT_UI, search_filter: str | None = None) -> str:
    """The experiment's run table in the model-training view, optionally filtered
    (MLflow search syntax, e.g. ``tags.`harness.task` = 'darcy'``)."""
    url = f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{_ML_VIEW}"
    if search_filter:
        url += "&searchFilter=" + quote(search_filter)
    return url


def task_finals_filter(task: str) -> str:
    """The run-table filter that keeps one task's final runs (and shows their cell runs)."""
    return f"tags.`harness.task` = '{task}' and tags.`harness.phase` = 'final'"


def compare_runs_url(experiment_id: str, run_ids: list[str], base: str = DEFAULT_UI) -> str:
    """MLflow's compare view of ``run_ids`` (parameters, metrics, tags side by side)."""
    return (f"{base.rstrip('/')}/#/compare-runs?runs={_json_list(run_ids)}"
            f"&experiments={_json_list([experiment_id])}&{_ML_VIEW}")


def metric_view_url(experiment_id: str, run_ids: list[str], metric: str,
                    base: str = DEFAULT_UI) -> str:
    """MLflow's metric page: ``metric`` per step for each of ``run_ids`` (a plot and a table of
    latest / min / max). The plot keys must be given or 3.17's page fails to load."""
    key = quote(json.dumps(metric))
    return (f"{base.rstrip('/')}/#/metric?runs={_json_list(run_ids)}&metric={key}"
            f"&experiments={_json_list([experiment_id])}&plot_metric_keys={_json_list([metric])}"
            "&plot_layout={}&x_axis=step&y_axis_scale=linear&line_smoothness=1&show_point=false"
            "&deselected_curves=[]&last_linear_y_axis_range=[]")


def run_url(experiment_id: str, run_id: str, base: str = DEFAULT_UI) -> str:
    """One run's page."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{_ML_VIEW}"
