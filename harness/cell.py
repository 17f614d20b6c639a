"""One cell of a sweep — one (task, method) — from search to final rows.

:func:`run_cell` runs inside a Ray task (zero CPUs: it only drives), so several cells search at
the same time and keep the cluster busy. It

1. runs the search (:func:`harness.search.run_search`) on train/validation data only, logging each
   trial to MLflow through :class:`TrialTracking` and the live progress board;
2. re-runs the selected configuration with N seeds on the final data (train/val/test), each seed a
   Ray task (single worker) or a standalone TorchTrainer run (data parallel);
3. writes the cell's rows to the results table and a "done" marker, in that order, so a cell is
   either finished with all its rows or not finished at all.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from harness import provenance
from harness.results import append_rows
from harness.search import TRAIN_LOOP_KEY, config_hash, run_search
from harness.trial.context import CellSpec
from harness.trial.loop import SEED_KEY, run_local, trial_body

PROGRESS_ACTOR = "harness-progress"


# ----------------------------------------------------------------------------- progress board
class ProgressBoard:
    """A named Ray actor holding each cell's state and best validation value so far."""

    def __init__(self):
        self.cells: dict[str, dict[str, Any]] = {}
        self.version = 0

    def update(self, key: str, **fields: Any) -> None:
        cell = self.cells.setdefault(key, {"state": "queued", "best": None, "trials": 0})
        best = fields.pop("best", None)
        direction = fields.pop("direction", "min")
        if best is not None and math.isfinite(best):
            old = cell.get("best")
            if old is None or (best < old if direction == "min" else best > old):
                cell["best"] = best
        cell.update(fields)
        self.version += 1

    def snapshot(self) -> tuple[int, dict[str, dict[str, Any]]]:
        return self.version, {k: dict(v) for k, v in self.cells.items()}


def progress_board():
    """The sweep's progress actor (created on first use, found by name afterwards)."""
    import ray

    return ray.remote(num_cpus=0)(ProgressBoard).options(
        name=PROGRESS_ACTOR, get_if_exists=True, lifetime=None).remote()


# ----------------------------------------------------------------------------- tracking callback
def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if k in ("training_iteration", "timestamp", "time_this_iter_s", "time_total_s", "pid",
                 "time_since_restore", "iterations_since_restore", "epoch", "done"):
            continue
        out[k] = float(v)
    return out


def _flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    cfg = dict(config.get(TRAIN_LOOP_KEY, config))
    cfg.pop(SEED_KEY, None)
    return cfg


def _tune_callback_cls():
    from ray.tune import Callback

    class TrialTracking(Callback):
        """Mirrors every search trial into MLflow (one nested run each) and the progress board."""

        def __init__(self, tracker, cell_run_id: str, tags: dict, metric: str, direction: str,
                     board, board_key: str):
            self.tracker, self.cell_run_id, self.tags = tracker, cell_run_id, tags
            self.metric, self.direction = metric, direction
            self.board, self.board_key = board, board_key
            self.runs: dict[str, str] = {}
            self.started = 0

        def _run(self, trial) -> str | None:
            if self.tracker is None:
                return None
            if trial.trial_id not in self.runs:
                cfg = _flat_config(trial.config)
                h = config_hash(cfg)
                tags = dict(self.tags, **{"harness.config_hash": h, "harness.trial_id": trial.trial_id})
                self.runs[trial.trial_id] = self.tracker.trial_run(
                    self.cell_run_id, f"trial-{trial.trial_id}", cfg, tags,
                    run_key=f"trial:{self.board_key}:search:{h}")
            return self.runs[trial.trial_id]

        def on_trial_start(self, iteration, trials, trial, **info):
            self._run(trial)
            self.started += 1
            if self.board is not None:
                self.board.update.remote(self.board_key, state="running", trials=self.started)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            rid = self._run(trial)
            step = int(result.get("epoch", result.get("training_iteration", 0)) or 0)
            if rid is not None:
                self.tracker.log_metrics(rid, _numeric(result), step=step)
            if self.board is not None and self.metric in result and not result.get("diverged"):
                self.board.update.remote(self.board_key, best=float(result[self.metric]),
                                         direction=self.direction)

        def on_trial_complete(self, iteration, trials, trial, **info):
            rid = self._run(trial)
            if rid is not None:
                diverged = bool((trial.last_result or {}).get("diverged"))
                self.tracker.set_tags(rid, {"harness.status": "diverged" if diverged else "ok"})
                self.tracker.finish(rid, "FAILED" if diverged else "FINISHED")

        def on_trial_error(self, iteration, trials, trial, **info):
            rid = self._run(trial)
            if rid is not None:
                self.tracker.set_tags(rid, {"harness.status": "failed",
                                            "harness.error": str(getattr(trial, "error_msg", ""))[:5000]})
                self.tracker.finish(rid, "FAILED")

    return TrialTracking


