"""A cell's rows for the results table, and the marker that says they were all written."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness import provenance
from harness.engine.plan import CellPlan, config_hash
from harness.keys import CELL_TAG_FIELDS, FINAL, SEARCH, tag
from harness.methods.contract import recorded_backbone
from harness.results import reported_columns


@dataclass
class TrialRecord:
    """What the results table needs from one trial."""

    trial_id: str
    cell: str
    phase: str
    seed: int
    config: dict
    status: str = "running"
    best: float = math.nan
    last: dict = field(default_factory=dict)
    epochs: int = 0                  # epochs run (reports received)
    best_epoch: int | None = None    # the epoch of the best validation value reported
    error: str | None = None
    run_id: str | None = None
    started: float = field(default_factory=time.time)
    wall: float = 0.0


def row_meta(cell, method, task, data_source: str, sweep: str, extra_tags: Mapping | None = None,
             data=None) -> dict:
    """Static per-cell fields for rows and MLflow tags (``data``: the task's
    :class:`~harness.data.facts.DataFacts`, when known)."""
    row = {"sweep": sweep, "suite": cell.suite, "task": task.name, "task_version": task.version,
           "method": method.name, "method_version": method.version, "variant_of": method.variant_of,
           "metric": task.metric.name, "direction": task.metric.direction,
           "data_source": data_source,
           "backbone": recorded_backbone(cell.profile, method, task),
           "role": getattr(method, "role", "method"), "profile": cell.profile.name,
           "hostname": provenance.hostname(), **provenance.method_provenance(method),
           "packages": provenance.package_versions(), "hardware": provenance.hardware()}
    if data is not None:
        row.update(data.row())
    tags = {tag(f): (row[f] if row[f] is not None else "none") for f in CELL_TAG_FIELDS}
    if data is not None:
        tags[tag("data")] = data.label                  # e.g. "real (unverified)"
    tags[tag("method_hash")] = row["method_hash"]      # which code of the method ran
    tags |= dict(extra_tags or {})
    return {"task": task.name, "method": method.name, "row": row, "tags": tags}


def selected_epoch(r: TrialRecord) -> int | None:
    """The epoch whose weights gave the row's value: the method's own choice when its last report
    names it (``best_epoch``: the weights the test was read with), else the epoch of the best
    validation value reported."""
    chosen = r.last.get("best_epoch")
    if isinstance(chosen, (int, float)) and not isinstance(chosen, bool) and chosen >= 1:
        return int(chosen)
    return r.best_epoch


def _trial_fields(r: TrialRecord, now: str) -> dict[str, Any]:
    return {"epochs": r.epochs, "best_epoch": selected_epoch(r),
            "config_hash": config_hash(r.config),
            "config_json": json.dumps(r.config, sort_keys=True, default=str),
            "mlflow_run_id": r.run_id, "node_id": r.last.get("node_id"),
            "wall_seconds": r.wall, "finished_at": now, **reported_columns(r.last)}


def cell_rows(base: Mapping[str, Any], plan: CellPlan, search: list[TrialRecord],
              finals: list[TrialRecord], selected: bool, now: str) -> list[dict]:
    """Search rows (best validation value per trial), two rows per final run (test and val), and
    one failed row when no configuration could be selected. ``epochs`` is the epochs a trial ran
    and ``best_epoch`` the epoch its value was taken at, in search and final rows alike."""
    rows = [dict(base, phase=SEARCH, trial_id=r.trial_id, seed=r.seed, split="val", value=r.best,
                 status=r.status, error=r.error, **_trial_fields(r, now))
            for r in search]
    for r in finals:
        ok = r.status == "ok" and plan.test_metric in r.last
        status = r.status if r.status != "ok" or ok else "failed"
        common = dict(base, phase=FINAL, trial_id=f"seed-{r.seed}", seed=r.seed, status=status,
                      error=r.error if ok or r.error else "no test metric was reported",
                      **_trial_fields(r, now))
        rows.append(dict(common, split="test",
                         value=float(r.last[plan.test_metric]) if ok else math.nan))
        rows.append(dict(common, split="val", value=r.best if ok else math.nan))
    if not selected:
        reason = "; ".join(sorted({r.error or r.status for r in search}))[:4000]
        rows.append(dict(base, phase=FINAL, trial_id="seed-none", split="test", value=math.nan,
                         status="failed", finished_at=now,
                         error=f"no configuration could be selected: {reason or 'no trial'}"))
    return rows


def cell_summary(key: str, plan: CellPlan, search: list[TrialRecord], finals: list[TrialRecord],
                 search_finished_at: float | None) -> dict[str, Any]:
    """The done marker's content: counts, the best validation value and the trials' walls."""
    values = [r.best for r in search if math.isfinite(r.best)]
    return {"cell": key, "finished_at": time.time(), "search_finished_at": search_finished_at,
            "trials": len(search), "finals_ok": sum(1 for r in finals if r.status == "ok"),
            "best_val": (min if plan.mode == "min" else max)(values, default=None),
            "trial_seconds": [round(r.wall, 2) for r in search],
            "final_seconds": [round(r.wall, 2) for r in finals]}


def write_marker(marker: Path, summary: Mapping[str, Any]) -> None:
    """Write a done marker atomically: it exists only once every row of its cell is written."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, default=str, indent=1))
    tmp.replace(marker)
