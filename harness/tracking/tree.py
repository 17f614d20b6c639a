"""Reading a suite's run hierarchy back as a table."""
from __future__ import annotations


import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType
from harness.tracking.names import KIND_TAG, PARENT_TAG, REOPEN_COUNT_TAG, RUN_KEY_TAG
from harness.tracking.retry import _retry
from harness.tracking.store import _is_remote


TREE_COLUMNS = ["run_id", "parent_id", "depth", "name", "status", "kind", "run_key", "task",
                "method", "phase", "seed", "reopen_count", "start_time", "end_time"]


def runs_tree(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Every active run of ``experiment`` in tree order (parents before their children, siblings by
    start time), one row each: ``run_id, parent_id, depth, name, status, kind, run_key, task,
    method, phase, seed, reopen_count, start_time, end_time``. Empty if the experiment is missing."""
    client = MlflowClient(tracking_uri=tracking_uri)
    remote = _is_remote(tracking_uri)
    exp = _retry(client.get_experiment_by_name, experiment, remote=remote)
    if exp is None:
        return pd.DataFrame(columns=TREE_COLUMNS)
    runs: list[Run] = []
    token = None
    while True:
        page = _retry(client.search_runs, [exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                      max_results=1000, order_by=["attributes.start_time ASC"], page_token=token,
                      remote=remote)
        runs.extend(page)
        token = page.token
        if not token:
            break
    rows = {}
    children: dict[str | None, list[str]] = {}
    for r in runs:
        t = r.data.tags
        pid = t.get(PARENT_TAG)
        rows[r.info.run_id] = {
            "run_id": r.info.run_id, "parent_id": pid, "name": r.info.run_name,
            "status": r.info.status, "kind": t.get(KIND_TAG), "run_key": t.get(RUN_KEY_TAG),
            "task": t.get("harness.task"), "method": t.get("harness.method"),
            "phase": t.get("harness.phase"), "seed": t.get("harness.seed"),
            "reopen_count": int(t.get(REOPEN_COUNT_TAG, "0") or 0),
            "start_time": pd.to_datetime(r.info.start_time, unit="ms") if r.info.start_time else pd.NaT,
            "end_time": pd.to_datetime(r.info.end_time, unit="ms") if r.info.end_time else pd.NaT,
        }
        children.setdefault(pid, []).append(r.info.run_id)
    ordered: list[dict] = []
    visited: set[str] = set()

    def walk(rid: str, depth: int) -> None:
        if rid in visited:
            return
        visited.add(rid)
        ordered.append({**rows[rid], "depth": depth})
        for c in children.get(rid, []):
            walk(c, depth + 1)

    roots = [rid for rid, row in rows.items() if row["parent_id"] not in rows]
    for rid in roots:
        walk(rid, 0)
    for rid in rows:  # a cycle of parent tags cannot happen via the Tracker, but be total
        walk(rid, 0)
    return pd.DataFrame(ordered, columns=TREE_COLUMNS)