# ----------------------------------------------------------------------------- final runs
def _final_local(cell: CellSpec, method, data, config: Mapping[str, Any]) -> dict[str, Any]:
    """One final seed in a Ray task (single worker): the same loop, without Tune."""
    import torch

    torch.set_num_threads(max(1, int(cell.cpus_per_trial)))
    t0 = time.perf_counter()
    try:
        out = run_local(cell, method, data, config)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed seed, the sweep goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-4000:], "metrics": {},
                "wall_seconds": time.perf_counter() - t0}
    out["wall_seconds"] = time.perf_counter() - t0
    out.pop("embedder_state", None)
    out["node_id"] = _node_id()
    return out


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


def _final_ddp(cell: CellSpec, method, data, config: Mapping[str, Any]) -> dict[str, Any]:
    """One final seed as a standalone data-parallel TorchTrainer run."""
    import ray.train

    from harness.trial.loop import ddp_trainer

    t0 = time.perf_counter()
    name = f"{cell.sweep}-final-{cell.task}-{cell.method}-{config[SEED_KEY]}".replace("/", "_")
    trainer = ddp_trainer(cell, method, data, config=dict(config),
                          run_config=ray.train.RunConfig(storage_path=cell.storage_path, name=name))
    try:
        result = trainer.fit()
        metrics = dict(result.metrics or {})
    except Exception as exc:  # noqa: BLE001
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-4000:], "metrics": {},
                "wall_seconds": time.perf_counter() - t0}
    status = "diverged" if metrics.get("diverged") else "ok"
    return {"status": status, "metrics": metrics, "history": [metrics],
            "wall_seconds": time.perf_counter() - t0, "node_id": metrics.get("node_id")}


# ----------------------------------------------------------------------------- the cell
@dataclass
class CellOptions:
    """Sweep-wide settings a cell needs (picklable)."""

    results_dir: str
    storage_path: str
    num_samples: int
    seeds: int
    max_concurrent: int
    max_failures: int
    data_source: str
    data_root: str = ""
    tracker: Any = None
    sweep_run_id: str | None = None
    search_seed: int = 0
    extra_tags: dict = field(default_factory=dict)


def done_marker(results_dir: str | Path, cell_key: str) -> Path:
    safe = cell_key.replace("/", "__")
    return Path(results_dir) / "cells" / f"{safe}.json"


def _row_base(cell: CellSpec, method, task, opts: CellOptions, backbone: str) -> dict[str, Any]:
    return {"sweep": cell.sweep, "suite": cell.suite, "task": task.name,
            "task_version": task.version, "method": method.name,
            "method_version": method.version, "variant_of": method.variant_of,
            "metric": task.metric.name, "direction": task.metric.direction,
            "data_source": opts.data_source, "backbone": backbone, "profile": cell.profile.name,
            "hostname": provenance.hostname(), "git_commit": provenance.git_commit(),
            "packages": provenance.package_versions(), "hardware": provenance.hardware()}


