"""One search per (task, method): Ray Tune + Optuna TPE + ASHA, on the validation split only.

The paper's defaults are queued first; the grace period and the trial budget come from the
profile, so they are equal for every method. The trainable is the single-worker light path, or a
data-parallel Ray Train run when the cell asks for more than one worker.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.methods.space import searched, to_tune
from harness.trial.context import CellSpec
from harness.trial.loop import SEED_KEY, ddp_trainer, tune_trainable

if TYPE_CHECKING:
    from harness.methods.contract import Method
    from harness.suites.base import Task, TaskData


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable hash of a configuration (JSON, sorted keys)."""
    blob = json.dumps(dict(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class TrialOutcome:
    """One finished search trial, as the results table needs it."""

    trial_id: str
    config: dict[str, Any]
    status: str                     # ok | stopped | failed | diverged
    best_value: float
    epochs: int
    wall_seconds: float
    node_id: str | None = None
    error: str | None = None
    history: list[dict] = field(default_factory=list)


@dataclass
class SearchOutcome:
    """The trials of one cell's search and the selected configuration."""

    trials: list[TrialOutcome]
    best_config: dict[str, Any] | None
    best_value: float
    storage_path: str


def trial_status(result) -> tuple[str, str | None]:
    """(status, error) of a Tune result: diverged and failed trials are told apart by the error."""
    err = result.error
    if err is not None:
        text = f"{type(err).__name__}: {err}"
        return ("diverged" if "Diverged" in text else "failed"), text[-2000:]
    return "ok", None


TRAIN_LOOP_KEY = "train_loop_config"   # where a TorchTrainer's Tune config lives


def trainable_for(cell: CellSpec, method: "Method", data: "TaskData"):
    """(trainable, nested): the light function trainable, or a TorchTrainer for DDP cells."""
    from ray import tune

    if cell.workers > 1:
        return ddp_trainer(cell, method, data), True
    res = {"cpu": cell.cpus_per_trial}
    if cell.gpus_per_trial:
        res["gpu"] = cell.gpus_per_trial
    fn = tune.with_parameters(tune_trainable, cell=cell, method=method, data=data)
    return tune.with_resources(fn, res), False


def _nest(d: Mapping[str, Any], nested: bool) -> dict[str, Any]:
    return {TRAIN_LOOP_KEY: dict(d)} if nested else dict(d)


def _unnest(d: Mapping[str, Any] | None) -> dict[str, Any]:
    d = dict(d or {})
    return dict(d.get(TRAIN_LOOP_KEY, d))


def run_search(cell: CellSpec, method: "Method", task: "Task", data: "TaskData", *,
               num_samples: int, max_concurrent: int, storage_path: str, seed: int = 0,
               max_failures: int = 0, callbacks: list | None = None,
               defaults: Mapping[str, Any] | None = None, max_t: int | None = None) -> SearchOutcome:
    """Run one cell's search and return its trials and the configuration selected on validation."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    metric = f"val_{task.metric.name}"
    mode = task.metric.direction
    space = method.search_space(task)
    trainable, nested = trainable_for(cell, method, data)
    param_space = dict(to_tune(space))
    param_space[SEED_KEY] = seed
    param_space = _nest(param_space, nested)
    first = dict(defaults if defaults is not None else method.defaults(task))
    # Optuna enqueues points under its flattened names ("train_loop_config/align.lr")
    prefix = f"{TRAIN_LOOP_KEY}/" if nested else ""
    points = [{prefix + k: first[k] for k in searched(space)}] if searched(space) else None
    searcher = OptunaSearch(metric=metric, mode=mode, seed=seed, points_to_evaluate=points)
    scheduler = ASHAScheduler(metric=metric, mode=mode, time_attr="training_iteration",
                              max_t=max(max_t or 1, cell.profile.grace_period),
                              grace_period=cell.profile.grace_period, reduction_factor=2)
    name = f"{cell.sweep}-{cell.task}-{cell.method}-{cell.phase}".replace("/", "_")
    tuner = tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=num_samples, max_concurrent_trials=max_concurrent,
                                    reuse_actors=not nested),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0,
                                  callbacks=callbacks or [],
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    grid = tuner.fit()
    trials: list[TrialOutcome] = []
    for res in grid:
        status, error = trial_status(res)
        if res.metrics and res.metrics.get("diverged"):
            status, error = "diverged", "the trial's loss or metric became non-finite or exploded"
        df = res.metrics_dataframe
        hist = df.to_dict("records") if df is not None else []
        values = [h[metric] for h in hist if metric in h and h[metric] is not None
                  and h.get("diverged") != 1 and math.isfinite(h[metric])]
        best = (min(values) if mode == "min" else max(values)) if values else math.nan
        epochs = int(res.metrics.get("training_iteration", 0) or 0) if res.metrics else 0
        if status == "ok" and epochs < (max_t or 0):
            status = "stopped"        # early-stopped by ASHA: a valid, shorter trial
        cfg = {k: v for k, v in _unnest(res.config).items() if k != SEED_KEY}
        trials.append(TrialOutcome(
            trial_id=str(res.metrics.get("trial_id", "")) if res.metrics else "",
            config=cfg, status=status, best_value=best, epochs=epochs,
            wall_seconds=float(res.metrics.get("time_total_s", 0.0) or 0.0) if res.metrics else 0.0,
            node_id=res.metrics.get("node_id") if res.metrics else None, error=error,
            history=hist))
    scored = [t for t in trials if t.status in ("ok", "stopped") and math.isfinite(t.best_value)]
    if scored:
        pick = min if mode == "min" else max
        best_trial = pick(scored, key=lambda t: t.best_value)
        return SearchOutcome(trials, best_trial.config, best_trial.best_value, grid.experiment_path)
    return SearchOutcome(trials, None, math.nan, grid.experiment_path)
