"""Catch MLflow up from the results table after a tracking outage, without duplicate runs.

The results table is the source of truth. A run of a sweep during which MLflow did not answer
(see :class:`harness.tracking.guard.GuardedTracker`) leaves trials whose MLflow runs are missing,
or were opened and never closed. The next run of the sweep calls :func:`catch_up` right after it
reopened its sweep run: for every row of the table it finds the trial's run by its run key (the
keys the Tune callback uses), reopens or creates it, logs the row's values, status and error, and
closes it; cells get the same. Runs that already carry a final status are left alone, so calling
this on a sweep whose MLflow is complete changes nothing.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from harness.engine.callback import cell_run_key, trial_run_key
from harness.keys import (CONFIG_HASH_TAG, ERROR_TAG, FINAL, PHASE_TAG, SEED_TAG, STATUS_TAG,
                          TRIAL_ID_TAG, tag)
from harness.tracking.names import PARENT_TAG, RUN_KEY_TAG
from harness.tracking.values import _filter_quote

CAUGHT_UP_TAG = "harness.caught_up"
_CLOSED = ("FINISHED", "FAILED")


@dataclass
class CatchUp:
    """What :func:`catch_up` logged."""

    trials: int = 0          # trial runs created or completed from the table
    cells: int = 0           # cell runs created or closed

    def __bool__(self) -> bool:
        return bool(self.trials or self.cells)


def _children(tracker, parent_id: str) -> dict[str, Any]:
    """run key -> the oldest run with that key directly under ``parent_id``."""
    runs = tracker.search(f"tags.`{PARENT_TAG}` = {_filter_quote(parent_id)}")
    out: dict[str, Any] = {}
    for r in runs:           # oldest first (the tracker's search order)
        out.setdefault(r.data.tags.get(RUN_KEY_TAG, ""), r)
    return out


def _complete(run) -> bool:
    return run is not None and run.info.status in _CLOSED and STATUS_TAG in run.data.tags


def _trial_metrics(rows: pd.DataFrame) -> dict[str, float]:
    out = {}
    for r in rows.itertuples():
        if isinstance(r.value, float) and math.isfinite(r.value):
            out[f"{r.split}_{r.metric}"] = float(r.value)
    return out


def _cell_tags(first: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    fields = ("suite", "task", "method", "task_version", "method_version", "data_source",
              "backbone", "role", "profile")
    tags = {tag(f): (first.get(f) if not pd.isna(first.get(f)) else "none") for f in fields}
    if attempt > 1:
        tags[tag("attempt")] = attempt
    return tags


def catch_up(tracker, sweep_run: str, rows: pd.DataFrame,
             attempts: Mapping[str, int] | None = None) -> CatchUp:
    """Log to MLflow what the sweep's rows say and MLflow does not have.

    Args:
        tracker: the sweep's :class:`~harness.tracking.Tracker` (not a guarded one: a failure here
            raises, and the caller decides).
        sweep_run: the sweep's run id (reopened by this run).
        rows: the sweep's rows (:func:`harness.results.read_results`, this sweep only).
        attempts: cell key -> its current attempt (1 unless retried with ``--retry-failed``).
    """
    done = CatchUp()
    if rows.empty:
        return done
    attempts = attempts or {}
    cells = _children(tracker, sweep_run)
    for (task, method), cell_rows in rows.groupby(["task", "method"], sort=True):
        key = f"{task}/{method}"
        ckey = cell_run_key(task, method, attempts.get(key, 1))
        cell = cells.get(ckey)
        trials = _children(tracker, cell.info.run_id) if cell is not None else {}
        keyed = cell_rows.dropna(subset=["config_hash"])
        run_keys = [trial_run_key(key, p, h, int(sd) if not pd.isna(sd) else 0)
                    for p, h, sd in zip(keyed["phase"], keyed["config_hash"], keyed["seed"])]
        todo = [(tkey, group) for tkey, group in keyed.groupby(pd.Series(run_keys, index=keyed.index),
                                                               sort=True)
                if not _complete(trials.get(tkey))]
        # as the callback decides: a cell without one successful final run failed
        finals_ok = ((cell_rows["phase"] == FINAL) & (cell_rows["status"] == "ok")).any()
        failed = not bool(finals_ok)
        state = "failed" if failed else "done"
        if not todo and _complete(cell):
            continue
        cell_tags = _cell_tags(cell_rows.iloc[0].to_dict(), attempts.get(key, 1))
        cell_id = tracker.cell_run(sweep_run, task, method, tags=cell_tags, run_key=ckey)
        for tkey, group in todo:
            _log_trial(tracker, cell_id, tkey, group, cell_tags)
            done.trials += 1
        if not _complete(cell) or todo:
            tracker.set_tags(cell_id, {STATUS_TAG: state, CAUGHT_UP_TAG: "1"})
            tracker.finish(cell_id, "FAILED" if failed else "FINISHED")
            done.cells += 1
    return done


def _log_trial(tracker, cell_id: str, run_key: str, group: pd.DataFrame,
               cell_tags: Mapping[str, Any]) -> None:
    """Create or reopen one trial's run and log what its rows say, then close it."""
    first = group.iloc[0]
    phase, seed = str(first["phase"]), int(first["seed"]) if not pd.isna(first["seed"]) else 0
    config = json.loads(first["config_json"]) if isinstance(first["config_json"], str) else {}
    tags = {**cell_tags, PHASE_TAG: phase, CONFIG_HASH_TAG: first["config_hash"],
            TRIAL_ID_TAG: first["trial_id"], CAUGHT_UP_TAG: "1"}
    if phase == FINAL:
        name = f"final-seed-{seed}"
        tags[SEED_TAG] = str(seed)
    else:
        name = f"trial-{first['trial_id']}"
    run_id = tracker.trial_run(cell_id, name, config, tags, run_key=run_key)
    metrics = _trial_metrics(group)
    epochs = first["epochs"]
    if metrics:
        tracker.log_metrics(run_id, metrics, step=int(epochs) if not pd.isna(epochs) else 0)
    status = str(first["status"])
    error = first["error"] if isinstance(first["error"], str) else None
    tracker.set_tags(run_id, {STATUS_TAG: status, **({ERROR_TAG: error[:5000]} if error else {})})
    tracker.finish(run_id, "FINISHED" if status in ("ok", "stopped") else "FAILED")


def behind_note(sweep_dir: Path) -> Path:
    """The note a run leaves when MLflow fell behind (see :mod:`harness.tracking.guard`)."""
    from harness.tracking.guard import BEHIND_FILE

    return Path(sweep_dir) / BEHIND_FILE
