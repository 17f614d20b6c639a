"""What the analysis report reads: the results table and the MLflow store, never a re-run.

:func:`collect` returns a :class:`ReportData` holding tidy frames, one per figure:

* ``curves``: per-epoch validation metric of every final run (MLflow metric history),
* ``epsilon``: validation value of every search trial whose config sets ``align.epsilon``,
* ``probes``: the stage-1 probes (``align.probe_start.*`` / ``align.probe_end.*``) of every run that
  logged them: semantic gap = FA + FLD (whichever the method computes) against the target loss,
* ``wall``: wall seconds of every search trial and final run, by phase,
* ``stages``: wall seconds of each method stage (``seconds.<stage>``, e.g. align / finetune) of
  every run that reported them,
* ``snapshots``: (task, method) -> the source and target features a method's first final run
  saved before stage 2 (``<sweep>/features/<task>/<method>.npz``, :mod:`recraft.snapshots`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.results import read_results

PROBE_TAGS = ("probe_start", "probe_end")   # the two points a run's stage 1 is probed at


@dataclass
class ReportData:
    """Every frame the report draws from, plus where it came from."""

    sweep_dir: Path
    results: pd.DataFrame
    tracking_uri: str | None
    experiment_id: str | None = None
    sweep_run_id: str | None = None
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    epsilon: pd.DataFrame = field(default_factory=pd.DataFrame)
    probes: pd.DataFrame = field(default_factory=pd.DataFrame)
    wall: pd.DataFrame = field(default_factory=pd.DataFrame)
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)
    snapshots: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_tracking_uri_for(sweep_dir: Path) -> str | None:
    """The sqlite store a sweep writes by default (``<runs>/mlflow.db`` beside the sweep folder)."""
    db = Path(sweep_dir).resolve().parent / "mlflow.db"
    return f"sqlite:///{db}" if db.is_file() else None


def read_sweep_results(sweep_dir: Path) -> pd.DataFrame:
    """The sweep's results: ``results.parquet`` if consolidated, else the parts under ``results/``."""
    table = sweep_dir / "results.parquet"
    if table.is_file():
        return read_results(table)
    if (sweep_dir / "results").is_dir():
        return read_results(sweep_dir / "results")
    raise FileNotFoundError(
        f"no results in {sweep_dir}: expected {table} or parquet parts under "
        f"{sweep_dir / 'results' / 'parts'}; pass the folder a sweep wrote (runs/<name>)")


def _epsilon_rows(df: pd.DataFrame) -> pd.DataFrame:
    search = df[(df.phase == "search") & df.status.isin(["ok", "stopped"])]
    rows = []
    for r in search.itertuples():
        try:
            cfg = json.loads(r.config_json) if isinstance(r.config_json, str) else {}
        except ValueError:
            continue
        eps = cfg.get("align.epsilon")
        if eps is None or not math.isfinite(float(r.value)):
            continue
        rows.append({"task": r.task, "method": r.method, "epsilon": float(eps),
                     "value": float(r.value), "metric": r.metric})
    return pd.DataFrame(rows, columns=["task", "method", "epsilon", "value", "metric"])


def _wall_rows(df: pd.DataFrame) -> pd.DataFrame:
    # a final run has a test and a val row with the same wall time: count it once
    runs = df[df.wall_seconds.notna()].drop_duplicates(["task", "method", "phase", "trial_id"])
    return runs[["task", "method", "phase", "wall_seconds"]].reset_index(drop=True)