def run_cell(cell: CellSpec, method, search_data, opts: CellOptions,
             cell_key: str) -> dict[str, Any]:
    """Search, select on validation, run the final seeds, write rows; returns a summary."""
    import ray

    from harness.suites import get_suite

    task = get_suite(cell.suite)[cell.task]
    board = progress_board()
    board.update.remote(cell_key, state="running")
    backbone = cell.profile.backbone(task.modality)
    base = _row_base(cell, method, task, opts, backbone)
    tracker = opts.tracker
    tags = {"harness.suite": cell.suite, "harness.task": task.name, "harness.method": method.name,
            "harness.task_version": task.version, "harness.method_version": method.version,
            "harness.data_source": opts.data_source, "harness.backbone": backbone,
            "harness.profile": cell.profile.name, **opts.extra_tags}
    cell_run = None
    if tracker is not None and opts.sweep_run_id:
        cell_run = tracker.cell_run(opts.sweep_run_id, task.name, method.name, tags=tags)
    metric = f"val_{task.metric.name}"
    t0 = time.perf_counter()
    # ---- search (validation only)
    callbacks = [_tune_callback_cls()(tracker, cell_run, dict(tags, **{"harness.phase": "search"}),
                                      metric, task.metric.direction, board, cell_key)]
    search_cell = replace(cell, phase="search")
    outcome = run_search(search_cell, method, task, search_data, num_samples=opts.num_samples,
                         max_concurrent=opts.max_concurrent, storage_path=opts.storage_path,
                         seed=opts.search_seed, max_failures=opts.max_failures,
                         callbacks=callbacks, max_t=cell.profile.epochs(task.defaults.epochs))
    search_seconds = time.perf_counter() - t0
    search_finished_at = time.time()
    now = datetime.now(timezone.utc).isoformat()
    rows = []
    for t in outcome.trials:
        h = config_hash(t.config)
        rows.append(dict(base, phase="search", trial_id=t.trial_id, seed=opts.search_seed,
                         split="val", value=t.best_value, status=t.status, epochs=t.epochs,
                         config_hash=h, config_json=json.dumps(t.config, sort_keys=True, default=str),
                         mlflow_run_id=callbacks[0].runs.get(t.trial_id), node_id=t.node_id,
                         wall_seconds=t.wall_seconds, finished_at=now, error=t.error))
    # ---- final runs (the selected config, N seeds, test read here only)
    finals = []
    if outcome.best_config is not None and opts.seeds > 0:
        board.update.remote(cell_key, state="final")
        final_cell = replace(cell, phase="final")
        # the test split is read here, after the search, and only for the final runs
        from harness.trial.data import load_for_phase

        final_data = load_for_phase(task, opts.data_root, cell.profile, "final")
        fn = _final_ddp if cell.workers > 1 else _final_local
        res = {"num_cpus": 0 if cell.workers > 1 else cell.cpus_per_trial}
        if cell.gpus_per_trial and cell.workers == 1:
            res["num_gpus"] = cell.gpus_per_trial
        remote = ray.remote(max_retries=max(0, opts.max_failures))(fn).options(**res)
        data_ref = ray.put(final_data)
        seeds = list(range(1, opts.seeds + 1))
        refs = [remote.remote(final_cell, method, data_ref, dict(outcome.best_config, **{SEED_KEY: s}))
                for s in seeds]
        finals = list(zip(seeds, ray.get(refs)))
    h = config_hash(outcome.best_config or {})
    for seed, out in finals:
        m = out.get("metrics") or {}
        test = m.get(f"test_{task.metric.name}", math.nan)
        status = out.get("status", "failed")
        run_id = None
        if tracker is not None and cell_run:
            run_id = tracker.trial_run(cell_run, f"final-seed-{seed}", outcome.best_config,
                                       dict(tags, **{"harness.phase": "final", "harness.seed": str(seed),
                                                     "harness.config_hash": h, "harness.status": status}),
                                       run_key=f"trial:{cell_key}:final:{h}:{seed}")
            for hrow in out.get("history") or []:
                tracker.log_metrics(run_id, _numeric(hrow), step=int(hrow.get("epoch", 0) or 0))
            tracker.finish(run_id, "FINISHED" if status == "ok" else "FAILED")
        common = dict(base, phase="final", trial_id=f"seed-{seed}", seed=seed, status=status,
                      epochs=int(m.get("best_epoch", 0) or 0) if status == "ok" else None,
                      config_hash=h, config_json=json.dumps(outcome.best_config, sort_keys=True, default=str),
                      mlflow_run_id=run_id, node_id=out.get("node_id"),
                      wall_seconds=out.get("wall_seconds"), finished_at=now, error=out.get("error"))
        rows.append(dict(common, split="test", value=test if status == "ok" else math.nan))
        rows.append(dict(common, split="val", value=m.get(metric, math.nan) if status == "ok" else math.nan))
    if not finals:
        # no usable search trial: the cell is recorded as failed, so the leaderboard shows it
        reason = "; ".join(sorted({t.error or t.status for t in outcome.trials}))[:4000] or "no trial finished"
        rows.append(dict(base, phase="final", trial_id="seed-none", split="test", value=math.nan,
                         status="failed", config_hash=h, finished_at=now,
                         error=f"no configuration could be selected: {reason}"))
    append_rows(opts.results_dir, rows, tag=cell_key.replace("/", "__"))
    ok = [out for _, out in finals if out.get("status") == "ok"]
    summary = {"cell": cell_key, "best_val": outcome.best_value, "best_config": outcome.best_config,
               "trials": len(outcome.trials), "finals_ok": len(ok), "seconds": time.perf_counter() - t0,
               "search_seconds": search_seconds, "search_finished_at": search_finished_at,
               "trial_seconds": [round(t.wall_seconds, 2) for t in outcome.trials],
               "final_seconds": [round(out.get("wall_seconds") or 0, 2) for _, out in finals],
               "test": [out["metrics"].get(f"test_{task.metric.name}") for out in ok]}
    marker = done_marker(opts.results_dir, cell_key)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, default=str, indent=1))
    tmp.replace(marker)
    state = "done" if ok else "failed"
    board.update.remote(cell_key, state=state, finals=len(ok))
    if tracker is not None and cell_run:
        tracker.set_tags(cell_run, {"harness.status": state, "harness.best_config_hash": h})
        tracker.log_metrics(cell_run, {f"best_val_{task.metric.name}": outcome.best_value}, step=0)
        tracker.finish(cell_run, "FINISHED" if ok else "FAILED")
    return summary
