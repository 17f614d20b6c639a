"""One cell's search on its own: Ray Tune + Optuna TPE + ASHA on the validation split.

The sweep runs all its cells through :mod:`harness.engine`; :func:`run_search` is the same engine
with a single cell and no final runs, for tests, benchmarks and users who want one search.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from harness.engine.plan import config_hash
from harness.keys import TRAIN_LOOP_KEY
from harness.trial.context import CellSpec

if TYPE_CHECKING:
    from harness.methods.contract import Method
    from harness.suites.base import Task, TaskData

__all__ = ["TRAIN_LOOP_KEY", "SearchOutcome", "TrialOutcome", "config_hash", "run_search"]


@dataclass
class TrialOutcome:
    """One finished search trial."""

    trial_id: str
    config: dict[str, Any]
    status: str                     # ok | stopped | failed | diverged
    best_value: float
    epochs: int
    wall_seconds: float
    node_id: str | None = None
    error: str | None = None
    last: dict = field(default_factory=dict)


@dataclass
class SearchOutcome:
    """The trials of one search and the configuration selected on validation."""

    trials: list[TrialOutcome]
    best_config: dict[str, Any] | None
    best_value: float


def run_search(cell: CellSpec, method: "Method", task: "Task", data: "TaskData", *,
               num_samples: int, max_concurrent: int, storage_path: str, results_dir: str,
               seed: int = 0, max_failures: int = 0, max_t: int | None = None,
               defaults: Mapping[str, Any] | None = None, name: str | None = None,
               stage_reuse: int | None = None) -> SearchOutcome:
    """Search one (task, method) cell and return its trials and the best configuration.

    ``stage_reuse``: search trials per stage-1 configuration (default: the profile's).
    """
    from harness.engine import CellPlan, row_meta, run_cells

    plan = CellPlan.of(task, method, num_samples=num_samples, seeds=0,
                       max_t=max_t or cell.profile.epochs(task.defaults.epochs),
                       grace_period=cell.profile.grace_period, search_seed=seed,
                       stage_reuse=stage_reuse or cell.profile.stage_reuse, defaults=defaults)
    key = plan.key
    cb = run_cells({key: (cell, method)}, [plan], {task.name: data},
                   name=name or f"search-{task.name}-{method.name}", storage_path=storage_path,
                   results_dir=results_dir,
                   meta={key: row_meta(cell, method, task, data.source, cell.sweep)},
                   max_concurrent=max_concurrent, max_failures=max_failures,
                   workers=cell.workers, cpus=cell.cpus_per_trial, gpus=cell.gpus_per_trial)
    trials = [TrialOutcome(r.trial_id, r.config, r.status, r.best, r.epochs, r.wall,
                           r.last.get("node_id"), r.error, r.last)
              for r in cb.records.values() if r.phase == "search"]
    scored = [t for t in trials if t.status in ("ok", "stopped") and math.isfinite(t.best_value)]
    if not scored:
        return SearchOutcome(trials, None, math.nan)
    pick = min if plan.mode == "min" else max
    best = pick(scored, key=lambda t: t.best_value)
    return SearchOutcome(trials, best.config, best.best_value)