def _probe_rows(runs_metrics: dict[str, dict[str, float]], info: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in info.itertuples():
        m = runs_metrics.get(r.mlflow_run_id) or {}
        for tag in PROBE_TAGS:
            fa, fld = m.get(f"align.{tag}.fa"), m.get(f"align.{tag}.fld")
            loss = m.get(f"align.{tag}.target_loss")
            if loss is None or (fa is None and fld is None):
                continue
            gap = sum(v for v in (fa, fld) if v is not None)
            if not (math.isfinite(gap) and math.isfinite(loss)):
                continue
            rows.append({"task": r.task, "method": r.method, "phase": r.phase,
                         "run_id": r.mlflow_run_id, "when": tag, "fa": fa, "fld": fld,
                         "gap": gap, "target_loss": loss})
    return pd.DataFrame(rows, columns=["task", "method", "phase", "run_id", "when", "fa", "fld",
                                       "gap", "target_loss"])


def _stage_rows(runs_metrics: dict[str, dict[str, float]], info: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in info.itertuples():
        for key, value in (runs_metrics.get(r.mlflow_run_id) or {}).items():
            if key.startswith("seconds.") and math.isfinite(value):
                rows.append({"task": r.task, "method": r.method, "phase": r.phase,
                             "run_id": r.mlflow_run_id, "stage": key[len("seconds."):],
                             "seconds": float(value)})
    return pd.DataFrame(rows, columns=["task", "method", "phase", "run_id", "stage", "seconds"])


def read_snapshots(sweep_dir: Path) -> dict[tuple[str, str], dict]:
    """Every feature snapshot the sweep saved, by (task, method); unreadable files are skipped."""
    import numpy as np

    out = {}
    for path in sorted(Path(sweep_dir).glob("features/*/*.npz")):
        try:
            with np.load(path) as z:
                out[(path.parent.name, path.stem)] = {"source": z["source"], "target": z["target"],
                                                      "aligned": bool(z["aligned"])}
        except (OSError, KeyError, ValueError):
            continue
    return out


def _find_sweep_run(client, experiment_id: str, name: str) -> str | None:
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.`harness.run_key` = 'sweep:{name}'",
                              max_results=5)
    return runs[0].info.run_id if runs else None


def collect(sweep_dir: str | Path, tracking_uri: str | None = None) -> ReportData:
    """Read a finished (or partial) sweep's results and its MLflow runs into :class:`ReportData`."""
    sweep_dir = Path(sweep_dir)
    df = read_sweep_results(sweep_dir)
    if df.empty:
        raise ValueError(f"the results of {sweep_dir} have no rows; nothing to report")
    uri = tracking_uri or default_tracking_uri_for(sweep_dir)
    data = ReportData(sweep_dir=sweep_dir, results=df, tracking_uri=uri,
                      epsilon=_epsilon_rows(df), wall=_wall_rows(df),
                      snapshots=read_snapshots(sweep_dir))
    if uri is None:
        data.notes.append(f"no MLflow store found (looked for {sweep_dir.resolve().parent / 'mlflow.db'}; "
                          "pass --tracking-uri): learning curves and probes are empty")
        return data
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri)
    suite = str(df.suite.dropna().iloc[0]) if df.suite.notna().any() else None
    exp = client.get_experiment_by_name(suite) if suite else None
    if exp is None:
        data.notes.append(f"MLflow store {uri} has no experiment {suite!r}")
        return data
    data.experiment_id = exp.experiment_id
    name = str(df.sweep.dropna().iloc[0]) if df.sweep.notna().any() else sweep_dir.name
    data.sweep_run_id = _find_sweep_run(client, exp.experiment_id, name)

    # one paged search gives every run's latest metrics (the probes are constant per run)
    wanted = set(df.mlflow_run_id.dropna())
    latest: dict[str, dict[str, float]] = {}
    token = None
    while True:
        page = client.search_runs([exp.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                                  filter_string="tags.`harness.kind` = 'trial'",
                                  max_results=1000, page_token=token)
        for run in page:
            if run.info.run_id in wanted:
                latest[run.info.run_id] = dict(run.data.metrics)
        token = page.token
        if not token:
            break
    info = df.dropna(subset=["mlflow_run_id"]).drop_duplicates("mlflow_run_id")
    data.probes = _probe_rows(latest, info)
    data.stages = _stage_rows(latest, info)

    finals = df[(df.phase == "final") & (df.split == "test") & (df.status == "ok")
                & df.mlflow_run_id.notna()]
    rows = []
    for r in finals.itertuples():
        key = f"val_{r.metric}"
        for m in client.get_metric_history(r.mlflow_run_id, key):
            rows.append({"task": r.task, "method": r.method, "seed": int(r.seed),
                         "run_id": r.mlflow_run_id, "metric": key, "epoch": int(m.step),
                         "value": float(m.value)})
    data.curves = pd.DataFrame(rows, columns=["task", "method", "seed", "run_id", "metric",
                                              "epoch", "value"])
    return data
